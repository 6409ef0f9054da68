// SPDX-License-Identifier: Apache-2.0
//! A precertificate's TBSCertificate, and the TBS hash a precertificate and its certificate share.
//!
//! `tbs_sha256` is the SHA-256 of the TBSCertificate without the CT poison and SCT list
//! extensions (certspotter's `TBS_SHA256`). That TBS is re-serialized with corrected lengths; the
//! key inside it is copied byte for byte, and a pin never hashes the re-serialized bytes.

use crate::der::{self, DerResult, Reader, Tlv};
use crate::frame::{read_tbs, FrameError, Framed, TbsFields};
use crate::spki::parse_spki;

/// `1.3.6.1.4.1.11129.2.4.3`, the precertificate poison (RFC 6962 3.1), as OID content octets.
pub(super) const POISON_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x03];
/// `1.3.6.1.4.1.11129.2.4.2`, the embedded SCT list (RFC 6962 3.3).
pub(super) const SCT_LIST_OID: &[u8] =
    &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x02];

/// A precert entry's TBSCertificate (RFC 6962 3.2), read with the certificate framing; the log
/// gives it on its own, so the whole of it must read, exactly as RFC 5280 lays it out.
pub(super) fn read_precert_tbs(body: &[u8]) -> DerResult<(&[u8], TbsFields<'_>)> {
    let tbs = der::parse_single(body, der::SEQUENCE)?;
    let fields = read_tbs(tbs.content).map_err(|e| e.error)?;
    der::expect_tag(&fields.spki, der::SEQUENCE)?;
    fields.after_key.clone()?;
    Ok((tbs.full, fields))
}

/// The framing `parse_framed` finishes a precertificate's row from: the TBS's, with its key read.
pub(super) fn precert_framed<'a>(
    tbs: &'a [u8],
    fields: TbsFields<'a>,
) -> Result<Framed<'a>, FrameError> {
    let spki =
        parse_spki(&fields.spki).map_err(|e| FrameError::new("subject_public_key_info", e))?;
    Ok(Framed {
        tbs: fields,
        spki,
        tbs_der: Some(tbs),
        signature_algorithm: None,
        problems: Vec::new(),
    })
}

/// Each extension's OID content and whole encoding.
fn extension_list<'a>(extensions: Option<Tlv<'a>>) -> DerResult<Vec<(&'a [u8], &'a [u8])>> {
    let Some(block) = extensions else {
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

/// Whether the extensions hold the precertificate poison: a precertificate given as a
/// certificate (crt.sh) is told apart by it.
pub(super) fn has_poison(extensions: Option<Tlv<'_>>) -> bool {
    extension_list(extensions).is_ok_and(|list| list.iter().any(|(oid, _)| *oid == POISON_OID))
}

/// `tbs` (a whole TBSCertificate, `extensions` read from it) without the poison and SCT list
/// extensions, re-framed around what is kept; `None` when neither is there (most x509 entries
/// hold the SCT list, every precert TBS lacks both) or the extensions cannot be read: then the
/// bytes are hashed as they are.
pub(super) fn dedupe_tbs(tbs: &[u8], extensions: Option<Tlv<'_>>) -> Option<Vec<u8>> {
    let block = extensions?;
    let list = extension_list(extensions).ok()?;
    let is_ct = |oid: &[u8]| oid == POISON_OID || oid == SCT_LIST_OID;
    if !list.iter().any(|(oid, _)| is_ct(oid)) {
        return None;
    }
    let mut kept = Vec::with_capacity(block.full.len());
    list.iter()
        .filter(|(oid, _)| !is_ct(oid))
        .for_each(|(_, full)| kept.extend_from_slice(full));
    let start = tbs.len() - der::read_header(tbs).map_or(0, |h| h.content_len);
    let before = block.full.as_ptr() as usize - tbs.as_ptr() as usize;
    let mut content = tbs[start..before].to_vec();
    if !kept.is_empty() {
        let mut seq = Vec::with_capacity(kept.len() + 4);
        push_header(&mut seq, der::SEQUENCE, kept.len());
        seq.extend_from_slice(&kept);
        push_header(&mut content, der::explicit(3), seq.len());
        content.extend_from_slice(&seq);
    }
    content.extend_from_slice(&tbs[before + block.full.len()..]);
    let mut out = Vec::with_capacity(content.len() + 4);
    push_header(&mut out, der::SEQUENCE, content.len());
    out.extend_from_slice(&content);
    Some(out)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::{sha256, Sha256};

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

    fn dedupe_hash(tbs: &[u8]) -> Sha256 {
        let (full, fields) = read_precert_tbs(tbs).unwrap();
        sha256(
            dedupe_tbs(full, fields.extensions)
                .as_deref()
                .unwrap_or(full),
        )
    }

    fn poisoned(tbs: &[u8]) -> bool {
        has_poison(read_precert_tbs(tbs).unwrap().1.extensions)
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
            assert_eq!(dedupe_hash(&variant), want);
        }
        assert!(poisoned(&tbs_with(&[&poison])));
        assert!(!poisoned(&plain));
        assert_eq!(dedupe_hash(&tbs_with(&[&poison])), sha256(&tbs_with(&[])));
        assert_eq!(dedupe_hash(&plain), want);
        let (full, fields) = read_precert_tbs(&plain).unwrap();
        assert!(dedupe_tbs(full, fields.extensions).is_none());
    }

    #[test]
    fn a_precert_tbs_must_read_to_its_end() {
        let mut stray = tbs_with(&[]);
        stray.extend_from_slice(&[0x05, 0x00]);
        stray[1] += 2; // the NULL inside the TBS, after the key
        assert!(read_precert_tbs(&stray).is_err());
        assert!(read_precert_tbs(&tbs_with(&[])[..10]).is_err());
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
}
