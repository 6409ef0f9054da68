// SPDX-License-Identifier: Apache-2.0
//! Multi-buffer SHA-256 compression: one block of 16 (AVX-512) or 8 (AVX2) independent messages
//! at once, message `i` in vector lane `i`, the technique of Intel's isa-l_crypto `sha256_mb`.
//! Only the compression function is here; padding, lane scheduling and the choice of kernel are
//! safe code in `hash`.
//!
//! The only `unsafe` in the crate. It is of two kinds, each argued where it occurs:
//! - unaligned vector loads and stores between arrays and registers, always of exactly the
//!   array's size;
//! - calls of the `#[target_feature]` kernels, made only through a `Kernel`, which exists only
//!   once the running CPU has been seen to have those features.
#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::{Block, K};

/// A compression kernel the running CPU supports. Its field is private: a `Kernel` is only made
/// by `detect` and `available`, after the CPU check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kernel(Width);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Width {
    Avx512,
    Avx2,
}

impl Kernel {
    /// The widest kernel this CPU runs, or `None` where a single-buffer hash is as good: with the
    /// SHA extensions, one message at a time in hardware beats 16 in software.
    pub fn detect() -> Option<Kernel> {
        if std::is_x86_feature_detected!("sha") {
            None
        } else if std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
        {
            Some(Kernel(Width::Avx512))
        } else if std::is_x86_feature_detected!("avx2") {
            Some(Kernel(Width::Avx2))
        } else {
            None
        }
    }

    /// Every kernel this CPU runs, for tests.
    #[cfg(test)]
    pub fn available() -> Vec<Kernel> {
        let mut all = Vec::new();
        if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bw") {
            all.push(Kernel(Width::Avx512));
        }
        if std::is_x86_feature_detected!("avx2") {
            all.push(Kernel(Width::Avx2));
        }
        all
    }

    pub fn lanes(self) -> usize {
        match self.0 {
            Width::Avx512 => 16,
            Width::Avx2 => 8,
        }
    }

    /// One block for each lane. `state[i][lane]` is word `i` of lane `lane`'s chaining value.
    /// The AVX2 kernel uses lanes 0..8 and leaves the others alone.
    pub fn compress(self, state: &mut [[u32; 16]; 8], blocks: &[&Block; 16]) {
        match self.0 {
            // SAFETY: a `Kernel` of this width is only made by `detect` and `available`, after
            // checking that the CPU has AVX-512F and AVX-512BW, the features `compress16` enables.
            Width::Avx512 => unsafe { compress16(state, blocks) },
            // SAFETY: as above, for AVX2 and `compress8`.
            Width::Avx2 => unsafe { compress8(state, blocks) },
        }
    }
}

/// The 64 rounds over the 16 message words `w` (lane-transposed, read big-endian), added into the
/// chaining value `s`. The same for every vector width; `$v` names the width's module of
/// lane-wise operations. Unrolled by 16 so that the schedule's indices are constants and the
/// words stay in registers; the roles of the eight working variables rotate instead of values
/// moving between them.
macro_rules! rounds {
    ($v:ident, $s:expr, $w:expr) => {{
        let s: &mut [_; 8] = $s;
        let w: &mut [_; 16] = $w;
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *s;
        for i in 0..4 {
            round!($v, w, i, a, b, c, d, e, f, g, h, 0);
            round!($v, w, i, h, a, b, c, d, e, f, g, 1);
            round!($v, w, i, g, h, a, b, c, d, e, f, 2);
            round!($v, w, i, f, g, h, a, b, c, d, e, 3);
            round!($v, w, i, e, f, g, h, a, b, c, d, 4);
            round!($v, w, i, d, e, f, g, h, a, b, c, 5);
            round!($v, w, i, c, d, e, f, g, h, a, b, 6);
            round!($v, w, i, b, c, d, e, f, g, h, a, 7);
            round!($v, w, i, a, b, c, d, e, f, g, h, 8);
            round!($v, w, i, h, a, b, c, d, e, f, g, 9);
            round!($v, w, i, g, h, a, b, c, d, e, f, 10);
            round!($v, w, i, f, g, h, a, b, c, d, e, 11);
            round!($v, w, i, e, f, g, h, a, b, c, d, 12);
            round!($v, w, i, d, e, f, g, h, a, b, c, 13);
            round!($v, w, i, c, d, e, f, g, h, a, b, 14);
            round!($v, w, i, b, c, d, e, f, g, h, a, 15);
        }
        for (x, y) in s.iter_mut().zip([a, b, c, d, e, f, g, h]) {
            *x = $v::add(*x, y);
        }
    }};
}

