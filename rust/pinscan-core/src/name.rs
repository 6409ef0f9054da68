// SPDX-License-Identifier: Apache-2.0
//! X.501 Names as RFC 4514 strings, written the way pyca/cryptography's `rfc4514_string()` writes
//! them, so that a name from pinscan and one from Python compare equal; and attribute values as
//! text, decoded the same way.

use std::borrow::Cow;
use std::fmt;

use crate::der::{self, DerError, Reader, Tlv};
use crate::error::{ErrorKind, HasKind};
use crate::oid;

/// `2.5.4.3`, commonName, as OID content octets.
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];

/// A value that is not valid in its string type, read anyway: the name keeps it, with
/// replacements, and the row says so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameWarning {
    InvalidUtf8,
    NonAsciiInAsciiType,
    OddBmpLength,
    UnpairedSurrogate,
    UniversalStringLength,
    InvalidCodePoint,
}

impl fmt::Display for NameWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameWarning::InvalidUtf8 => "invalid UTF-8 in a name (replaced)",
            NameWarning::NonAsciiInAsciiType => {
                "non-ASCII byte in an ASCII string type (read as Latin-1)"
            }
            NameWarning::OddBmpLength => "BMPString of odd length in a name",
            NameWarning::UnpairedSurrogate => {
                "unpaired surrogate in a BMPString in a name (replaced)"
            }
            NameWarning::UniversalStringLength => {
                "UniversalString length not a multiple of 4 in a name"
            }
            NameWarning::InvalidCodePoint => {
                "invalid code point in a UniversalString in a name (replaced)"
            }
        })
    }
}

impl HasKind for NameWarning {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidString
    }
}

/// Renders a Name. A value that is not valid in its string type is replaced lossily and reported
/// in `warnings` rather than losing the whole name.
pub fn rfc4514(name: &Tlv<'_>, warnings: &mut Vec<NameWarning>) -> Result<String, DerError> {
    rfc4514_into(name, warnings, String::new())
}

/// `rfc4514`, written into `buf`'s storage (its contents are dropped) to save an allocation.
pub fn rfc4514_into(
    name: &Tlv<'_>,
    warnings: &mut Vec<NameWarning>,
    buf: String,
) -> Result<String, DerError> {
    // RFC 4514 2.1: the RDNs are written last to first. Collect them (cheap slices, on the stack
    // for any usual name), then write one string.
    const ON_STACK: usize = 16;
    let mut stack: [&[u8]; ON_STACK] = [&[]; ON_STACK];
    let mut heap: Vec<&[u8]> = Vec::new();
    let mut count = 0;
    let mut seq = der::sequence(name)?;
    while !seq.is_empty() {
        let rdn = seq.read(der::SET)?.content;
        if count < ON_STACK {
            stack[count] = rdn;
        } else {
            if heap.is_empty() {
                heap.extend_from_slice(&stack);
            }
            heap.push(rdn);
        }
        count += 1;
    }
    let rdns = if count <= ON_STACK {
        &stack[..count]
    } else {
        &heap[..]
    };
    // Written as bytes, every piece valid UTF-8, and checked once at the end: cheaper than a
    // `&str` per value.
    let mut out = buf.into_bytes();
    out.clear();
    out.reserve(name.content.len());
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let mut set = Reader::new(rdn);
        if set.is_empty() {
            return Err(DerError::Invalid(
                ErrorKind::InvalidName,
                "empty relative distinguished name",
            ));
        }
        let mut first = true;
        while !set.is_empty() {
            if !first {
                out.push(b'+');
            }
            first = false;
            let atv = set.read(der::SEQUENCE)?;
            let mut r = Reader::new(atv.content);
            let attr_type = r.read(der::OID)?;
            let value = r.read_any()?;
            r.finish()?;
            match oid::NAME_ATTRIBUTES.name(attr_type.content) {
                Some(short) => out.extend_from_slice(short.as_bytes()),
                None => out.extend_from_slice(oid::dotted(attr_type.content)?.as_bytes()),
            }
            out.push(b'=');
            escape_value(&value, &mut out, warnings);
        }
    }
    Ok(String::from_utf8(out).expect("a name is written from UTF-8 pieces"))
}

