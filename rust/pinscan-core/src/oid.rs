// SPDX-License-Identifier: Apache-2.0
//! Object identifiers: dotted rendering and the names pinscan reports for the ones it knows.
//!
//! Tables are written as dotted strings, for review against the RFCs, and encoded once on first
//! use; lookups compare the DER content octets, so no OID is rendered on the hot path.

use std::fmt::Write;
use std::sync::OnceLock;

use crate::der::DerError;
use crate::error::ErrorKind;

/// Renders an OID's content octets as dotted decimal.
pub fn dotted(content: &[u8]) -> Result<String, DerError> {
    if content.is_empty() {
        return Err(DerError::Invalid(
            ErrorKind::InvalidOid,
            "empty object identifier",
        ));
    }
    if content.last().is_some_and(|b| b & 0x80 != 0) {
        return Err(DerError::Invalid(
            ErrorKind::InvalidOid,
            "object identifier ends mid-arc",
        ));
    }
    let mut out = String::with_capacity(content.len() * 3);
    let mut arc: u128 = 0;
    let mut first = true;
    for &b in content {
        if arc == 0 && b == 0x80 {
            return Err(DerError::Invalid(
                ErrorKind::InvalidOid,
                "object identifier arc has a leading 0x80",
            ));
        }
        arc = arc.checked_mul(128).ok_or(DerError::Invalid(
            ErrorKind::InvalidOid,
            "object identifier arc exceeds 128 bits",
        ))? | u128::from(b & 0x7f);
        if b & 0x80 != 0 {
            continue;
        }
        if first {
            let (a, b) = match arc {
                0..=39 => (0, arc),
                40..=79 => (1, arc - 40),
                _ => (2, arc - 80),
            };
            let _ = write!(out, "{a}.{b}");
            first = false;
        } else {
            let _ = write!(out, ".{arc}");
        }
        arc = 0;
    }
    Ok(out)
}

/// Encodes a dotted OID into DER content octets (for the tables below, which are known-good).
fn encode(dotted: &str) -> Vec<u8> {
    let arcs: Vec<u128> = dotted
        .split('.')
        .map(|a| a.parse().expect("table OIDs are valid"))
        .collect();
    let mut out = Vec::new();
    let mut push = |mut v: u128| {
        let mut tmp = vec![(v & 0x7f) as u8];
        v >>= 7;
        while v > 0 {
            tmp.push((v & 0x7f) as u8 | 0x80);
            v >>= 7;
        }
        out.extend(tmp.iter().rev());
    };
    push(arcs[0] * 40 + arcs[1]);
    arcs[2..].iter().for_each(|&a| push(a));
    out
}

/// A table from OID to a name and, where it applies, a size in bits.
pub struct Table {
    entries: &'static [(&'static str, &'static str, u32)],
    /// Each entry's `key` and DER content octets, in `entries` order.
    encoded: OnceLock<Vec<(usize, Vec<u8>)>>,
}

/// Length and last octet: tells nearly every pair of OIDs apart without a byte comparison, and
/// is read without following a pointer per entry.
fn key(content: &[u8]) -> usize {
    content.len() << 8 | content.last().map_or(0, |&b| usize::from(b))
}

impl Table {
    const fn new(entries: &'static [(&'static str, &'static str, u32)]) -> Self {
        Table {
            entries,
            encoded: OnceLock::new(),
        }
    }

    /// The entry's name and bits (0 when the table gives none).
    pub fn get(&self, content: &[u8]) -> Option<(&'static str, u32)> {
        let encoded = self.encoded.get_or_init(|| {
            self.entries
                .iter()
                .map(|e| {
                    let der = encode(e.0);
                    (key(&der), der)
                })
                .collect()
        });
        let k = key(content);
        encoded
            .iter()
            .position(|(ek, e)| *ek == k && e[..] == *content)
            .map(|i| (self.entries[i].1, self.entries[i].2))
    }

    pub fn name(&self, content: &[u8]) -> Option<&'static str> {
        self.get(content).map(|(n, _)| n)
    }
}