/// Round `16 * i + j` (FIPS 180-4 6.2.2 step 3), computing the schedule word it needs in place of
/// the one 16 rounds back. It updates `d` and `h` only: they are the next round's `e` and `a`.
macro_rules! round {
    ($v:ident, $w:ident, $i:ident, $a:ident, $b:ident, $c:ident, $d:ident, $e:ident, $f:ident,
     $g:ident, $h:ident, $j:literal) => {
        if $i > 0 {
            $w[$j] = $v::add(
                $v::add($v::ssig1($w[($j + 14) % 16]), $w[($j + 9) % 16]),
                $v::add($v::ssig0($w[($j + 1) % 16]), $w[$j]),
            );
        }
        let t1 = $v::add(
            $v::add($h, $v::bsig1($e)),
            $v::add(
                $v::ch($e, $f, $g),
                $v::add($v::splat(K[16 * $i + $j]), $w[$j]),
            ),
        );
        let t2 = $v::add($v::bsig0($a), $v::maj($a, $b, $c));
        $d = $v::add($d, t1);
        $h = $v::add(t1, t2);
    };
}

#[target_feature(enable = "avx512f,avx512bw")]
fn compress16(state: &mut [[u32; 16]; 8], blocks: &[&Block; 16]) {
    let swap = _mm512_broadcast_i32x4(_mm_set_epi8(
        12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3,
    ));
    // Row `i` is lane `i`'s block as 16 big-endian words.
    let r: [__m512i; 16] = std::array::from_fn(|i| {
        let block: &Block = blocks[i];
        // SAFETY: reads 64 bytes from a `[u8; 64]`; `loadu` has no alignment requirement.
        let v = unsafe { _mm512_loadu_si512(block.as_ptr().cast()) };
        _mm512_shuffle_epi8(v, swap)
    });
    // Transpose 16x16 words: pairs of words, then quads, then 128-bit chunks in two steps.
    let t: [__m512i; 16] = std::array::from_fn(|i| {
        let (x, y) = (r[i & !1], r[i | 1]);
        if i & 1 == 0 {
            _mm512_unpacklo_epi32(x, y)
        } else {
            _mm512_unpackhi_epi32(x, y)
        }
    });
    // u[4g + j] holds word j + 4m of rows 4g..4g+4 in 128-bit chunk m.
    let u: [__m512i; 16] = std::array::from_fn(|i| {
        let (g, j) = (i / 4, i % 4);
        let (x, y) = (t[4 * g + j / 2], t[4 * g + 2 + j / 2]);
        if j % 2 == 0 {
            _mm512_unpacklo_epi64(x, y)
        } else {
            _mm512_unpackhi_epi64(x, y)
        }
    });
    let mut w = [_mm512_setzero_si512(); 16];
    for j in 0..4 {
        let (a, b, c, d) = (u[j], u[4 + j], u[8 + j], u[12 + j]);
        let p = _mm512_shuffle_i32x4::<0x44>(a, b);
        let q = _mm512_shuffle_i32x4::<0xee>(a, b);
        let r = _mm512_shuffle_i32x4::<0x44>(c, d);
        let s = _mm512_shuffle_i32x4::<0xee>(c, d);
        w[j] = _mm512_shuffle_i32x4::<0x88>(p, r);
        w[j + 4] = _mm512_shuffle_i32x4::<0xdd>(p, r);
        w[j + 8] = _mm512_shuffle_i32x4::<0x88>(q, s);
        w[j + 12] = _mm512_shuffle_i32x4::<0xdd>(q, s);
    }
    let mut s: [__m512i; 8] = std::array::from_fn(|i| {
        // SAFETY: reads the 64 bytes of the 16 words of `state[i]`.
        unsafe { _mm512_loadu_si512(state[i].as_ptr().cast()) }
    });
    rounds!(avx512, &mut s, &mut w);
    for (dst, v) in state.iter_mut().zip(s) {
        // SAFETY: writes the 64 bytes of the 16 words of `dst`.
        unsafe { _mm512_storeu_si512(dst.as_mut_ptr().cast(), v) }
    }
}

