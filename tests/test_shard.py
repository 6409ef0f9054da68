# SPDX-License-Identifier: Apache-2.0
"""`pinscan scan --shard I/N`: shards by a stable hash, each committed whole at its own path; all
N shards, run one by one, equal a scan in one piece; a retried shard replaces itself; a shard
killed with SIGKILL is finished by `--resume`; the usage errors."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl
import pytest
from click.testing import CliRunner

import pinscan
from pinscan.cli import main
from pinscan.config import ScanConfig, Timeouts
from pinscan.dataset import shards as layout
from pinscan.errors import DatasetError, ShardError
from pinscan.inventory import read_inventory

from fleet import servers

# Every scan test, on each TLS engine (issue 16).
pytestmark = pytest.mark.usefixtures("each_engine")


def fast(**changes: object) -> ScanConfig:
    """Quick settings for loopback; built at each call, so that a test's engine (the
    `each_engine` fixture's default) is the one its in-process scans use too."""
    timeouts = Timeouts(connect=2, handshake=2, deadline=4)
    return ScanConfig(concurrency=64, retries=0, timeouts=timeouts, **changes)


#: Columns that differ between two scans of the same fleet whatever the sharding.
VOLATILE = ("resolve_ms", "connect_ms", "handshake_ms", "scanned_at", "scan_id", "days_to_expiry")


def comparable(ds: pinscan.ScanDataset) -> dict[str, pl.DataFrame]:
    """The dataset's tables without timings and scan ids, in a fixed order."""
    return {
        "endpoints": ds.endpoints.drop(VOLATILE).sort("endpoint_id").collect(),
        "chains": ds.chains.drop("scan_id").sort("endpoint_id", "source", "position").collect(),
        "certificates": ds.certificates.drop("scan_id").sort("cert_sha256").collect(),
    }


def assert_same_scan(a: pinscan.ScanDataset, b: pinscan.ScanDataset) -> None:
    ta, tb = comparable(a), comparable(b)
    for table in ta:
        assert ta[table].equals(tb[table]), table


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["scan", *args])
    return result.exit_code, result.output  # stdout and stderr


@pytest.fixture
def fleet_lines() -> Iterator[list[str]]:
    """A few TLS servers (several names each), closed ports, a name that does not resolve, a
    bad line and a duplicate."""
    with servers.good() as good, servers.good() as other, servers.closed_port() as closed:
        yield [
            *(f"127.0.0.1:{good.port} {name}" for name in ("a.test", "b.test", "default.test")),
            *(f"127.0.0.1:{other.port} {name}" for name in ("a.test", "b.test")),
            f"127.0.0.1:{good.port}",
            f"127.0.0.2:{other.port} www.b.test",
            *(f"127.0.{i}.1:{closed.port}" for i in range(1, 25)),
            "nosuchhost.invalid:443",
            "bad line with:too many:colons here",
            f"127.0.0.1:{good.port} a.test",
        ]


def test_shard_specs_and_the_stable_hash() -> None:
    assert layout.Shard.parse("3/16") == layout.Shard(3, 16)
    assert layout.Shard.parse(" 0 / 1 ").name == "shard-0000-of-0001"
    for bad in ("5/4", "4/4", "x", "0/0", "-1/4", "1/", "1/2/3", ""):
        with pytest.raises(ShardError):
            layout.Shard.parse(bad)
    # A SHA-256 of the normalised target: the same on every machine and Python version.
    target = next(read_inventory(io.BytesIO(b"Example.COM.:443\n")))
    assert target.target_id == "a7c44e41a8ec0683"
    assert layout.shard_of(target.target_id, 16) == 3


