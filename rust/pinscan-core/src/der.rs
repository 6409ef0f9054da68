// SPDX-License-Identifier: Apache-2.0
//! A small DER reader: TLV framing over borrowed slices, errors as values.
//!
//! It is deliberately forgiving where forgiveness loses nothing (non-minimal length encodings are
//! read as written) and strict where guessing would (indefinite lengths, high tag numbers): every
//! slice it returns is exactly the bytes in the input, so hashing a slice hashes what was served.

use std::fmt;

use crate::error::{ErrorKind, HasKind};

pub const BOOLEAN: u8 = 0x01;
pub const INTEGER: u8 = 0x02;
pub const BIT_STRING: u8 = 0x03;
pub const OCTET_STRING: u8 = 0x04;
pub const NULL: u8 = 0x05;
pub const OID: u8 = 0x06;
pub const UTF8_STRING: u8 = 0x0c;
pub const NUMERIC_STRING: u8 = 0x12;
pub const PRINTABLE_STRING: u8 = 0x13;
pub const TELETEX_STRING: u8 = 0x14;
pub const IA5_STRING: u8 = 0x16;
pub const UTC_TIME: u8 = 0x17;
pub const GENERALIZED_TIME: u8 = 0x18;
pub const VISIBLE_STRING: u8 = 0x1a;
pub const UNIVERSAL_STRING: u8 = 0x1c;
pub const BMP_STRING: u8 = 0x1e;
pub const SEQUENCE: u8 = 0x30;
pub const SET: u8 = 0x31;

/// Context-specific tag `[n]`, constructed.
pub const fn explicit(n: u8) -> u8 {
    0xa0 | n
}

/// Context-specific tag `[n]`, primitive.
pub const fn implicit(n: u8) -> u8 {
    0x80 | n
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DerError {
    /// The input ends before the element it announces.
    Truncated {
        needed: usize,
        available: usize,
    },
    Empty,
    IndefiniteLength,
    /// A length of more than four octets: no certificate is 4 GiB.
    LengthTooLong,
    HighTagNumber,
    UnexpectedTag {
        expected: u8,
        found: u8,
    },
    TrailingData(usize),
    /// A value its type does not allow (an empty INTEGER, a time without seconds, ...): which kind
    /// of value, and what is wrong with it. The decoders above DER (times, names, keys,
    /// extensions) report through this too, so that one `?` carries any of them.
    Invalid(ErrorKind, &'static str),
}

impl fmt::Display for DerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DerError::Truncated { needed, available } => {
                write!(f, "truncated: needs {needed} bytes, {available} present")
            }
            DerError::Empty => f.write_str("empty input"),
            DerError::IndefiniteLength => f.write_str("indefinite length (BER, not DER)"),
            DerError::LengthTooLong => f.write_str("length field longer than 4 bytes"),
            DerError::HighTagNumber => f.write_str("high tag number form is not used in X.509"),
            DerError::UnexpectedTag { expected, found } => {
                write!(f, "expected tag 0x{expected:02x}, found 0x{found:02x}")
            }
            DerError::TrailingData(n) => write!(f, "{n} unexpected trailing bytes"),
            DerError::Invalid(_, what) => f.write_str(what),
        }
    }
}

impl HasKind for DerError {
    fn kind(&self) -> ErrorKind {
        match self {
            DerError::Truncated { .. } => ErrorKind::Truncated,
            DerError::Empty => ErrorKind::Empty,
            DerError::IndefiniteLength => ErrorKind::IndefiniteLength,
            DerError::LengthTooLong => ErrorKind::LengthTooLong,
            DerError::HighTagNumber => ErrorKind::HighTagNumber,
            DerError::UnexpectedTag { .. } => ErrorKind::UnexpectedTag,
            DerError::TrailingData(_) => ErrorKind::TrailingData,
            DerError::Invalid(kind, _) => *kind,
        }
    }
}

pub type DerResult<T> = Result<T, DerError>;

/// One element: its tag, the whole encoding (`full`) and the value octets (`content`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub full: &'a [u8],
    pub content: &'a [u8],
}

/// Tag, header length and announced content length, without requiring the content to be present.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub tag: u8,
    pub header_len: usize,
    pub content_len: usize,
}

