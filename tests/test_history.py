# SPDX-License-Identifier: Apache-2.0
"""`pinscan scan --history`, `pinscan.open(H, scans=...)` and `pinscan diff` against real scans:
an in-process fleet scanned twice, with keys rotated, a certificate renewed, an issuer changed, an
intermediate dropped, a server taken down and one brought up in between; a scan killed with
SIGKILL that readers never see and `--resume` finishes; DuckDB and pyarrow reading the layout."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.dataset as pads
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization

import pinscan
from pinscan.cli import main
from pinscan.dataset import select
from pinscan.errors import DatasetError

from fleet import pki, servers

# Every scan test, on each TLS engine (issue 16).
pytestmark = pytest.mark.usefixtures("each_engine")


def renewed(issued: pki.Issued, issuer: pki.Issued | None = None) -> pki.Issued:
    """A new certificate for the same key and names, from ``issuer`` (the same CA by default)."""
    name = issued.cert.subject.rfc4514_string().split("CN=")[1].split(",")[0]
    return pki._issue(name, issued.key, issuer or pki.intermediate(), ca=False, names=(name,))


def leaf_only(issued: pki.Issued) -> pki.Issued:
    return pki.Issued(issued.key, issued.cert, (issued.cert,))


@dataclass
class Fleet:
    history: Path
    first: str
    second: str
    bundle: Path
    runs: list[tuple[int, str, str]]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env={"COLUMNS": "300"})  # no folded cells
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """Two scans into one history, with --policy (pinning rot's first key at the leaf)."""
    tmp = tmp_path_factory.mktemp("history")
    bundle = tmp / "root.pem"
    bundle.write_bytes(pki.root().cert.public_bytes(serialization.Encoding.PEM))
    other_ca = pki._issue("Pinscan Other Intermediate", pki._key("ec"), pki.root(), ca=True)
    leaves = {n: pki.leaf(f"{n}.history.test") for n in ("rot", "renew", "issuer", "chain", "same")}
    state = {n: servers.Swappable(issued) for n, issued in leaves.items()}
    state["back"] = servers.Swappable(None)
    policy = tmp / "pins.toml"
    policy.write_text(
        '[[pin-set]]\ndomain = "rot.history.test"\npositions = "leaf"\n'
        f'pins = ["sha256/{pinscan.spki_pin(leaves["rot"].der)}"]\n'
    )
    history = tmp / "H"
    runs: list[tuple[int, str, str]] = []
    with contextlib.ExitStack() as stack, contextlib.ExitStack() as down_stack:
        lines = {
            n: f"127.0.0.1:{stack.enter_context(servers.swappable(s)).port} {n}.history.test"
            for n, s in state.items()
        }
        for name, keep in (("down", down_stack), ("gone", stack)):
            server = keep.enter_context(servers.tls(pki.leaf(f"{name}.history.test")))
            lines[name] = f"127.0.0.1:{server.port} {name}.history.test"
        lines["new"] = lines["same"].replace("same.", "new.")

        def scan(names: list[str]) -> None:
            inventory = tmp / "inventory.txt"
            inventory.write_text("".join(lines[n] + "\n" for n in names))
            args = ["--policy", str(policy), "--ca-bundle", str(bundle), "--retries", "0", "-q"]
            runs.append(run("scan", str(inventory), "--history", str(history), *args))

        scan([*state, "down", "gone"])
        state["rot"].swap(pki.leaf("rot.history.test", "www.rot.history.test"))
        state["renew"].swap(renewed(leaves["renew"]))
        state["issuer"].swap(renewed(leaves["issuer"], other_ca))
        state["chain"].swap(leaf_only(leaves["chain"]))
        state["back"].swap(pki.leaf("back.history.test"))
        down_stack.close()  # its port now refuses connections
        scan([*state, "down", "new"])
        first, second = pinscan.open(history, scans="all").scans["scan_id"].to_list()
        yield Fleet(history, first, second, bundle, runs)


def by_name(frame: pl.DataFrame) -> dict[str, set[str]]:
    """Short name (``rot`` for ``127.0.0.1:port rot.history.test``) -> its change kinds."""
    out: dict[str, set[str]] = {}
    for target, change in frame.select("target", "change").iter_rows():
        out.setdefault(target.split()[-1].split(".")[0], set()).add(change)
    return out


def test_scans_land_in_the_history_layout(fleet: Fleet) -> None:
    assert [code for code, _, _ in fleet.runs] == [0, 1], fleet.runs  # 2nd: rot's pin fails
    h = fleet.history
    assert sorted(p.name for p in (h / "_scans").iterdir()) == sorted(
        f"{s}.json" for s in (fleet.first, fleet.second)
    )
    assert not list((h / "_staging").iterdir()), "staging is emptied by the commit"
    for table in ("endpoints", "chains", "certificates", "pin_results"):
        partitions = sorted(p.relative_to(h / table) for p in (h / table).glob("*/*"))
        assert [p.parts[1] for p in partitions] == sorted(
            f"scan_id={s}" for s in (fleet.first, fleet.second)
        )
        assert all(p.parts[0].startswith("scan_date=20") for p in partitions)
    marker = json.loads((h / "_scans" / f"{fleet.second}.json").read_text())
    assert marker["complete"] is True and marker["scan_date"] == marker["started_at"][:10]
    assert "history" not in marker["arguments"]


def test_open_reads_the_latest_scan_or_all(fleet: Fleet) -> None:
    latest = pinscan.open(fleet.history)
    assert latest.meta["scan_id"] == fleet.second
    assert latest.scans["scan_id"].to_list() == [fleet.second]
    eps = latest.endpoints.collect()
    assert set(eps["scan_id"]) == {fleet.second} and eps.height == 8
    assert eps.schema["scan_date"] == pl.Date
    every = pinscan.open(fleet.history, scans="all")
    assert every.scans["scan_id"].to_list() == [fleet.first, fleet.second]
    counts = dict(every.endpoints.group_by("scan_id").len().collect().iter_rows())
    assert counts == {fleet.first: 8, fleet.second: 8}
    # served() keeps the scans apart: one row per certificate each scan saw, none crossed.
    served = every.served().collect()
    per_scan = dict(served.group_by("scan_id").len().iter_rows())
    single = {s: pinscan.open(fleet.history, s).served().collect().height for s in per_scan}
    assert per_scan == single
    # The policy's verdicts went into each scan, judged against that scan.
    verdicts = every.pin_results.filter(pl.col("target").str.contains("rot.history")).collect()
    assert dict(verdicts.select("scan_id", "verdict").iter_rows()) == {
        fleet.first: "pass",
        fleet.second: "fail",
    }


def test_select_names_scans_of_a_history(fleet: Fleet) -> None:
    h = str(fleet.history)
    assert select(h).meta["scan_id"] == fleet.second
    assert select(f"{h}@-1").meta["scan_id"] == fleet.second
    assert select(f"{h}@-2").meta["scan_id"] == fleet.first
    assert select(f"{h}@{fleet.first}").meta["scan_id"] == fleet.first
    assert pinscan.open(h, [fleet.first]).scans.height == 1
    with pytest.raises(DatasetError, match="out of range"):
        select(f"{h}@-3")
    with pytest.raises(DatasetError, match="no committed scan 'nope'"):
        select(f"{h}@nope")


def test_diff_of_two_real_scans(fleet: Fleet) -> None:
    changes = pinscan.diff(f"{fleet.history}@-2", fleet.history)
    kinds = by_name(changes)
    assert kinds["rot"] == {"key_rotated"}
    assert kinds["renew"] == {"renewed"}
    # Same key, new certificate from another CA.
    assert kinds["issuer"] == {"renewed", "issuer_changed"}
    # The intermediate is no longer sent, so the chain no longer verifies.
    assert kinds["chain"] == {"chain_changed", "verification_changed"}
    assert kinds["down"] == {"new_failure"}
    assert kinds["back"] == {"recovered"}
    assert kinds["gone"] == {"vanished"}
    assert kinds["new"] == {"appeared"}
    assert "same" not in kinds
    row = changes.filter(pl.col("change") == "issuer_changed").row(0, named=True)
    assert "Other Intermediate" in row["new"] and "Other Intermediate" in row["detail"]
    row = changes.filter(pl.col("change") == "new_failure").row(0, named=True)
    assert (row["old"], row["new"]) == ("ok", "refused")
    row = changes.filter(pl.col("change") == "chain_changed").row(0, named=True)
    assert row["new"] == "" and "Pinscan Test Intermediate" in row["detail"]
    counts = dict(pinscan.diff_summary(changes).iter_rows())
    assert counts["key_rotated"] == 1 and counts["status_changed"] == 0

    policy = pinscan.load_policies(fleet.history.parent / "pins.toml")
    judged = pinscan.diff(f"{fleet.history}@-2", fleet.history, policy)
    verdicts = judged.filter(pl.col("change") == "verdict_changed")
    assert verdicts.select("old", "new").rows() == [("pass", "fail")]
    assert "pins.toml" in verdicts["detail"][0]


def test_diff_command(fleet: Fleet) -> None:
    h = str(fleet.history)
    code, out, err = run("diff", f"{h}@-2", h)
    assert code == 1, err  # key_rotated and new_failure are there
    assert "key_rotated" in out and "rot.history.test" in out and "changes:" in out
    code, alone, _ = run("diff", h)
    assert (code, alone) == (1, out), "H alone compares its two latest scans"

    code, out, _ = run("diff", f"{h}@-2", h, "--format", "json", "--fail-on", "none")
    assert code == 0
    rows = json.loads(out)
    assert {r["change"] for r in rows} >= {"key_rotated", "renewed", "appeared", "vanished"}
    assert set(rows[0]) == {"endpoint_id", "target", "ip", "port", "change", "old", "new", "detail"}

    assert run("diff", h, "--fail-on", "address_changed,status_changed")[0] == 0
    assert run("diff", h, "--fail-on", "renewed")[0] == 1
    code, out, _ = run("diff", h, "--fail-on", "recovered", "-q")
    assert code == 1 and "back.history.test" in out and "rot.history.test" not in out
    assert run("diff", h, "--fail-on", "status_changed", "-q")[:2] == (0, "")
    code, out, _ = run("diff", h, "-p", str(fleet.history.parent / "pins.toml"),
                       "--fail-on", "verdict_changed", "--format", "json")  # fmt: skip
    assert code == 1 and any(r["change"] == "verdict_changed" for r in json.loads(out))

    code, _, err = run("diff", h, "--fail-on", "bogus")
    assert code == 2 and "unknown change kind 'bogus'" in err
    code, _, err = run("diff", f"{h}@-5", h)
    assert code == 2 and err.startswith("pinscan: ") and "out of range" in err
    code, _, err = run("diff", str(fleet.history.parent / "missing"))
    assert code == 2 and "Traceback" not in err


def test_scan_takes_at_most_one_destination(fleet: Fleet, tmp_path: Path) -> None:
    inventory = tmp_path / "i.txt"
    inventory.write_text("127.0.0.1:9\n")
    code, _, err = run("scan", str(inventory), "-o", str(tmp_path / "o"), "--history", "h")
    assert code == 2 and "(out=, -o) or to a history (history=, --history), not both" in err
    # A dataset directory is not a history, nor is a directory of other files.
    code, _, err = run("scan", str(inventory), "--history", str(fleet.history / "endpoints"))
    assert code == 2 and "neither empty nor a pinscan history" in err
    code, _, err = run("scan", str(inventory), "--history", str(tmp_path / "fresh"), "--resume")
    assert code == 2 and "no interrupted scan to resume" in err


def test_scan_async_adds_to_a_history_from_a_running_loop(tmp_path: Path) -> None:
    """What a notebook's ``await`` does: two scans into one history, the second judged."""
    import anyio

    issued = pki.leaf("async.history.test")
    policy = pinscan.load_policy(
        _write(tmp_path / "pins.toml", '[[pin-set]]\ndomain = "async.history.test"\n'
        f'positions = "leaf"\npins = ["sha256/{pinscan.spki_pin(issued.der)}"]\n'),
    )  # fmt: skip
    history = tmp_path / "H"
    with servers.tls(issued) as server:
        lines = [f"127.0.0.1:{server.port} async.history.test", "127.0.0.1:9"]

        async def main() -> list[pinscan.ScanDataset]:
            first = await pinscan.scan_async(lines, history=history)
            second = await pinscan.scan_async(lines, history=history, policies=[policy])
            return [first, second]

        first, second = anyio.run(main)
    scans = pinscan.open(history, scans="all").scans
    assert scans.height == 2 and scans["complete"].all()
    assert second.meta["scan_id"] == scans["scan_id"][-1] != first.meta["scan_id"]
    assert second.endpoints.collect().height == 2
    verdicts = second.pin_results.collect()
    assert verdicts.filter(pl.col("verdict") == "pass").height == 1
    with pytest.raises(pinscan.ConfigError, match="not both"):
        anyio.run(lambda: pinscan.scan_async(lines, tmp_path / "o", history=history))
    # Policies judge a scan of one dataset as they judge a history's.
    with servers.tls(issued) as server:
        one = [f"127.0.0.1:{server.port} async.history.test"]
        plain = anyio.run(lambda: pinscan.scan_async(one, tmp_path / "o", policies=[policy]))
    assert plain.pin_results.collect()["verdict"].to_list() == ["pass"]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_killed_scan_is_invisible_until_resumed(tmp_path: Path) -> None:
    history = tmp_path / "H"
    small = tmp_path / "small.txt"
    small.write_text("127.0.0.1:9\n")
    cmd = [sys.executable, "-m", "pinscan", "scan"]
    first = subprocess.run([*cmd, str(small), "--history", str(history), "-q"], timeout=60)
    assert first.returncode == 0
    committed = pinscan.open(history).meta["scan_id"]

    # Closed ports across 127/8: refused at once, paced by --rate so the kill lands mid-scan.
    n = 2000
    inventory = tmp_path / "inventory.txt"
    inventory.write_text("".join(f"127.0.{i // 250}.{i % 250 + 1}:9\n" for i in range(n)))
    big = [*cmd, str(inventory), "--history", str(history), "-q", "--retries", "0"]
    proc = subprocess.Popen(
        [*big, "--rate", "600", "--flush-rows", "100"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):  # bounded wait for a few committed parts in the staged scan
        if len(list(history.glob("_staging/*/endpoints/part-*.parquet"))) >= 3:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)

    (stage,) = (history / "_staging").iterdir()
    assert pinscan.open(history).meta["scan_id"] == committed, "readers see committed scans only"
    assert pinscan.open(history, scans="all").scans.height == 1
    assert pinscan.open(history).endpoints.collect().height == 1
    assert not list(history.glob(f"*/*/scan_id={stage.name}")), "nothing in the partitions yet"
    # DuckDB reading the raw layout sees no part of it either.
    assert _duckdb_count(history) == {committed: 1}

    resumed = subprocess.run([*big, "--resume", "--flush-rows", "500"], timeout=120,
                             capture_output=True, text=True)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    latest = pinscan.open(history)
    assert latest.meta["scan_id"] == stage.name
    eps = latest.endpoints.collect()
    assert eps.height == n and eps["target"].n_unique() == n
    assert latest.meta["counts"]["skipped_already_done"] > 0
    assert not list((history / "_staging").iterdir())
    assert _duckdb_count(history) == {committed: 1, stage.name: n}
    assert not [p for p in history.rglob(".*") if p.is_file()], "no temporaries left"


def test_an_interrupted_commit_is_finished_by_resume(tmp_path: Path) -> None:
    history = tmp_path / "H"
    inventory = tmp_path / "i.txt"
    inventory.write_text("127.0.0.1:9\n127.0.0.2:9\n")
    assert run("scan", str(inventory), "--history", str(history), "-q")[0] == 0
    # Undo the commit half way: the marker gone, endpoints moved back, the rest left moved.
    (marker,) = (history / "_scans").iterdir()
    meta = json.loads(marker.read_text())
    marker.unlink()
    stage = history / "_staging" / meta["scan_id"]
    stage.mkdir()
    (stage / "scan.json").write_text(
        json.dumps({k: v for k, v in meta.items() if k != "scan_date"})
    )
    (next(history.glob("endpoints/*/*"))).rename(stage / "endpoints")
    with pytest.raises(DatasetError, match="no committed scan"):
        pinscan.open(history)
    code, _, err = run("scan", str(inventory), "--history", str(history), "--resume", "-q")
    assert code == 0, err
    ds = pinscan.open(history)
    assert ds.meta["scan_id"] == meta["scan_id"] and ds.endpoints.collect().height == 2


def _duckdb_count(history: Path) -> dict[str, int]:
    rows = duckdb.sql(
        f"SELECT scan_id, count(*) FROM read_parquet('{history}/endpoints/**/*.parquet', "
        "hive_partitioning = true) GROUP BY scan_id"
    ).fetchall()
    return dict(rows)


def test_duckdb_and_pyarrow_read_the_layout(fleet: Fleet) -> None:
    """The snippets of docs/history.md, as written there."""
    h = fleet.history
    # DuckDB
    con = duckdb.connect()
    by_scan = con.sql(
        f"""
        SELECT scan_date, scan_id, status, count(*) AS n
        FROM read_parquet('{h}/endpoints/**/*.parquet', hive_partitioning = true)
        GROUP BY ALL ORDER BY scan_id, status
        """
    ).pl()
    assert by_scan.schema["scan_date"] == pl.Date
    assert by_scan.filter(pl.col("scan_id") == fleet.second)["n"].sum() == 8
    latest = con.sql(
        f"""
        SELECT e.target, c.position, k.subject
        FROM read_parquet('{h}/endpoints/**/*.parquet', hive_partitioning = true) e
        JOIN read_parquet('{h}/chains/**/*.parquet', hive_partitioning = true) c
          USING (scan_id, endpoint_id)
        JOIN read_parquet('{h}/certificates/**/*.parquet', hive_partitioning = true) k
          USING (scan_id, cert_sha256)
        WHERE e.scan_id = (
            SELECT scan_id FROM read_json('{h}/_scans/*.json') ORDER BY started_at DESC LIMIT 1
        )
          AND c.source = 'presented'
        ORDER BY e.target, c.position
        """
    ).fetchall()
    expected = (
        pinscan.open(h).served().select("target", "position", "subject").sort("target", "position")
    )
    assert latest == expected.collect().rows()
    # pyarrow
    partitioning = pads.partitioning(
        pa.schema([("scan_date", pa.date32()), ("scan_id", pa.large_string())]), flavor="hive"
    )
    endpoints = pads.dataset(h / "endpoints", partitioning=partitioning)
    table = endpoints.to_table(
        columns=["target", "status", "scan_date"],
        filter=pads.field("scan_id") == fleet.first,
    )
    assert table.num_rows == 8
    assert set(table.column("status").to_pylist()) == {"ok", "reset"}
    assert pads.dataset(h / "pin_results", partitioning=partitioning).count_rows() == 16
