# SPDX-License-Identifier: Apache-2.0
"""Outputs that cannot be written, or that something else is writing: a second writer on an
output (scan, `--resume`, a history scan or audit, the same shard) is refused while a real scan
runs, naming it; `report` and `diff` say it is running, and once it is killed with SIGKILL, that
it was interrupted, and `--resume` finishes it. A full disk, a read-only file system, an output
that is a file, a symbolic link inside the output or someone else's files in it are one line and
exit 2, damage nothing, and (for a full disk) `--resume` finishes once there is room."""

from __future__ import annotations

import errno
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

import pinscan
from pinscan.config import ScanConfig, Timeouts
from pinscan.dataset import shards as layout
from pinscan.dataset.schema import PIN_RESULTS_SCHEMA
from pinscan.dataset.writer import write_pin_results
from pinscan.errors import DatasetError
from pinscan.inventory import read_inventory

from cliresult import refused, run
from fleet import servers

FAST = ScanConfig(
    concurrency=16, retries=0, timeouts=Timeouts(connect=2, handshake=2, deadline=4), flush_rows=3
)
PINSCAN = [sys.executable, "-m", "pinscan"]
LOCK = ".pinscan.lock"


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def refused_lines(port: int, n: int) -> list[str]:
    """``n`` targets on loopback addresses where nothing listens: refused at once."""
    return [f"127.0.{i // 250}.{i % 250 + 1}:{port}" for i in range(n)]


# --- a second writer ------------------------------------------------------------------------


@pytest.fixture
def hanging() -> Iterator[str]:
    """An inventory line whose connection hangs (a full accept queue), so that a scan of it
    runs until its timeout, and a few that are refused at once."""
    with servers.blackhole() as hole, servers.closed_port() as closed:
        yield [f"127.0.0.1:{hole.port}", *refused_lines(closed.port, 20)]


