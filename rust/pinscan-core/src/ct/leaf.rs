// SPDX-License-Identifier: Apache-2.0
//! The logs' own structures: an RFC 6962 `MerkleTreeLeaf` and its `extra_data`, and a
//! static-ct-api `TileLeaf`. Each gives the `TimestampedEntry` a log signed, and where the
//! certificate and its issuer are.

use super::error::CtError;
use super::tls::Tls;
use crate::hash::Sha256;

/// The signed part of an entry (RFC 6962 3.4 `TimestampedEntry`).
pub(super) struct Timestamped<'a> {
    pub(super) timestamp: u64,
    pub(super) precert: bool,
    /// The certificate (x509) or the TBSCertificate (precert).
    pub(super) body: &'a [u8],
    pub(super) extensions: &'a [u8],
}

fn timestamped<'a>(t: &mut Tls<'a>) -> Result<Timestamped<'a>, CtError> {
    let timestamp = t.uint(8, "timestamp")?;
    let precert = match t.uint(2, "entry_type")? {
        0 => false,
        1 => {
            t.bytes(32, "issuer_key_hash")?;
            true
        }
        n => return Err(CtError::UnknownEntryType(n)),
    };
    let body = t.vector(
        3,
        if precert {
            "tbs_certificate"
        } else {
            "certificate"
        },
    )?;
    let extensions = t.vector(2, "extensions")?;
    Ok(Timestamped {
        timestamp,
        precert,
        body,
        extensions,
    })
}

/// An RFC 6962 `leaf_input`: `MerkleTreeLeaf { version v1, leaf_type timestamped_entry,
/// TimestampedEntry }`, and nothing after it.
pub(super) fn merkle_tree_leaf(leaf: &[u8]) -> Result<Timestamped<'_>, CtError> {
    let mut t = Tls::new(leaf);
    let header = t.bytes(2, "merkle_tree_leaf")?;
    if header != [0, 0] {
        return Err(CtError::UnsupportedLeaf {
            version: header[0],
            leaf_type: header[1],
        });
    }
    let entry = timestamped(&mut t)?;
    if !t.is_empty() {
        return Err(CtError::LeafTrailingData(leaf.len() - t.pos()));
    }
    Ok(entry)
}

/// What an entry's `extra_data` holds (RFC 6962 4.6).
pub(super) struct ExtraData<'a> {
    /// The precertificate, for a precert entry; found even when the chain after it is damaged.
    pub(super) pre_certificate: Option<&'a [u8]>,
    /// The first certificate of the submitted chain (the issuer), if the chain has one.
    pub(super) issuer: Result<Option<&'a [u8]>, CtError>,
}

/// `PrecertChainEntry { pre_certificate, precertificate_chain }` for a precert entry, else
/// `certificate_chain`: both chains are `u24`-prefixed lists of `u24`-prefixed certificates.
pub(super) fn extra_data(extra: &[u8], precert: bool) -> ExtraData<'_> {
    let mut t = Tls::new(extra);
    let pre_certificate = if precert {
        match t.vector(3, "extra_data: pre_certificate") {
            Ok(pre) => Some(pre),
            Err(e) => {
                return ExtraData {
                    pre_certificate: None,
                    issuer: Err(e),
                }
            }
        }
    } else {
        None
    };
    let issuer = t
        .vector(3, "extra_data: certificate_chain")
        .and_then(|chain| {
            let mut t = Tls::new(chain);
            if t.is_empty() {
                Ok(None)
            } else {
                t.vector(3, "certificate_chain").map(Some)
            }
        });
    ExtraData {
        pre_certificate,
        issuer,
    }
}

/// One entry of a static-ct-api data tile: `TileLeaf { TimestampedEntry, pre_certificate (precert
/// only), fingerprints of the chain }`.
pub(super) struct TileLeaf<'a> {
    pub(super) entry: Timestamped<'a>,
    /// The `TimestampedEntry`'s bytes: what the Merkle leaf hash covers.
    pub(super) timestamped: &'a [u8],
    pub(super) pre_certificate: Option<&'a [u8]>,
    /// The first fingerprint of the chain: the issuer's SHA-256.
    pub(super) issuer: Option<Sha256>,
}

/// Reads the `TileLeaf` at the cursor.
pub(super) fn tile_leaf<'a>(t: &mut Tls<'a>) -> Result<TileLeaf<'a>, CtError> {
    let start = t.pos();
    let entry = timestamped(t)?;
    let timestamped = t.since(start);
    let pre_certificate = if entry.precert {
        Some(t.vector(3, "pre_certificate")?)
    } else {
        None
    };
    let fingerprints = t.vector(2, "certificate_chain")?;
    if fingerprints.len() % 32 != 0 {
        return Err(CtError::ChainNotFingerprints);
    }
    Ok(TileLeaf {
        entry,
        timestamped,
        pre_certificate,
        issuer: fingerprints.first_chunk::<32>().copied(),
    })
}

/// The static-ct-api `leaf_index` extension (type 0, a 40-bit big-endian integer), if present.
pub(super) fn leaf_index(extensions: &[u8]) -> Result<Option<i64>, CtError> {
    let mut t = Tls::new(extensions);
    let mut found = None;
    while !t.is_empty() {
        let kind = t.uint(1, "extension type")?;
        let data = t.vector(2, "extension data")?;
        if kind == 0 {
            if data.len() != 5 {
                return Err(CtError::LeafIndexLength);
            }
            // 40 bits always fit an i64.
            found = Some(Tls::new(data).uint(5, "leaf_index")? as i64);
        }
    }
    Ok(found)
}
