// SPDX-License-Identifier: Apache-2.0
//! `parse` and `locate_spki` on arbitrary bytes: neither may panic, and what they report must hold
//! together. A pin is worth something only if it is the hash of bytes that really are in the input,
//! and the same bytes whichever way the key was found.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pinscan_core::certificate::parse_framed_into;
use pinscan_core::frame::{frame, Framed};
use pinscan_core::spki::Spki;
use pinscan_core::{locate_spki, parse, CertRow, Problem, SpkiSource};
use sha1::Digest as _;

// Digests from RustCrypto, not the crate's `hash` module (ring, or its own multi-buffer SHA-256):
// a pin over the wrong bytes, or a wrong digest, shows.
fn sha256(data: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(data).into()
}

fn sha1(data: &[u8]) -> [u8; 20] {
    sha1::Sha1::digest(data).into()
}

/// `part` lies inside `whole`: a slice of the input, never a copy or a re-encoding.
fn within(part: &[u8], whole: &[u8]) -> bool {
    let (p, w) = (part.as_ptr_range(), whole.as_ptr_range());
    w.start <= p.start && p.end <= w.end
}

fn same_slice(a: &[u8], b: &[u8]) -> bool {
    a.as_ptr_range() == b.as_ptr_range()
}

fn check_spki(spki: &Spki<'_>, data: &[u8]) {
    assert!(within(spki.der, data), "SPKI is not a slice of the input");
    assert!(within(spki.algorithm.full, spki.der));
    assert!(within(spki.key.full, spki.der));
    // `algorithm` is the OID; the parameters follow it inside the AlgorithmIdentifier.
    if let Some(p) = spki.parameters {
        assert!(within(p.full, spki.der));
        assert!(spki.algorithm.full.as_ptr_range().end <= p.full.as_ptr());
    }
    assert!(spki.algorithm.full.as_ptr_range().end <= spki.key.full.as_ptr());
}

fn check_framed(f: &Framed<'_>, data: &[u8]) {
    check_spki(&f.spki, data);
    let tbs = &f.tbs;
    assert!(same_slice(tbs.spki.full, f.spki.der));
    let mut parts = vec![
        tbs.serial,
        tbs.signature,
        tbs.issuer,
        tbs.validity,
        tbs.subject,
    ];
    parts.extend(tbs.version);
    parts.extend(tbs.extensions);
    parts.extend(f.signature_algorithm);
    for tlv in parts {
        assert!(within(tlv.full, data));
        assert!(within(tlv.content, tlv.full));
    }
    // Certificate order: the subject ends before the key, the key before the extensions.
    assert!(tbs.subject.full.as_ptr_range().end <= f.spki.der.as_ptr());
    if let Some(ext) = tbs.extensions {
        assert!(f.spki.der.as_ptr_range().end <= ext.full.as_ptr());
    }
    // A whole TBS holds every element, and is whole only when nothing around the key is amiss.
    if let Some(whole) = f.tbs_der {
        assert!(within(whole, data));
        assert!(within(f.spki.der, whole));
        assert!(tbs.after_key.is_ok());
        assert!(f.problems.iter().all(|p| p.at.starts_with("certificate")));
    } else {
        assert!(
            !f.problems.is_empty(),
            "a TBS not whole, and no problem said why"
        );
    }
}

/// With no errors, every field that has a value for every well-formed certificate has one.
fn check_complete(row: &CertRow) {
    assert!(row.spki_sha256.is_some());
    assert!(row.subject.is_some() && row.issuer.is_some() && row.serial.is_some());
    assert!(row.not_before.is_some() && row.key_type.is_some() && row.sig_alg.is_some());
    assert!(row.is_ca.is_some() && row.sct_count.is_some());
    assert!(row.dns_names.is_some() && row.ip_addresses.is_some());
}

