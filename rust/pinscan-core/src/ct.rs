// SPDX-License-Identifier: Apache-2.0
//! Certificate Transparency log entries to Arrow rows: RFC 6962 `MerkleTreeLeaf`s (with their
//! `extra_data`), static-ct-api data tiles, and plain certificates (crt.sh), in parallel batches.
//!
//! Each row has the entry's Merkle leaf hash (so the caller can recompute the log's root), the
//! SPKI pin of the certificate or of the precertificate's TBSCertificate (hashed exactly as
//! encoded), and `tbs_sha256`: the SHA-256 of the TBSCertificate without the CT poison and SCT
//! list extensions, which a precertificate and its final certificate share (certspotter's
//! `TBS_SHA256`). That TBS is re-serialized with corrected lengths; the key inside it is copied
//! byte for byte, and the pin never hashes the re-serialized bytes.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, Int64Builder, ListBuilder, StringViewBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, Field, Schema, SchemaRef};
use rayon::prelude::*;

use crate::batch::CHUNK_ROWS;
use crate::certificate::{frame, parse_framed, CertRow, Framed};
use crate::der::{self, DerResult, Reader, Tlv};
use crate::hash::{base64_into, hex_into, sha256, sha256_many, Sha256};
use crate::spki::parse_spki;

/// `1.3.6.1.4.1.11129.2.4.3`, the precertificate poison (RFC 6962 3.1), as OID content octets.
const POISON_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x03];
/// `1.3.6.1.4.1.11129.2.4.2`, the embedded SCT list (RFC 6962 3.3).
const SCT_LIST_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x02];
/// `2.5.4.3`, commonName.
const CN_OID: &[u8] = &[0x55, 0x04, 0x03];
/// Data tiles per record batch: 16 tiles of 256 entries are `CHUNK_ROWS` rows.
const TILES_PER_BATCH: usize = CHUNK_ROWS / 256;
const PANICKED: &str = "internal: the parser panicked on this entry; please report it";

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

/// One log entry. `None` is "absent or unreadable"; the reasons are in `cert.errors`.
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
    /// Subject, issuer, validity, SAN DNS names, the pin and the errors.
    pub cert: CertRow,
}

