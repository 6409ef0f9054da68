// SPDX-License-Identifier: Apache-2.0
//! One certificate to one row, in tiers: the fingerprint always; the SPKI from the framing alone,
//! so a broken name or extension never loses the pin; every other field on its own, null with the
//! reason in `errors` when it fails.

use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::der::{self, DerError, DerResult, Reader, Tlv};
use crate::error::{ErrorKind, Problem};
use crate::frame::{frame, FrameError, Framed};
use crate::hash::{sha1, sha256, Sha1, Sha256};
use crate::name::{hex_into, rfc4514_into, NameWarning};
use crate::oid;
use crate::spki::key_info;
use crate::time::parse_time;

/// Everything pinscan reports about one certificate. `None` is "could not be read"; the reason is
/// in `errors`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CertRow {
    pub cert_sha256: Option<Sha256>,
    pub spki_sha256: Option<Sha256>,
    pub spki_sha1: Option<Sha1>,
    pub subject: Option<String>,
    pub issuer: Option<String>,
    pub serial: Option<String>,
    pub not_before: Option<i64>,
    pub not_after: Option<i64>,
    pub key_type: Option<Cow<'static, str>>,
    pub key_bits: Option<u32>,
    pub curve: Option<Cow<'static, str>>,
    pub sig_alg: Option<Cow<'static, str>>,
    pub is_ca: Option<bool>,
    pub path_len: Option<u32>,
    pub dns_names: Option<Vec<String>>,
    pub ip_addresses: Option<Vec<String>>,
    pub ski: Option<String>,
    pub aki: Option<String>,
    pub sct_count: Option<u32>,
    pub errors: Vec<Problem>,
}

impl CertRow {
    fn record<T>(&mut self, field: &str, result: DerResult<T>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(e) => {
                self.fail(field, &e);
                None
            }
        }
    }

    // Out of the way of the fields that read, which are nearly all of them.
    #[cold]
    fn fail(&mut self, field: &str, e: &DerError) {
        self.errors.push(Problem::at(field, e));
    }
}

/// Parses one certificate. Never fails: what cannot be read is `None` with a reason.
pub fn parse(data: &[u8], with_sha1: bool) -> CertRow {
    let framed = frame(data);
    let spki_sha256 = framed.as_ref().map_or([0; 32], |f| sha256(f.spki.der));
    parse_framed(framed, sha256(data), spki_sha256, with_sha1)
}

/// `parse`, given `frame`'s result and the digests of the certificate and of the SPKI it found
/// (ignored when there is none): the batch path frames and hashes many certificates at once.
pub fn parse_framed(
    framed: Result<Framed<'_>, FrameError>,
    cert_sha256: Sha256,
    spki_sha256: Sha256,
    with_sha1: bool,
) -> CertRow {
    let mut row = CertRow::default();
    parse_framed_into(&mut row, framed, cert_sha256, spki_sha256, with_sha1);
    row
}

/// The string buffers of a row that is being replaced, written into again: the batch path parses
/// thousands of certificates into one `CertRow`, which then allocates almost nothing.
struct Spare {
    subject: String,
    issuer: String,
    serial: String,
    ski: String,
    aki: String,
    dns: Vec<String>,
}

impl Spare {
    fn take(row: &mut CertRow) -> Spare {
        Spare {
            subject: row.subject.take().unwrap_or_default(),
            issuer: row.issuer.take().unwrap_or_default(),
            serial: row.serial.take().unwrap_or_default(),
            ski: row.ski.take().unwrap_or_default(),
            aki: row.aki.take().unwrap_or_default(),
            dns: row.dns_names.take().unwrap_or_default(),
        }
    }
}

/// The buffers `extensions` fills.
struct ExtensionBuffers {
    ski: String,
    aki: String,
    dns: Vec<String>,
}