/// What a byte asks of `escape_into`: nothing, an escape (RFC 4514 2.4), or a look at the string
/// type (not ASCII).
const PLAIN: u8 = 0;
const SPECIAL: u8 = 1;
const NON_ASCII: u8 = 2;
const CLASS: [u8; 256] = {
    let mut class = [PLAIN; 256];
    let mut b = 0x80;
    while b < 256 {
        class[b] = NON_ASCII;
        b += 1;
    }
    let special = [b'\\', b'"', b'+', b',', b';', b'<', b'>', 0];
    let mut i = 0;
    while i < special.len() {
        class[special[i] as usize] = SPECIAL;
        i += 1;
    }
    class
};

/// The classes of every byte of `bytes`, ORed.
fn classify(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(PLAIN, |acc, &b| acc | CLASS[usize::from(b)])
}

/// Appends one attribute value. `out` receives only valid UTF-8.
fn escape_value(value: &Tlv<'_>, out: &mut Vec<u8>, warnings: &mut Vec<NameWarning>) {
    let class = classify(value.content);
    // Nearly every value is ASCII in a type whose ASCII is itself: copied with no decoding.
    if class & NON_ASCII == 0 && is_ascii_text(value.tag) {
        escape_into(value.content, class, out);
        return;
    }
    match attribute_text(value, warnings) {
        // The content itself, valid UTF-8: its classes are known.
        Some(Cow::Borrowed(text)) => escape_into(text.as_bytes(), class, out),
        Some(Cow::Owned(text)) => escape_str(&text, out),
        // As pyca writes x500UniqueIdentifier: the content octets, unused-bits octet included.
        None if value.tag == der::BIT_STRING => {
            out.push(b'#');
            hex_bytes(value.content, out);
        }
        // RFC 4514 2.4: a value with no string form is `#` and the hex of its encoding.
        None => {
            out.push(b'#');
            hex_bytes(value.full, out);
        }
    }
}

/// The string types whose ASCII bytes are their text.
fn is_ascii_text(tag: u8) -> bool {
    matches!(
        tag,
        der::UTF8_STRING
            | der::PRINTABLE_STRING
            | der::IA5_STRING
            | der::VISIBLE_STRING
            | der::NUMERIC_STRING
            | der::TELETEX_STRING
    )
}

/// The text of an attribute value of a string type, as `rfc4514` reads it before escaping: what
/// is not valid in its type is replaced and reported in `warnings`. `None` for a value of no
/// string type.
pub fn attribute_text<'a>(
    value: &Tlv<'a>,
    warnings: &mut Vec<NameWarning>,
) -> Option<Cow<'a, str>> {
    let content = value.content;
    Some(match value.tag {
        der::UTF8_STRING => match std::str::from_utf8(content) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => {
                warnings.push(NameWarning::InvalidUtf8);
                String::from_utf8_lossy(content)
            }
        },
        der::PRINTABLE_STRING
        | der::IA5_STRING
        | der::VISIBLE_STRING
        | der::NUMERIC_STRING
        | der::TELETEX_STRING => match std::str::from_utf8(content) {
            Ok(text) if text.is_ascii() => Cow::Borrowed(text),
            _ => {
                // T.61 is read as Latin-1, as OpenSSL and pyca do: the real T.61 repertoire is
                // never used. Non-ASCII in the ASCII types is an encoder bug, read the same way.
                if value.tag != der::TELETEX_STRING {
                    warnings.push(NameWarning::NonAsciiInAsciiType);
                }
                Cow::Owned(latin1(content))
            }
        },
        der::BMP_STRING => Cow::Owned(utf16be(content, warnings)),
        der::UNIVERSAL_STRING => Cow::Owned(utf32be(content, warnings)),
        _ => return None,
    })
}