/// A cursor over TLS presentation-language structures (RFC 8446 3): big-endian integers and
/// length-prefixed vectors.
struct Tls<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Tls<'a> {
    fn new(data: &'a [u8]) -> Self {
        Tls { data, pos: 0 }
    }

    fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    fn bytes(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or_else(|| {
            format!(
                "{what}: truncated: needs {n} bytes, {} present",
                self.data.len() - self.pos
            )
        })?;
        let out = &self.data[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn uint(&mut self, n: usize, what: &str) -> Result<u64, String> {
        let b = self.bytes(n, what)?;
        Ok(b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    }

    /// A vector with an `n`-byte length prefix.
    fn vector(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let len = self.uint(n, what)?;
        let len = usize::try_from(len).map_err(|_| format!("{what}: too long"))?;
        self.bytes(len, what)
    }
}

/// The signed part of an entry (RFC 6962 3.4 `TimestampedEntry`).
struct Timestamped<'a> {
    timestamp: u64,
    precert: bool,
    /// The certificate (x509) or the TBSCertificate (precert).
    body: &'a [u8],
    extensions: &'a [u8],
}

fn timestamped<'a>(t: &mut Tls<'a>) -> Result<Timestamped<'a>, String> {
    let timestamp = t.uint(8, "timestamp")?;
    let entry_type = t.uint(2, "entry_type")?;
    let precert = match entry_type {
        0 => false,
        1 => {
            t.bytes(32, "issuer_key_hash")?;
            true
        }
        n => return Err(format!("entry_type: unknown type {n}")),
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

/// The static-ct-api `leaf_index` extension (type 0, a 40-bit big-endian integer), if present.
fn leaf_index(extensions: &[u8]) -> Result<Option<i64>, String> {
    let mut t = Tls::new(extensions);
    let mut found = None;
    while !t.is_empty() {
        let kind = t.uint(1, "extension type")?;
        let data = t.vector(2, "extension data")?;
        if kind == 0 {
            if data.len() != 5 {
                return Err("leaf_index extension: not 5 bytes".into());
            }
            found = Some(Tls::new(data).uint(5, "leaf_index")? as i64);
        }
    }
    Ok(found)
}

/// The first certificate of a `u24`-prefixed list of `u24`-prefixed certificates.
fn first_of_chain(chain: &[u8]) -> Result<Option<&[u8]>, String> {
    let mut t = Tls::new(chain);
    Ok(if t.is_empty() {
        None
    } else {
        Some(t.vector(3, "certificate_chain")?)
    })
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
    framed: Option<Result<Framed<'a>, String>>,
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

    fn failed(error: String) -> Self {
        let mut row = EntryRow::default();
        row.cert.errors.push(error);
        Pending::new(row)
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
        let mut t = Tls::new(leaf);
        let parsed = (|| -> Result<_, String> {
            let header = t.bytes(2, "merkle_tree_leaf")?;
            if header != [0, 0] {
                return Err(format!(
                    "merkle_tree_leaf: version {} leaf type {} (expected 0, 0)",
                    header[0], header[1]
                ));
            }
            let te = timestamped(&mut t)?;
            if !t.is_empty() {
                return Err(format!(
                    "merkle_tree_leaf: {} trailing bytes",
                    leaf.len() - t.pos
                ));
            }
            Ok(te)
        })();
        let te = match parsed {
            Ok(te) => te,
            Err(e) => {
                pending.row.cert.errors.push(e);
                self.pending.push(pending);
                return;
            }
        };
        let mut pre_certificate = None;
        let mut chain_error = None;
        if let Some(extra) = extra {
            let chain = (|| -> Result<_, String> {
                let mut t = Tls::new(extra);
                if te.precert {
                    pre_certificate = Some(t.vector(3, "extra_data: pre_certificate")?);
                }
                let chain = t.vector(3, "extra_data: certificate_chain")?;
                first_of_chain(chain)
            })();
            match chain {
                Ok(first) => pending.row.issuer_sha256 = first.map(|d| self.issuers.digest(d)),
                Err(e) => chain_error = Some(e),
            }
        }
        self.body(&mut pending, &te, pre_certificate);
        pending.row.cert.errors.extend(chain_error);
        self.pending.push(pending);
    }

    /// Every `TileLeaf` of a data tile, in order. A tile that cannot be read to its end gets a
    /// last row whose error starts with `tile:` and says where it stopped.
    fn tile(&mut self, tile: &'a [u8]) {
        let mut t = Tls::new(tile);
        while !t.is_empty() {
            let start = t.pos;
            let entry = (|| -> Result<_, String> {
                let te = timestamped(&mut t)?;
                let end = t.pos;
                let pre_certificate = if te.precert {
                    Some(t.vector(3, "pre_certificate")?)
                } else {
                    None
                };
                let fingerprints = t.vector(2, "certificate_chain")?;
                if fingerprints.len() % 32 != 0 {
                    return Err("certificate_chain: not a list of SHA-256 fingerprints".into());
                }
                Ok((te, end, pre_certificate, fingerprints))
            })();
            let Ok((te, end, pre_certificate, fingerprints)) = entry else {
                let e = entry.err().unwrap_or_default();
                let error = format!("tile: entry at byte {start}: {e}");
                self.pending.push(Pending::failed(error));
                return;
            };
            let mut pending = Pending::new(EntryRow {
                issuer_sha256: fingerprints.get(..32).map(|f| {
                    let mut out = [0; 32];
                    out.copy_from_slice(f);
                    out
                }),
                ..EntryRow::default()
            });
            pending.leaf = Some(self.stash(&[&[0, 0, 0], &tile[start..end]]));
            self.body(&mut pending, &te, pre_certificate);
            self.pending.push(pending);
        }
    }

    /// A DER certificate or precertificate, outside any log (crt.sh).
    fn certificate(&mut self, der: &'a [u8]) {
        let mut pending = Pending::new(EntryRow::default());
        self.x509(&mut pending, der);
        self.pending.push(pending);
    }

    /// The certificate fields of a parsed `TimestampedEntry`.
    fn body(
        &mut self,
        pending: &mut Pending<'a>,
        te: &Timestamped<'a>,
        pre_certificate: Option<&'a [u8]>,
    ) {
        let row = &mut pending.row;
        row.timestamp = i64::try_from(te.timestamp).ok();
        match leaf_index(te.extensions) {
            Ok(index) => row.leaf_index = index,
            Err(e) => row.cert.errors.push(e),
        }
        if !te.precert {
            row.entry_type = Some("x509");
            self.x509(pending, te.body);
            return;
        }
        row.entry_type = Some("precert");
        pending.cert = pre_certificate.map(Msg::Input);
        let parts = match TbsParts::read(te.body) {
            Ok(parts) => parts,
            Err(e) => {
                row.cert.errors.push(format!("tbs_certificate: {e}"));
                return;
            }
        };
        row.common_name = common_name(&parts.subject);
        pending.tbs = Some(self.tbs(&parts));
        pending.framed = Some(
            parse_spki(&parts.spki)
                .map(|spki| Framed {
                    version: parts.version,
                    serial: parts.serial,
                    tbs_signature: parts.signature,
                    issuer: parts.issuer,
                    validity: parts.validity,
                    subject: parts.subject,
                    spki,
                    extensions: parts.extensions,
                    signature_algorithm: None,
                    problems: Vec::new(),
                })
                .map_err(|e| format!("subject_public_key_info: {e}")),
        );
    }

    /// A whole certificate: the crate's framing, plus the CN and the dedupe TBS.
    fn x509(&mut self, pending: &mut Pending<'a>, der: &'a [u8]) {
        pending.cert = Some(Msg::Input(der));
        pending.framed = Some(frame(der));
        let tbs = der::read_tlv(der)
            .and_then(|(outer, _)| der::sequence(&outer).and_then(|mut r| r.read(der::SEQUENCE)));
        match tbs.and_then(|tbs| TbsParts::read(tbs.full)) {
            Ok(parts) => {
                let row = &mut pending.row;
                row.common_name = common_name(&parts.subject);
                if row.entry_type.is_none() {
                    let poisoned = parts.has_poison();
                    row.entry_type = Some(if poisoned { "precert" } else { "x509" });
                }
                pending.tbs = Some(self.tbs(&parts));
            }
            Err(e) => pending
                .row
                .cert
                .errors
                .push(format!("tbs_certificate: {e}")),
        }
    }

    fn tbs(&mut self, parts: &TbsParts<'a>) -> Msg<'a> {
        match parts.dedupe_tbs() {
            None => Msg::Input(parts.full),
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
                let earlier = std::mem::take(&mut row.cert.errors);
                row.cert =
                    catch_unwind(AssertUnwindSafe(|| parse_framed(framed, cert, spki, false)))
                        .unwrap_or_else(|_| CertRow {
                            errors: vec![PANICKED.into()],
                            ..CertRow::default()
                        });
                row.cert.errors.splice(0..0, earlier);
            }
            rows.push(row);
        }
        self.scratch.clear();
    }
}

/// The elements of a TBSCertificate (RFC 5280 4.1), each exactly as encoded.
struct TbsParts<'a> {
    full: &'a [u8],
    version: Option<Tlv<'a>>,
    serial: Tlv<'a>,
    signature: Tlv<'a>,
    issuer: Tlv<'a>,
    validity: Tlv<'a>,
    subject: Tlv<'a>,
    spki: Tlv<'a>,
    extensions: Option<Tlv<'a>>,
}

