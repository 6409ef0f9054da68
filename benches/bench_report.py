# SPDX-License-Identifier: Apache-2.0
"""``pinscan report`` at fleet scale: 1,000,000 endpoints, summary and HTML page.

Builds a synthetic dataset in the real layout (``scan.json``; ``endpoints``, ``chains``,
``certificates`` and ``pin_results`` Parquet parts), generated column-wise by polars from hashes
of the row number, so it is the same every run: 92% of endpoints complete a handshake (the rest
are refused, time out, fail DNS or get an alert, each with its error string), four TLS versions,
about two endpoints per leaf certificate, 40 issuers with a skewed share, five key types, leaves
expiring from 30 days ago to 400 days ahead, 3% unverified and 1% served under a wrong name, and
the verdicts of two policies for every endpoint (as ``scan --policy`` stores them).

Each measurement runs in a fresh child process and reports its wall time and its own peak RSS
(``VmHWM``, which exec resets: ``ru_maxrss`` would count the parent's memory at fork):

- ``summary``: ``pinscan.summarize`` (the terminal and ``--format json`` figures);
- ``html``: the same with the 5,000-row endpoint table, and ``write_html``;
- ``cli``: the command ``pinscan report DS --html FILE --format json``, end to end;
- ``eager``: for scale, only reading the columns the report uses into memory, which is what a
  non-lazy report would hold before computing anything.

    flock /tmp/pinscan-bench.lock .venv/bin/python -m benches.bench_report [--endpoints 1000000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

ISSUERS = 40
#: Columns of the tables the report reads (what the eager baseline loads).
REPORT_COLUMNS = {
    "endpoints": [
        "endpoint_id", "target", "ip", "port", "status", "error", "tls_version", "leaf_sha256",
        "verified", "verify_error", "hostname_match",
    ],
    "certificates": [
        "cert_sha256", "subject", "issuer", "key_type", "key_bits", "curve", "not_after",
    ],
    "pin_results": ["endpoint_id", "target", "policy", "verdict", "note"],
}  # fmt: skip


def _fill(frame: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """``frame`` with every other column of ``schema`` as nulls, in order and types."""
    missing = [
        pl.lit(None, dtype).alias(n) for n, dtype in schema.items() if n not in frame.columns
    ]
    return frame.with_columns(missing).select(schema.names()).cast(schema)  # type: ignore[arg-type]


def _pick(key: pl.Expr, choices: list[str], weights: list[int]) -> pl.Expr:
    """A weighted choice among ``choices`` by ``key`` (an integer spread evenly over 0..99)."""
    expr, bound = None, 0
    for choice, weight in zip(choices, weights, strict=True):
        bound += weight
        expr = (pl.when(key < bound) if expr is None else expr.when(key < bound)).then(
            pl.lit(choice)
        )
    assert expr is not None and bound == 100
    return expr.otherwise(pl.lit(choices[-1]))


def build(root: Path, endpoints: int) -> None:
    from pinscan.dataset.schema import (
        CHAINS_SCHEMA,
        ENDPOINTS_SCHEMA,
        PIN_RESULTS_SCHEMA,
        certificates_schema,
    )
    from pinscan.dataset.writer import DatasetWriter

    writer = DatasetWriter.create(root, scan_id="bench", arguments={}, version="bench")
    now = pl.lit(dt.datetime.now(dt.UTC))

    def roll(seed: int) -> pl.Expr:
        return (pl.col("i").hash(seed) % 100).cast(pl.Int32)

    leaves = endpoints // 2
    base = pl.DataFrame({"i": pl.int_range(endpoints, eager=True)})
    ends = (
        base.with_columns(
            endpoint_id=pl.format("{}", pl.col("i").hash(1)).str.slice(0, 16),
            host=pl.format("h{}.d{}.example", pl.col("i"), pl.col("i") % 2000),
            status=_pick(
                roll(2),
                ["ok", "refused", "connect_timeout", "dns_error", "tls_alert", "reset"],
                [92, 3, 2, 1, 1, 1],
            ),
            leaf=(pl.col("i").hash(3) % leaves),
        )
        .with_columns(
            target=pl.col("host") + ":443",
            target_id=pl.col("endpoint_id"),
            line=pl.col("i") + 1,
            ip=pl.format(
                "10.{}.{}.{}",
                pl.col("i") // 65536 % 256,
                pl.col("i") // 256 % 256,
                pl.col("i") % 256,
            ),
            port=pl.lit(443),
            error=pl.when(pl.col("status") == "refused")
            .then(pl.lit("Connection refused"))
            .when(pl.col("status") == "connect_timeout")
            .then(pl.lit("no answer in 5.0 s"))
            .when(pl.col("status") == "dns_error")
            .then(pl.lit("Name or service not known"))
            .when(pl.col("status") == "tls_alert")
            .then(pl.lit("handshake_failure"))
            .when(pl.col("status") == "reset")
            .then(pl.lit("Connection reset by peer")),
            tls_version=pl.when(pl.col("status") == "ok").then(
                _pick(roll(4), ["TLSv1.3", "TLSv1.2", "TLSv1.1", "TLSv1"], [70, 28, 1, 1])
            ),
            leaf_sha256=pl.when(pl.col("status") == "ok").then(
                pl.format("{}", pl.col("leaf").hash(5)).str.pad_start(64, "0")
            ),
            verified=pl.when(pl.col("status") == "ok").then(roll(6) >= 3),
            hostname_match=pl.when(pl.col("status") == "ok").then(roll(7) >= 1),
            scan_id=pl.lit("bench"),
        )
        .with_columns(
            verify_error=pl.when(pl.col("verified").not_()).then(
                _pick(
                    roll(8),
                    [
                        "mozilla: validation failed: cert is not valid at validation time",
                        "mozilla: candidates exhausted: unable to get local issuer certificate",
                        "mozilla: validation failed: self-signed certificate",
                    ],
                    [40, 40, 20],
                )
            ),
            trust_store=pl.when(pl.col("verified")).then(pl.lit("mozilla")),
        )
    )
    endpoint_frame = _fill(ends, ENDPOINTS_SCHEMA)

    served = ends.filter(pl.col("status") == "ok").select("leaf", "leaf_sha256").unique("leaf")
    # A few CAs issue most certificates: rank = ISSUERS * u^3 for u uniform in [0, 1).
    issuer_rank = ((pl.col("leaf").hash(9) % 1000) / 1000).pow(3) * ISSUERS
    certs = served.with_columns(
        cert_sha256=pl.col("leaf_sha256"),
        spki_sha256=pl.format("{}=", pl.col("leaf").hash(10)),
        subject=pl.format("CN=h{}.example", pl.col("leaf")),
        issuer=pl.format("CN=Bench CA {},O=Bench Trust Services,C=US", issuer_rank.cast(pl.Int32)),
        key_type=_pick(
            (pl.col("leaf").hash(11) % 100).cast(pl.Int32), ["ec", "rsa"], [60, 40]
        ),
        key_bits=pl.lit(None, pl.UInt32),
        curve=pl.lit(None, pl.String),
        # From 30 days ago to 400 days ahead, by the hour.
        not_after=now
        + pl.duration(hours=(pl.col("leaf").hash(12) % (430 * 24)).cast(pl.Int64) - 30 * 24),
    ).with_columns(
        curve=pl.when(pl.col("key_type") == "ec").then(
            pl.when(pl.col("leaf") % 4 == 0)
            .then(pl.lit("secp384r1"))
            .otherwise(pl.lit("secp256r1"))
        ),
        key_bits=pl.when(pl.col("key_type") == "rsa").then(
            pl.when(pl.col("leaf") % 10 < 8).then(2048).otherwise(4096)
        ).otherwise(256).cast(pl.UInt32),
        scan_id=pl.lit("bench"),
    )  # fmt: skip
    cert_frame = _fill(certs, certificates_schema())
    chain_frame = _fill(
        ends.filter(pl.col("status") == "ok").select(
            "endpoint_id",
            source=pl.lit("presented"),
            position=pl.lit(0, pl.Int16),
            cert_sha256="leaf_sha256",
            scan_id=pl.lit("bench"),
        ),
        CHAINS_SCHEMA,
    )
    pins = pl.concat(
        ends.select(
            "endpoint_id", "target", "ip", "port",
            name=pl.col("host"),
            policy=pl.lit(f"/etc/pinscan/{name}"),
            format=pl.lit(fmt),
            verdict=pl.when(pl.col("i") % 2000 < share).then(
                pl.when(pl.col("status") != "ok").then(pl.lit("no_chain"))
                .otherwise(_pick(roll(13 + k), ["pass", "fail", "report-only", "expired"],
                                 [95, 2, 2, 1]))
            ).otherwise(pl.lit("unpinned")),
        )
        for k, (name, fmt, share) in enumerate(
            [("network_security_config.xml", "android", 300), ("Info.plist", "ios", 120)]
        )
    )  # fmt: skip
    pin_frame = _fill(pins.with_columns(note=pl.lit(None, pl.String)), PIN_RESULTS_SCHEMA)
    (root / "pin_results").mkdir(exist_ok=True)
    for table, frame in (
        ("endpoints", endpoint_frame),
        ("chains", chain_frame),
        ("certificates", cert_frame),
        ("pin_results", pin_frame),
    ):
        frame.write_parquet(root / table / "part-000001.parquet")
    writer.finish({"endpoints": endpoints})


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def measure(kind: str, root: Path, page: Path) -> dict:
    import pinscan
    from pinscan.report import summarize
    from pinscan.report.page import write_html

    start = time.perf_counter()
    extra: dict = {}
    if kind == "summary":
        summary = summarize(pinscan.open(root))
        extra["status_ok"] = summary.count("status", status="ok")
    elif kind == "html":
        summary = summarize(pinscan.open(root), table_rows=5000)
        write_html(summary, page)
        extra["page_bytes"] = page.stat().st_size
    elif kind == "cli":
        from pinscan.cli import main

        stdout = sys.stdout
        sys.stdout = open("/dev/null", "w")  # noqa: SIM115 - the JSON is not the measurement
        try:
            main(["report", str(root), "--html", str(page), "--format", "json"],
                 standalone_mode=False)  # fmt: skip
        finally:
            sys.stdout.close()
            sys.stdout = stdout
        extra["page_bytes"] = page.stat().st_size
    else:  # eager: what a non-lazy report holds before computing anything
        frames = [
            pl.read_parquet(root / table / "part-000001.parquet", columns=columns)
            for table, columns in REPORT_COLUMNS.items()
        ]
        extra["in_memory_mb"] = sum(f.estimated_size() for f in frames) / 2**20
    return {"seconds": time.perf_counter() - start, "peak_rss_mb": _peak_rss_mb(), **extra}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=1_000_000)
    parser.add_argument(
        "--child", choices=["summary", "html", "cli", "eager"], help=argparse.SUPPRESS
    )
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--page", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.root, args.page)))
        return 0
    with tempfile.TemporaryDirectory(prefix="pinscan-bench-report-") as tmp:
        root, page = Path(tmp) / "ds", Path(tmp) / "report.html"
        start = time.perf_counter()
        build(root, args.endpoints)
        disk = sum(p.stat().st_size for p in root.rglob("*.parquet")) / 2**20
        print(f"built {args.endpoints:,} endpoints in {time.perf_counter() - start:.1f} s "
              f"({disk:.0f} MB of Parquet)")  # fmt: skip
        for kind in ("summary", "html", "cli", "eager"):
            out = subprocess.run(
                [sys.executable, __file__, "--child", kind, "--root", str(root),
                 "--page", str(page)],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            result = json.loads(out.stdout)
            figures = ", ".join(f"{k} {v:,.2f}" if isinstance(v, float) else f"{k} {v:,}"
                                for k, v in result.items())  # fmt: skip
            print(f"{kind}: {figures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
