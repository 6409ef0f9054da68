// SPDX-License-Identifier: Apache-2.0
//! Log entries to rows: each input read into entries whose messages wait in a group, then hashed
//! all at once and finished with the certificate's fields.

use super::leaf::{extra_data, leaf_index, merkle_tree_leaf, tile_leaf, Timestamped};
use super::tbs::{dedupe_tbs, has_poison, precert_framed, read_precert_tbs};
use super::tls::Tls;
use crate::certificate::{parse_framed, CertRow};
use crate::der::Tlv;
use crate::error::{ErrorKind, Problem};
use crate::frame::{frame, FrameError, Framed};
use crate::hash::{sha256, sha256_many, Sha256};
use crate::name::common_name;

/// What each input is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An RFC 6962 `leaf_input` (`MerkleTreeLeaf`), with the entry's `extra_data` alongside.
    Leaf,
    /// A static-ct-api data tile: a run of `TileLeaf`s, one row each.
    Tile,
    /// A DER certificate or precertificate (crt.sh downloads): no leaf hash, no timestamp.
    Certificate,
}

impl Kind {
    pub fn parse(name: &str) -> Option<Kind> {
        match name {
            "leaf" => Some(Kind::Leaf),
            "tile" => Some(Kind::Tile),
            "certificate" => Some(Kind::Certificate),
            _ => None,
        }
    }
}

/// One log entry. `None` is "absent or unreadable"; the reasons are in `errors`, then in
/// `cert.errors`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EntryRow {
    pub leaf_hash: Option<Sha256>,
    pub entry_type: Option<&'static str>,
    pub timestamp: Option<i64>,
    /// The static-ct-api `leaf_index` SCT extension, when the entry carries one.
    pub leaf_index: Option<i64>,
    /// SHA-256 of the certificate, or of the precertificate when the log gave it.
    pub cert_sha256: Option<Sha256>,
    pub tbs_sha256: Option<Sha256>,
    /// SHA-256 of the first certificate of the submitted chain (the issuer).
    pub issuer_sha256: Option<Sha256>,
    pub common_name: Option<String>,
    /// What is wrong with the entry around the certificate.
    pub errors: Vec<Problem>,
    /// Subject, issuer, validity, SAN DNS names, the pin and the certificate's errors.
    pub cert: CertRow,
}

impl EntryRow {
    /// A row with nothing but one problem.
    pub(super) fn failed(problem: Problem) -> Self {
        EntryRow {
            errors: vec![problem],
            ..EntryRow::default()
        }
    }
}

/// One input and its `extra_data` (`Kind::Leaf` only); either may be null.
pub(super) type Input<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// The rows of `inputs`, in order: one per input, or per entry of a data tile.
pub(super) fn read(kind: Kind, inputs: &[Input<'_>]) -> Vec<EntryRow> {
    let mut rows = Vec::with_capacity(if kind == Kind::Tile { 256 } else { 1 } * inputs.len());
    let mut group = Group::default();
    for &(input, extra) in inputs {
        let Some(data) = input else {
            let null = Problem::new(ErrorKind::NullInput, "input: null");
            group.pending.push(Pending::new(EntryRow::failed(null)));
            continue;
        };
        match kind {
            Kind::Leaf => group.leaf(data, extra),
            Kind::Tile => group.tile(data),
            Kind::Certificate => group.certificate(data),
        }
        if group.pending.len() >= GROUP_ROWS {
            group.finish(&mut rows);
        }
    }
    group.finish(&mut rows);
    rows
}

/// Digests of the issuing certificates seen in one batch. Nearly every entry of a log repeats one
/// of a few intermediates in its `extra_data`; comparing bytes is far cheaper than hashing them.
#[derive(Default)]
struct Issuers<'a> {
    seen: Vec<(&'a [u8], Sha256)>,
}

impl<'a> Issuers<'a> {
    fn digest(&mut self, der: &'a [u8]) -> Sha256 {
        if let Some((_, digest)) = self.seen.iter().find(|(seen, _)| *seen == der) {
            return *digest;
        }
        let digest = sha256(der);
        if self.seen.len() < 32 {
            self.seen.push((der, digest));
        }
        digest
    }
}

/// Where a message to hash lives: in the input, or in the group's scratch buffers (a leaf with its
/// hash prefix, a TBSCertificate re-framed without the CT extensions).
#[derive(Clone, Copy, Debug)]
enum Msg<'a> {
    Input(&'a [u8]),
    Scratch(usize),
}

/// An entry between reading and hashing: the row so far, what to hash, and the certificate's
/// framing, which `parse_framed` finishes once the digests are known.
struct Pending<'a> {
    row: EntryRow,
    leaf: Option<Msg<'a>>,
    cert: Option<Msg<'a>>,
    tbs: Option<Msg<'a>>,
    framed: Option<Result<Framed<'a>, FrameError>>,
}

