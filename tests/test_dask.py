# SPDX-License-Identifier: Apache-2.0
"""`pinscan scan --dask` and `pinscan.scan(dask=client)` on a LocalCluster (2 worker processes,
1 thread each): the same dataset as a scan in one process; a shard that raises and a worker
killed with `os._exit` in the middle of a shard still give every target exactly once; the CLI,
`--resume`, and the message when Dask is missing.

Faults are injected through the Python API (``runner=``, a wrapper around the real
:func:`pinscan.scanner.shards.run_shard`), never through a switch in pinscan itself."""

from __future__ import annotations

import functools
import io
import logging
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner

import pinscan
from pinscan.cli import main
from pinscan.config import ScanConfig, Timeouts
from pinscan.dataset import shards as layout
from pinscan.errors import PinscanError
from pinscan.inventory import read_inventory
from pinscan.scanner import shards as running
from pinscan.scanner.dask import scan_dask

from fleet import servers

# Every scan test, on each TLS engine (issue 16).
pytestmark = pytest.mark.usefixtures("each_engine")

distributed = pytest.importorskip("distributed")

QUICK = Timeouts(connect=2, handshake=2, deadline=4)


def fast(**changes: object) -> ScanConfig:
    """Quick settings for loopback; built at each call, so that a test's engine (the
    `each_engine` fixture's default) is the one its scans use."""
    return ScanConfig(concurrency=64, retries=0, timeouts=QUICK, **changes)


VOLATILE = ("resolve_ms", "connect_ms", "handshake_ms", "scanned_at", "scan_id", "days_to_expiry")


def comparable(ds: pinscan.ScanDataset) -> dict[str, pl.DataFrame]:
    return {
        "endpoints": ds.endpoints.drop(VOLATILE).sort("endpoint_id").collect(),
        "chains": ds.chains.drop("scan_id").sort("endpoint_id", "source", "position").collect(),
        "certificates": ds.certificates.drop("scan_id").sort("cert_sha256").collect(),
    }


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        scheduler_kwargs={"dashboard": False, "dashboard_address": ":0"},
        silence_logs=logging.CRITICAL,
    )
    with cluster, distributed.Client(cluster, timeout="30s") as c:
        yield c


def test_a_local_cluster_scan_equals_a_single_process_scan(tmp_path: Path, client: Any) -> None:
    with servers.good() as good, servers.good() as other, servers.closed_port() as closed:
        lines = [
            *(f"127.0.0.1:{good.port} {n}" for n in ("a.test", "b.test", "default.test")),
            *(f"127.0.0.1:{other.port} {n}" for n in ("a.test", "www.b.test")),
            f"127.0.0.2:{good.port}",
            *(f"127.0.{i}.1:{closed.port}" for i in range(1, 30)),
            "nosuchhost.invalid:443",
            "bad line with:too many:colons here",
            f"127.0.0.1:{good.port} a.test",
        ]
        whole = pinscan.scan(lines, tmp_path / "whole", config=fast())
        sharded = pinscan.scan(lines, tmp_path / "out", dask=client, shards=5, config=fast())
    a, b = comparable(sharded), comparable(whole)
    for table in a:
        assert a[table].equals(b[table]), table
    assert sharded.meta["complete"] and sharded.meta["shards"]["count"] == 5
    for key in ("targets", "endpoints", "statuses", "duplicates", "bad_lines"):
        assert sharded.meta["counts"][key] == whole.meta["counts"][key], key
    assert sorted(os.listdir(tmp_path / "out")) == [".shards.lock", "shards", "shards.json"]


def _faulty(faults: Path, task: running.ShardTask) -> dict[str, Any]:
    """Shard 0's first attempt raises before it starts; shard 1's first attempt takes its
    worker down with ``os._exit`` half a second into the scan. Files in ``faults`` remember,
    across processes, which first attempts have happened."""
    first = faults / f"shard{task.shard.index}"
    if task.shard.index in (0, 1) and not first.exists():
        first.touch()
        if task.shard.index == 0:
            raise RuntimeError("injected failure")
        threading.Timer(0.5, os._exit, (1,)).start()
    return running.run_shard(task)