impl<'a> TbsParts<'a> {
    fn read(data: &'a [u8]) -> DerResult<Self> {
        let tbs = der::parse_single(data, der::SEQUENCE)?;
        let mut r = Reader::new(tbs.content);
        let version = r.read_optional(der::explicit(0))?;
        let serial = r.read_any()?;
        let signature = r.read_any()?;
        let issuer = r.read_any()?;
        let validity = r.read_any()?;
        let subject = r.read_any()?;
        let spki = r.read(der::SEQUENCE)?;
        r.read_optional(der::implicit(1))?;
        r.read_optional(der::implicit(2))?;
        let extensions = r.read_optional(der::explicit(3))?;
        r.finish()?;
        Ok(TbsParts {
            full: tbs.full,
            version,
            serial,
            signature,
            issuer,
            validity,
            subject,
            spki,
            extensions,
        })
    }

    /// Each extension's OID content and whole encoding.
    fn extension_list(&self) -> DerResult<Vec<(&'a [u8], &'a [u8])>> {
        let Some(block) = self.extensions else {
            return Ok(Vec::new());
        };
        let mut outer = Reader::new(block.content);
        let list = outer.read(der::SEQUENCE)?;
        outer.finish()?;
        let mut r = Reader::new(list.content);
        let mut out = Vec::new();
        while !r.is_empty() {
            let ext = r.read(der::SEQUENCE)?;
            let oid = Reader::new(ext.content).read(der::OID)?;
            out.push((oid.content, ext.full));
        }
        Ok(out)
    }

    fn has_poison(&self) -> bool {
        self.extension_list()
            .is_ok_and(|list| list.iter().any(|(oid, _)| *oid == POISON_OID))
    }