def test_every_shard_one_by_one_equals_one_scan(tmp_path: Path, fleet_lines: list[str]) -> None:
    inventory = tmp_path / "inventory.txt"
    inventory.write_text("".join(line + "\n" for line in fleet_lines))
    whole = pinscan.scan(inventory, tmp_path / "whole", config=fast())
    out = tmp_path / "out"
    for i in range(3):
        code, err = run(str(inventory), "-o", str(out), "--shard", f"{i}/3", "--retries", "0")
        assert code == 0, err
        assert f"shard {i}/3" in err and f"shards done: {i + 1} of 3" in err
        if i < 2:
            assert pinscan.open(out).meta["complete"] is False
    sharded = pinscan.open(out)
    assert_same_scan(sharded, whole)
    assert sharded.meta["complete"] is True
    assert sharded.meta["shards"] == {"count": 3, "finished": [0, 1, 2], "missing": []}
    counts, single = sharded.meta["counts"], whole.meta["counts"]
    for key in ("targets", "endpoints", "statuses", "duplicates", "bad_lines", "unverified"):
        assert counts[key] == single[key], key
    # The shards split the targets: each has some, none has one twice.
    per_shard = [
        pl.read_parquet(layout.shard_dir(out, layout.Shard(i, 3)) / "endpoints").height
        for i in range(3)
    ]
    assert all(per_shard) and sum(per_shard) == whole.endpoints.collect().height
    manifest = layout.read_manifest(out)
    assert sorted(manifest["shards"]) == ["0", "1", "2"]
    assert {m["scan_id"] for m in layout.finished(out, manifest).values()} == {manifest["scan_id"]}
    assert not (out / layout.STAGING).exists()
    # What other tools read: every shard's parts, no staging, no duplicates.
    n = duckdb.sql(f"SELECT count(*) FROM read_parquet('{out}/shards/*/endpoints/*.parquet')")
    assert n.fetchall() == [(whole.endpoints.collect().height,)]
    assert pinscan.dataset.select(str(out)).meta["scan_id"] == manifest["scan_id"]


def test_the_python_api_runs_one_shard(tmp_path: Path, fleet_lines: list[str]) -> None:
    ds = pinscan.scan(fleet_lines, tmp_path / "out", shard="1/2", config=fast())
    assert ds.meta["shards"]["missing"] == [0]
    ds = pinscan.scan(fleet_lines, tmp_path / "out", shard=layout.Shard(0, 2), config=fast())
    assert_same_scan(ds, pinscan.scan(fleet_lines, tmp_path / "whole", config=fast()))


def test_a_retried_shard_replaces_its_output(tmp_path: Path, fleet_lines: list[str]) -> None:
    out = tmp_path / "out"
    first = pinscan.scan(fleet_lines, out, shard="0/2", config=fast()).endpoints.collect()
    again = pinscan.scan(fleet_lines, out, shard="0/2", config=fast()).endpoints.collect()
    assert again.height == first.height and again["target_id"].is_unique().all()
    assert (out / "shards").exists() and len(list((out / "shards").iterdir())) == 1
    # --resume finishes the shard: it is done, so nothing is scanned again.
    before = (layout.shard_dir(out, layout.Shard(0, 2)) / "scan.json").read_text()
    pinscan.scan(fleet_lines, out, shard="0/2", config=fast(), resume=True)
    assert (layout.shard_dir(out, layout.Shard(0, 2)) / "scan.json").read_text() == before