/// Public key algorithms (SubjectPublicKeyInfo.algorithm). Bits are OpenSSL's `EVP_PKEY_get_bits`
/// for algorithms whose size the OID alone fixes.
pub static KEY_TYPES: Table = Table::new(&[
    ("1.2.840.113549.1.1.1", "rsa", 0),
    ("1.2.840.113549.1.1.10", "rsa-pss", 0),
    ("1.2.840.10045.2.1", "ec", 0),
    ("1.3.101.112", "ed25519", 253),
    ("1.3.101.113", "ed448", 456),
    ("1.3.101.110", "x25519", 253),
    ("1.3.101.111", "x448", 448),
    ("1.2.840.10040.4.1", "dsa", 0),
    ("1.2.840.10046.2.1", "dh", 0),
    ("1.2.840.113549.1.3.1", "dh", 0),
    ("2.16.840.1.101.3.4.3.17", "ml-dsa-44", 0),
    ("2.16.840.1.101.3.4.3.18", "ml-dsa-65", 0),
    ("2.16.840.1.101.3.4.3.19", "ml-dsa-87", 0),
    ("1.2.643.7.1.1.1.1", "gost2012-256", 256),
    ("1.2.643.7.1.1.1.2", "gost2012-512", 512),
    ("1.2.643.2.2.19", "gost2001", 256),
]);

pub const RSA: &str = "rsa";
pub const RSA_PSS: &str = "rsa-pss";
pub const EC: &str = "ec";
pub const DSA: &str = "dsa";

/// Named curves, with pyca/cryptography's names.
pub static CURVES: Table = Table::new(&[
    ("1.2.840.10045.3.1.7", "secp256r1", 256),
    ("1.3.132.0.34", "secp384r1", 384),
    ("1.3.132.0.35", "secp521r1", 521),
    ("1.3.132.0.10", "secp256k1", 256),
    ("1.2.840.10045.3.1.1", "secp192r1", 192),
    ("1.3.132.0.33", "secp224r1", 224),
    ("1.3.36.3.3.2.8.1.1.7", "brainpoolP256r1", 256),
    ("1.3.36.3.3.2.8.1.1.11", "brainpoolP384r1", 384),
    ("1.3.36.3.3.2.8.1.1.13", "brainpoolP512r1", 512),
    ("1.2.156.10197.1.301", "sm2", 256),
    ("1.3.132.0.1", "sect163k1", 163),
    ("1.3.132.0.15", "sect163r2", 163),
    ("1.3.132.0.26", "sect233k1", 233),
    ("1.3.132.0.27", "sect233r1", 233),
    ("1.3.132.0.16", "sect283k1", 283),
    ("1.3.132.0.17", "sect283r1", 283),
    ("1.3.132.0.36", "sect409k1", 409),
    ("1.3.132.0.37", "sect409r1", 409),
    ("1.3.132.0.38", "sect571k1", 571),
    ("1.3.132.0.39", "sect571r1", 571),
]);

/// Signature algorithms (Certificate.signatureAlgorithm), with OpenSSL's long names.
pub static SIGNATURES: Table = Table::new(&[
    ("1.2.840.113549.1.1.2", "md2WithRSAEncryption", 0),
    ("1.2.840.113549.1.1.4", "md5WithRSAEncryption", 0),
    ("1.2.840.113549.1.1.5", "sha1WithRSAEncryption", 0),
    ("1.3.14.3.2.29", "sha1WithRSA", 0),
    ("1.2.840.113549.1.1.14", "sha224WithRSAEncryption", 0),
    ("1.2.840.113549.1.1.11", "sha256WithRSAEncryption", 0),
    ("1.2.840.113549.1.1.12", "sha384WithRSAEncryption", 0),
    ("1.2.840.113549.1.1.13", "sha512WithRSAEncryption", 0),
    ("1.2.840.113549.1.1.10", "rsassa-pss", 0),
    ("1.2.840.10045.4.1", "ecdsa-with-SHA1", 0),
    ("1.2.840.10045.4.3.1", "ecdsa-with-SHA224", 0),
    ("1.2.840.10045.4.3.2", "ecdsa-with-SHA256", 0),
    ("1.2.840.10045.4.3.3", "ecdsa-with-SHA384", 0),
    ("1.2.840.10045.4.3.4", "ecdsa-with-SHA512", 0),
    ("1.2.840.10040.4.3", "dsa-with-SHA1", 0),
    ("2.16.840.1.101.3.4.3.1", "dsa-with-SHA224", 0),
    ("2.16.840.1.101.3.4.3.2", "dsa-with-SHA256", 0),
    ("1.3.101.112", "ed25519", 0),
    ("1.3.101.113", "ed448", 0),
    ("2.16.840.1.101.3.4.3.17", "ml-dsa-44", 0),
    ("2.16.840.1.101.3.4.3.18", "ml-dsa-65", 0),
    ("2.16.840.1.101.3.4.3.19", "ml-dsa-87", 0),
    ("1.2.156.10197.1.501", "SM2-with-SM3", 0),
    ("1.2.643.7.1.1.3.2", "gost2012-256-with-streebog256", 0),
    ("1.2.643.7.1.1.3.3", "gost2012-512-with-streebog512", 0),
]);