/// The first commonName of a Name, as text (`attribute_text`); `None` when there is none before
/// the Name stops framing, or its value has no string type.
pub fn common_name(name: &Tlv<'_>) -> Option<String> {
    let mut rdns = der::sequence(name).ok()?;
    while !rdns.is_empty() {
        let set = rdns.read(der::SET).ok()?;
        let mut atvs = Reader::new(set.content);
        while !atvs.is_empty() {
            let atv = atvs.read(der::SEQUENCE).ok()?;
            let mut r = Reader::new(atv.content);
            if r.read(der::OID).ok()?.content == COMMON_NAME {
                // The warnings are the subject's to report; a common name is only a value.
                let text = attribute_text(&r.read_any().ok()?, &mut Vec::new())?;
                return Some(text.into_owned());
            }
        }
    }
    None
}

fn escape_str(val: &str, out: &mut Vec<u8>) {
    escape_into(val.as_bytes(), classify(val.as_bytes()), out);
}

/// Appends `val`, valid UTF-8 whose bytes' classes OR to `class`, escaped as RFC 4514 2.4 says.
/// Working on bytes gives what working on characters would: every byte RFC 4514 escapes is
/// ASCII, and the bytes of a multi-byte UTF-8 sequence never are.
fn escape_into(val: &[u8], class: u8, out: &mut Vec<u8>) {
    // Nearly every value needs no escaping: copy it whole.
    let plain = class & SPECIAL == 0
        && !matches!(val.first(), Some(b'#' | b' '))
        && val.last() != Some(&b' ');
    if plain {
        out.extend_from_slice(val);
        return;
    }
    let last = val.len().saturating_sub(1);
    for (i, &c) in val.iter().enumerate() {
        match c {
            b'\\' | b'"' | b'+' | b',' | b';' | b'<' | b'>' => out.extend_from_slice(&[b'\\', c]),
            0 => out.extend_from_slice(b"\\00"),
            b'#' if i == 0 => out.extend_from_slice(b"\\#"),
            b' ' if i == 0 || i == last => out.extend_from_slice(b"\\ "),
            _ => out.push(c),
        }
    }
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

fn utf16be(bytes: &[u8], warnings: &mut Vec<NameWarning>) -> String {
    if !bytes.len().is_multiple_of(2) {
        warnings.push(NameWarning::OddBmpLength);
    }
    let units = bytes
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]));
    char::decode_utf16(units)
        .map(|r| {
            r.unwrap_or_else(|_| {
                warnings.push(NameWarning::UnpairedSurrogate);
                char::REPLACEMENT_CHARACTER
            })
        })
        .collect()
}

fn utf32be(bytes: &[u8], warnings: &mut Vec<NameWarning>) -> String {
    if !bytes.len().is_multiple_of(4) {
        warnings.push(NameWarning::UniversalStringLength);
    }
    bytes
        .chunks_exact(4)
        .map(|c| {
            char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])).unwrap_or_else(|| {
                warnings.push(NameWarning::InvalidCodePoint);
                char::REPLACEMENT_CHARACTER
            })
        })
        .collect()
}

pub fn hex_into(bytes: &[u8], out: &mut String) {
    let mut v = std::mem::take(out).into_bytes();
    hex_bytes(bytes, &mut v);
    *out = String::from_utf8(v).expect("hex is ASCII");
}

