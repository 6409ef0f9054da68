# SPDX-License-Identifier: Apache-2.0
"""Policy evaluation at fleet scale: 1,000,000 endpoints against 1,000 rules.

Builds a synthetic dataset in the real layout (endpoints, chains, certificates Parquet parts):
endpoints spread over 2,000 domains and up to three labels below them, each with a distinct
leaf, one of 50 intermediates and one of 5 roots, verified. The rules pin 1,000 of those
domains, half exact and half with subdomains, in two policies (one most-specific like Android,
one union like OkHttp). With ``--store-paths`` the endpoints also carry every platform store's
answer, as a scan of this pinscan writes them (each verifies with the endpoint's verified chain,
but Java's store refuses 2% of them and Android's builds another path for 1%); without it they
have none, as a dataset of an older pinscan, and each verdict is judged on the verified chain
with a note. Then, side by side in one run:

- ``pinscan.evaluate`` (polars joins) over all endpoints: seconds and peak RSS (in a child
  process, so the figure is the evaluation's own);
- a straightforward Python loop that does the same matching per endpoint (dict lookups of the
  name's suffixes, then the chain's pins), over a sample, extrapolated per endpoint.

    .venv/bin/python -m benches.bench_policy [--endpoints 1000000] [--rules 1000] [--store-paths]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

BENCHES = Path(__file__).resolve().parent


def build(root: Path, endpoints: int, rules: int, seed: int = 7, store_paths: bool = False) -> None:
    from pinscan.dataset.schema import (
        CHAINS_SCHEMA,
        certificates_schema,
    )
    from pinscan.dataset.writer import DatasetWriter

    rng = random.Random(seed)
    writer = DatasetWriter.create(root, scan_id="bench", arguments={}, version="bench")
    domains, endpoint_frame = fleet_endpoints(rng, endpoints, rules)
    ids = endpoint_frame["endpoint_id"].to_list()
    leaves = [f"leaf{i:040x}" for i in range(endpoints)]
    inters = [f"int{i:061x}" for i in range(50)]
    roots = [f"root{i:060x}" for i in range(5)]
    inter_of = [rng.randrange(50) for _ in range(endpoints)]
    if store_paths:
        endpoint_frame = endpoint_frame.with_columns(
            # Random numbers of their own: the same endpoints and rules with and without.
            _store_paths(
                leaves, [inters[i] for i in inter_of], roots, inter_of, random.Random(seed)
            )
        )
    chain_frame = pl.DataFrame(
        {
            "endpoint_id": ids * 3,
            "source": ["verified"] * (3 * endpoints),
            "position": [0] * endpoints + [1] * endpoints + [2] * endpoints,
            "cert_sha256": leaves
            + [inters[i] for i in inter_of]
            + [roots[i % 5] for i in inter_of],
            "scan_id": "bench",
        },
        schema=CHAINS_SCHEMA,
    )
    shas = leaves + inters + roots
    schema = certificates_schema()
    cert_frame = pl.DataFrame({"cert_sha256": shas}).with_columns(
        spki_sha256=pl.col("cert_sha256").str.slice(-32) + "=",
        key_type=pl.lit("ec"),
    )
    cert_frame = cert_frame.with_columns(
        [pl.lit(None, dtype).alias(n) for n, dtype in schema.items() if n not in cert_frame.columns]
    ).select(schema.names())
    for table, frame in (
        ("endpoints", endpoint_frame),
        ("chains", chain_frame),
        ("certificates", cert_frame.cast(schema)),  # type: ignore[arg-type]
    ):
        frame.write_parquet(root / table / "part-000001.parquet")
    writer.finish({"endpoints": endpoints})
    pinned = rng.sample(domains, rules)
    policy_rules = []
    for i, domain in enumerate(pinned):
        good = [inters[rng.randrange(50)] for _ in range(2)]
        policy_rules.append(
            {"domain": domain, "subdomains": i % 2 == 0, "pins": [p[-32:] + "=" for p in good]}
        )
    (root / "rules.json").write_text(json.dumps(policy_rules))


def fleet_endpoints(
    rng: random.Random, endpoints: int, rules: int
) -> tuple[list[str], pl.DataFrame]:
    """The benchmark fleet's domains (two per rule) and its endpoints, in the dataset's columns:
    each a name up to three labels below one of the domains, verified by Mozilla's store."""
    from pinscan.dataset.schema import ENDPOINTS_SCHEMA

    domains = [f"d{i}.example" for i in range(2 * rules)]
    labels = ["www", "api", "cdn", "m", "eu.api", "us.api", "a.b.c"]
    ids = [f"{i:016x}" for i in range(endpoints)]
    names = [
        (rng.choice(labels) + "." if rng.random() < 0.7 else "") + rng.choice(domains)
        for _ in range(endpoints)
    ]
    frame = pl.DataFrame(
        {
            "endpoint_id": ids,
            "target_id": ids,
            "line": range(1, endpoints + 1),
            "target": names,
            "host": names,
            "ip": "127.0.0.1",
            "port": 443,
            "status": "ok",
            "verified": True,
            "trust_store": "mozilla",
            "scan_id": "bench",
        }
    )
    missing = [
        pl.lit(None, dtype).alias(name)
        for name, dtype in ENDPOINTS_SCHEMA.items()
        if name not in frame.columns
    ]
    return domains, frame.with_columns(missing).select(ENDPOINTS_SCHEMA.names()).cast(
        ENDPOINTS_SCHEMA  # type: ignore[arg-type]
    )


