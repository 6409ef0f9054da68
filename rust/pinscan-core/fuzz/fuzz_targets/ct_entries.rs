// SPDX-License-Identifier: Apache-2.0
//! `ct::entries` on arbitrary bytes, given as they are (a leaf, a tile) and wrapped so that the
//! certificate paths are reached: as a crt.sh certificate, as the certificate of an x509 leaf and
//! as the TBSCertificate of a precert leaf. Nothing may panic (libFuzzer aborts on a panic even
//! where the batch driver would catch it); a certificate read through CT must give the row the
//! certificate path gives; every error has its kind.
#![no_main]

use arrow_array::{Array, BinaryArray, ListArray, RecordBatch, StringViewArray};
use libfuzzer_sys::fuzz_target;
use pinscan_core::ct::{entries, Kind};
use pinscan_core::{certificates, ErrorKind, Options};
use sha2::Digest as _;

fn text(batch: &RecordBatch, column: &str, row: usize) -> Option<String> {
    let a = batch.column_by_name(column).expect("column");
    let a = a.as_any().downcast_ref::<StringViewArray>().expect("text");
    a.is_valid(row).then(|| a.value(row).to_owned())
}

fn names(batch: &RecordBatch, row: usize) -> Option<Vec<String>> {
    let a = batch.column_by_name("dns_names").expect("column");
    let a = a.as_any().downcast_ref::<ListArray>().expect("list");
    a.is_valid(row).then(|| {
        let v = a.value(row);
        let v = v.as_any().downcast_ref::<StringViewArray>().expect("text");
        (0..v.len()).map(|i| v.value(i).to_owned()).collect()
    })
}

/// Every row of every batch, as one batch each (the driver may split a chunk).
fn rows(kind: Kind, input: &[u8], extra: Option<&[u8]>) -> Vec<(RecordBatch, usize)> {
    let batches = entries(kind, &[Some(input)], &[extra]).expect("batches build");
    let mut out = Vec::new();
    for b in batches {
        for row in 0..b.num_rows() {
            check_errors(&b, row);
            out.push((b.clone(), row));
        }
    }
    out
}

/// `error_kind` is there exactly when `error` is, one of the listed kinds, never a panic's.
fn check_errors(batch: &RecordBatch, row: usize) {
    let (error, kind) = (text(batch, "error", row), text(batch, "error_kind", row));
    assert_eq!(error.is_some(), kind.is_some());
    if let Some(kind) = kind {
        assert!(ErrorKind::ALL.iter().any(|k| k.slug() == kind), "{kind}");
        assert_ne!(kind, ErrorKind::Internal.slug());
        assert!(!error.unwrap_or_default().is_empty());
    }
}

fn u24(data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes()[1..].to_vec();
    out.extend_from_slice(data);
    out
}

/// `MerkleTreeLeaf { v1, timestamped_entry, TimestampedEntry { timestamp, entry_type, body, no
/// extensions } }`.
fn leaf(precert: bool, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0];
    out.extend_from_slice(&1_700_000_000_000u64.to_be_bytes());
    if precert {
        out.extend_from_slice(&[0, 1]);
        out.extend_from_slice(&[0; 32]);
    } else {
        out.extend_from_slice(&[0, 0]);
    }
    out.extend(u24(body));
    out.extend_from_slice(&[0, 0]);
    out
}

fuzz_target!(|data: &[u8]| {
    // The certificate path of the crate, the reference.
    let reference = certificates(&[Some(data)], Options::default()).expect("batches build");
    let reference = &reference[0];

    let as_certificate = rows(Kind::Certificate, data, None);
    assert_eq!(as_certificate.len(), 1);
    let x509 = leaf(false, data);
    let as_x509 = rows(Kind::Leaf, &x509, None);
    assert_eq!(as_x509.len(), 1);
    let leaf_hash = as_x509[0].0.column_by_name("leaf_hash").expect("column");
    let leaf_hash = leaf_hash
        .as_any()
        .downcast_ref::<BinaryArray>()
        .expect("binary");
    let want: [u8; 32] = sha2::Sha256::digest([&[0u8][..], &x509].concat()).into();
    assert_eq!(leaf_hash.value(0), want);

    for (batch, row) in [&as_certificate[0], &as_x509[0]] {
        let row = *row;
        for column in [
            "cert_sha256",
            "spki_sha256",
            "subject",
            "issuer",
            "error",
            "error_kind",
        ] {
            assert_eq!(
                text(batch, column, row),
                text(reference, column, 0),
                "{column}"
            );
        }
        assert_eq!(names(batch, row), names(reference, 0));
        // A TBS hash only for a certificate whose key was found.
        if text(batch, "tbs_sha256", row).is_some() {
            assert!(text(batch, "spki_sha256", row).is_some());
        }
    }
    // The CT columns of one certificate do not depend on how it came.
    for column in ["tbs_sha256", "common_name"] {
        assert_eq!(
            text(&as_certificate[0].0, column, 0),
            text(&as_x509[0].0, column, 0),
            "{column}"
        );
    }

    // The input as a precertificate's TBS, with itself as the precertificate.
    let precert = rows(Kind::Leaf, &leaf(true, data), Some(&u24(data)));
    assert_eq!(precert.len(), 1);
    let (batch, row) = &precert[0];
    if text(batch, "spki_sha256", *row).is_some() {
        assert!(text(batch, "tbs_sha256", *row).is_some());
    }

    // The input as it is.
    assert_eq!(rows(Kind::Leaf, data, Some(data)).len(), 1);
    let tile = rows(Kind::Tile, data, None);
    assert_eq!(tile.is_empty(), data.is_empty());
    // Only the last row of a tile may say where the tile stopped.
    for (i, (batch, row)) in tile.iter().enumerate() {
        let stopped = text(batch, "error", *row).is_some_and(|e| e.starts_with("tile:"));
        assert!(!stopped || i + 1 == tile.len());
    }
});