fuzz_target!(|data: &[u8]| {
    let row = parse(data, true);
    let framed = frame(data);
    let located = locate_spki(data);

    // The fingerprint never depends on the parse.
    assert_eq!(row.cert_sha256, Some(sha256(data)));

    // Fields that only come in pairs or with their parent.
    assert_eq!(row.not_before.is_some(), row.not_after.is_some());
    assert!(row.key_type.is_some() || (row.key_bits.is_none() && row.curve.is_none()));
    assert!(row.path_len.is_none() || row.is_ca.is_some());
    assert_eq!(row.dns_names.is_some(), row.ip_addresses.is_some());
    assert!(row.errors.iter().all(|e| !e.message.is_empty()));

    match &framed {
        Ok(f) => {
            check_framed(f, data);
            // The row's pin is the framing's SPKI, hashed as it is in the input.
            assert_eq!(row.spki_sha256, Some(sha256(f.spki.der)));
            assert_eq!(row.spki_sha1, Some(sha1(f.spki.der)));
            if row.errors.is_empty() {
                check_complete(&row);
            }
            // Bytes after the key may be cut off, and the key (and so the pin) is still found.
            let end = f.spki.der.as_ptr_range().end as usize - data.as_ptr() as usize;
            let cut = frame(&data[..end]).expect("cutting after the key loses the key");
            assert_eq!(cut.spki.der, f.spki.der);
            // A stray byte after a whole certificate is a problem, not a lost key.
            if f.problems.is_empty() {
                let mut longer = data.to_vec();
                longer.push(0);
                let more = frame(&longer).expect("a trailing byte loses the key");
                assert_eq!(more.spki.der, f.spki.der);
                assert!(!more.problems.is_empty());
            }
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            // The row says what the framing said, with the same kind.
            assert_eq!(row.errors, vec![Problem::of(e)]);
            assert_eq!(row.spki_sha256, None);
            assert_eq!(row.spki_sha1, None);
            assert!(!row.errors.is_empty());
            let (certificate_sha256, errors) = (row.cert_sha256, row.errors.clone());
            assert_eq!(
                row,
                CertRow {
                    cert_sha256: certificate_sha256,
                    errors,
                    ..CertRow::default()
                }
            );
        }
    }

    // `parse` without SHA-1 differs only by the SHA-1 pin.
    let without = parse(data, false);
    assert_eq!(without.spki_sha1, None);
    assert_eq!(
        CertRow {
            spki_sha1: row.spki_sha1,
            ..without
        },
        row
    );

    // The batch path parses into a row that held another certificate: nothing of that may show.
    let half = &data[..data.len() / 2];
    for (from, to) in [(data, half), (half, data)] {
        let mut reused = parse(from, true);
        let f = frame(to);
        let spki = f.as_ref().map_or([0; 32], |f| sha256(f.spki.der));
        parse_framed_into(&mut reused, f, sha256(to), spki, true);
        assert_eq!(reused, parse(to, true));
    }

    // Many messages at once (multi-buffer where the CPU has no SHA extensions) hash as one does:
    // 17 prefixes of the input, of every length class, fill every lane and refill one.
    let prefixes: Vec<&[u8]> = (0..=16).map(|i| &data[..data.len() * i / 16]).collect();
    let mut many = vec![[0; 32]; prefixes.len()];
    pinscan_core::hash::sha256_many(&prefixes, &mut many);
    for (p, d) in prefixes.iter().zip(&many) {
        assert_eq!(*d, sha256(p), "sha256_many, {} bytes", p.len());
    }

    // The locator says "certificate" exactly when the framing found a whole one, and then gives
    // the same slice the row was hashed from.
    let whole = matches!(&framed, Ok(f) if f.problems.is_empty());
    match &located {
        Ok((source, spki)) => {
            check_spki(spki, data);
            if *source == SpkiSource::Certificate {
                assert!(whole, "locate_spki took a damaged certificate");
                let f = framed.as_ref().expect("checked above");
                assert!(same_slice(spki.der, f.spki.der));
                assert_eq!(row.spki_sha256, Some(sha256(spki.der)));
            } else {
                assert!(
                    !whole,
                    "a whole certificate was located as a {}",
                    source.as_str()
                );
            }
            // A bare SPKI is the whole input.
            if *source == SpkiSource::PublicKey {
                assert!(same_slice(spki.der, data));
            }
            // One whole DER object or nothing: a stray byte after it is refused, whatever it is.
            let mut longer = data.to_vec();
            longer.push(0);
            assert!(locate_spki(&longer).is_err(), "trailing byte accepted");
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            assert!(
                !whole,
                "locate_spki rejected a certificate the framing accepts whole"
            );
        }
    }
});