def _store_paths(
    leaves: list[str], inters: list[str], roots: list[str], inter_of: list[int], rng: random.Random
) -> pl.Series:
    """Each endpoint's stores as a scan records them: Mozilla's path is the verified chain
    (null), Android's another path for 1%, Java refuses 2%, the others verify alike."""
    n = len(leaves)
    other = pl.Series([rng.random() < 0.01 for _ in range(n)])
    refused = pl.Series([rng.random() < 0.02 for _ in range(n)])
    frame = pl.DataFrame(
        {
            "leaf": leaves,
            "inter": inters,
            "root": [roots[(i + 1) % 5] for i in inter_of],
            "other": other,
            "refused": refused,
        }
    )

    def entry(store: str, verified: pl.Expr, chain: pl.Expr) -> pl.Expr:
        return pl.struct(store=pl.lit(store), verified=verified, chain=chain)

    none = pl.lit(None, pl.List(pl.String))
    android_chain = pl.when(pl.col("other")).then(pl.concat_list("leaf", "inter", "root"))
    java_chain = pl.when(pl.col("refused")).then(pl.lit([], pl.List(pl.String)))
    return frame.select(
        store_paths=pl.concat_list(
            entry("mozilla", pl.lit(True), none),
            entry("android", pl.lit(True), android_chain.otherwise(none)),
            entry("apple", pl.lit(True), none),
            entry("microsoft", pl.lit(True), none),
            entry("java", ~pl.col("refused"), java_chain.otherwise(none)),
        )
    ).to_series()


def _policies(root: Path):
    from pinscan.policy.model import Combine, Location, Match, Pin, PinSet, Policy, Rule

    spec = json.loads((root / "rules.json").read_text())
    rules = tuple(
        Rule(
            host=r["domain"],
            match=Match.SUBDOMAINS if r["subdomains"] else Match.EXACT,
            pin_sets=(PinSet(tuple(Pin.sha256(p) for p in r["pins"])),),
            location=Location("bench", i + 1),
        )
        for i, r in enumerate(spec)
    )
    return [
        Policy("android-like", "android", rules, Combine.MOST_SPECIFIC),
        Policy("okhttp-like", "okhttp", rules, Combine.UNION),
    ]


def run_polars(root: Path) -> dict:
    import pinscan

    policies = _policies(root)
    ds = pinscan.open(root)
    start = time.perf_counter()
    cpu = time.process_time()
    result = pinscan.evaluate(ds, policies)
    seconds = time.perf_counter() - start
    counts = dict(result.group_by("verdict").len().iter_rows())
    return {
        "seconds": seconds,
        "cpu_seconds": time.process_time() - cpu,
        "rows": result.height,
        "verdicts": {str(k): v for k, v in counts.items()},
        "peak_rss_mb": _peak_rss_mb(),
    }


