// SPDX-License-Identifier: Apache-2.0
//! The digests pins are made of. `sha2` picks SHA-NI (x86) or the ARMv8 SHA2 instructions at run
//! time, which is the whole of the speed of this crate on a fingerprint-bound workload.

use base64::Engine;
use sha2::Digest;

pub type Sha256 = [u8; 32];
pub type Sha1 = [u8; 20];

pub fn sha256(data: &[u8]) -> Sha256 {
    sha2::Sha256::digest(data).into()
}

/// SHA-1 over an SPKI, for the legacy `sha1/` pins OkHttp still accepts. Not for anything else.
pub fn sha1(data: &[u8]) -> Sha1 {
    sha1::Sha1::digest(data).into()
}

/// The pin text every client uses: standard base64 with padding.
pub fn base64(digest: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(digest)
}

pub fn hex(digest: &[u8]) -> String {
    let mut s = String::with_capacity(digest.len() * 2);
    crate::name::hex_into(digest, &mut s);
    s
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