    /// The TBSCertificate without the poison and SCT list extensions, re-framed around what is
    /// kept; `None` when neither is there (most x509 entries hold the SCT list, every precert TBS
    /// lacks both) or the extensions cannot be read: then the bytes are hashed as they are.
    fn dedupe_tbs(&self) -> Option<Vec<u8>> {
        let block = self.extensions?;
        let list = self.extension_list().ok()?;
        let is_ct = |oid: &[u8]| oid == POISON_OID || oid == SCT_LIST_OID;
        if !list.iter().any(|(oid, _)| is_ct(oid)) {
            return None;
        }
        let mut kept = Vec::with_capacity(block.full.len());
        list.iter()
            .filter(|(oid, _)| !is_ct(oid))
            .for_each(|(_, full)| kept.extend_from_slice(full));
        let start = self.full.len() - tbs_content_len(self.full);
        let before = block.full.as_ptr() as usize - self.full.as_ptr() as usize;
        let mut content = self.full[start..before].to_vec();
        if !kept.is_empty() {
            let mut seq = Vec::with_capacity(kept.len() + 4);
            push_header(&mut seq, der::SEQUENCE, kept.len());
            seq.extend_from_slice(&kept);
            push_header(&mut content, der::explicit(3), seq.len());
            content.extend_from_slice(&seq);
        }
        content.extend_from_slice(&self.full[before + block.full.len()..]);
        let mut tbs = Vec::with_capacity(content.len() + 4);
        push_header(&mut tbs, der::SEQUENCE, content.len());
        tbs.extend_from_slice(&content);
        Some(tbs)
    }
}

fn tbs_content_len(full: &[u8]) -> usize {
    der::read_header(full).map_or(0, |h| h.content_len)
}

/// A DER tag and definite length (short form below 128, else the fewest length octets).
fn push_header(out: &mut Vec<u8>, tag: u8, len: usize) {
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
        return;
    }
    let octets = len.to_be_bytes();
    let skip = octets.iter().take_while(|&&b| b == 0).count();
    out.push(0x80 | (octets.len() - skip) as u8);
    out.extend_from_slice(&octets[skip..]);
}

/// The first commonName of a Name, decoded from the string types X.509 uses.
fn common_name(name: &Tlv<'_>) -> Option<String> {
    let mut rdns = der::sequence(name).ok()?;
    while !rdns.is_empty() {
        let set = rdns.read(der::SET).ok()?;
        let mut atvs = Reader::new(set.content);
        while !atvs.is_empty() {
            let atv = atvs.read(der::SEQUENCE).ok()?;
            let mut r = Reader::new(atv.content);
            if r.read(der::OID).ok()?.content == CN_OID {
                return decode_string(&r.read_any().ok()?);
            }
        }
    }
    None
}

fn decode_string(value: &Tlv<'_>) -> Option<String> {
    let bytes = value.content;
    match value.tag {
        der::BMP_STRING => {
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            Some(String::from_utf16_lossy(&units))
        }
        der::UNIVERSAL_STRING => bytes
            .chunks_exact(4)
            .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        der::TELETEX_STRING => Some(bytes.iter().map(|&b| char::from(b)).collect()),
        _ => Some(String::from_utf8_lossy(bytes).into_owned()),
    }
}