def _peak_rss_mb() -> float:
    """VmHWM of this process: unlike ru_maxrss, it starts afresh at exec, so the parent that
    built the dataset does not count."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_loop(root: Path, sample: int) -> dict:
    """The same judgement per endpoint in plain Python: the cost a row-at-a-time tool pays."""
    import pinscan

    policies = _policies(root)
    ds = pinscan.open(root)
    endpoints = ds.endpoints.select("endpoint_id", "host").head(sample).collect()
    chains = (
        ds.chains.filter(pl.col("endpoint_id").is_in(endpoints["endpoint_id"].implode()))
        .join(ds.certificates.select("cert_sha256", "spki_sha256"), on="cert_sha256")
        .collect()
    )
    start = time.perf_counter()
    pins_of: dict[str, set[str]] = {}
    for endpoint_id, pin in zip(chains["endpoint_id"], chains["spki_sha256"], strict=True):
        pins_of.setdefault(endpoint_id, set()).add(pin)
    verdicts: dict[str, int] = {}
    for policy in policies:
        by_host: dict[str, list] = {}
        for rule in policy.rules:
            by_host.setdefault(rule.host, []).append(rule)
        for endpoint_id, host in endpoints.iter_rows():
            labels = host.split(".")
            matched = []
            for depth in range(len(labels)):
                for rule in by_host.get(".".join(labels[depth:]), ()):
                    if depth == 0 or rule.match.value == "subdomains":
                        matched.append((depth, rule))
            if not matched:
                verdict = "unpinned"
            else:
                if policy.combine.value == "most_specific":
                    best = min(d for d, _ in matched)
                    matched = [(d, r) for d, r in matched if d == best]
                served = pins_of.get(endpoint_id, set())
                ok = any(p.digest in served for _, r in matched for p in r.pins)
                verdict = "pass" if ok else "fail"
            verdicts[verdict] = verdicts.get(verdict, 0) + 1
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rows": sum(verdicts.values()), "sample": sample}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=1_000_000)
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--loop-sample", type=int, default=50_000)
    parser.add_argument("--store-paths", action="store_true", help="as a scan of this pinscan")
    parser.add_argument("--child", choices=["polars", "loop"], help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "polars":
        print(json.dumps(run_polars(args.root)))
        return 0
    if args.child == "loop":
        print(json.dumps(run_loop(args.root, args.loop_sample)))
        return 0
    with tempfile.TemporaryDirectory(prefix="pinscan-bench-policy-") as tmp:
        root = Path(tmp) / "ds"
        start = time.perf_counter()
        build(root, args.endpoints, args.rules, store_paths=args.store_paths)
        print(f"built {args.endpoints:,} endpoints in {time.perf_counter() - start:.1f} s")

        def child(kind: str) -> dict:
            out = subprocess.run(
                [sys.executable, __file__, "--child", kind, "--root", str(root),
                 "--loop-sample", str(args.loop_sample)],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            return json.loads(out.stdout)

        polars_run = child("polars")
        loop_run = child("loop")
    per_endpoint_loop = loop_run["seconds"] / loop_run["sample"]
    loop_full = per_endpoint_loop * args.endpoints
    print(
        f"pinscan.evaluate: {args.endpoints:,} endpoints x 2 policies x {args.rules} rules -> "
        f"{polars_run['rows']:,} verdicts in {polars_run['seconds']:.2f} s "
        f"(CPU {polars_run['cpu_seconds']:.2f} s, {os.cpu_count()} cores), "
        f"peak RSS {polars_run['peak_rss_mb']:.0f} MB; verdicts {polars_run['verdicts']}"
    )
    print(
        f"python loop: {loop_run['sample']:,} endpoints in {loop_run['seconds']:.2f} s -> "
        f"{loop_full:.1f} s extrapolated to {args.endpoints:,} "
        f"({loop_full / polars_run['seconds']:.1f}x the polars time)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