def test_a_raising_shard_and_a_killed_worker_lose_and_repeat_nothing(
    tmp_path: Path, client: Any
) -> None:
    n = 1200
    lines = [f"127.2.{i // 250}.{i % 250 + 1}:9" for i in range(n)]
    # Paced so that a shard takes about a second and the kill lands in its middle.
    config = ScanConfig(concurrency=64, retries=0, rate=300, flush_rows=25)
    faults = tmp_path / "faults"
    faults.mkdir()
    inventory = read_inventory(io.BytesIO("\n".join(lines).encode()))
    ds = scan_dask(
        inventory, tmp_path / "out", client, shards=4, config=config,
        runner=functools.partial(_faulty, faults),
    )  # fmt: skip
    assert sorted(p.name for p in faults.iterdir()) == ["shard0", "shard1"]
    eps = ds.endpoints.collect()
    assert eps.height == n and eps["target"].n_unique() == n
    assert sorted(eps["line"]) == list(range(1, n + 1))
    assert set(eps["status"]) == {"refused"}
    assert ds.meta["complete"] and ds.meta["counts"]["targets"] == n
    assert not (tmp_path / "out" / layout.STAGING).exists()


def _broken(task: running.ShardTask) -> dict[str, Any]:
    if task.shard.index == 1:
        raise RuntimeError("this shard always fails")
    return running.run_shard(task)


def test_failed_shards_are_reported_and_resume_runs_only_them(tmp_path: Path, client: Any) -> None:
    lines = [f"127.3.0.{i}:9" for i in range(1, 41)]
    out = tmp_path / "out"
    with pytest.raises(PinscanError, match=r"1 of 3 shards failed \(shard 1: RuntimeError"):
        inventory = read_inventory(io.BytesIO("\n".join(lines).encode()))
        scan_dask(inventory, out, client, shards=3, config=fast(), runner=_broken)
    partial = pinscan.open(out)
    assert partial.meta["complete"] is False and partial.meta["shards"]["missing"] == [1]
    finished = layout.finished(out, layout.read_manifest(out))
    done = {i: m["finished_at"] for i, m in finished.items()}
    ds = pinscan.scan(lines, out, dask=client, config=fast(), resume=True)
    assert ds.meta["complete"] and ds.endpoints.collect()["target"].n_unique() == 40
    after = layout.finished(out, layout.read_manifest(out))
    assert all(after[i]["finished_at"] == t for i, t in done.items()), "done shards kept"


def test_cli_dask_local(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.txt"
    inventory.write_text("".join(f"127.4.0.{i}:9\n" for i in range(1, 31)))
    out = tmp_path / "out"
    args = ["scan", str(inventory), "-o", str(out), "--retries", "0"]
    local = ["--dask", "local", "--dask-workers", "2", "--shards", "3"]
    result = CliRunner().invoke(main, [*args, *local])
    assert result.exit_code == 0, result.output
    assert "scanned 30 targets" in result.output and "shards done: 3 of 3" in result.output
    assert pinscan.open(out).endpoints.collect().height == 30
    again = CliRunner().invoke(main, [*args, *local])
    assert again.exit_code == 2 and "--resume" in again.output
    resume = ["--dask", "local", "--dask-workers", "1", "--resume"]
    resumed = CliRunner().invoke(main, [*args, *resume])
    assert resumed.exit_code == 0, resumed.output


def test_without_dask_the_cli_says_how_to_get_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    inventory = tmp_path / "inventory.txt"
    inventory.write_text("127.0.0.1:9\n")
    args = ["scan", str(inventory), "-o", str(tmp_path / "o"), "--dask", "local"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert "pinscan[dask]" in result.stderr and "Traceback" not in result.output


def test_the_router_restates_the_dask_retries() -> None:
    # pinscan.scanner.router states it again, so that a scan's signature imports no Dask code.
    from pinscan.scanner import dask, router

    assert router.DASK_RETRIES == dask.RETRIES
