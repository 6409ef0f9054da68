// SPDX-License-Identifier: Apache-2.0
//! What can be wrong in a log entry's own structures (RFC 6962 3.4, static-ct-api); the
//! certificate inside an entry reports through `certificate`.

use std::fmt;

use crate::error::{ErrorKind, HasKind};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CtError {
    /// A TLS structure that ends before the bytes it announces.
    Truncated {
        what: &'static str,
        needed: usize,
        available: usize,
    },
    /// A `MerkleTreeLeaf` of another version or leaf type than 0 (v1, timestamped_entry).
    UnsupportedLeaf { version: u8, leaf_type: u8 },
    /// Bytes after a `MerkleTreeLeaf`.
    LeafTrailingData(usize),
    /// A `LogEntryType` other than x509_entry (0) and precert_entry (1).
    UnknownEntryType(u64),
    /// A static-ct-api `leaf_index` extension that is not a 40-bit integer.
    LeafIndexLength,
    /// A data tile's chain that is not a run of 32-byte SHA-256 fingerprints.
    ChainNotFingerprints,
}

impl fmt::Display for CtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CtError::Truncated {
                what,
                needed,
                available,
            } => write!(
                f,
                "{what}: truncated: needs {needed} bytes, {available} present"
            ),
            CtError::UnsupportedLeaf { version, leaf_type } => write!(
                f,
                "merkle_tree_leaf: version {version} leaf type {leaf_type} (expected 0, 0)"
            ),
            CtError::LeafTrailingData(n) => write!(f, "merkle_tree_leaf: {n} trailing bytes"),
            CtError::UnknownEntryType(n) => write!(f, "entry_type: unknown type {n}"),
            CtError::LeafIndexLength => f.write_str("leaf_index extension: not 5 bytes"),
            CtError::ChainNotFingerprints => {
                f.write_str("certificate_chain: not a list of SHA-256 fingerprints")
            }
        }
    }
}

impl HasKind for CtError {
    fn kind(&self) -> ErrorKind {
        match self {
            CtError::Truncated { .. } => ErrorKind::Truncated,
            CtError::UnsupportedLeaf { .. } => ErrorKind::UnsupportedLeaf,
            CtError::LeafTrailingData(_) => ErrorKind::TrailingData,
            CtError::UnknownEntryType(_) => ErrorKind::UnknownEntryType,
            CtError::LeafIndexLength => ErrorKind::InvalidLeafIndex,
            CtError::ChainNotFingerprints => ErrorKind::InvalidChain,
        }
    }
}
