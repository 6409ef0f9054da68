// SPDX-License-Identifier: Apache-2.0
//! Runs the batch path over a file of length-prefixed DER certificates, for profilers
//! (`valgrind --tool=callgrind`, `perf`): `profile FILE [REPS] [--hash-only | --hash-many]`.
//! `--hash-only` hashes each certificate alone (ring), `--hash-many` all of them together
//! (`sha256_many`, multi-buffer where the CPU allows).
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let data = std::fs::read(&args[1]).expect("readable input");
    let reps: usize = args
        .get(2)
        .map_or(1, |r| r.parse().expect("REPS is a number"));
    let hash_only = args.iter().any(|a| a == "--hash-only");
    let hash_many = args.iter().any(|a| a == "--hash-many");
    let mut ders = Vec::new();
    let mut rest = &data[..];
    while let Some((len, tail)) = rest.split_first_chunk::<4>() {
        let n = u32::from_be_bytes(*len) as usize;
        ders.push(Some(&tail[..n]));
        rest = &tail[n..];
    }
    let inputs: Vec<Option<&[u8]>> = (0..reps).flat_map(|_| ders.iter().copied()).collect();
    let start = Instant::now();
    if hash_only {
        let x = inputs
            .iter()
            .flatten()
            .fold(0u8, |x, d| x ^ pinscan_core::hash::sha256(d)[0]);
        std::hint::black_box(x);
    } else if hash_many {
        let msgs: Vec<&[u8]> = inputs.iter().flatten().copied().collect();
        let mut out = vec![[0; 32]; msgs.len()];
        pinscan_core::hash::sha256_many(&msgs, &mut out);
        std::hint::black_box(out);
    } else {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .expect("a pool");
        let batches = pool.install(|| pinscan_core::certificates(&inputs, Default::default()));
        std::hint::black_box(batches.expect("batches build"));
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / inputs.len() as f64;
    println!("{} certificates, {us:.2} us each", inputs.len());
}