/// Rows for one record batch's inputs, each input read behind `catch_unwind`.
fn rows_of<'a>(
    kind: Kind,
    inputs: &[Option<&'a [u8]>],
    extras: &[Option<&'a [u8]>],
) -> Vec<EntryRow> {
    let mut rows = Vec::with_capacity(if kind == Kind::Tile { 256 } else { 1 } * inputs.len());
    let mut group = Group::default();
    for (i, input) in inputs.iter().enumerate() {
        let Some(data) = *input else {
            group.pending.push(Pending::failed("input: null".into()));
            continue;
        };
        let extra = extras.get(i).copied().flatten();
        let before = group.pending.len();
        let done = catch_unwind(AssertUnwindSafe(|| match kind {
            Kind::Leaf => group.leaf(data, extra),
            Kind::Tile => group.tile(data),
            Kind::Certificate => group.certificate(data),
        }));
        if done.is_err() {
            group.pending.truncate(before);
            group.pending.push(Pending::failed(PANICKED.into()));
        }
        if group.pending.len() >= GROUP_ROWS {
            group.finish(&mut rows);
        }
    }
    group.finish(&mut rows);
    rows
}

fn build(rows: &[EntryRow]) -> Result<RecordBatch, ArrowError> {
    let n = rows.len();
    let text = || StringViewBuilder::with_capacity(n);
    let time = || TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let (mut leaf_hash, mut entry_type) = (BinaryBuilder::with_capacity(n, 32 * n), text());
    let (mut timestamp, mut leaf_index) = (Int64Builder::with_capacity(n), Int64Builder::new());
    let (mut cert_sha256, mut tbs_sha256, mut spki_sha256) = (text(), text(), text());
    let (mut subject, mut common, mut issuer) = (text(), text(), text());
    let mut dns_names = ListBuilder::new(text());
    let (mut not_before, mut not_after) = (time(), time());
    let (mut issuer_sha256, mut error) = (text(), StringViewBuilder::new());
    let (mut hex_buf, mut b64_buf) = ([0; 64], [0; 44]);
    for row in rows {
        leaf_hash.append_option(row.leaf_hash.as_ref());
        entry_type.append_option(row.entry_type);
        timestamp.append_option(row.timestamp);
        leaf_index.append_option(row.leaf_index);
        cert_sha256.append_option(row.cert_sha256.as_ref().map(|d| hex_into(d, &mut hex_buf)));
        tbs_sha256.append_option(row.tbs_sha256.as_ref().map(|d| hex_into(d, &mut hex_buf)));
        let pin = row.cert.spki_sha256.as_ref();
        spki_sha256.append_option(pin.map(|d| base64_into(d, &mut b64_buf)));
        subject.append_option(row.cert.subject.as_deref());
        common.append_option(row.common_name.as_deref());
        match &row.cert.dns_names {
            Some(names) => {
                names
                    .iter()
                    .for_each(|s| dns_names.values().append_value(s));
                dns_names.append(true);
            }
            None => dns_names.append(false),
        }
        issuer.append_option(row.cert.issuer.as_deref());
        not_before.append_option(row.cert.not_before);
        not_after.append_option(row.cert.not_after);
        let issuer_fp = row.issuer_sha256.as_ref();
        issuer_sha256.append_option(issuer_fp.map(|d| hex_into(d, &mut hex_buf)));
        if row.cert.errors.is_empty() {
            error.append_null();
        } else {
            error.append_value(row.cert.errors.join("; "));
        }
    }
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("leaf_hash", Arc::new(leaf_hash.finish())),
        ("entry_type", Arc::new(entry_type.finish())),
        ("timestamp", Arc::new(timestamp.finish())),
        ("leaf_index", Arc::new(leaf_index.finish())),
        ("cert_sha256", Arc::new(cert_sha256.finish())),
        ("tbs_sha256", Arc::new(tbs_sha256.finish())),
        ("spki_sha256", Arc::new(spki_sha256.finish())),
        ("subject", Arc::new(subject.finish())),
        ("common_name", Arc::new(common.finish())),
        ("dns_names", Arc::new(dns_names.finish())),
        ("issuer", Arc::new(issuer.finish())),
        ("not_before", Arc::new(not_before.finish())),
        ("not_after", Arc::new(not_after.finish())),
        ("issuer_sha256", Arc::new(issuer_sha256.finish())),
        ("error", Arc::new(error.finish())),
    ];
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
        .collect();
    RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
}

/// The schema of the batches `entries` returns.
pub fn schema() -> SchemaRef {
    build(&[]).expect("an empty batch always builds").schema()
}

