# SPDX-License-Identifier: Apache-2.0
"""The lockout analysis at fleet scale, beside plain evaluation of the same scan in one run.

Builds a dataset in the real layout, as bench_policy does (endpoints over 2,000 domains, a
distinct leaf each, two policies of 1,000 rules), but with chains through real CAs of the
shipped catalog, so that the planner finds real siblings, families and cross-signs: 50 issuing
intermediates currently valid from five families (Let's Encrypt, DigiCert, Sectigo, Google
Trust Services, Amazon) and the paths the catalog builds from each to a root Mozilla trusts. The
rules pin, per domain, two intermediates, or one intermediate and its root. Then, each in a child
process (seconds, CPU and peak RSS are its own):

- ``pinscan.evaluate`` over all endpoints;
- ``pinscan.lockout`` with every scenario (renewals, every sibling, a switch to each other family
  the fleet uses, a spare key, root removal) over the same endpoints and policies.

    .venv/bin/python -m benches.bench_lockout [--endpoints 1000000] [--rules 1000] [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from benches.bench_policy import _peak_rss_mb, fleet_endpoints

FAMILIES = ("Let's Encrypt", "DigiCert", "Sectigo", "Google Trust Services", "Amazon")


def _intermediates(count: int) -> list[list[str]]:
    """``count`` real issuing CAs spread over :data:`FAMILIES`, each as its path of pins up to a
    root Mozilla trusts (issuer first)."""
    from pinscan.catalog.graph import Catalog

    catalog = Catalog.shipped()
    cas = catalog.cas.filter(
        ~pl.col("is_root") & pl.col("can_issue_tls") & (pl.col("not_after") > pl.lit(_NOW))
    )
    paths: list[list[str]] = []
    per_family = count // len(FAMILIES)
    for family in FAMILIES:
        mine = cas.filter(
            pl.col("owner").str.contains(family.split()[0], literal=True)
            | pl.col("le_name").str.contains(family, literal=True).fill_null(False)
        ).sort("not_before", descending=True)
        found = 0
        for pin in mine["spki_sha256"]:
            path = catalog.path(pin, to=lambda row: "mozilla" in (row["trusted_by"] or ()))
            if path and len(path) >= 2:
                paths.append(path)
                found += 1
                if found == per_family:
                    break
    return paths


_NOW = __import__("datetime").datetime.now(__import__("datetime").UTC)


def build(root: Path, endpoints: int, rules: int, seed: int = 7) -> None:
    from pinscan.dataset.schema import CHAINS_SCHEMA, certificates_schema
    from pinscan.dataset.writer import DatasetWriter

    rng = random.Random(seed)
    paths = _intermediates(50)
    writer = DatasetWriter.create(root, scan_id="bench", arguments={}, version="bench")
    domains, frame = fleet_endpoints(rng, endpoints, rules)
    ids, names = frame["endpoint_id"].to_list(), frame["host"].to_list()
    # Each domain is served through one CA path, as a site's hosts usually are.
    path_of_domain = {d: rng.randrange(len(paths)) for d in domains}
    chosen = [path_of_domain[n.rsplit(".", 2)[-2] + ".example"] for n in names]
    ca_certs = {pin: f"{i:064x}" for i, pin in enumerate({p for path in paths for p in path})}
    chain_ids, positions, shas = [], [], []
    for i, path_index in enumerate(chosen):
        chain = [f"leaf{i:060x}", *(ca_certs[p] for p in paths[path_index])]
        chain_ids += [ids[i]] * len(chain)
        positions += range(len(chain))
        shas += chain
    chains = pl.DataFrame(
        {
            "endpoint_id": chain_ids,
            "source": "verified",
            "position": positions,
            "cert_sha256": shas,
            "scan_id": "bench",
        },
        schema=CHAINS_SCHEMA,
    )
    schema = certificates_schema()
    leaves = pl.DataFrame({"cert_sha256": [f"leaf{i:060x}" for i in range(endpoints)]})
    leaves = leaves.with_columns(spki_sha256=pl.col("cert_sha256").str.slice(-43) + "=")
    cas = pl.DataFrame(
        {"cert_sha256": list(ca_certs.values()), "spki_sha256": list(ca_certs.keys())}
    )
    certs = pl.concat([leaves, cas]).with_columns(key_type=pl.lit("rsa"))
    certs = certs.with_columns(
        pl.lit(None, dtype).alias(n) for n, dtype in schema.items() if n not in certs.columns
    ).select(schema.names())
    for table, data in (
        ("endpoints", frame),
        ("chains", chains),
        ("certificates", certs.cast(schema)),  # type: ignore[arg-type]
    ):
        data.write_parquet(root / table / "part-000001.parquet")
    writer.finish({"endpoints": endpoints})
    policy_rules = []
    for i, domain in enumerate(rng.sample(domains, rules)):
        path = paths[path_of_domain[domain]]
        other = paths[rng.randrange(len(paths))]
        pins = [path[0], other[0]] if i % 2 else [path[0], path[-1]]
        policy_rules.append({"domain": domain, "subdomains": i % 3 == 0, "pins": pins})
    (root / "rules.json").write_text(json.dumps(policy_rules))
    # The spare key the backup_key scenario re-keys leaves to.
    spare = ec.generate_private_key(ec.SECP256R1()).public_key()
    (root / "spare.pem").write_bytes(
        spare.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )


def _policies(root: Path):
    from benches.bench_policy import _policies as policies

    return policies(root)


def run(root: Path, kind: str) -> dict:
    import pinscan

    policies = _policies(root)
    dataset = pinscan.open(root)
    start = time.perf_counter()
    cpu = time.process_time()
    if kind == "evaluate":
        result = pinscan.evaluate(dataset, policies)
        scenarios = 0
    else:
        result = pinscan.lockout(dataset, policies, "all", backup_keys=[root / "spare.pem"])
        scenarios = result["scenario"].n_unique()
    return {
        "seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - cpu,
        "rows": result.height,
        "scenarios": scenarios,
        "peak_rss_mb": _peak_rss_mb(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=1_000_000)
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--child", choices=["evaluate", "lockout"], help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run(args.root, args.child)))
        return 0
    print(f"CPU: {_cpu()}, {os.cpu_count()} cores; Python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="pinscan-bench-lockout-") as tmp:
        root = Path(tmp) / "ds"
        start = time.perf_counter()
        build(root, args.endpoints, args.rules)
        print(f"built {args.endpoints:,} endpoints in {time.perf_counter() - start:.1f} s")

        def child(kind: str) -> dict:
            command = ["-m", "benches.bench_lockout", "--child", kind, "--root", str(root)]
            out = subprocess.run(
                [sys.executable, *command], check=True, capture_output=True, text=True
            )
            return json.loads(out.stdout)

        for round_ in range(1, args.rounds + 1):
            plain, lock = child("evaluate"), child("lockout")
            print(f"round {round_}: evaluate {_figures(plain)}")
            made = f"{lock['scenarios']} scenarios"
            print(f"round {round_}: lockout, all scenarios: {_figures(lock)}, {made}")
            wall = lock["seconds"] / plain["seconds"]
            cpu = lock["cpu_seconds"] / plain["cpu_seconds"]
            print(f"round {round_}: lockout / evaluate: {wall:.2f}x wall, {cpu:.2f}x CPU")
    return 0


def _figures(run: dict) -> str:
    return (
        f"{run['seconds']:.2f} s (CPU {run['cpu_seconds']:.2f} s), "
        f"peak {run['peak_rss_mb']:.0f} MB, {run['rows']:,} rows"
    )


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


if __name__ == "__main__":
    sys.exit(main())