#[target_feature(enable = "avx2")]
fn compress8(state: &mut [[u32; 16]; 8], blocks: &[&Block; 16]) {
    let swap = _mm256_broadcastsi128_si256(_mm_set_epi8(
        12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3,
    ));
    let mut w = [_mm256_setzero_si256(); 16];
    // Words 0..8 of every lane, then words 8..16: two 8x8 transposes.
    for half in 0..2 {
        let r: [__m256i; 8] = std::array::from_fn(|i| {
            let words = &blocks[i][32 * half..32 * half + 32];
            // SAFETY: reads the 32 bytes of `words`; `loadu` has no alignment requirement.
            let v = unsafe { _mm256_loadu_si256(words.as_ptr().cast()) };
            _mm256_shuffle_epi8(v, swap)
        });
        let t: [__m256i; 8] = std::array::from_fn(|i| {
            let (x, y) = (r[i & !1], r[i | 1]);
            if i & 1 == 0 {
                _mm256_unpacklo_epi32(x, y)
            } else {
                _mm256_unpackhi_epi32(x, y)
            }
        });
        // u[4g + j] holds word j (low 128 bits) and word j + 4 (high) of rows 4g..4g+4.
        let u: [__m256i; 8] = std::array::from_fn(|i| {
            let (g, j) = (i / 4, i % 4);
            let (x, y) = (t[4 * g + j / 2], t[4 * g + 2 + j / 2]);
            if j % 2 == 0 {
                _mm256_unpacklo_epi64(x, y)
            } else {
                _mm256_unpackhi_epi64(x, y)
            }
        });
        for j in 0..4 {
            w[8 * half + j] = _mm256_permute2x128_si256::<0x20>(u[j], u[4 + j]);
            w[8 * half + j + 4] = _mm256_permute2x128_si256::<0x31>(u[j], u[4 + j]);
        }
    }
    let mut s: [__m256i; 8] = std::array::from_fn(|i| {
        // SAFETY: reads 32 of the 64 bytes of `state[i]`.
        unsafe { _mm256_loadu_si256(state[i].as_ptr().cast()) }
    });
    rounds!(avx2, &mut s, &mut w);
    for (dst, v) in state.iter_mut().zip(s) {
        // SAFETY: writes 32 of the 64 bytes of `dst`.
        unsafe { _mm256_storeu_si256(dst.as_mut_ptr().cast(), v) }
    }
}

