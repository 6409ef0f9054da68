// SPDX-License-Identifier: Apache-2.0
//! The DER reader and the value decoders on arbitrary bytes, below the certificate layer: every
//! element is walked recursively (constructed ones opened as such) and each primitive handed to the
//! decoder for its tag. Nothing may panic, and framing must be exact: a `Tlv` is its header plus
//! its content, both slices of the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pinscan_core::der::{self, read_header, read_tlv, DerError, Reader, Tlv};
use pinscan_core::{name, oid, spki, time};

/// Deep enough for any certificate (a name inside an extension inside the TBS is ~8), shallow
/// enough that a run of `30 80`-style nesting cannot exhaust the stack.
const MAX_DEPTH: usize = 32;

fn within(part: &[u8], whole: &[u8]) -> bool {
    let (p, w) = (part.as_ptr_range(), whole.as_ptr_range());
    w.start <= p.start && p.end <= w.end
}

fn check_tlv(tlv: &Tlv<'_>, input: &[u8]) {
    let h = read_header(tlv.full).expect("a read element has a readable header");
    assert_eq!(h.tag, tlv.tag);
    assert_eq!(h.header_len + h.content_len, tlv.full.len());
    assert!((2..=6).contains(&h.header_len));
    assert_eq!(tlv.content, &tlv.full[h.header_len..]);
    assert!(within(tlv.full, input));
    // Reading an element on its own gives it back unchanged.
    assert_eq!(der::parse_single(tlv.full, tlv.tag), Ok(*tlv));
}

fn decode(tlv: &Tlv<'_>) {
    match tlv.tag {
        der::INTEGER => {
            let bits = der::uint_bits(tlv);
            if let Ok(v) = der::small_uint(tlv) {
                // Two readings of one integer agree.
                assert_eq!(bits, Ok(64 - v.leading_zeros()));
            }
        }
        der::BOOLEAN => {
            let _ = der::boolean(tlv);
        }
        der::BIT_STRING => {
            if let Ok(octets) = der::bit_string_octets(tlv) {
                assert_eq!(octets.len() + 1, tlv.content.len());
            }
        }
        der::OID => {
            if let Ok(dotted) = oid::dotted(tlv.content) {
                assert!(dotted.bytes().all(|b| b == b'.' || b.is_ascii_digit()));
            }
        }
        der::UTC_TIME | der::GENERALIZED_TIME => {
            let _ = time::parse_time(tlv);
        }
        der::SEQUENCE => {
            // Any SEQUENCE might be a Name or an SPKI; both must fail cleanly when it is not.
            let mut warnings = Vec::new();
            let _ = name::rfc4514(tlv, &mut warnings);
            if let Ok(s) = spki::parse_spki(tlv) {
                assert_eq!(s.der, tlv.full);
                let _ = spki::key_info(&s);
            }
        }
        _ => {}
    }
}

fn walk(data: &[u8], input: &[u8], depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    // `Reader` and `read_tlv` are two ways to the same framing; walk both in step.
    let mut r = Reader::new(data);
    let mut rest = data;
    while !rest.is_empty() {
        let framed = read_tlv(rest);
        assert_eq!(r.read_any(), framed.clone().map(|(tlv, _)| tlv));
        match framed {
            Ok((tlv, after)) => {
                assert_eq!(tlv.full.as_ptr(), rest.as_ptr());
                assert_eq!(tlv.full.len() + after.len(), rest.len());
                check_tlv(&tlv, input);
                decode(&tlv);
                if tlv.tag & 0x20 != 0 {
                    walk(tlv.content, input, depth + 1);
                }
                rest = after;
            }
            Err(e) => {
                assert!(!e.to_string().is_empty());
                if let DerError::Truncated { needed, available } = e {
                    assert!(needed > available);
                }
                // A failed read consumes nothing.
                assert_eq!(r.peek_tag(), rest.first().copied());
                assert!(r.finish().is_err());
                return;
            }
        }
    }
    assert_eq!(r.finish(), Ok(()));
}

fuzz_target!(|data: &[u8]| {
    walk(data, data, 0);
});
