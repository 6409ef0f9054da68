# SPDX-License-Identifier: Apache-2.0
"""``pinscan diff`` at fleet scale: two scans of 1,000,000 endpoints each, committed to a history.

Builds two synthetic scans in the real layout (endpoints, chains with the presented and the
verified chain, certificates), as ``bench_policy.py`` does: endpoints spread over distinct names,
each with its own leaf under one of 50 intermediates and 5 roots. The second scan differs from the
first the way a fleet does between two runs: 1% keys rotated, 1% certificates renewed with the same
key, 0.5% re-issued by another CA, 0.5% failing, 0.5% recovered, 0.4% moved to another address,
0.33% no longer verifying, 0.2% gone and as many new. Both scans are committed to a history with
:func:`pinscan.dataset.history.commit`, then, each in a child process so that the peak RSS is its
own:

- ``pinscan.diff(H@-2, H)``: seconds and peak RSS;
- ``pinscan diff H -q`` (the command a cron job runs: compare, print the failing changes, exit 1).

    flock /tmp/pinscan-bench.lock .venv/bin/python -m benches.bench_history [--endpoints 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

N_INTERMEDIATES = 50
N_ROOTS = 5


def _scan(root: Path, scan_id: str, endpoints: pl.DataFrame) -> None:
    """Writes one scan from a frame of (i, endpoint_id, target_id, ip, status, verified, leaf,
    intermediate) as a staged dataset of ``root``, and commits it."""
    from pinscan.dataset import history
    from pinscan.dataset.schema import CHAINS_SCHEMA, ENDPOINTS_SCHEMA, certificates_schema
    from pinscan.dataset.writer import DatasetWriter

    history.prepare(root)
    stage = root / history.STAGING / scan_id
    writer = DatasetWriter.create(stage, scan_id=scan_id, arguments={}, version="bench")
    ok = pl.col("status") == "ok"
    leaf_sha = pl.when(ok).then(pl.format("{}{}", pl.col("leaf"), pl.col("i").cast(pl.String)))
    frame = endpoints.with_columns(
        leaf_sha256=leaf_sha.str.pad_start(64, "0"),
        spki_sha256=pl.when(ok).then(
            pl.format("k{}", pl.col("key").cast(pl.String)).str.pad_end(43, "x") + "="
        ),
        inter_sha=pl.format("int{}", pl.col("intermediate")).str.pad_start(64, "0"),
        root_sha=pl.format("root{}", pl.col("intermediate") % N_ROOTS).str.pad_start(64, "0"),
    )
    eps = frame.select(
        "endpoint_id",
        "target_id",
        line=pl.col("i") + 1,
        target=pl.format("h{}.example", pl.col("i")),
        host=pl.format("h{}.example", pl.col("i")),
        ip="ip",
        port=pl.lit(443),
        status="status",
        error=pl.when(~ok).then(pl.lit("connection refused")),
        leaf_sha256="leaf_sha256",
        spki_sha256="spki_sha256",
        verified=pl.when(ok).then(pl.col("verified")),
        trust_store=pl.when(ok & pl.col("verified")).then(pl.lit("mozilla")),
        days_to_expiry=pl.when(ok).then(pl.lit(60)),
        scan_id=pl.lit(scan_id),
    )
    eps = eps.with_columns(
        [pl.lit(None, t).alias(c) for c, t in ENDPOINTS_SCHEMA.items() if c not in eps.columns]
    )
    eps = eps.select(ENDPOINTS_SCHEMA.names()).cast(ENDPOINTS_SCHEMA)  # type: ignore[arg-type]
    served = frame.filter(ok)
    presented = [
        served.select("endpoint_id", cert_sha256=c, position=pl.lit(p), source=pl.lit("presented"))
        for p, c in enumerate(("leaf_sha256", "inter_sha"))
    ]
    verified = [
        served.filter(pl.col("verified")).select(
            "endpoint_id", cert_sha256=c, position=pl.lit(p), source=pl.lit("verified")
        )
        for p, c in enumerate(("leaf_sha256", "inter_sha", "root_sha"))
    ]
    chains = (
        pl.concat([*presented, *verified], how="vertical")
        .with_columns(scan_id=pl.lit(scan_id))
        .select(CHAINS_SCHEMA.names())
        .cast(CHAINS_SCHEMA)  # type: ignore[arg-type]
    )
    leaves = served.select(
        cert_sha256="leaf_sha256",
        spki_sha256="spki_sha256",
        subject=pl.format("CN=h{}.example", pl.col("i")),
        issuer=pl.format("CN=Bench Intermediate {}", pl.col("intermediate")),
        not_after=pl.lit(1_900_000_000_000_000).cast(pl.Datetime("us", "UTC")),
        is_ca=pl.lit(False),
    )
    cas = pl.DataFrame({"n": range(N_INTERMEDIATES)}).select(
        cert_sha256=pl.format("int{}", pl.col("n")).str.pad_start(64, "0"),
        spki_sha256=pl.format("ik{}", pl.col("n")).str.pad_end(43, "x") + "=",
        subject=pl.format("CN=Bench Intermediate {}", pl.col("n")),
        issuer=pl.format("CN=Bench Root {}", pl.col("n") % N_ROOTS),
        not_after=pl.lit(2_000_000_000_000_000).cast(pl.Datetime("us", "UTC")),
        is_ca=pl.lit(True),
    )
    roots = pl.DataFrame({"n": range(N_ROOTS)}).select(
        cert_sha256=pl.format("root{}", pl.col("n")).str.pad_start(64, "0"),
        spki_sha256=pl.format("rk{}", pl.col("n")).str.pad_end(43, "x") + "=",
        subject=pl.format("CN=Bench Root {}", pl.col("n")),
        issuer=pl.format("CN=Bench Root {}", pl.col("n")),
        not_after=pl.lit(2_100_000_000_000_000).cast(pl.Datetime("us", "UTC")),
        is_ca=pl.lit(True),
    )
    schema = certificates_schema()
    certs = pl.concat([leaves, cas, roots], how="vertical").with_columns(scan_id=pl.lit(scan_id))
    certs = certs.with_columns(
        [pl.lit(None, t).alias(c) for c, t in schema.items() if c not in certs.columns]
    )
    for table, part in (
        ("certificates", certs.select(schema.names()).cast(schema)),  # type: ignore[arg-type]
        ("chains", chains),
        ("endpoints", eps),
    ):
        part.write_parquet(stage / table / "part-000001.parquet")
    writer.finish({"targets": eps.height, "endpoints": eps.height})
    history.commit(root, stage)


def build(root: Path, n: int) -> None:
    """Two scans of ``n`` endpoints, the second changed as the module docstring says."""
    i = pl.col("i")
    old = pl.DataFrame({"i": range(n)}).with_columns(
        endpoint_id=pl.format("e{}", i).str.pad_start(16, "0"),
        target_id=pl.format("t{}", i).str.pad_start(16, "0"),
        ip=pl.format("10.{}.{}.{}", i // 65536 % 256, i // 256 % 256, i % 256),
        status=pl.when(i % 200 == 6).then(pl.lit("refused")).otherwise(pl.lit("ok")),
        verified=pl.lit(True),
        leaf=pl.lit("a"),
        key=i,
        intermediate=i % N_INTERMEDIATES,
    )
    moved = i % 250 == 9
    new = old.filter(i % 500 != 7).with_columns(  # gone
        leaf=pl.when((i % 100).is_in([1, 2]) | (i % 200 == 3)).then(pl.lit("b")).otherwise("leaf"),
        key=pl.when(i % 100 == 1).then(i + n).otherwise("key"),
        intermediate=pl.when(i % 200 == 3)
        .then((pl.col("intermediate") + 1) % N_INTERMEDIATES)
        .otherwise("intermediate"),
        status=pl.when(i % 200 == 5)
        .then(pl.lit("refused"))
        .when(i % 200 == 6)
        .then(pl.lit("ok"))
        .otherwise("status"),
        verified=~(i % 300 == 11),
        endpoint_id=pl.when(moved)
        .then(pl.format("m{}", i).str.pad_start(16, "0"))
        .otherwise("endpoint_id"),
        ip=pl.when(moved).then(pl.format("172.16.0.{}", i % 256)).otherwise("ip"),
    )
    extra = pl.DataFrame({"i": range(n, n + n // 500)}).with_columns(
        endpoint_id=pl.format("e{}", i).str.pad_start(16, "0"),
        target_id=pl.format("t{}", i).str.pad_start(16, "0"),
        ip=pl.lit("10.255.0.1"),
        status=pl.lit("ok"),
        verified=pl.lit(True),
        leaf=pl.lit("a"),
        key=i,
        intermediate=i % N_INTERMEDIATES,
    )
    new = pl.concat([new, extra.select(new.columns)], how="vertical")
    _scan(root, "20250101T000000Z-000001", old)
    _scan(root, "20250102T000000Z-000002", new)


def run_api(root: Path) -> dict:
    import pinscan

    start = time.perf_counter()
    cpu = time.process_time()
    changes = pinscan.diff(f"{root}@-2", root)
    seconds = time.perf_counter() - start
    counts = {str(k): v for k, v in pinscan.diff_summary(changes).iter_rows() if v}
    return {
        "seconds": seconds,
        "cpu_seconds": time.process_time() - cpu,
        "rows": changes.height,
        "changes": counts,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_cli(root: Path) -> dict:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pinscan", "diff", str(root), "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    assert done.returncode == 1, done.stderr
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"seconds": seconds, "exit": done.returncode, "peak_rss_mb": usage.ru_maxrss / 1024}


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*.parquet"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=1_000_000)
    parser.add_argument("--child", choices=["api", "cli"], help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = run_api(args.root) if args.child == "api" else run_cli(args.root)
        print(json.dumps(result))
        return 0
    with tempfile.TemporaryDirectory(prefix="pinscan-bench-history-") as tmp:
        root = Path(tmp) / "H"
        start = time.perf_counter()
        build(root, args.endpoints)
        print(
            f"built 2 scans of {args.endpoints:,} endpoints in {time.perf_counter() - start:.1f} s "
            f"({_size(root) / 1e6:.0f} MB of Parquet)"
        )

        def child(kind: str) -> dict:
            out = subprocess.run(
                [sys.executable, __file__, "--child", kind, "--root", str(root)],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            return json.loads(out.stdout)

        api = child("api")
        cli = child("cli")
    print(
        f"pinscan.diff: {args.endpoints:,} vs {args.endpoints:,} endpoints -> {api['rows']:,} "
        f"changes in {api['seconds']:.2f} s (CPU {api['cpu_seconds']:.2f} s, "
        f"{os.cpu_count()} cores), peak RSS {api['peak_rss_mb']:.0f} MB"
    )
    print(f"  changes: {api['changes']}")
    print(
        f"pinscan diff H -q (whole process, exit {cli['exit']}): {cli['seconds']:.2f} s, "
        f"peak RSS {cli['peak_rss_mb']:.0f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