impl Pending<'_> {
    fn new(row: EntryRow) -> Self {
        Pending {
            row,
            leaf: None,
            cert: None,
            tbs: None,
            framed: None,
        }
    }
}

/// Entries read but not yet hashed. Hashing waits until `GROUP_ROWS` are read, so that
/// `sha256_many` hashes leaves, certificates, TBSs and keys side by side in every SIMD lane (no
/// SHA extensions here: hashing is most of the cost), while the group stays in cache.
#[derive(Default)]
struct Group<'a> {
    pending: Vec<Pending<'a>>,
    scratch: Vec<Vec<u8>>,
    issuers: Issuers<'a>,
}

/// Entries per hashing round.
const GROUP_ROWS: usize = 256;

impl<'a> Group<'a> {
    fn stash(&mut self, parts: &[&[u8]]) -> Msg<'a> {
        let mut buf = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
        parts.iter().for_each(|p| buf.extend_from_slice(p));
        self.scratch.push(buf);
        Msg::Scratch(self.scratch.len() - 1)
    }

    /// An RFC 6962 `leaf_input` and its `extra_data`.
    fn leaf(&mut self, leaf: &'a [u8], extra: Option<&'a [u8]>) {
        let mut pending = Pending::new(EntryRow::default());
        pending.leaf = Some(self.stash(&[&[0], leaf]));
        let entry = match merkle_tree_leaf(leaf) {
            Ok(entry) => entry,
            Err(e) => {
                pending.row.errors.push(Problem::of(&e));
                self.pending.push(pending);
                return;
            }
        };
        let (pre_certificate, chain_error) = match extra.map(|x| extra_data(x, entry.precert)) {
            None => (None, None),
            Some(extra) => match extra.issuer {
                Ok(issuer) => {
                    pending.row.issuer_sha256 = issuer.map(|d| self.issuers.digest(d));
                    (extra.pre_certificate, None)
                }
                Err(e) => (extra.pre_certificate, Some(e)),
            },
        };
        self.body(&mut pending, &entry, pre_certificate);
        // After the certificate's own problems, as the chain comes after it in `extra_data`.
        pending
            .row
            .errors
            .extend(chain_error.map(|e| Problem::of(&e)));
        self.pending.push(pending);
    }

    /// Every `TileLeaf` of a data tile, in order. A tile that cannot be read to its end gets a
    /// last row whose error starts with `tile:` and says where it stopped.
    fn tile(&mut self, tile: &'a [u8]) {
        let mut t = Tls::new(tile);
        while !t.is_empty() {
            let start = t.pos();
            let leaf = match tile_leaf(&mut t) {
                Ok(leaf) => leaf,
                Err(e) => {
                    let at = format!("tile: entry at byte {start}");
                    let row = EntryRow::failed(Problem::at(&at, &e));
                    self.pending.push(Pending::new(row));
                    return;
                }
            };
            let mut pending = Pending::new(EntryRow {
                issuer_sha256: leaf.issuer,
                ..EntryRow::default()
            });
            // static-ct-api: the leaf hash covers a MerkleTreeLeaf, version and leaf type 0.
            pending.leaf = Some(self.stash(&[&[0, 0, 0], leaf.timestamped]));
            self.body(&mut pending, &leaf.entry, leaf.pre_certificate);
            self.pending.push(pending);
        }
    }

    /// A DER certificate or precertificate, outside any log (crt.sh).
    fn certificate(&mut self, der: &'a [u8]) {
        let mut pending = Pending::new(EntryRow::default());
        self.x509(&mut pending, der);
        self.pending.push(pending);
    }

    /// The certificate fields of a `TimestampedEntry`.
    fn body(
        &mut self,
        pending: &mut Pending<'a>,
        entry: &Timestamped<'a>,
        pre_certificate: Option<&'a [u8]>,
    ) {
        let row = &mut pending.row;
        row.timestamp = i64::try_from(entry.timestamp).ok();
        match leaf_index(entry.extensions) {
            Ok(index) => row.leaf_index = index,
            Err(e) => row.errors.push(Problem::of(&e)),
        }
        if !entry.precert {
            row.entry_type = Some("x509");
            self.x509(pending, entry.body);
            return;
        }
        row.entry_type = Some("precert");
        pending.cert = pre_certificate.map(Msg::Input);
        let (tbs, fields) = match read_precert_tbs(entry.body) {
            Ok(read) => read,
            Err(e) => {
                row.errors.push(Problem::at("tbs_certificate", &e));
                return;
            }
        };
        row.common_name = common_name(&fields.subject);
        pending.tbs = Some(self.tbs(tbs, fields.extensions));
        pending.framed = Some(precert_framed(tbs, fields));
    }

    /// A whole certificate: the certificate framing, and from its TBS the CN and the TBS hash.
    fn x509(&mut self, pending: &mut Pending<'a>, der: &'a [u8]) {
        pending.cert = Some(Msg::Input(der));
        let framed = frame(der);
        // A TBS that is not all there has no TBS hash: the framing's problems say why.
        if let Ok(Framed {
            tbs: fields,
            tbs_der: Some(tbs),
            ..
        }) = &framed
        {
            let row = &mut pending.row;
            row.common_name = common_name(&fields.subject);
            if row.entry_type.is_none() {
                let poisoned = has_poison(fields.extensions);
                row.entry_type = Some(if poisoned { "precert" } else { "x509" });
            }
            pending.tbs = Some(self.tbs(tbs, fields.extensions));
        }
        pending.framed = Some(framed);
    }

    fn tbs(&mut self, tbs: &'a [u8], extensions: Option<Tlv<'a>>) -> Msg<'a> {
        match dedupe_tbs(tbs, extensions) {
            None => Msg::Input(tbs),
            Some(rebuilt) => {
                self.scratch.push(rebuilt);
                Msg::Scratch(self.scratch.len() - 1)
            }
        }
    }

    /// Hashes every pending message at once, then finishes each row.
    fn finish(&mut self, rows: &mut Vec<EntryRow>) {
        const NONE: usize = usize::MAX;
        let mut msgs: Vec<&[u8]> = Vec::with_capacity(4 * self.pending.len());
        let mut slots = Vec::with_capacity(self.pending.len());
        for p in &self.pending {
            let spki = match &p.framed {
                Some(Ok(f)) => Some(Msg::Input(f.spki.der)),
                _ => None,
            };
            let mut slot = [NONE; 4];
            for (k, msg) in [p.leaf, p.cert, p.tbs, spki].into_iter().enumerate() {
                if let Some(msg) = msg {
                    slot[k] = msgs.len();
                    msgs.push(match msg {
                        Msg::Input(bytes) => bytes,
                        Msg::Scratch(i) => &self.scratch[i],
                    });
                }
            }
            slots.push(slot);
        }
        let mut digests = vec![[0; 32]; msgs.len()];
        sha256_many(&msgs, &mut digests);
        drop(msgs);
        for (p, slot) in self.pending.drain(..).zip(slots) {
            let get = |k: usize| (slot[k] != NONE).then(|| digests[slot[k]]);
            let mut row = p.row;
            row.leaf_hash = get(0);
            row.cert_sha256 = get(1);
            row.tbs_sha256 = get(2);
            if let Some(framed) = p.framed {
                let (cert, spki) = (get(1).unwrap_or([0; 32]), get(3).unwrap_or([0; 32]));
                row.cert = parse_framed(framed, cert, spki, false);
            }
            rows.push(row);
        }
        self.scratch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(kind: Kind, data: &[u8]) -> Vec<EntryRow> {
        read(kind, &[(Some(data), None)])
    }

    fn timestamped_x509(cert: &[u8], extensions: &[u8]) -> Vec<u8> {
        let mut te = 1_700_000_000_000u64.to_be_bytes().to_vec();
        te.extend_from_slice(&[0, 0]);
        te.extend_from_slice(&(cert.len() as u32).to_be_bytes()[1..]);
        te.extend_from_slice(cert);
        te.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
        te.extend_from_slice(extensions);
        te
    }

    #[test]
    fn leaf_hash_timestamp_and_errors_of_a_bad_certificate() {
        let te = timestamped_x509(b"not a certificate", &[]);
        let leaf = [&[0u8, 0][..], &te].concat();
        let row = one(Kind::Leaf, &leaf).remove(0);
        assert_eq!(row.leaf_hash, Some(sha256(&[&[0u8][..], &leaf].concat())));
        assert_eq!(row.entry_type, Some("x509"));
        assert_eq!(row.timestamp, Some(1_700_000_000_000));
        assert_eq!(row.cert_sha256, Some(sha256(b"not a certificate")));
        assert!(row.cert.spki_sha256.is_none() && !row.cert.errors.is_empty());
        assert!(row.errors.is_empty() && row.tbs_sha256.is_none());

        let truncated = one(Kind::Leaf, &leaf[..leaf.len() - 3]).remove(0);
        assert_eq!(truncated.errors[0].kind, ErrorKind::Truncated);
        assert!(truncated.errors[0].message.contains("truncated"));
        let bad_version = one(Kind::Leaf, &[1, 0]).remove(0);
        assert_eq!(bad_version.errors[0].kind, ErrorKind::UnsupportedLeaf);
        assert!(bad_version.errors[0].message.contains("version 1"));
    }

    #[test]
    fn tiles_split_into_entries_with_leaf_index() {
        let index_ext = [0u8, 0, 5, 0, 0, 0, 1, 2];
        let mut tile = Vec::new();
        for _ in 0..3 {
            tile.extend(timestamped_x509(b"x", &index_ext));
            tile.extend_from_slice(&[0, 32]);
            tile.extend_from_slice(&[7; 32]);
        }
        let rows = one(Kind::Tile, &tile);
        assert_eq!(rows.len(), 3);
        assert!(rows.iter().all(|r| r.leaf_index == Some(258)));
        assert_eq!(rows[0].issuer_sha256, Some([7; 32]));
        let single = timestamped_x509(b"x", &index_ext);
        assert_eq!(
            rows[0].leaf_hash,
            Some(sha256(&[&[0u8, 0, 0][..], &single].concat()))
        );

        let rows = one(Kind::Tile, &tile[..tile.len() - 1]);
        assert_eq!(rows.len(), 3);
        assert!(rows[2].errors[0].message.starts_with("tile: entry at byte"));
        assert_eq!(rows[2].errors[0].kind, ErrorKind::Truncated);
    }

    #[test]
    fn a_certificate_that_does_not_frame_says_so_once() {
        // A TBS that is an INTEGER: the framing says so; no second walk says it again.
        let row = one(Kind::Certificate, b"\x30\x03\x02\x01\x00").remove(0);
        assert!(row.errors.is_empty());
        assert_eq!(
            row.cert,
            crate::certificate::parse(b"\x30\x03\x02\x01\x00", false)
        );
        assert_eq!(row.cert.errors.len(), 1);
        assert_eq!(row.entry_type, None);
    }

    #[test]
    fn null_inputs_are_rows() {
        let rows = read(Kind::Certificate, &[(None, None)]);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].errors[0].kind, ErrorKind::NullInput);
    }
}