def start(args: list[str], directory: Path, written: str) -> subprocess.Popen:
    """A real scan that hangs on one target; returns once it has written a part (``written``,
    a glob in ``directory``)."""
    proc = subprocess.Popen(
        [*PINSCAN, "scan", *args, "-q", "--retries", "0", "--connect-timeout", "120",
         "--deadline", "240", "--flush-seconds", "0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    for _ in range(400):  # bounded wait for a first part
        if proc.poll() is not None or list(directory.glob(written)):
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    return proc


def kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    if proc.stderr:
        proc.stderr.close()


def names_the_scan(line: str, proc: subprocess.Popen, scan_id: str | None = None) -> None:
    assert f"pid {proc.pid} on {socket.gethostname()}" in line and "is writing here" in line
    assert scan_id is None or scan_id in line, (scan_id, line)


def test_a_second_writer_is_refused_while_a_scan_runs(tmp_path: Path, hanging: list[str]) -> None:
    """The issue's `--resume` during a running scan wrote duplicate rows."""
    inventory = tmp_path / "inventory.txt"
    inventory.write_text("".join(f"{line}\n" for line in hanging))
    out = tmp_path / "out"
    proc = start([str(inventory), "-o", str(out)], out, "endpoints/part-*")
    try:
        scan_id = json.loads((out / "scan.json").read_text())["scan_id"]
        names_the_scan(
            refused(run("scan", str(inventory), "-o", str(out), "--resume")), proc, scan_id
        )
        names_the_scan(refused(run("scan", str(inventory), "-o", str(out))), proc, scan_id)
        with pytest.raises(DatasetError, match="is writing here"):
            write_pin_results(out, pl.DataFrame(schema=PIN_RESULTS_SCHEMA))
        report = run("report", str(out))
        assert report.exit_code == 0, report.output
        assert (
            f"scan {scan_id} (pid {proc.pid}" in report.stdout and "still running" in report.stdout
        )
        assert json.loads(run("report", str(out), "--format", "json").stdout)["scan"]["running"]
    finally:
        kill(proc)  # SIGKILL: the kernel drops its lock

    assert "interrupted; pinscan scan --resume finishes it" in run("report", str(out)).stdout
    fast = ["--connect-timeout", "0.2", "--deadline", "0.5", "-q"]
    resumed = run("scan", str(inventory), "-o", str(out), "--resume", *fast)
    assert resumed.exit_code == 0, resumed.output
    endpoints = pinscan.open(out, verify=True).endpoints.collect()
    assert sorted(endpoints["target"]) == sorted(hanging), "every target exactly once"
    assert not (out / LOCK).exists(), "a lock file goes with its holder"


def test_a_second_scan_into_a_history_is_refused(tmp_path: Path, hanging: list[str]) -> None:
    inventory = tmp_path / "inventory.txt"
    inventory.write_text("".join(f"{line}\n" for line in hanging))
    history = tmp_path / "H"
    audit = tmp_path / "audit.toml"
    audit.write_text(f'inventory = "{inventory}"\nhistory = "{history}"\n')
    proc = start([str(inventory), "--history", str(history)], history, "_staging/*/endpoints/*")
    try:
        for args in (
            ["scan", str(inventory), "--history", str(history)],
            ["scan", str(inventory), "--history", str(history), "--resume"],  # was a crash
            ["audit", str(audit)],
        ):
            names_the_scan(refused(run(*args), history), proc)
        for args in (["report", str(history)], ["diff", str(history)]):
            line = refused(run(*args), history, "no committed scan")
            assert f"(pid {proc.pid} on" in line and "still running" in line
    finally:
        kill(proc)

    line = refused(run("diff", str(history)), history)
    assert "1 interrupted; finish with pinscan scan --history --resume" in line
    fast = ["--connect-timeout", "0.2", "--deadline", "0.5", "-q"]
    resumed = run("scan", str(inventory), "--history", str(history), "--resume", *fast)
    assert resumed.exit_code == 0, resumed.output
    assert sorted(pinscan.open(history).endpoints.collect()["target"]) == sorted(hanging)


def test_the_same_shard_twice_at_once_is_refused(tmp_path: Path, hanging: list[str]) -> None:
    inventory = tmp_path / "inventory.txt"
    inventory.write_text("".join(f"{line}\n" for line in hanging))
    (hole,) = (t for t in read_inventory(inventory) if t.target == hanging[0])
    shard = layout.Shard(layout.shard_of(hole.target_id, 2), 2)
    out = tmp_path / "out"
    args = [str(inventory), "-o", str(out), "--shard", str(shard)]
    proc = start(args, out, "_staging/*/endpoints/*")
    try:
        line = refused(run("scan", str(inventory), "-o", str(out), "--shard", str(shard)), out)
        names_the_scan(line, proc)
        assert f"shard {shard} of scan" in line
        report = run("report", str(out))
        assert report.exit_code == 0 and f"(pid {proc.pid}" in report.stdout, report.output
    finally:
        kill(proc)
    assert "INCOMPLETE: shards 0, 1 not done" in run("report", str(out)).stdout  # none finished


# --- outputs that cannot be written ---------------------------------------------------------


def test_an_output_that_is_a_file_is_refused(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.txt"
    inventory.write_text("127.0.0.1:9\n")
    file = tmp_path / "file"
    file.write_text("mine\n")
    refused(run("scan", str(inventory), "-o", str(file), "-q"), file, "not a directory")
    usage = run("scan", str(inventory), "--history", str(file), "-q")  # click's own check
    assert usage.exit_code == 2 and "is a file" in usage.stderr
    audit = tmp_path / "audit.toml"
    audit.write_text(f'inventory = "{inventory}"\nhistory = "{file}"\n')
    refused(run("audit", str(audit)), file, "not a directory")
    assert file.read_text() == "mine\n"


@pytest.fixture
def mount_point(tmp_path: Path) -> Iterator[Path]:
    """An empty directory for a tmpfs of the test's own, unmounted afterwards."""
    point = tmp_path / "mnt"
    point.mkdir()
    yield point
    subprocess.run(["umount", str(point)], capture_output=True, check=False)


def mount(point: Path, options: str) -> None:
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")


def remount(point: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(point)], check=True)


def test_a_full_disk_is_an_error_and_resume_finishes_once_there_is_room(
    mount_point: Path, tmp_path: Path
) -> None:
    mount(mount_point, "size=64k")
    with servers.closed_port() as closed:
        lines = refused_lines(closed.port, 3000)
    inventory = tmp_path / "inventory.txt"
    inventory.write_text("".join(f"{line}\n" for line in lines))
    out = mount_point / "out"
    # One process: the single writer's parts fill the disk (tests/test_processes.py: several).
    args = ["scan", str(inventory), "-o", str(out), "-q", "--retries", "0", "--flush-rows", "100",
            "--processes", "1"]  # fmt: skip
    done = subprocess.run([*PINSCAN, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1, done.stderr
    assert "cannot write: no space left on device" in done.stderr and str(out) in done.stderr
    # What was written is whole: it reads, every part matches its checksum.
    partial = pinscan.open(out, verify=True)
    assert partial.meta["complete"] is False
    assert 0 < partial.endpoints.collect().height < len(lines)

    remount(mount_point, "size=16m")
    resumed = subprocess.run([*PINSCAN, *args, "--resume"], capture_output=True, text=True,
                             timeout=120)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    endpoints = pinscan.open(out, verify=True).endpoints.collect()
    assert endpoints.height == len(lines) and endpoints["target"].n_unique() == len(lines)


def test_a_read_only_file_system_is_an_error_and_reads_still_work(
    mount_point: Path, tmp_path: Path
) -> None:
    mount(mount_point, "size=4m")
    with servers.closed_port() as closed:
        lines = refused_lines(closed.port, 5)
    inventory = tmp_path / "inventory.txt"
    inventory.write_text("".join(f"{line}\n" for line in lines))
    out = mount_point / "out"
    assert run("scan", str(inventory), "-o", str(out), "-q", "--retries", "0").exit_code == 0
    remount(mount_point, "ro")
    before = snapshot(out)
    for args in (["-o", str(mount_point / "new")], ["-o", str(out), "--resume"],
                 ["--history", str(mount_point / "H")]):  # fmt: skip
        refused(run("scan", str(inventory), *args, "-q"), mount_point, "read-only file system")
    assert run("report", str(out)).exit_code == 0, "reading needs no write"
    assert snapshot(out) == before


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (errno.ENOSPC, "no space left on device; what was written before is kept"),
        (errno.EROFS, "read-only file system"),
        (errno.EACCES, "permission denied"),
        (errno.EIO, "input/output error"),
    ],
)
def test_a_failed_write_is_a_dataset_error_from_the_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, words: str
) -> None:
    """The file writes of one scan fail after its first part (as they do on a full disk, in any
    run as any user): pinscan.scan raises one DatasetError, what was written before is whole,
    and a resume once the writes work again finishes the scan with every target once. (The
    first flush takes the first 3 rows, the last one the rest: two parts at least.)"""
    out = tmp_path / "out"
    write_bytes = pathlib.Path.write_bytes
    written = []

    def failing(self: pathlib.Path, data: bytes) -> int:
        if self.is_relative_to(out) and written:
            raise OSError(code, os.strerror(code))
        written.append(self)
        return write_bytes(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", failing)
    with servers.closed_port() as closed:
        lines = refused_lines(closed.port, 200)
        with pytest.raises(DatasetError) as caught:
            pinscan.scan(lines, out, config=FAST)
        assert f"cannot write: {words}" in caught.value.message
        assert caught.value.path.startswith(str(out))
        partial = pinscan.open(out, verify=True)
        assert 0 < partial.endpoints.collect().height < len(lines)
        monkeypatch.undo()
        ds = pinscan.scan(lines, out, config=FAST, resume=True)
    endpoints = ds.endpoints.collect()
    assert sorted(endpoints["target"]) == sorted(lines)


# --- where the output is ---------------------------------------------------------------------


def test_symbolic_links_inside_the_output_are_refused(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.txt"
    inventory.write_text("127.0.0.1:9\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "endpoints").symlink_to(elsewhere)
    refused(run("scan", str(inventory), "-o", str(out), "-q"), out / "endpoints", "symbolic link")
    assert not list(elsewhere.iterdir()) and sorted(p.name for p in out.iterdir()) == ["endpoints"]

    history = tmp_path / "H"
    assert run("scan", str(inventory), "--history", str(history), "-q").exit_code == 0
    (history / "chains").rename(elsewhere / "chains")
    (history / "chains").symlink_to(elsewhere / "chains")
    before = snapshot(elsewhere)
    line = refused(run("scan", str(inventory), "--history", str(history), "-q"), "symbolic link")
    assert str(history / "chains") in line
    assert snapshot(elsewhere) == before

    plain = tmp_path / "plain"
    assert run("scan", str(inventory), "-o", str(plain), "-q").exit_code == 0
    (plain / "chains").rename(elsewhere / "plain-chains")
    (plain / "chains").symlink_to(elsewhere / "plain-chains")
    refused(run("scan", str(inventory), "-o", str(plain), "--resume", "-q"), plain / "chains")


def test_a_folder_of_other_files_is_not_an_output(tmp_path: Path) -> None:
    """--history refused it already; -o wrote a dataset among the files."""
    inventory = tmp_path / "inventory.txt"
    inventory.write_text("127.0.0.1:9\n")
    out = tmp_path / "photos"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"\xff\xd8")
    line = refused(run("scan", str(inventory), "-o", str(out), "-q"), out, "'holiday.jpg'")
    assert "which pinscan did not write" in line
    assert sorted(p.name for p in out.iterdir()) == ["holiday.jpg"], "nothing written there"
    # Empty, or what a killed create left (its table directories, no scan.json yet), is fine.
    left = tmp_path / "left"
    for table in ("endpoints", "chains", "certificates"):
        (left / table).mkdir(parents=True)
    assert run("scan", str(inventory), "-o", str(left), "-q").exit_code == 0