fn hex_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let start = out.len();
    out.resize(start + 2 * bytes.len(), 0);
    for (pair, &b) in out[start..].chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0xf)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        assert!(content.len() < 0x80);
        v.push(content.len() as u8);
        v.extend_from_slice(content);
        v
    }

    fn atv(oid: &[u8], value: Vec<u8>) -> Vec<u8> {
        let mut inner = tlv(der::OID, oid);
        inner.extend(value);
        tlv(der::SEQUENCE, &inner)
    }

    const CN: &[u8] = &[0x55, 0x04, 0x03];
    const O: &[u8] = &[0x55, 0x04, 0x0a];
    const EMAIL: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01];

    fn render(rdns: &[Vec<Vec<u8>>]) -> (String, Vec<NameWarning>) {
        let mut seq = Vec::new();
        for rdn in rdns {
            seq.extend(tlv(der::SET, &rdn.concat()));
        }
        let name = tlv(der::SEQUENCE, &seq);
        let (t, _) = der::read_tlv(&name).unwrap();
        let mut warnings = Vec::new();
        (rfc4514(&t, &mut warnings).unwrap(), warnings)
    }

    #[test]
    fn order_multivalue_and_dotted_types() {
        let (s, w) = render(&[
            vec![atv(O, tlv(der::PRINTABLE_STRING, b"Org"))],
            vec![
                atv(CN, tlv(der::UTF8_STRING, b"a")),
                atv(EMAIL, tlv(der::IA5_STRING, b"x@y")),
            ],
        ]);
        assert_eq!(s, "CN=a+1.2.840.113549.1.9.1=x@y,O=Org");
        assert!(w.is_empty());
    }

    #[test]
    fn escaping_matches_rfc4514() {
        let (s, _) = render(&[vec![atv(CN, tlv(der::UTF8_STRING, b"#a,b+c\"d\\e;<>\0 "))]]);
        assert_eq!(s, "CN=\\#a\\,b\\+c\\\"d\\\\e\\;\\<\\>\\00\\ ");
        let (s, _) = render(&[vec![atv(CN, tlv(der::UTF8_STRING, b" x"))]]);
        assert_eq!(s, "CN=\\ x");
    }

    #[test]
    fn wide_strings_and_bad_bytes() {
        let (s, w) = render(&[vec![atv(
            CN,
            tlv(der::BMP_STRING, &[0x00, 0xe9, 0x4e, 0x2d]),
        )]]);
        assert_eq!(s, "CN=\u{e9}\u{4e2d}");
        assert!(w.is_empty());
        let (s, w) = render(&[vec![atv(CN, tlv(der::UTF8_STRING, &[0x61, 0xff]))]]);
        assert_eq!(s, "CN=a\u{fffd}");
        assert_eq!(w.len(), 1);
        let (s, _) = render(&[vec![atv(CN, tlv(der::OCTET_STRING, &[0xab]))]]);
        assert_eq!(s, "CN=#0401ab");
    }

    #[test]
    fn common_name_reads_as_the_name_does() {
        let name = |rdns: &[Vec<Vec<u8>>]| {
            let seq: Vec<u8> = rdns
                .iter()
                .flat_map(|r| tlv(der::SET, &r.concat()))
                .collect();
            tlv(der::SEQUENCE, &seq)
        };
        let cn = |value: Vec<u8>| {
            let n = name(&[
                vec![atv(O, tlv(der::UTF8_STRING, b"Org"))],
                vec![atv(CN, value)],
            ]);
            let (t, _) = der::read_tlv(&n).unwrap();
            (common_name(&t), rfc4514(&t, &mut Vec::new()).unwrap())
        };
        // A byte that is not ASCII in a PrintableString is Latin-1 in both, as pyca reads it.
        let (text, rendered) = cn(tlv(der::PRINTABLE_STRING, b"caf\xe9"));
        assert_eq!(text.as_deref(), Some("caf\u{e9}"));
        assert_eq!(rendered, "CN=caf\u{e9},O=Org");
        // A value that is no string has no text (the name shows its hex).
        let (text, rendered) = cn(tlv(der::OCTET_STRING, &[0xab]));
        assert_eq!(text, None);
        assert_eq!(rendered, "CN=#0401ab,O=Org");
        let (text, _) = cn(tlv(der::BMP_STRING, &[0x00, 0xe9]));
        assert_eq!(text.as_deref(), Some("\u{e9}"));
        assert_eq!(cn(tlv(der::UTF8_STRING, b"a,b")).0.as_deref(), Some("a,b"));
    }

    #[test]
    fn empty_name_and_empty_rdn() {
        assert_eq!(render(&[]).0, "");
        let name = tlv(der::SEQUENCE, &tlv(der::SET, &[]));
        let (t, _) = der::read_tlv(&name).unwrap();
        assert!(rfc4514(&t, &mut Vec::new()).is_err());
    }
}
