# SPDX-License-Identifier: Apache-2.0
"""`pinscan scan --processes N`: the shards of one machine's worker processes, folded into one
plain dataset equal to a scan in one process, every endpoint once; a worker that dies is run
again; a scan interrupted (a shard that keeps failing, or the driver killed) is finished by
`--resume`; a history's scan in several processes; the bad values, refused in one line."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from test_shard import assert_same_scan, fast, run

import pinscan
from pinscan.config import ScanConfig
from pinscan.dataset import shards as layout
from pinscan.errors import ConfigError, PinscanError
from pinscan.scanner import processes
from pinscan.scanner import shards as running

from cliresult import refused
from cliresult import run as cli
from fleet import servers

# Every scan test, on each TLS engine (issue 16).
pytestmark = pytest.mark.usefixtures("each_engine")


@pytest.fixture
def fleet_lines() -> Iterator[list[str]]:
    """TLS servers (several names each), closed ports, a name that does not resolve, a bad line
    and a duplicate, as tests/test_shard.py scans them."""
    with servers.good() as good, servers.good() as other, servers.closed_port() as closed:
        yield [
            *(f"127.0.0.1:{good.port} {name}" for name in ("a.test", "b.test", "default.test")),
            *(f"127.0.0.1:{other.port} {name}" for name in ("a.test", "b.test")),
            f"127.0.0.2:{other.port} www.b.test",
            *(f"127.0.{i}.1:{closed.port}" for i in range(1, 25)),
            "nosuchhost.invalid:443",
            "bad line with:too many:colons here",
            f"127.0.0.1:{good.port} a.test",
        ]


def _plain(out: Path) -> None:
    """``out`` is one plain dataset: nothing of the shards is left."""
    names = {p.name for p in out.iterdir()}
    assert names <= {"scan.json", "endpoints", "chains", "certificates", "pin_results",
                     ".pinscan.lock"}, names  # fmt: skip
    assert not layout.is_sharded(out)


def test_two_processes_equal_one(tmp_path: Path, fleet_lines: list[str]) -> None:
    inventory = tmp_path / "inventory.txt"
    inventory.write_text("".join(line + "\n" for line in fleet_lines))
    one, two = tmp_path / "one", tmp_path / "two"
    for out, n in ((one, "1"), (two, "2")):
        code, err = run(str(inventory), "-o", str(out), "--processes", n, "--retries", "0", "-q")
        assert code == 0, err
    _plain(two)
    a, b = pinscan.open(one, verify=True), pinscan.open(two, verify=True)
    assert_same_scan(a, b)
    assert "processes" not in a.meta and b.meta["processes"] == 2
    assert b.meta["complete"] and b.meta["arguments"]["processes"] == 2
    for key in ("targets", "endpoints", "statuses", "duplicates", "bad_lines", "unverified"):
        assert a.meta["counts"][key] == b.meta["counts"][key], key
    endpoints = b.endpoints.collect()
    assert endpoints["endpoint_id"].n_unique() == endpoints.height  # every endpoint once
    certificates = b.certificates.collect()
    assert certificates["cert_sha256"].n_unique() == certificates.height  # every certificate once


def test_the_python_api_counts_statuses_from_every_process(
    tmp_path: Path, fleet_lines: list[str]
) -> None:
    seen: dict[str, int] = {}

    def on_status(status: str, n: int) -> None:
        seen[status] = seen.get(status, 0) + n

    ds = pinscan.scan(fleet_lines, tmp_path / "out", config=fast(processes=3), on_status=on_status)
    assert ds.meta["processes"] == 3
    assert seen == ds.meta["counts"]["statuses"]
    # Small inventories, by default, stay in this process: a worker costs more than it saves.
    small = pinscan.scan(fleet_lines, tmp_path / "small", config=fast())
    assert "processes" not in small.meta
    assert_same_scan(ds, small)


def test_a_history_scan_in_two_processes(tmp_path: Path, fleet_lines: list[str]) -> None:
    history = tmp_path / "history"
    ds = pinscan.scan(fleet_lines, history=history, config=fast(processes=2))
    assert ds.meta["processes"] == 2
    whole = pinscan.scan(fleet_lines, tmp_path / "whole", config=fast())
    assert ds.endpoints.collect().height == whole.endpoints.collect().height
    assert not list((history / "_staging").iterdir())


def _dies_once(task: running.ShardTask) -> dict[str, Any]:
    """Shard 0's first worker dies in the middle of its shard (SIGKILL, as the OOM killer does)."""
    mark = Path(task.out).parent / "died"
    if task.shard.index == 0 and not mark.exists():
        mark.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return processes.scan_shard(task)


def _shard_1_fails(task: running.ShardTask) -> dict[str, Any]:
    if task.shard.index == 1:
        raise OSError("no space left on device (a test)")
    return processes.scan_shard(task)


def _inventory(lines: list[str]) -> Any:
    return pinscan.read_inventory(io.BytesIO("\n".join(lines).encode()), format="text")


def test_a_worker_that_dies_is_run_again(tmp_path: Path, fleet_lines: list[str]) -> None:
    out = tmp_path / "out"
    meta = processes.scan_processes(
        _inventory(fleet_lines), out, config=fast(), processes=2, runner=_dies_once
    )
    assert (tmp_path / "died").exists() and meta["complete"]
    _plain(out)
    assert_same_scan(pinscan.open(out), pinscan.scan(fleet_lines, tmp_path / "one", config=fast()))