/// `parse_framed` into `row`, replacing everything in it, its buffers reused.
pub fn parse_framed_into(
    row: &mut CertRow,
    framed: Result<Framed<'_>, FrameError>,
    cert_sha256: Sha256,
    spki_sha256: Sha256,
    with_sha1: bool,
) {
    let Spare {
        subject: subject_buf,
        issuer: issuer_buf,
        serial: serial_buf,
        ski,
        aki,
        dns,
    } = Spare::take(row);
    let mut errors = std::mem::take(&mut row.errors);
    errors.clear();
    *row = CertRow {
        cert_sha256: Some(cert_sha256),
        errors,
        ..CertRow::default()
    };
    let framed = match framed {
        Ok(f) => f,
        Err(e) => {
            row.errors.push(Problem::of(&e));
            return;
        }
    };
    row.errors.extend(framed.problems.iter().map(Problem::of));
    row.spki_sha256 = Some(spki_sha256);
    if with_sha1 {
        row.spki_sha1 = Some(sha1(framed.spki.der));
    }

    let tbs = &framed.tbs;
    if let Some(v) = tbs.version {
        let version = der::parse_single(v.content, der::INTEGER).and_then(|t| der::small_uint(&t));
        match row.record("version", version) {
            Some(0..=2) | None => {}
            Some(n) => row.errors.push(Problem::new(
                ErrorKind::UnknownVersion,
                format!("version: unknown version {n}"),
            )),
        }
    }
    let subject = render_name(&tbs.subject, subject_buf);
    // A self-issued certificate (every root) has the same bytes twice: render them once.
    let issuer = if tbs.issuer.full == tbs.subject.full {
        let mut buf = issuer_buf;
        let copy = subject.0.as_ref().map(|s| {
            buf.clear();
            buf.push_str(s);
            buf
        });
        (copy.map_err(Clone::clone), subject.1.clone())
    } else {
        render_name(&tbs.issuer, issuer_buf)
    };
    row.subject = name_field(row, "subject", subject);
    row.issuer = name_field(row, "issuer", issuer);
    row.serial = row.record("serial", serial_hex(&tbs.serial, serial_buf));
    if let Some((nb, na)) = row.record("validity", validity(&tbs.validity)) {
        row.not_before = Some(nb);
        row.not_after = Some(na);
    }
    if let Some(info) = row.record("key", key_info(&framed.spki)) {
        row.key_type = Some(info.key_type);
        row.key_bits = info.key_bits;
        row.curve = info.curve;
    }
    row.sig_alg = row.record("signature_algorithm", signature_name(&tbs.signature));
    if let Some(outer) = framed.signature_algorithm {
        if outer.full != tbs.signature.full {
            row.errors.push(Problem::new(
                ErrorKind::SignatureAlgorithmMismatch,
                "signature_algorithm: differs between the TBS and the certificate",
            ));
        }
    }
    extensions(row, tbs.extensions, ExtensionBuffers { ski, aki, dns });
}

type RenderedName = (DerResult<String>, Vec<NameWarning>);

fn render_name(name: &Tlv<'_>, buf: String) -> RenderedName {
    let mut warnings = Vec::new();
    let rendered = rfc4514_into(name, &mut warnings, buf);
    (rendered, warnings)
}

fn name_field(
    row: &mut CertRow,
    field: &str,
    (rendered, warnings): RenderedName,
) -> Option<String> {
    row.errors
        .extend(warnings.iter().map(|w| Problem::at(field, w)));
    row.record(field, rendered)
}

/// Lowercase hex of the serial's value, as Python's `format(serial, "x")` writes it.
fn serial_hex(tlv: &Tlv<'_>, buf: String) -> DerResult<String> {
    der::expect_tag(tlv, der::INTEGER)?;
    let c = tlv.content;
    let Some(&first) = c.first() else {
        return Err(DerError::Invalid(
            ErrorKind::InvalidInteger,
            "empty integer",
        ));
    };
    let mut out = buf;
    out.clear();
    out.reserve(c.len() * 2 + 1);
    let magnitude: Cow<'_, [u8]> = if first & 0x80 != 0 {
        // RFC 5280 forbids negative serials, but CAs have issued them; show the value, not bytes.
        out.push('-');
        let mut m: Vec<u8> = c.iter().map(|b| !b).collect();
        for b in m.iter_mut().rev() {
            let (v, carry) = b.overflowing_add(1);
            *b = v;
            if !carry {
                break;
            }
        }
        Cow::Owned(m)
    } else {
        Cow::Borrowed(c)
    };
    let digits = der::strip_leading_zeros(&magnitude);
    if digits.is_empty() {
        return Ok("0".into());
    }
    hex_into(digits, &mut out);
    // Python writes no leading zero nibble.
    if out.as_bytes().get(usize::from(first & 0x80 != 0)) == Some(&b'0') {
        out.remove(usize::from(first & 0x80 != 0));
    }
    Ok(out)
}