pub fn read_header(data: &[u8]) -> DerResult<Header> {
    let (&tag, rest) = data.split_first().ok_or(DerError::Empty)?;
    if tag & 0x1f == 0x1f {
        return Err(DerError::HighTagNumber);
    }
    let (&first, rest) = rest.split_first().ok_or(DerError::Truncated {
        needed: 2,
        available: data.len(),
    })?;
    if first < 0x80 {
        return Ok(Header {
            tag,
            header_len: 2,
            content_len: usize::from(first),
        });
    }
    let octets = usize::from(first & 0x7f);
    if octets == 0 {
        return Err(DerError::IndefiniteLength);
    }
    if octets > 4 {
        return Err(DerError::LengthTooLong);
    }
    let bytes = rest.get(..octets).ok_or(DerError::Truncated {
        needed: 2 + octets,
        available: data.len(),
    })?;
    let content_len = bytes
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    Ok(Header {
        tag,
        header_len: 2 + octets,
        content_len,
    })
}

/// Reads the first element of `data`; the rest is returned untouched.
pub fn read_tlv(data: &[u8]) -> DerResult<(Tlv<'_>, &[u8])> {
    let h = read_header(data)?;
    let end = h
        .header_len
        .checked_add(h.content_len)
        .ok_or(DerError::LengthTooLong)?;
    if end > data.len() {
        return Err(DerError::Truncated {
            needed: end,
            available: data.len(),
        });
    }
    let tlv = Tlv {
        tag: h.tag,
        full: &data[..end],
        content: &data[h.header_len..end],
    };
    Ok((tlv, &data[end..]))
}

/// Parses `data` as exactly one element of the given tag.
pub fn parse_single(data: &[u8], tag: u8) -> DerResult<Tlv<'_>> {
    let mut r = Reader::new(data);
    let tlv = r.read(tag)?;
    r.finish()?;
    Ok(tlv)
}

/// Walks the elements of a constructed value in order.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { rest: data }
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    pub fn read_any(&mut self) -> DerResult<Tlv<'a>> {
        let (tlv, rest) = read_tlv(self.rest)?;
        self.rest = rest;
        Ok(tlv)
    }

    pub fn read(&mut self, tag: u8) -> DerResult<Tlv<'a>> {
        match self.peek_tag() {
            Some(found) if found != tag => Err(DerError::UnexpectedTag {
                expected: tag,
                found,
            }),
            None => Err(DerError::Truncated {
                needed: 1,
                available: 0,
            }),
            Some(_) => self.read_any(),
        }
    }

    /// Reads the next element only if it carries `tag`.
    pub fn read_optional(&mut self, tag: u8) -> DerResult<Option<Tlv<'a>>> {
        if self.peek_tag() == Some(tag) {
            self.read_any().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Fails if anything is left: DER has no room for stray bytes.
    pub fn finish(&self) -> DerResult<()> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DerError::TrailingData(self.rest.len()))
        }
    }
}

/// The content of a SEQUENCE as a reader.
pub fn sequence<'a>(tlv: &Tlv<'a>) -> DerResult<Reader<'a>> {
    expect_tag(tlv, SEQUENCE)?;
    Ok(Reader::new(tlv.content))
}

pub fn expect_tag(tlv: &Tlv<'_>, tag: u8) -> DerResult<()> {
    if tlv.tag == tag {
        Ok(())
    } else {
        Err(DerError::UnexpectedTag {
            expected: tag,
            found: tlv.tag,
        })
    }
}

/// The octets of a BIT STRING that has no unused bits (keys, signatures).
pub fn bit_string_octets<'a>(tlv: &Tlv<'a>) -> DerResult<&'a [u8]> {
    expect_tag(tlv, BIT_STRING)?;
    match tlv.content.split_first() {
        Some((0, octets)) => Ok(octets),
        Some(_) => Err(DerError::Invalid(
            ErrorKind::InvalidBitString,
            "bit string has unused bits",
        )),
        None => Err(DerError::Invalid(
            ErrorKind::InvalidBitString,
            "empty bit string",
        )),
    }
}

pub fn boolean(tlv: &Tlv<'_>) -> DerResult<bool> {
    expect_tag(tlv, BOOLEAN)?;
    match tlv.content {
        [0] => Ok(false),
        // DER says 0xff; BER's "any non-zero" is common enough in the wild to accept.
        [_] => Ok(true),
        _ => Err(DerError::Invalid(
            ErrorKind::InvalidBoolean,
            "boolean is not one byte",
        )),
    }
}