pub const RSASSA_PSS_SIG: &str = "rsassa-pss";

/// Hash algorithms named inside RSASSA-PSS parameters (RFC 4055).
pub static HASHES: Table = Table::new(&[
    ("1.3.14.3.2.26", "sha1", 0),
    ("2.16.840.1.101.3.4.2.4", "sha224", 0),
    ("2.16.840.1.101.3.4.2.1", "sha256", 0),
    ("2.16.840.1.101.3.4.2.2", "sha384", 0),
    ("2.16.840.1.101.3.4.2.3", "sha512", 0),
]);

/// Attribute types with an RFC 4514 short name; the set pyca/cryptography's `rfc4514_string`
/// uses, so the two agree. Every other type is written as a dotted OID, as RFC 4514 2.3 says.
pub static NAME_ATTRIBUTES: Table = Table::new(&[
    ("2.5.4.3", "CN", 0),
    ("2.5.4.7", "L", 0),
    ("2.5.4.8", "ST", 0),
    ("2.5.4.10", "O", 0),
    ("2.5.4.11", "OU", 0),
    ("2.5.4.6", "C", 0),
    ("2.5.4.9", "STREET", 0),
    ("0.9.2342.19200300.100.1.25", "DC", 0),
    ("0.9.2342.19200300.100.1.1", "UID", 0),
]);

/// Certificate extensions pinscan reads.
pub static EXTENSIONS: Table = Table::new(&[
    ("2.5.29.19", "basic_constraints", 0),
    ("2.5.29.17", "subject_alt_name", 0),
    ("2.5.29.14", "subject_key_identifier", 0),
    ("2.5.29.35", "authority_key_identifier", 0),
    ("1.3.6.1.4.1.11129.2.4.2", "embedded_scts", 0),
]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_round_trips_every_table() {
        for table in [
            &KEY_TYPES,
            &CURVES,
            &SIGNATURES,
            &HASHES,
            &NAME_ATTRIBUTES,
            &EXTENSIONS,
        ] {
            for (oid, name, _) in table.entries {
                let bytes = encode(oid);
                assert_eq!(&dotted(&bytes).unwrap(), oid);
                assert_eq!(table.name(&bytes), Some(*name));
            }
        }
    }

    #[test]
    fn known_encodings() {
        // sha256WithRSAEncryption, as it appears in every web PKI certificate.
        let sha256_rsa = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
        assert_eq!(
            SIGNATURES.name(&sha256_rsa),
            Some("sha256WithRSAEncryption")
        );
        assert_eq!(dotted(&[0x88, 0x37, 0x03]).unwrap(), "2.999.3");
    }

    #[test]
    fn malformed_oids_are_errors() {
        assert!(dotted(&[]).is_err());
        assert!(dotted(&[0x2a, 0x86]).is_err());
        assert!(dotted(&[0x2a, 0x80, 0x01]).is_err());
        assert!(dotted(&[0xff; 40]).is_err());
    }
}