fn validity(tlv: &Tlv<'_>) -> DerResult<(i64, i64)> {
    let mut r = der::sequence(tlv)?;
    let not_before = parse_time(&r.read_any()?)?;
    let not_after = parse_time(&r.read_any()?)?;
    r.finish()?;
    Ok((not_before, not_after))
}

fn signature_name(alg: &Tlv<'_>) -> DerResult<Cow<'static, str>> {
    let mut r = der::sequence(alg)?;
    let id = r.read(der::OID)?;
    let params = if r.is_empty() {
        None
    } else {
        Some(r.read_any()?)
    };
    let Some(name) = oid::SIGNATURES.name(id.content) else {
        return Ok(Cow::Owned(oid::dotted(id.content)?));
    };
    if name != oid::RSASSA_PSS_SIG {
        return Ok(Cow::Borrowed(name));
    }
    // RFC 4055 3.1: the hash is the first, optional, parameter; SHA-1 when absent.
    let hash = match params {
        Some(p) if p.tag == der::SEQUENCE => {
            match Reader::new(p.content).read_optional(der::explicit(0))? {
                Some(h) => {
                    let alg = der::parse_single(h.content, der::SEQUENCE)?;
                    let id = der::sequence(&alg)?.read(der::OID)?;
                    oid::HASHES.name(id.content).unwrap_or("unknown")
                }
                None => "sha1",
            }
        }
        _ => "sha1",
    };
    Ok(Cow::Owned(format!("{name}-{hash}")))
}

fn extensions(row: &mut CertRow, block: Option<Tlv<'_>>, spare: ExtensionBuffers) {
    let Some(block) = block else {
        // No extensions: not a CA by RFC 5280 4.2.1.9, no names, no SCTs.
        row.is_ca = Some(false);
        row.dns_names = Some(Vec::new());
        row.ip_addresses = Some(Vec::new());
        row.sct_count = Some(0);
        return;
    };
    let list = match der::parse_single(block.content, der::SEQUENCE) {
        Ok(list) => list,
        Err(e) => {
            row.errors.push(Problem::at("extensions", &e));
            return;
        }
    };
    // The OIDs seen so far: on the stack for any usual certificate.
    const ON_STACK: usize = 24;
    let mut seen_stack: [&[u8]; ON_STACK] = [&[]; ON_STACK];
    let mut seen_heap: Vec<&[u8]> = Vec::new();
    let mut seen_count = 0;
    // The last octet first: it tells most OIDs apart without a `memcmp` call.
    let same = |a: &&[u8], b: &[u8]| a.last() == b.last() && **a == *b;
    let mut r = Reader::new(list.content);
    let (mut bc, mut san, mut ski, mut aki, mut scts) = (None, None, None, None, None);
    while !r.is_empty() {
        let ext = match read_extension(&mut r) {
            Ok(ext) => ext,
            Err(e) => {
                row.errors.push(Problem::at("extensions", &e));
                // The rest cannot be framed; leave what was found, mark the others unknown.
                return;
            }
        };
        let seen = &seen_stack[..seen_count.min(ON_STACK)];
        if seen.iter().chain(&seen_heap).any(|s| same(s, ext.0)) {
            row.errors.push(Problem::new(
                ErrorKind::DuplicateExtension,
                format!(
                    "extensions: duplicate extension {}",
                    oid::dotted(ext.0).unwrap_or_default()
                ),
            ));
            continue;
        }
        if seen_count < ON_STACK {
            seen_stack[seen_count] = ext.0;
        } else {
            seen_heap.push(ext.0);
        }
        seen_count += 1;
        match oid::EXTENSIONS.name(ext.0) {
            Some("basic_constraints") => bc = Some(ext.1),
            Some("subject_alt_name") => san = Some(ext.1),
            Some("subject_key_identifier") => ski = Some(ext.1),
            Some("authority_key_identifier") => aki = Some(ext.1),
            Some("embedded_scts") => scts = Some(ext.1),
            _ => {}
        }
    }
    match bc {
        None => row.is_ca = Some(false),
        Some(v) => {
            if let Some((ca, len)) = row.record("basic_constraints", basic_constraints(v)) {
                row.is_ca = Some(ca);
                row.path_len = len;
            }
        }
    }
    match san {
        None => {
            row.dns_names = Some(Vec::new());
            row.ip_addresses = Some(Vec::new());
        }
        Some(v) => {
            let names = subject_alt_names(v, &mut row.errors, spare.dns);
            if let Some((dns, ips)) = row.record("subject_alt_name", names) {
                row.dns_names = Some(dns);
                row.ip_addresses = Some(ips);
            }
        }
    }
    if let Some(v) = ski {
        row.ski = row.record("subject_key_identifier", key_id(v, spare.ski));
    }
    if let Some(v) = aki {
        row.aki = row
            .record("authority_key_identifier", authority_key_id(v, spare.aki))
            .flatten();
    }
    row.sct_count = match scts {
        None => Some(0),
        Some(v) => row.record("embedded_scts", sct_count(v)),
    };
}

/// `Extension { extnID, critical DEFAULT FALSE, extnValue OCTET STRING }` to (OID, value).
fn read_extension<'a>(r: &mut Reader<'a>) -> DerResult<(&'a [u8], &'a [u8])> {
    let ext = r.read(der::SEQUENCE)?;
    let mut e = Reader::new(ext.content);
    let id = e.read(der::OID)?;
    if let Some(critical) = e.read_optional(der::BOOLEAN)? {
        der::boolean(&critical)?;
    }
    let value = e.read(der::OCTET_STRING)?;
    e.finish()?;
    Ok((id.content, value.content))
}

