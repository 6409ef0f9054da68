// SPDX-License-Identifier: Apache-2.0
//! The digests pins are made of. Hashing every certificate and its key is most of this crate's
//! cost, so this choice is most of its speed.
//!
//! One message: ring's SHA-256 (BoringSSL's assembly) picks SHA-NI, AVX2, AVX or SSSE3 at run
//! time; on CPUs without SHA-NI it runs at OpenSSL's speed, where the pure-Rust `sha2` falls back
//! to scalar code at about half of that (docs/benchmarks.md). Many messages (`sha256_many`, what
//! the batch path uses): on x86-64 without SHA-NI, 16 (AVX-512) or 8 (AVX2) of them are hashed at
//! once, one per vector lane, several times ring's throughput; elsewhere, ring one at a time.

use base64::Engine;
use ring::digest;

#[cfg(target_arch = "x86_64")]
mod simd;

pub type Sha256 = [u8; 32];
pub type Sha1 = [u8; 20];

/// A 64-byte SHA-256 message block.
type Block = [u8; 64];

/// FIPS 180-4 4.2.2.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// FIPS 180-4 5.3.3: the chaining value every message starts from.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// `out[i] = sha256(msgs[i])` for every `i`, many messages at once where the CPU allows it.
pub fn sha256_many(msgs: &[&[u8]], out: &mut [Sha256]) {
    assert_eq!(msgs.len(), out.len(), "one digest per message");
    #[cfg(target_arch = "x86_64")]
    if let Some(kernel) = simd::Kernel::detect() {
        // Too few messages to fill the lanes: one at a time is faster.
        if msgs.len() >= kernel.lanes() {
            multi_buffer(kernel, msgs, out);
            return;
        }
    }
    for (m, o) in msgs.iter().zip(out) {
        *o = sha256(m);
    }
}

/// FIPS 180-4 5.1.1: the end of `data` past its whole blocks, then a 1 bit, zeros and the length
/// in bits as 64 bits, in one block or two; and how many of the two it fills.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn padded_tail(data: &[u8]) -> ([Block; 2], usize) {
    let rest = data.as_chunks::<64>().1;
    let blocks = if rest.len() < 56 { 1 } else { 2 };
    let mut tail = [[0; 64]; 2];
    let flat = tail.as_flattened_mut();
    flat[..rest.len()].copy_from_slice(rest);
    flat[rest.len()] = 0x80;
    let bits = (data.len() as u64).wrapping_mul(8);
    flat[64 * blocks - 8..64 * blocks].copy_from_slice(&bits.to_be_bytes());
    (tail, blocks)
}

/// The blocks one lane has still to compress: the message's whole blocks, read in place, then
/// its padded tail.
#[cfg(target_arch = "x86_64")]
struct Lane<'a> {
    job: Option<usize>,
    whole: &'a [Block],
    tail: &'a [Block],
}

#[cfg(target_arch = "x86_64")]
impl<'a> Lane<'a> {
    const IDLE: Lane<'static> = Lane {
        job: None,
        whole: &[],
        tail: &[],
    };

    fn pop(&mut self) -> Option<&'a Block> {
        if let Some((first, rest)) = self.whole.split_first() {
            self.whole = rest;
            Some(first)
        } else if let Some((first, rest)) = self.tail.split_first() {
            self.tail = rest;
            Some(first)
        } else {
            None
        }
    }
}

