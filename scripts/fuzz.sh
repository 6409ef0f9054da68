#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Fuzz every pinscan-core target for a bounded time on STABLE Rust; exit non-zero on any crash.
#
#   scripts/fuzz.sh [SECONDS]     # per target, default 60
#
# `--sanitizer none` is what lets cargo-fuzz build on stable (rust-fuzz/cargo-fuzz#440): the
# coverage instrumentation (-Cpasses=sancov-module, -Cllvm-args) is stable, ASan is not. The core
# has no unsafe code outside the SIMD SHA-256 kernels (checked against RustCrypto's sha2 by the
# fuzz target), so its bugs are panics and overflows, which debug assertions and overflow checks
# (on by default in cargo-fuzz builds, and in the fuzz crate's profile) turn into crashes.
#
# Env: PYTHON (default .venv/bin/python, needs certifi and cryptography_vectors for the seeds),
# FUZZ_LOG_DIR (default rust/pinscan-core/fuzz/target/logs).
set -euo pipefail

seconds="${1:-60}"
root="$(cd "$(dirname "$0")/.." && pwd)"
fuzz_dir="$root/rust/pinscan-core/fuzz"
python="${PYTHON:-$root/.venv/bin/python}"
log_dir="${FUZZ_LOG_DIR:-$fuzz_dir/target/logs}"
targets=(parse_certificate der_walk ct_entries android_decode tls_client)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz (about a minute on 2 cores)"
    cargo install cargo-fuzz --locked
fi

echo "fuzz: seed corpus"
if ! "$python" "$fuzz_dir/seed.py" "$fuzz_dir/corpus/seed"; then
    echo "fuzz: could not write the seed corpus with $python (run 'make build' first)" >&2
    exit 2
fi

cd "$fuzz_dir"
build=(--sanitizer none --debug-assertions)
cargo fuzz build "${build[@]}"

mkdir -p "$log_dir"
status=0
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    log="$log_dir/$target.log"
    touch "$log_dir/.start"
    echo "fuzz: $target for ${seconds}s (log: $log)"
    # New inputs go to corpus/$target (kept between runs); corpus/seed is read only. An input that
    # takes 10 s is a hang to report, not something to wait 20 minutes (libFuzzer's default) for.
    if cargo fuzz run "${build[@]}" "$target" "corpus/$target" corpus/seed -- \
        -dict=der.dict -max_len=4096 -timeout=10 -max_total_time="$seconds" -print_final_stats=1 \
        >"$log" 2>&1; then
        # The last status line and libFuzzer's own averages.
        grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true
        grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" || true
    else
        status=1
        echo "fuzz: $target FAILED; end of its log:" >&2
        grep -A 2 'panicked at' "$log" >&2 || true
        grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)' "$log" | tail -n 40 >&2
        # Only what this run found; older artifacts stay where they are.
        find "artifacts/$target" -type f -newer "$log_dir/.start" 2>/dev/null | while read -r crash; do
            echo "fuzz: reproducer $fuzz_dir/$crash (hex):" >&2
            od -An -v -tx1 "$crash" | tr -d ' \n' >&2
            echo >&2
        done
    fi
done
exit "$status"
