// SPDX-License-Identifier: Apache-2.0
//! Certificate Transparency log entries to Arrow rows: RFC 6962 `MerkleTreeLeaf`s (with their
//! `extra_data`), static-ct-api data tiles, and plain certificates (crt.sh), in parallel batches.
//!
//! Each row has the entry's Merkle leaf hash (so the caller can recompute the log's root), the
//! SPKI pin of the certificate or of the precertificate's TBSCertificate (hashed exactly as
//! encoded), and `tbs_sha256`, which a precertificate and its final certificate share (`tbs`).
//!
//! The jobs, in the order an entry meets them: `tls` reads TLS structures, `leaf` the logs' own
//! (leaves, tiles, `extra_data`), `tbs` a precertificate's TBSCertificate through the certificate
//! framing, `entry` reads inputs into rows and hashes them in groups, `columns` makes the batch.

mod columns;
mod entry;
mod error;
mod leaf;
mod tbs;
mod tls;

use arrow_array::RecordBatch;
use arrow_schema::{ArrowError, SchemaRef};

use crate::batch::CHUNK_ROWS;
use crate::error::{ErrorKind, Problem};
use crate::table;

pub use entry::{EntryRow, Kind};
pub use error::CtError;

/// Data tiles per record batch: 16 tiles of 256 entries are `CHUNK_ROWS` rows.
const TILES_PER_BATCH: usize = CHUNK_ROWS / 256;
const PANICKED: &str = "internal: the parser panicked on this entry; please report it";

/// The schema of the batches `entries` returns.
pub fn schema() -> SchemaRef {
    columns::build(&[])
        .expect("an empty batch always builds")
        .schema()
}

/// Parses log entries on the current rayon pool into record batches, rows in input order.
/// `extras` (RFC 6962 `extra_data`, `Kind::Leaf` only) is matched to `inputs` by position and may
/// be shorter or empty. Never fails on bad input: a row's `error` says what is wrong.
pub fn entries(
    kind: Kind,
    inputs: &[Option<&[u8]>],
    extras: &[Option<&[u8]>],
) -> Result<Vec<RecordBatch>, ArrowError> {
    let paired: Vec<entry::Input<'_>> = inputs
        .iter()
        .enumerate()
        .map(|(i, &input)| (input, extras.get(i).copied().flatten()))
        .collect();
    // Up to `CHUNK_ROWS` rows per batch, but at least two batches per thread: the monitor parses
    // a few thousand entries per call, which would otherwise run on one core.
    let threads = rayon::current_num_threads().max(1);
    let most = if kind == Kind::Tile {
        TILES_PER_BATCH
    } else {
        CHUNK_ROWS
    };
    let per_batch = inputs.len().div_ceil(2 * threads).clamp(1, most);
    table::batches(
        &paired,
        per_batch,
        |chunk| columns::build(&entry::read(kind, chunk)),
        |_| {
            let row = EntryRow::failed(Problem::new(ErrorKind::Internal, PANICKED));
            columns::build(&[row])
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_keep_order_and_schema() {
        let mut leaf = vec![0u8, 0];
        leaf.extend_from_slice(&1_700_000_000_000u64.to_be_bytes());
        leaf.extend_from_slice(&[0, 0, 0, 0, 1, b'x', 0, 0]);
        let inputs: Vec<Option<&[u8]>> = vec![Some(&leaf); CHUNK_ROWS + 5];
        let batches = entries(Kind::Leaf, &inputs, &[]).unwrap();
        assert!(batches.len() >= 2);
        assert_eq!(
            batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
            inputs.len()
        );
        assert!(batches.iter().all(|b| b.schema() == schema()));
        assert_eq!(Kind::parse("tile"), Some(Kind::Tile));
        assert_eq!(Kind::parse("nope"), None);
    }
}