fn basic_constraints(value: &[u8]) -> DerResult<(bool, Option<u32>)> {
    let seq = der::parse_single(value, der::SEQUENCE)?;
    let mut r = Reader::new(seq.content);
    let ca = match r.read_optional(der::BOOLEAN)? {
        Some(b) => der::boolean(&b)?,
        None => false,
    };
    let path_len =
        match r.read_optional(der::INTEGER)? {
            Some(i) => Some(u32::try_from(der::small_uint(&i)?).map_err(|_| {
                DerError::Invalid(ErrorKind::InvalidInteger, "path length too large")
            })?),
            None => None,
        };
    r.finish()?;
    Ok((ca, path_len))
}

/// The DNS names and IP addresses; a name kept with replacements is reported in `warnings`.
fn subject_alt_names(
    value: &[u8],
    warnings: &mut Vec<Problem>,
    mut dns: Vec<String>,
) -> DerResult<(Vec<String>, Vec<String>)> {
    let seq = der::parse_single(value, der::SEQUENCE)?;
    let mut r = Reader::new(seq.content);
    let mut ips = Vec::new();
    // `dns` holds a previous row's names: their buffers are written over, the rest dropped.
    let mut used = 0;
    while !r.is_empty() {
        let name = r.read_any()?;
        match name.tag {
            t if t == der::implicit(2) => {
                // IA5String by RFC 5280, but UTF-8 names are issued; keep them, flagged.
                if !name.content.is_ascii() {
                    warnings.push(Problem::new(
                        ErrorKind::InvalidString,
                        "subject_alt_name: dNSName is not ASCII (read as UTF-8)",
                    ));
                }
                let text = String::from_utf8_lossy(name.content);
                match dns.get_mut(used) {
                    Some(s) => {
                        s.clear();
                        s.push_str(&text);
                    }
                    None => dns.push(text.into_owned()),
                }
                used += 1;
            }
            t if t == der::implicit(7) => ips.push(match name.content.len() {
                4 => {
                    let o: [u8; 4] = name.content.try_into().expect("length checked");
                    Ipv4Addr::from(o).to_string()
                }
                16 => {
                    let o: [u8; 16] = name.content.try_into().expect("length checked");
                    Ipv6Addr::from(o).to_string()
                }
                _ => {
                    return Err(DerError::Invalid(
                        ErrorKind::InvalidIpAddress,
                        "iPAddress is neither 4 nor 16 bytes",
                    ))
                }
            }),
            _ => {}
        }
    }
    dns.truncate(used);
    Ok((dns, ips))
}