/// Runs every message through `kernel`'s lanes: each lane takes the next message as soon as its
/// last one is done, so the lanes stay full until the last few messages. An idle lane compresses
/// a block of zeros, and its result is dropped.
#[cfg(target_arch = "x86_64")]
fn multi_buffer(kernel: simd::Kernel, msgs: &[&[u8]], out: &mut [Sha256]) {
    const IDLE: Block = [0; 64];
    // Every message's padded tail, made up front so that no lane writes to a buffer while the
    // others' blocks are borrowed.
    let tails: Vec<([Block; 2], usize)> = msgs.iter().map(|m| padded_tail(m)).collect();
    let mut jobs = msgs.iter().zip(&tails).enumerate();
    let mut state = [[0u32; 16]; 8];
    let mut lanes: [Lane<'_>; 16] = std::array::from_fn(|_| Lane::IDLE);
    let mut blocks: [&Block; 16] = [&IDLE; 16];
    let mut busy = kernel.lanes();
    for (i, (lane, block)) in lanes.iter_mut().zip(&mut blocks).enumerate() {
        if i >= kernel.lanes() {
            break;
        }
        // A lane that cannot be filled at the start stays idle to the end.
        let Some((job, (data, (tail, n)))) = jobs.next() else {
            busy -= 1;
            continue;
        };
        for (s, iv) in state.iter_mut().zip(IV) {
            s[i] = iv;
        }
        *lane = Lane {
            job: Some(job),
            whole: data.as_chunks::<64>().0,
            tail: &tail[..*n],
        };
        *block = lane.pop().expect("every message has a block");
    }
    while busy > 0 {
        kernel.compress(&mut state, &blocks);
        for (i, (lane, block)) in lanes.iter_mut().zip(&mut blocks).enumerate() {
            if let Some(next) = lane.pop() {
                *block = next;
                continue;
            }
            let Some(done) = lane.job.take() else {
                continue;
            };
            for (word, s) in out[done].chunks_exact_mut(4).zip(&state) {
                word.copy_from_slice(&s[i].to_be_bytes());
            }
            match jobs.next() {
                Some((job, (data, (tail, n)))) => {
                    for (s, iv) in state.iter_mut().zip(IV) {
                        s[i] = iv;
                    }
                    *lane = Lane {
                        job: Some(job),
                        whole: data.as_chunks::<64>().0,
                        tail: &tail[..*n],
                    };
                    *block = lane.pop().expect("every message has a block");
                }
                None => {
                    *block = &IDLE;
                    busy -= 1;
                }
            }
        }
    }
}

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

    /// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
    fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn check_many(msgs: &[Vec<u8>]) {
        let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
        let mut out = vec![[0; 32]; refs.len()];
        sha256_many(&refs, &mut out);
        for (m, d) in refs.iter().zip(&out) {
            assert_eq!(*d, sha256(m), "length {}", m.len());
        }
        #[cfg(target_arch = "x86_64")]
        for kernel in simd::Kernel::available() {
            let mut out = vec![[0; 32]; refs.len()];
            multi_buffer(kernel, &refs, &mut out);
            for (m, d) in refs.iter().zip(&out) {
                assert_eq!(*d, sha256(m), "{kernel:?}, length {}", m.len());
            }
        }
    }

    #[test]
    fn many_every_length_to_2100() {
        // Every padding case (0..64 bytes past a block, the 55/56 boundary) many times over, in
        // batches of one length and of all lengths mixed, so lanes finish at different blocks
        // and are refilled mid-batch.
        let all: Vec<Vec<u8>> = (0..=2100).map(|n| noise(n as u64, n)).collect();
        check_many(&all);
        let reversed: Vec<Vec<u8>> = all.iter().rev().cloned().collect();
        check_many(&reversed);
        for n in (0..=2100).step_by(97).chain(50..70) {
            check_many(&vec![noise(7 * n as u64, n); 17]);
        }
    }

    #[test]
    fn many_random_batches() {
        for seed in 0..200u64 {
            let r = noise(seed, 64);
            let count = usize::from(r[0]) % 70;
            let msgs: Vec<Vec<u8>> = (0..count)
                .map(|i| {
                    let len = (usize::from(r[1 + i % 60]) * 37 + i * 11) % 5000;
                    noise(seed * 1000 + i as u64, len)
                })
                .collect();
            check_many(&msgs);
        }
        // The same bytes in every lane, and single-byte differences between lanes.
        let base = noise(99, 1000);
        let msgs: Vec<Vec<u8>> = (0..40)
            .map(|i| {
                let mut m = base.clone();
                m[i * 13 % 1000] ^= 1;
                m
            })
            .collect();
        check_many(&msgs);
    }
}