/// An INTEGER's content as a non-negative value that fits in `u64`.
pub fn small_uint(tlv: &Tlv<'_>) -> DerResult<u64> {
    expect_tag(tlv, INTEGER)?;
    let c = tlv.content;
    match c.first() {
        None => Err(DerError::Invalid(
            ErrorKind::InvalidInteger,
            "empty integer",
        )),
        Some(b) if b & 0x80 != 0 => Err(DerError::Invalid(
            ErrorKind::InvalidInteger,
            "negative integer",
        )),
        Some(_) => {
            let digits = strip_leading_zeros(c);
            if digits.len() > 8 {
                return Err(DerError::Invalid(
                    ErrorKind::InvalidInteger,
                    "integer too large",
                ));
            }
            Ok(digits
                .iter()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
        }
    }
}

/// Bit length of an INTEGER's content read as unsigned: RSA moduli and DSA primes are positive,
/// and old encoders that dropped the leading zero octet meant the unsigned value.
pub fn uint_bits(tlv: &Tlv<'_>) -> DerResult<u32> {
    expect_tag(tlv, INTEGER)?;
    if tlv.content.is_empty() {
        return Err(DerError::Invalid(
            ErrorKind::InvalidInteger,
            "empty integer",
        ));
    }
    let digits = strip_leading_zeros(tlv.content);
    let Some(&top) = digits.first() else {
        return Ok(0);
    };
    let len = u32::try_from(digits.len()).map_err(|_| DerError::LengthTooLong)?;
    Ok((len - 1) * 8 + (8 - top.leading_zeros()))
}

pub fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_lengths() {
        let (tlv, rest) = read_tlv(&[0x04, 0x02, 0xaa, 0xbb, 0xff]).unwrap();
        assert_eq!(tlv.content, &[0xaa, 0xbb]);
        assert_eq!(rest, &[0xff]);
        let mut long = vec![0x04, 0x81, 0x80];
        long.extend(std::iter::repeat_n(7u8, 0x80));
        let (tlv, rest) = read_tlv(&long).unwrap();
        assert_eq!(tlv.content.len(), 0x80);
        assert_eq!(tlv.full.len(), 0x83);
        assert!(rest.is_empty());
    }

    #[test]
    fn framing_errors_are_values() {
        assert_eq!(read_tlv(&[]), Err(DerError::Empty));
        assert_eq!(
            read_tlv(&[0x30]).unwrap_err(),
            DerError::Truncated {
                needed: 2,
                available: 1
            }
        );
        assert_eq!(
            read_tlv(&[0x30, 0x80, 0, 0]),
            Err(DerError::IndefiniteLength)
        );
        assert_eq!(
            read_tlv(&[0x30, 0x85, 1, 1, 1, 1, 1]),
            Err(DerError::LengthTooLong)
        );
        assert_eq!(read_tlv(&[0x1f, 0x01, 0x00]), Err(DerError::HighTagNumber));
        assert_eq!(
            read_tlv(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]),
            Err(DerError::Truncated {
                needed: 0xffff_ffff + 6,
                available: 6
            })
        );
    }

    #[test]
    fn reader_expects_tags_and_rejects_trailing_bytes() {
        let mut r = Reader::new(&[0x02, 0x01, 0x05, 0x05, 0x00]);
        assert_eq!(
            r.read(SEQUENCE),
            Err(DerError::UnexpectedTag {
                expected: SEQUENCE,
                found: INTEGER
            })
        );
        assert_eq!(small_uint(&r.read(INTEGER).unwrap()), Ok(5));
        assert_eq!(r.finish(), Err(DerError::TrailingData(2)));
        assert!(r.read_optional(BOOLEAN).unwrap().is_none());
        r.read(NULL).unwrap();
        r.finish().unwrap();
    }

    #[test]
    fn integer_bit_lengths() {
        let t = |c: &'static [u8]| Tlv {
            tag: INTEGER,
            full: c,
            content: c,
        };
        assert_eq!(uint_bits(&t(&[0x00, 0x80])), Ok(8));
        assert_eq!(uint_bits(&t(&[0x01, 0x00])), Ok(9));
        assert_eq!(uint_bits(&t(&[0x00])), Ok(0));
        assert_eq!(uint_bits(&t(&[0x80])), Ok(8));
        assert!(uint_bits(&t(&[])).is_err());
        assert!(small_uint(&t(&[0x01, 0, 0, 0, 0, 0, 0, 0, 0])).is_err());
    }
}
