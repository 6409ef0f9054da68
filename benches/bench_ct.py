# SPDX-License-Identifier: Apache-2.0
"""How fast `pinscan ct` turns log entries into rows, from local data (no network).

    .venv/bin/python -m benches.bench_ct [--entries N] [--rounds R] [--markdown]

Corpus: N RFC 6962 entries, half precertificates, made with pyca/cryptography from 64 issuances
(P-256 and RSA-2048 keys, 1 to 4 SAN names, a realistic extension set) and made distinct by
their timestamps; the same entries as static-ct-api data tiles of 256. Measured, best of R
rounds: (a) the Rust core alone, `parse_leaves` and `parse_tiles` with 1 thread and all cores;
(b) what the monitor does from fetched bytes to alerts: parse a window of requests per call (4 x
1,000 leaves, or 4 data tiles), append every leaf hash to the compact range, match the watchlist
and allowed keys every 8,192 rows; (c) the compact range alone (Python hashlib). JSON goes to
benches/out/, a table to stdout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from pinscan import _core
from pinscan.ct import entries
from pinscan.ct.merkle import CompactRange
from pinscan.ct.monitor import MATCH_ROWS
from pinscan.ct.watch import Watchlist, alerts

ROOT = Path(__file__).resolve().parent.parent
DER = serialization.Encoding.DER
SCT_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")


def _u24(data: bytes) -> bytes:
    return len(data).to_bytes(3, "big") + data


def corpus(n: int) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """``(leaf_inputs, extra_data, data_tiles)`` for ``n`` entries."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bench CA R1")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(dt.datetime(2026, 1, 1))
        .not_valid_after(dt.datetime(2036, 1, 1))
        .sign(ca_key, hashes.SHA256())
    )
    ca_der = ca.public_bytes(DER)
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(24)]
    keys += [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(8)]
    kinds = []
    for i in range(64):
        names = [f"host{i}-{j}.example{i % 7}.com" for j in range(1 + i % 4)]
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_name)
            .public_key(keys[i % len(keys)].public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(dt.datetime(2026, 11, 1))
            .not_valid_after(dt.datetime(2027, 2, 1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
            .add_extension(
                x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
        )
        precert = builder.add_extension(x509.PrecertPoison(), True).sign(ca_key, hashes.SHA256())
        # Two SCTs of 118 bytes, as a TLS list inside the extension's OCTET STRING.
        scts = b"".join(struct.pack(">H", 118) + bytes(118) for _ in range(2))
        sct_list = struct.pack(">H", len(scts)) + scts
        sct = x509.UnrecognizedExtension(SCT_OID, b"\x04\x81" + bytes([len(sct_list)]) + sct_list)
        cert = builder.add_extension(sct, False).sign(ca_key, hashes.SHA256())
        tbs = cert.tbs_precertificate_bytes
        ikh = bytes(32)
        kinds.append(
            (
                struct.pack(">H", 1) + ikh + _u24(tbs),
                _u24(precert.public_bytes(DER)),
            )
        )
        kinds.append((struct.pack(">H", 0) + _u24(cert.public_bytes(DER)), b""))
    leaves, extras, tile_leaves = [], [], []
    fingerprint = struct.pack(">H", 32) + bytes(32)
    for i in range(n):
        body, pre = kinds[i % len(kinds)]
        timestamped = struct.pack(">Q", 1_790_000_000_000 + i) + body + b"\x00\x00"
        leaves.append(b"\x00\x00" + timestamped)
        extras.append(pre + _u24(_u24(ca_der)))
        tile_leaves.append(timestamped + pre + fingerprint)
    tiles = [b"".join(tile_leaves[i : i + 256]) for i in range(0, n, 256)]
    return leaves, extras, tiles


def best(rounds: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def monitor_path(leaves: list[bytes], extras: list[bytes], tiles: list[bytes] | None) -> int:
    """What `pinscan.ct.monitor` does with fetched bytes, minus the network: parse per request
    window (4 x 1,000 leaves, or 4 tiles), extend the compact range, index, match every
    `MATCH_ROWS` rows."""
    watchlist = Watchlist.parse(["example3.com", "=host1-0.example1.com"])
    rng = CompactRange()
    pending: list[pl.DataFrame] = []
    found = 0
    chunks = (
        (entries.parse_tiles(tiles[i : i + 4]) for i in range(0, len(tiles), 4))
        if tiles is not None
        else (
            entries.parse_leaves(leaves[i : i + 4000], extras[i : i + 4000])
            for i in range(0, len(leaves), 4000)
        )
    )
    for rows in chunks:
        first = rng.size
        rng.extend(rows["leaf_hash"].to_list())
        pending.append(rows.with_columns(index=pl.int_range(first, rng.size, dtype=pl.Int64)))
        if sum(p.height for p in pending) >= MATCH_ROWS:
            found += alerts(pl.concat(pending), watchlist, frozenset(), "bench", "local").height
            pending.clear()
    if pending:
        found += alerts(pl.concat(pending), watchlist, frozenset(), "bench", "local").height
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    n = args.entries
    t0 = time.perf_counter()
    leaves, extras, tiles = corpus(n)
    built = time.perf_counter() - t0
    mean = sum(map(len, leaves)) / n
    cores = os.cpu_count() or 1

    def core(kind: str, threads: int | None) -> Callable[[], object]:
        data = tiles if kind == "tile" else leaves
        extra = None if kind == "tile" else extras
        return lambda: _core.parse_ct_entries(kind, data, extra, threads=threads)

    sample = entries.parse_leaves(leaves[:4096], extras[:4096])
    assert sample["error"].null_count() == sample.height, sample["error"].drop_nulls()[0]
    assert entries.parse_tiles(tiles[:2]).height == min(n, 512)
    results = {}
    for label, run in [
        ("core: parse_leaves, 1 thread", core("leaf", 1)),
        (f"core: parse_leaves, {cores} threads", core("leaf", None)),
        ("core: parse_tiles, 1 thread", core("tile", 1)),
        (f"core: parse_tiles, {cores} threads", core("tile", None)),
        ("to polars: parse_leaves (DataFrame)", lambda: entries.parse_leaves(leaves, extras)),
        ("monitor path, RFC 6962 leaves", lambda: monitor_path(leaves, extras, None)),
        ("monitor path, data tiles", lambda: monitor_path([], [], tiles)),
        ("compact range alone (hashlib)", lambda: CompactRange().extend(leaves)),
    ]:
        seconds = best(args.rounds, run)
        results[label] = {"seconds": seconds, "entries_per_s": n / seconds}
    meta = {
        "entries": n,
        "mean_leaf_bytes": round(mean),
        "corpus_seconds": built,
        "rounds": args.rounds,
        "python": sys.version.split()[0],
        "polars": pl.__version__,
        "machine": f"{platform.machine()}, {cores} cores",
        "cpu": _cpu(),
        "load": os.getloadavg(),
    }
    out = ROOT / "benches" / "out"
    out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    (out / f"bench_ct-{stamp}.json").write_text(json.dumps({"meta": meta, "results": results}))
    print(f"{n:,} entries, mean leaf {mean:,.0f} B, {meta['machine']}, {meta['cpu']}")
    print("| what | entries/s | seconds |" if args.markdown else "")
    print("|---|---|---|" if args.markdown else "")
    for label, r in results.items():
        if args.markdown:
            print(f"| {label} | {r['entries_per_s']:,.0f} | {r['seconds']:.3f} |")
        else:
            print(f"{label:45s} {r['entries_per_s']:>12,.0f}/s {r['seconds']:8.3f} s")


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