def test_two_attempts_committing_at_once_never_mix(tmp_path: Path) -> None:
    """Attempts that finish together each move the other's result aside until one rename
    lands: the shard is always one attempt's directory, whole."""
    root = tmp_path / "out"
    root.mkdir()
    part = layout.Shard(2, 4)
    for round_ in range(30):
        stages = []
        for attempt in ("a", "b", "c"):
            stage = layout.new_stage(root, part)
            stage.mkdir()
            for n in range(5):
                (stage / f"file{n}").write_text(f"{attempt}{round_}")
            stages.append(stage)
        barrier = threading.Barrier(len(stages))

        def commit(stage: Path, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            layout.commit(root, part, stage)

        threads = [threading.Thread(target=commit, args=(s,)) for s in stages]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
        final = layout.shard_dir(root, part)
        contents = {p.read_text() for p in final.iterdir()}
        assert len(contents) == 1 and len(list(final.iterdir())) == 5
        assert not (root / layout.STAGING).exists(), "losers and replaced attempts are gone"


def test_kill_9_then_resume_finishes_the_shard(tmp_path: Path) -> None:
    n = 2000
    inventory = tmp_path / "inventory.txt"
    inventory.write_text("".join(f"127.1.{i // 250}.{i % 250 + 1}:9\n" for i in range(n)))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "pinscan", "scan", str(inventory), "-o", str(out), "-q"]
    shard0 = [*cmd, "--shard", "0/2", "--retries", "0"]
    proc = subprocess.Popen(
        [*shard0, "--rate", "400", "--flush-rows", "50"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):  # bounded wait for a few committed parts in the staged attempt
        if len(list(out.glob("_staging/*/endpoints/part-*.parquet"))) >= 3:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert pinscan.open(out).meta["shards"]["finished"] == []

    resumed = subprocess.run([*shard0, "--resume"], capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    done = layout.finished(out, layout.read_manifest(out))[0]
    assert done["counts"]["skipped_already_done"] > 0, "the killed attempt's rows were kept"
    other = subprocess.run([*cmd, "--shard", "1/2"], capture_output=True, text=True, timeout=120)
    assert other.returncode == 0, other.stderr
    eps = pinscan.open(out).endpoints.collect()
    assert eps.height == n and eps["target"].n_unique() == n
    assert sorted(eps["line"]) == list(range(1, n + 1))
    assert not [p for p in out.rglob(".*") if p.is_file() and p.name != ".shards.lock"]


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.txt"
    inventory.write_text("127.0.0.1:9\n127.0.0.2:9\n")
    out = str(tmp_path / "out")
    for spec in ("5/4", "x", "0/0", "1/"):
        code, err = run(str(inventory), "-o", out, "--shard", spec)
        assert code == 2 and "--shard" in err and "Traceback" not in err, (spec, err)
    assert not Path(out).exists()
    cases = [
        ["--history", str(tmp_path / "h"), "--shard", "0/2"],
        ["-o", out, "--shard", "0/2", "--dask", "local"],
        ["-o", out, "--shards", "4"],
        ["-o", out, "--shard", "0/2", "--shards", "4"],
        ["-o", out, "--dask", "tcp://127.0.0.1:1", "--dask-workers", "2"],
        ["-o", out, "--dask", "local", "--jsonl"],
        ["-o", out, "--shard", "0/2", "--policy", str(inventory)],
    ]
    for args in cases:
        code, err = run(str(inventory), *args)
        assert code == 2 and "Traceback" not in err, (args, err)
    assert run(str(inventory), "-o", out, "--shard", "0/2", "--retries", "0", "-q")[0] == 0
    code, err = run(str(inventory), "-o", out, "--shard", "0/3")
    assert code == 2 and "2 shards" in err, err  # N cannot change within one OUT
    code, err = run(str(inventory), "-o", out)
    assert code == 2 and "sharded" in err, err
    code, err = run(str(inventory), "-o", out, "--resume")
    assert code == 2 and "--shard I/N" in err, err
    plain = str(tmp_path / "plain")
    assert run(str(inventory), "-o", plain, "--retries", "0", "-q")[0] == 0
    code, err = run(str(inventory), "-o", plain, "--shard", "0/2")
    assert code == 2 and "unsharded" in err, err
    with pytest.raises(DatasetError):
        pinscan.open(out, scans=-2)


def test_shard_counts_merge_key_by_key() -> None:
    def meta(ok: int, refused: int, in_children: int, errors: list[str]) -> dict:
        return {
            "counts": {
                "endpoints": ok + refused,
                "statuses": {"ok": ok, "refused": refused},
                "chains_verified": {
                    "in_process": 1, "in_children": in_children, "child_errors": errors,
                },
            }
        }  # fmt: skip

    manifest = {"scan_id": "s", "count": 2, "started_at": "2026-11-27T12:00:00+00:00"}
    merged = layout.merged_meta(manifest, {0: meta(3, 0, 2, []), 1: meta(1, 4, 0, ["gone"])})
    counts = merged["counts"]
    assert counts["endpoints"] == 8
    assert counts["statuses"] == {"ok": 4, "refused": 4}
    verified = {"in_process": 2, "in_children": 2, "child_errors": ["gone"]}
    assert counts["chains_verified"] == verified