def test_a_failing_shard_is_named_and_resume_finishes_the_scan(
    tmp_path: Path, fleet_lines: list[str]
) -> None:
    out = tmp_path / "out"
    with pytest.raises(PinscanError, match=r"1 of 2 shards failed \(shard 1: OSError: no space"):
        processes.scan_processes(
            _inventory(fleet_lines), out, config=fast(), processes=2, runner=_shard_1_fails,
            retries=1,
        )  # fmt: skip
    half = pinscan.open(out)  # a sharded scan, as far as it got
    assert half.meta["complete"] is False and half.meta["shards"]["finished"] == [0]
    inventory = tmp_path / "inventory.txt"
    inventory.write_text("".join(line + "\n" for line in fleet_lines))
    code, err = run(str(inventory), "-o", str(out), "--resume", "-q")
    assert code == 0, err
    _plain(out)
    assert_same_scan(pinscan.open(out), pinscan.scan(fleet_lines, tmp_path / "one", config=fast()))


#: Targets of the scans the tests interrupt.
N = 3000


def _interruptible_scan(
    tmp_path: Path, net: int, rate: int, parts: int, stderr: int
) -> tuple[list[str], subprocess.Popen, Path]:
    """A 3,000-target scan of closed ports in 127.NET/16 over 2 processes, paced by ``rate`` so
    that it can be stopped mid-way, once its staged attempts hold ``parts`` committed parts
    (a bounded wait): the command (to resume with), the driver, and its dataset."""
    inventory = tmp_path / "inventory.txt"
    inventory.write_text("".join(f"127.{net}.{i // 250}.{i % 250 + 1}:9\n" for i in range(N)))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "pinscan", "scan", str(inventory), "-o", str(out), "-q",
           "--processes", "2", "--retries", "0"]  # fmt: skip
    proc = subprocess.Popen(
        [*cmd, "--rate", str(rate), "--flush-rows", "50"], stdout=subprocess.DEVNULL,
        stderr=stderr, text=True, start_new_session=True,
    )  # fmt: skip
    for _ in range(400):
        if len(list(out.glob("_staging/*/endpoints/part-*.parquet"))) >= parts:
            break
        time.sleep(0.05)
    return cmd, proc, out


def test_a_killed_driver_is_finished_by_resume(tmp_path: Path) -> None:
    cmd, proc, out = _interruptible_scan(tmp_path, 1, rate=500, parts=4, stderr=subprocess.DEVNULL)
    os.kill(proc.pid, signal.SIGKILL)  # the driver alone: its workers must not go on without it
    proc.wait(timeout=30)
    for _ in range(100):
        if layout.running(out) is None:
            break
        time.sleep(0.05)
    assert layout.running(out) is None, "a worker outlived its driver"
    assert pinscan.open(out).meta["complete"] is False
    resumed = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    _plain(out)
    ds = pinscan.open(out, verify=True)
    eps = ds.endpoints.collect()
    assert eps.height == N and eps["target"].n_unique() == N
    assert sorted(eps["line"]) == list(range(1, N + 1))
    assert ds.meta["counts"]["skipped_already_done"] > 0, "the killed attempts' rows were kept"


def test_ctrl_c_stops_the_driver_and_its_workers(tmp_path: Path) -> None:
    cmd, proc, out = _interruptible_scan(tmp_path, 2, rate=300, parts=2, stderr=subprocess.PIPE)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal does: the driver and its workers
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err, err
    assert layout.running(out) is None
    assert pinscan.open(out).meta["complete"] is False, "stopped, not run again to the end"
    resumed = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    eps = pinscan.open(out).endpoints.collect()
    assert eps.height == N and eps["target"].n_unique() == N


def test_bad_values_are_refused(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.txt"
    inventory.write_text("127.0.0.1:9\n")
    out = str(tmp_path / "out")
    for value in ("0", "-1", "1025"):
        refused(cli("scan", str(inventory), "-o", out, "--processes", value), "--processes")
    for args in (["--jsonl"], ["--shard", "0/2"], ["--dask", "local"]):
        code, err = run(str(inventory), "-o", out, "--processes", "2", *args)
        assert code == 2 and "Traceback" not in err, (args, err)
    assert not Path(out).exists()
    for bad in (0, 1025, 1.5, "2", True):
        with pytest.raises(ConfigError, match=r"ScanConfig\.processes"):
            ScanConfig(processes=bad)
    two = ScanConfig(processes=2)
    with pytest.raises(ConfigError, match="on_endpoint"):
        pinscan.scan(["127.0.0.1:9"], out, config=two, on_endpoint=print)
    with pytest.raises(ConfigError, match="processes"):
        pinscan.scan(["127.0.0.1:9"], out, config=two, shard="0/2")
    assert not Path(out).exists()


def test_each_worker_gets_its_share_of_the_limits() -> None:
    config = ScanConfig(concurrency=500, rate=100, per_address=5, verify_processes=None)
    share = processes.share(config, 4)
    assert (share.concurrency, share.rate, share.per_address) == (125, 25.0, 2)
    assert share.processes == 1 and share.verify_processes == 0
    assert processes.share(ScanConfig(verify_processes=1), 2).verify_processes == 1


def test_the_endpoints_of_a_folded_scan_are_in_every_part_once(
    tmp_path: Path, fleet_lines: list[str]
) -> None:
    ds = pinscan.scan(fleet_lines, tmp_path / "out", config=fast(processes=2, flush_rows=3))
    parts = sorted((tmp_path / "out" / "endpoints").iterdir())
    assert len(parts) == ds.meta["parts"]["endpoints"] > 2
    ids = pl.concat([pl.read_parquet(p, columns=["endpoint_id"]) for p in parts])
    assert ids["endpoint_id"].n_unique() == ids.height == ds.meta["counts"]["endpoints"]
