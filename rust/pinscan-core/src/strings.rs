// SPDX-License-Identifier: Apache-2.0
//! Pin strings in arbitrary bytes: what apps ship in their code (a DEX's string table, a native
//! library, a JavaScript bundle, a Mach-O executable).
//!
//! A pin in code is `sha256/<base64>` (OkHttp, TrustKit reports, most hand-written checks) or
//! `sha1/<base64>`, in ASCII or UTF-16LE (.NET string heaps); with `bare`, also a lone padded
//! base64 string of exactly a SHA-256's length (TrustKit and Alamofire configurations in code),
//! which is only a candidate: any 32 random bytes look the same. A match must decode to the
//! digest's exact length and stand alone (no base64 character right before or after it), so a
//! longer base64 blob never yields a pin.

use base64::Engine;

/// The digest a pin string names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Sha256,
    Sha1,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha1 => "sha1",
        }
    }

    fn digest_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 32,
            Algorithm::Sha1 => 20,
        }
    }
}

/// One pin string: where it starts, its digest, and whether it carried its `sha256/` prefix
/// (false: a bare candidate).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinString {
    pub offset: usize,
    pub algorithm: Algorithm,
    pub digest: Vec<u8>,
    pub prefixed: bool,
}

const PREFIXES: [(&[u8], Algorithm); 2] =
    [(b"sha256/", Algorithm::Sha256), (b"sha1/", Algorithm::Sha1)];

fn is_base64(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'+' || byte == b'/'
}

/// Every pin string in `data`, in order of offset.
pub fn pin_strings(data: &[u8], bare: bool) -> Vec<PinString> {
    let mut found = Vec::new();
    let mut i = 0;
    // Where the current run of base64 characters began (for bare candidates).
    let mut run_start = 0;
    while i < data.len() {
        let byte = data[i];
        if byte == b's' {
            if let Some((pin, end)) = prefixed(data, i, 1) {
                found.push(pin);
                i = end;
                run_start = end;
                continue;
            }
            if data.get(i + 1) == Some(&0) {
                if let Some((pin, end)) = prefixed(data, i, 2) {
                    found.push(pin);
                    i = end;
                    run_start = end;
                    continue;
                }
            }
        }
        if bare && byte == b'=' && i - run_start == 43 {
            let alone = run_start == 0 || !is_base64(data[run_start - 1]);
            let after = data.get(i + 1).copied();
            if alone && !after.is_some_and(|b| is_base64(b) || b == b'=') {
                if let Some(digest) = decode(&data[run_start..=i], Algorithm::Sha256) {
                    found.push(PinString {
                        offset: run_start,
                        algorithm: Algorithm::Sha256,
                        digest,
                        prefixed: false,
                    });
                }
            }
        }
        if !is_base64(byte) {
            run_start = i + 1;
        }
        i += 1;
    }
    found
}

/// A `sha256/`/`sha1/` pin starting at `at`, its characters `stride` bytes apart (1: ASCII, 2:
/// UTF-16LE), with the offset just past it.
fn prefixed(data: &[u8], at: usize, stride: usize) -> Option<(PinString, usize)> {
    let char_at = |k: usize| -> Option<u8> {
        let index = at + k * stride;
        let byte = *data.get(index)?;
        if stride == 2 && *data.get(index + 1)? != 0 {
            return None;
        }
        Some(byte)
    };
    // A pin glued to a longer word ("xsha256/...") is still a pin: code concatenates strings.
    for (prefix, algorithm) in PREFIXES {
        if !prefix
            .iter()
            .enumerate()
            .all(|(k, &c)| char_at(k) == Some(c))
        {
            continue;
        }
        let start = prefix.len();
        let mut text = Vec::with_capacity(44);
        let mut k = start;
        while let Some(c) = char_at(k).filter(|&c| is_base64(c)) {
            text.push(c);
            k += 1;
            if text.len() > 44 {
                return None;
            }
        }
        while let Some(c) = char_at(k).filter(|&c| c == b'=') {
            text.push(c);
            k += 1;
        }
        let digest = decode(&text, algorithm)?;
        let pin = PinString {
            offset: at,
            algorithm,
            digest,
            prefixed: true,
        };
        return Some((pin, at + k * stride));
    }
    None
}

/// The digest of a base64 pin, padded or not, when it has exactly the algorithm's length.
fn decode(text: &[u8], algorithm: Algorithm) -> Option<Vec<u8>> {
    let trimmed = text.strip_suffix(b"=").unwrap_or(text);
    let engine = &base64::engine::general_purpose::STANDARD_NO_PAD;
    let digest = engine.decode(trimmed).ok()?;
    (digest.len() == algorithm.digest_len()).then_some(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIN: &str = "K7rZOrXHknnsEhUH8nLL4MZkejquUuIvOIr6tCa0rbo=";

    fn digest() -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(PIN)
            .unwrap()
    }

    #[test]
    fn finds_prefixed_pins_in_ascii_and_utf16() {
        let mut data = b"\x00\x01const-string sha256/".to_vec();
        data.extend_from_slice(PIN.as_bytes());
        data.extend_from_slice(b"\"; x = \"sha1/");
        data.extend_from_slice(b"ZmFrZWZha2VmYWtlZmFrZWZha2U=\" ");
        for c in format!("sha256/{PIN}").bytes() {
            data.extend_from_slice(&[c, 0]);
        }
        let found = pin_strings(&data, false);
        assert_eq!(found.len(), 3);
        assert_eq!(found[0].offset, 15);
        assert_eq!(
            (found[0].algorithm, &found[0].digest, found[0].prefixed),
            (Algorithm::Sha256, &digest(), true)
        );
        assert_eq!(found[1].algorithm, Algorithm::Sha1);
        assert_eq!(found[1].digest, b"fakefakefakefakefake");
        assert_eq!(found[2].digest, digest());
    }

    #[test]
    fn unpadded_pins_count_and_wrong_lengths_do_not() {
        let unpadded = format!("sha256/{}", &PIN[..43]);
        assert_eq!(pin_strings(unpadded.as_bytes(), false)[0].digest, digest());
        let short = format!("sha256/{}=", &PIN[..40]);
        assert!(pin_strings(short.as_bytes(), false).is_empty());
        let long = format!("sha256/{}AAAA", &PIN[..43]);
        assert!(pin_strings(long.as_bytes(), false).is_empty());
    }

    #[test]
    fn bare_candidates_only_when_asked_and_standing_alone() {
        let quoted = format!("\"{PIN}\"");
        assert!(pin_strings(quoted.as_bytes(), false).is_empty());
        let found = pin_strings(quoted.as_bytes(), true);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].offset, found[0].prefixed), (1, false));
        let glued = format!("A{PIN}");
        assert!(pin_strings(glued.as_bytes(), true).is_empty());
        let prefixed = format!("sha256/{PIN}");
        let found = pin_strings(prefixed.as_bytes(), true);
        assert_eq!(found.len(), 1);
        assert!(found[0].prefixed);
    }

    #[test]
    fn hostile_bytes_end_cleanly() {
        for data in [&b"sha256/"[..], b"s", b"s\x00h\x00a\x00", b"sha1/====", b""] {
            assert!(pin_strings(data, true).is_empty());
        }
        let noise: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        assert!(pin_strings(&noise, true).is_empty());
    }
}
