// SPDX-License-Identifier: Apache-2.0
//! X.501 Names as RFC 4514 strings, written the way pyca/cryptography's `rfc4514_string()` writes
//! them, so that a name from pinscan and one from Python compare equal.

use crate::der::{self, DerError, Reader, Tlv};
use crate::oid;

/// Renders a Name. A value that is not valid in its string type is replaced lossily and reported
/// in `warnings` rather than losing the whole name.
pub fn rfc4514(name: &Tlv<'_>, warnings: &mut Vec<&'static str>) -> Result<String, DerError> {
    // RFC 4514 2.1: the RDNs are written last to first. Collect them (cheap slices), then write
    // one string.
    let mut rdns: Vec<&[u8]> = Vec::new();
    let mut seq = der::sequence(name)?;
    while !seq.is_empty() {
        rdns.push(seq.read(der::SET)?.content);
    }
    let mut out = String::with_capacity(name.content.len());
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let mut set = Reader::new(rdn);
        if set.is_empty() {
            return Err(DerError::Invalid("empty relative distinguished name"));
        }
        let mut first = true;
        while !set.is_empty() {
            if !first {
                out.push('+');
            }
            first = false;
            let atv = set.read(der::SEQUENCE)?;
            let mut r = Reader::new(atv.content);
            let attr_type = r.read(der::OID)?;
            let value = r.read_any()?;
            r.finish()?;
            match oid::NAME_ATTRIBUTES.name(attr_type.content) {
                Some(short) => out.push_str(short),
                None => out.push_str(&oid::dotted(attr_type.content)?),
            }
            out.push('=');
            escape_value(&value, &mut out, warnings)?;
        }
    }
    Ok(out)
}

fn escape_value(
    value: &Tlv<'_>,
    out: &mut String,
    warnings: &mut Vec<&'static str>,
) -> Result<(), DerError> {
    match value.tag {
        der::UTF8_STRING => match std::str::from_utf8(value.content) {
            Ok(s) => escape_into(s, out),
            Err(_) => {
                warnings.push("invalid UTF-8 in a name (replaced)");
                escape_into(&String::from_utf8_lossy(value.content), out);
            }
        },
        der::PRINTABLE_STRING
        | der::IA5_STRING
        | der::VISIBLE_STRING
        | der::NUMERIC_STRING
        | der::TELETEX_STRING => match std::str::from_utf8(value.content) {
            Ok(s) if s.is_ascii() => escape_into(s, out),
            // T.61 is read as Latin-1, as OpenSSL and pyca do: the real T.61 repertoire is never
            // used. Non-ASCII in the ASCII types is an encoder bug, read the same way.
            _ => {
                if value.tag != der::TELETEX_STRING {
                    warnings.push("non-ASCII byte in an ASCII string type (read as Latin-1)");
                }
                escape_into(&latin1(value.content), out);
            }
        },
        der::BMP_STRING => escape_into(&utf16be(value.content, warnings), out),
        der::UNIVERSAL_STRING => escape_into(&utf32be(value.content, warnings), out),
        // As pyca writes x500UniqueIdentifier: the content octets, unused-bits octet included.
        der::BIT_STRING => {
            out.push('#');
            hex_into(value.content, out);
        }
        // RFC 4514 2.4: a value with no string form is `#` and the hex of its encoding.
        _ => {
            out.push('#');
            hex_into(value.full, out);
        }
    }
    Ok(())
}

fn escape_into(val: &str, out: &mut String) {
    // Nearly every value needs no escaping: copy it whole.
    let plain = !val.starts_with(['#', ' '])
        && !val.ends_with(' ')
        && !val
            .bytes()
            .any(|b| matches!(b, b'\\' | b'"' | b'+' | b',' | b';' | b'<' | b'>' | 0));
    if plain {
        out.push_str(val);
        return;
    }
    let last = val.len().saturating_sub(1);
    for (i, c) in val.char_indices() {
        match c {
            '\\' | '"' | '+' | ',' | ';' | '<' | '>' => {
                out.push('\\');
                out.push(c);
            }
            '\0' => out.push_str("\\00"),
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            _ => out.push(c),
        }
    }
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

fn utf16be(bytes: &[u8], warnings: &mut Vec<&'static str>) -> String {
    if !bytes.len().is_multiple_of(2) {
        warnings.push("BMPString of odd length in a name");
    }
    let units = bytes
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]));
    char::decode_utf16(units)
        .map(|r| {
            r.unwrap_or_else(|_| {
                warnings.push("unpaired surrogate in a BMPString in a name (replaced)");
                char::REPLACEMENT_CHARACTER
            })
        })
        .collect()
}

fn utf32be(bytes: &[u8], warnings: &mut Vec<&'static str>) -> String {
    if !bytes.len().is_multiple_of(4) {
        warnings.push("UniversalString length not a multiple of 4 in a name");
    }
    bytes
        .chunks_exact(4)
        .map(|c| {
            char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])).unwrap_or_else(|| {
                warnings.push("invalid code point in a UniversalString in a name (replaced)");
                char::REPLACEMENT_CHARACTER
            })
        })
        .collect()
}

pub fn hex_into(bytes: &[u8], out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
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

    fn render(rdns: &[Vec<Vec<u8>>]) -> (String, Vec<&'static str>) {
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
    fn empty_name_and_empty_rdn() {
        assert_eq!(render(&[]).0, "");
        let name = tlv(der::SEQUENCE, &tlv(der::SET, &[]));
        let (t, _) = der::read_tlv(&name).unwrap();
        assert!(rfc4514(&t, &mut Vec::new()).is_err());
    }
}