/// Lane-wise operations on 16 words: AVX-512 rotates natively and XORs three vectors, or picks
/// bits (`ch`, `maj`), in one `vpternlogd`.
mod avx512 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f")]
    pub fn add(a: __m512i, b: __m512i) -> __m512i {
        _mm512_add_epi32(a, b)
    }
    #[target_feature(enable = "avx512f")]
    pub fn splat(k: u32) -> __m512i {
        _mm512_set1_epi32(k as i32)
    }
    #[target_feature(enable = "avx512f")]
    fn xor3(a: __m512i, b: __m512i, c: __m512i) -> __m512i {
        _mm512_ternarylogic_epi32::<0x96>(a, b, c)
    }
    #[target_feature(enable = "avx512f")]
    pub fn ch(e: __m512i, f: __m512i, g: __m512i) -> __m512i {
        _mm512_ternarylogic_epi32::<0xca>(e, f, g)
    }
    #[target_feature(enable = "avx512f")]
    pub fn maj(a: __m512i, b: __m512i, c: __m512i) -> __m512i {
        _mm512_ternarylogic_epi32::<0xe8>(a, b, c)
    }
    #[target_feature(enable = "avx512f")]
    pub fn bsig0(x: __m512i) -> __m512i {
        xor3(
            _mm512_ror_epi32::<2>(x),
            _mm512_ror_epi32::<13>(x),
            _mm512_ror_epi32::<22>(x),
        )
    }
    #[target_feature(enable = "avx512f")]
    pub fn bsig1(x: __m512i) -> __m512i {
        xor3(
            _mm512_ror_epi32::<6>(x),
            _mm512_ror_epi32::<11>(x),
            _mm512_ror_epi32::<25>(x),
        )
    }
    #[target_feature(enable = "avx512f")]
    pub fn ssig0(x: __m512i) -> __m512i {
        xor3(
            _mm512_ror_epi32::<7>(x),
            _mm512_ror_epi32::<18>(x),
            _mm512_srli_epi32::<3>(x),
        )
    }
    #[target_feature(enable = "avx512f")]
    pub fn ssig1(x: __m512i) -> __m512i {
        xor3(
            _mm512_ror_epi32::<17>(x),
            _mm512_ror_epi32::<19>(x),
            _mm512_srli_epi32::<10>(x),
        )
    }
}

/// Lane-wise operations on 8 words with AVX2: rotations are two shifts and an OR.
mod avx2 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2")]
    pub fn add(a: __m256i, b: __m256i) -> __m256i {
        _mm256_add_epi32(a, b)
    }
    #[target_feature(enable = "avx2")]
    pub fn splat(k: u32) -> __m256i {
        _mm256_set1_epi32(k as i32)
    }
    #[target_feature(enable = "avx2")]
    fn xor3(a: __m256i, b: __m256i, c: __m256i) -> __m256i {
        _mm256_xor_si256(_mm256_xor_si256(a, b), c)
    }
    /// Rotate right by `R`; `L` is `32 - R` (const generics cannot compute it).
    #[target_feature(enable = "avx2")]
    fn ror<const R: i32, const L: i32>(x: __m256i) -> __m256i {
        _mm256_or_si256(_mm256_srli_epi32::<R>(x), _mm256_slli_epi32::<L>(x))
    }
    #[target_feature(enable = "avx2")]
    pub fn ch(e: __m256i, f: __m256i, g: __m256i) -> __m256i {
        // (e & f) ^ (!e & g) = ((f ^ g) & e) ^ g
        _mm256_xor_si256(_mm256_and_si256(_mm256_xor_si256(f, g), e), g)
    }
    #[target_feature(enable = "avx2")]
    pub fn maj(a: __m256i, b: __m256i, c: __m256i) -> __m256i {
        // (a & b) | (c & (a | b))
        _mm256_or_si256(
            _mm256_and_si256(a, b),
            _mm256_and_si256(c, _mm256_or_si256(a, b)),
        )
    }
    #[target_feature(enable = "avx2")]
    pub fn bsig0(x: __m256i) -> __m256i {
        xor3(ror::<2, 30>(x), ror::<13, 19>(x), ror::<22, 10>(x))
    }
    #[target_feature(enable = "avx2")]
    pub fn bsig1(x: __m256i) -> __m256i {
        xor3(ror::<6, 26>(x), ror::<11, 21>(x), ror::<25, 7>(x))
    }
    #[target_feature(enable = "avx2")]
    pub fn ssig0(x: __m256i) -> __m256i {
        xor3(ror::<7, 25>(x), ror::<18, 14>(x), _mm256_srli_epi32::<3>(x))
    }
    #[target_feature(enable = "avx2")]
    pub fn ssig1(x: __m256i) -> __m256i {
        xor3(
            ror::<17, 15>(x),
            ror::<19, 13>(x),
            _mm256_srli_epi32::<10>(x),
        )
    }
}