/// Parses log entries on the current rayon pool into record batches, rows in input order.
/// `extras` (RFC 6962 `extra_data`, `Kind::Leaf` only) is matched to `inputs` by position and may
/// be shorter or empty. Never fails on bad input: a row's `error` says what is wrong.
pub fn entries(
    kind: Kind,
    inputs: &[Option<&[u8]>],
    extras: &[Option<&[u8]>],
) -> Result<Vec<RecordBatch>, ArrowError> {
    // Up to `CHUNK_ROWS` rows per batch, but at least two batches per thread: the monitor parses
    // a few thousand entries per call, which would otherwise run on one core.
    let threads = rayon::current_num_threads().max(1);
    let most = if kind == Kind::Tile {
        TILES_PER_BATCH
    } else {
        CHUNK_ROWS
    };
    let per_batch = inputs.len().div_ceil(2 * threads).clamp(1, most);
    inputs
        .par_chunks(per_batch)
        .enumerate()
        .map(|(i, chunk)| {
            let from = (i * per_batch).min(extras.len());
            let to = (from + chunk.len()).min(extras.len());
            build(&rows_of(kind, chunk, &extras[from..to]))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `SEQUENCE { [3] { SEQUENCE { ext* } } }` around a minimal TBS prefix, for hashing tests.
    fn tbs_with(exts: &[&[u8]]) -> Vec<u8> {
        let mut prefix = Vec::new();
        for (tag, body) in [
            (der::INTEGER, &[1u8][..]),                           // serial
            (der::SEQUENCE, &[0x06, 0x01, 0x2a][..]),             // signature
            (der::SEQUENCE, &[][..]),                             // issuer
            (der::SEQUENCE, &[][..]),                             // validity
            (der::SEQUENCE, &[][..]),                             // subject
            (der::SEQUENCE, &[0x30, 0x00, 0x03, 0x01, 0x00][..]), // spki
        ] {
            push_header(&mut prefix, tag, body.len());
            prefix.extend_from_slice(body);
        }
        if !exts.is_empty() {
            let list: Vec<u8> = exts.concat();
            let mut seq = Vec::new();
            push_header(&mut seq, der::SEQUENCE, list.len());
            seq.extend_from_slice(&list);
            push_header(&mut prefix, der::explicit(3), seq.len());
            prefix.extend_from_slice(&seq);
        }
        let mut tbs = Vec::new();
        push_header(&mut tbs, der::SEQUENCE, prefix.len());
        tbs.extend_from_slice(&prefix);
        tbs
    }

    fn ext(oid: &[u8], value: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        push_header(&mut body, der::OID, oid.len());
        body.extend_from_slice(oid);
        push_header(&mut body, der::OCTET_STRING, value.len());
        body.extend_from_slice(value);
        let mut out = Vec::new();
        push_header(&mut out, der::SEQUENCE, body.len());
        out.extend_from_slice(&body);
        out
    }

    fn dedupe_hash(parts: &TbsParts<'_>) -> Sha256 {
        sha256(parts.dedupe_tbs().as_deref().unwrap_or(parts.full))
    }

    fn one(kind: Kind, data: &[u8]) -> Vec<EntryRow> {
        rows_of(kind, &[Some(data)], &[])
    }

    #[test]
    fn dedupe_hash_drops_poison_and_sct_list_only() {
        let san = ext(&[0x55, 0x1d, 0x11], &[0x30, 0x00]);
        let big = ext(&[0x55, 0x1d, 0x0e], &[0x41; 300]); // long-form lengths after removal too
        let poison = ext(POISON_OID, &[0x05, 0x00]);
        let scts = ext(SCT_LIST_OID, &[0x04, 0x02, 0x00, 0x00]);
        let plain = tbs_with(&[&san, &big]);
        let want = sha256(&plain);
        for variant in [
            tbs_with(&[&san, &poison, &big]),
            tbs_with(&[&san, &big, &scts]),
            tbs_with(&[&scts, &san, &big]),
        ] {
            let parts = TbsParts::read(&variant).unwrap();
            assert_eq!(dedupe_hash(&parts), want);
        }
        assert!(TbsParts::read(&tbs_with(&[&poison])).unwrap().has_poison());
        assert_eq!(
            dedupe_hash(&TbsParts::read(&tbs_with(&[&poison])).unwrap()),
            sha256(&tbs_with(&[]))
        );
        assert_eq!(dedupe_hash(&TbsParts::read(&plain).unwrap()), want);
        assert!(TbsParts::read(&plain).unwrap().dedupe_tbs().is_none());
    }

    #[test]
    fn headers_are_minimal_der() {
        for (len, want) in [
            (0usize, vec![0x30, 0x00]),
            (127, vec![0x30, 0x7f]),
            (128, vec![0x30, 0x81, 0x80]),
            (300, vec![0x30, 0x82, 0x01, 0x2c]),
        ] {
            let mut out = Vec::new();
            push_header(&mut out, 0x30, len);
            assert_eq!(out, want);
        }
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

        let truncated = one(Kind::Leaf, &leaf[..leaf.len() - 3]).remove(0);
        assert!(truncated.cert.errors[0].contains("truncated"));
        let bad_version = one(Kind::Leaf, &[1, 0]).remove(0);
        assert!(bad_version.cert.errors[0].contains("version 1"));
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
        assert!(rows[2].cert.errors[0].starts_with("tile: entry at byte"));
    }

    #[test]
    fn batches_keep_order_and_schema() {
        let te = timestamped_x509(b"x", &[]);
        let leaf = [&[0u8, 0][..], &te].concat();
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
