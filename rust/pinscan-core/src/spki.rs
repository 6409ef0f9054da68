// SPDX-License-Identifier: Apache-2.0
//! SubjectPublicKeyInfo: its structure, and what kind of key it holds.

use std::borrow::Cow;

use crate::der::{self, DerError, DerResult, Reader, Tlv};
use crate::error::ErrorKind;
use crate::oid;

/// A structurally valid SPKI: `SEQUENCE { AlgorithmIdentifier, BIT STRING }`.
#[derive(Clone, Copy, Debug)]
pub struct Spki<'a> {
    /// The whole SPKI exactly as encoded: the bytes a pin hashes.
    pub der: &'a [u8],
    pub algorithm: Tlv<'a>,
    pub parameters: Option<Tlv<'a>>,
    pub key: Tlv<'a>,
}

pub fn parse_spki<'a>(tlv: &Tlv<'a>) -> DerResult<Spki<'a>> {
    let mut r = der::sequence(tlv)?;
    let alg = r.read(der::SEQUENCE)?;
    let key = r.read(der::BIT_STRING)?;
    r.finish()?;
    let mut a = Reader::new(alg.content);
    let algorithm = a.read(der::OID)?;
    let parameters = if a.is_empty() {
        None
    } else {
        Some(a.read_any()?)
    };
    a.finish()?;
    Ok(Spki {
        der: tlv.full,
        algorithm,
        parameters,
        key,
    })
}

/// What a key is: its algorithm, size and curve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    pub key_type: Cow<'static, str>,
    pub key_bits: Option<u32>,
    pub curve: Option<Cow<'static, str>>,
}

pub fn key_info(spki: &Spki<'_>) -> DerResult<KeyInfo> {
    let Some((key_type, fixed_bits)) = oid::KEY_TYPES.get(spki.algorithm.content) else {
        return Ok(KeyInfo {
            key_type: Cow::Owned(oid::dotted(spki.algorithm.content)?),
            key_bits: None,
            curve: None,
        });
    };
    let mut info = KeyInfo {
        key_type: Cow::Borrowed(key_type),
        key_bits: (fixed_bits > 0).then_some(fixed_bits),
        curve: None,
    };
    match key_type {
        oid::RSA | oid::RSA_PSS => {
            let octets = der::bit_string_octets(&spki.key)?;
            let rsa = der::parse_single(octets, der::SEQUENCE)?;
            let mut r = Reader::new(rsa.content);
            let modulus = r.read(der::INTEGER)?;
            r.read(der::INTEGER)?;
            r.finish()?;
            info.key_bits = Some(der::uint_bits(&modulus)?);
        }
        oid::EC => {
            let params = spki.parameters.ok_or(DerError::Invalid(
                ErrorKind::InvalidKey,
                "EC key without curve parameters",
            ))?;
            let (curve, bits) = ec_curve(&params)?;
            info.curve = Some(curve);
            info.key_bits = bits;
        }
        // DSA and DH parameters both start with the prime p; inherited DSA parameters are absent.
        oid::DSA | "dh" => {
            if let Some(params) = spki.parameters {
                let mut r = der::sequence(&params)?;
                info.key_bits = Some(der::uint_bits(&r.read(der::INTEGER)?)?);
            }
        }
        _ => {}
    }
    Ok(info)
}

fn ec_curve(params: &Tlv<'_>) -> DerResult<(Cow<'static, str>, Option<u32>)> {
    match params.tag {
        der::OID => Ok(match oid::CURVES.get(params.content) {
            Some((name, bits)) => (Cow::Borrowed(name), Some(bits)),
            None => (Cow::Owned(oid::dotted(params.content)?), None),
        }),
        // RFC 3279 ECParameters: the size is that of the field (prime p, or 2^m).
        der::SEQUENCE => {
            let mut r = Reader::new(params.content);
            r.read(der::INTEGER)?;
            let field_id = r.read(der::SEQUENCE)?;
            let mut f = Reader::new(field_id.content);
            let field_type = f.read(der::OID)?;
            let field = f.read_any()?;
            let bits = match oid::dotted(field_type.content)?.as_str() {
                "1.2.840.10045.1.1" => der::uint_bits(&field)?,
                "1.2.840.10045.1.2" => {
                    let m = der::small_uint(&der::sequence(&field)?.read(der::INTEGER)?)?;
                    u32::try_from(m).map_err(|_| {
                        DerError::Invalid(ErrorKind::InvalidKey, "field degree too large")
                    })?
                }
                _ => {
                    return Err(DerError::Invalid(
                        ErrorKind::InvalidKey,
                        "unknown EC field type",
                    ))
                }
            };
            Ok((Cow::Borrowed("explicit"), Some(bits)))
        }
        der::NULL => Ok((Cow::Borrowed("implicitCA"), None)),
        _ => Err(DerError::Invalid(
            ErrorKind::InvalidKey,
            "EC parameters are not a curve",
        )),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    // An Ed25519 SPKI (RFC 8410 10.1).
    pub(crate) const ED25519_SPKI: &[u8] = &[
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00, 0x19, 0xbf, 0x44,
        0x09, 0x69, 0x84, 0xcd, 0xfe, 0x85, 0x41, 0xba, 0xc1, 0x67, 0xdc, 0x3b, 0x96, 0xc8, 0x50,
        0x86, 0xaa, 0x30, 0xb6, 0xb6, 0xcb, 0x0c, 0x5c, 0x38, 0xad, 0x70, 0x31, 0x66, 0xe1,
    ];

    #[test]
    fn ed25519_key_is_typed() {
        let spki = parse_spki(&der::parse_single(ED25519_SPKI, der::SEQUENCE).unwrap()).unwrap();
        assert_eq!(spki.der, ED25519_SPKI);
        let info = key_info(&spki).unwrap();
        assert_eq!(info.key_type, "ed25519");
        assert_eq!(info.key_bits, Some(253));
        assert_eq!(info.curve, None);
    }
}