fn key_id(value: &[u8], mut s: String) -> DerResult<String> {
    let id = der::parse_single(value, der::OCTET_STRING)?;
    s.clear();
    hex_into(id.content, &mut s);
    Ok(s)
}

/// RFC 5280 4.2.1.1: the keyIdentifier `[0]`; `None` when the extension names the issuer instead.
fn authority_key_id(value: &[u8], mut s: String) -> DerResult<Option<String>> {
    let seq = der::parse_single(value, der::SEQUENCE)?;
    let mut r = Reader::new(seq.content);
    let id = r.read_optional(der::implicit(0))?;
    r.read_optional(der::explicit(1))?;
    r.read_optional(der::implicit(2))?;
    r.finish()?;
    Ok(id.map(|id| {
        s.clear();
        hex_into(id.content, &mut s);
        s
    }))
}

/// RFC 6962 3.3: an OCTET STRING holding a TLS `SignedCertificateTimestampList`
/// (`opaque sct_list<1..2^16-1>` of `opaque SerializedSCT<1..2^16-1>`).
fn sct_count(value: &[u8]) -> DerResult<u32> {
    let inner = der::parse_single(value, der::OCTET_STRING)?;
    let invalid = DerError::Invalid(ErrorKind::InvalidSctList, "malformed SCT list");
    let (len, mut list) = split_u16(inner.content).ok_or(invalid.clone())?;
    if list.len() != len {
        return Err(invalid);
    }
    let mut count = 0u32;
    while !list.is_empty() {
        let (sct_len, rest) = split_u16(list).ok_or(invalid.clone())?;
        if sct_len == 0 || rest.len() < sct_len {
            return Err(invalid);
        }
        list = &rest[sct_len..];
        count += 1;
    }
    Ok(count)
}

fn split_u16(data: &[u8]) -> Option<(usize, &[u8])> {
    let (len, rest) = data.split_first_chunk::<2>()?;
    Some((usize::from(u16::from_be_bytes(*len)), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(c: &[u8]) -> Vec<u8> {
        let mut v = vec![der::INTEGER, c.len() as u8];
        v.extend_from_slice(c);
        v
    }

    fn serial(c: &[u8]) -> String {
        let enc = int(c);
        serial_hex(&der::read_tlv(&enc).unwrap().0, "stale".into()).unwrap()
    }

    #[test]
    fn serials_read_like_python() {
        assert_eq!(serial(&[0x00]), "0");
        assert_eq!(serial(&[0x01]), "1");
        assert_eq!(serial(&[0x00, 0x80]), "80");
        assert_eq!(serial(&[0x0a, 0xbc]), "abc");
        assert_eq!(serial(&[0xff]), "-1");
        assert_eq!(serial(&[0xff, 0x00]), "-100");
        assert_eq!(serial(&[0x80]), "-80");
    }

    #[test]
    fn sct_lists() {
        let inner = |list: &[u8]| {
            let mut v = vec![der::OCTET_STRING, list.len() as u8];
            v.extend_from_slice(list);
            v
        };
        assert_eq!(sct_count(&inner(&[0, 6, 0, 1, 0xaa, 0, 1, 0xbb])), Ok(2));
        assert!(sct_count(&inner(&[0, 5, 0, 1, 0xaa, 0, 1])).is_err());
        assert!(sct_count(&inner(&[0, 2, 0, 0])).is_err());
    }

    #[test]
    fn garbage_still_has_a_fingerprint() {
        let row = parse(b"not a certificate", true);
        assert_eq!(row.cert_sha256, Some(sha256(b"not a certificate")));
        assert!(row.spki_sha256.is_none());
        assert!(!row.errors.is_empty());
    }
}
