// SPDX-License-Identifier: Apache-2.0
//! The digests pins are made of. ring's SHA-256 (BoringSSL's assembly) picks SHA-NI, AVX2, AVX or
//! SSSE3 at run time; on CPUs without SHA-NI it runs at OpenSSL's speed where the pure-Rust `sha2`
//! falls back to scalar code at about half of that (docs/benchmarks.md). Hashing every certificate
//! is the floor of this crate's cost, so this choice is most of its speed.

use base64::Engine;
use ring::digest;

pub type Sha256 = [u8; 32];
pub type Sha1 = [u8; 20];

pub fn sha256(data: &[u8]) -> Sha256 {
    digest::digest(&digest::SHA256, data)
        .as_ref()
        .try_into()
        .expect("SHA-256 is 32 bytes")
}

/// SHA-1 over an SPKI, for the legacy `sha1/` pins OkHttp still accepts. Not for anything else.
pub fn sha1(data: &[u8]) -> Sha1 {
    digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, data)
        .as_ref()
        .try_into()
        .expect("SHA-1 is 20 bytes")
}

/// The pin text every client uses: standard base64 with padding. Written into `buf` (44 bytes
/// hold a SHA-256) so the hot path allocates nothing.
pub fn base64_into<'b>(digest: &[u8], buf: &'b mut [u8; 44]) -> &'b str {
    let n = base64::engine::general_purpose::STANDARD
        .encode_slice(digest, buf)
        .expect("44 bytes hold the base64 of 32");
    std::str::from_utf8(&buf[..n]).expect("base64 is ASCII")
}

pub fn base64(digest: &[u8]) -> String {
    base64_into(digest, &mut [0; 44]).to_owned()
}

/// Lowercase hex of a SHA-256, written into `buf`.
pub fn hex_into<'b>(digest: &Sha256, buf: &'b mut [u8; 64]) -> &'b str {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, &b) in digest.iter().enumerate() {
        buf[2 * i] = DIGITS[usize::from(b >> 4)];
        buf[2 * i + 1] = DIGITS[usize::from(b & 0xf)];
    }
    std::str::from_utf8(buf).expect("hex is ASCII")
}

pub fn hex(digest: &Sha256) -> String {
    hex_into(digest, &mut [0; 64]).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(base64(&sha1(b"abc")), "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=");
    }
}
