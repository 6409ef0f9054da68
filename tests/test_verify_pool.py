# SPDX-License-Identifier: Apache-2.0
"""Chains verified in a child process: the same verdicts as in-process, each chain built once,
and nothing lost or stuck when the child fails to start, dies or stops answering."""

from __future__ import annotations

import datetime as dt
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import polars as pl
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.serialization import Encoding

import pinscan
from pinscan.catalog import stores
from pinscan.cli import main
from pinscan.config import ScanConfig, Timeouts
from pinscan.records import TRUST_STORES, Endpoint
from pinscan.scanner import engine as scanner_module
from pinscan.scanner import router, verify_child, verify_pool
from pinscan.scanner.verdicts import ChainVerdict
from pinscan.scanner.verify import StoreSpec, Verifier
from pinscan.scanner.verify_pool import ChildError, VerifyPool, VerifyProcess

from fleet import pki

NOW = dt.datetime.now(dt.UTC)


def started(spec: StoreSpec, now: dt.datetime) -> VerifyProcess:
    """A child started and loaded with ``spec``, as a scan's lane does it in two steps."""
    child = VerifyProcess()
    child.load(spec, now)
    return child


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "root.pem"
    path.write_bytes(pki.root().cert.public_bytes(Encoding.PEM))
    return path


def chains() -> list[tuple[bytes, ...]]:
    """Good (ECDSA, RSA, wildcard, two names); expired, self-signed, leaf only, deep, garbage."""
    issued = [
        pki.leaf("a.test"),
        pki.leaf("rsa.test", key="rsa"),
        pki.leaf("*.w.test"),
        pki.leaf("b.test", "c.test"),
        pki.leaf("old.test", expired=True),
        pki.leaf("self.test", self_signed=True),
        pki.long_chain(12),
    ]
    out = [tuple(i.chain_der) for i in issued]
    out.append((pki.leaf("lonely.test").der,))
    out.append((b"\x30\x03\x02\x01\x00",))
    return out


def in_process(bundle: Path) -> Verifier:
    return Verifier.for_scan(ca_bundle=bundle, now=NOW)


def test_a_child_reaches_the_verdicts_of_the_scanning_process(bundle: Path) -> None:
    child = started(in_process(bundle).spec, NOW)
    try:
        found = child.build(chains())
    finally:
        child.close()
    expected = [in_process(bundle).build(chain) for chain in chains()]
    assert found == expected
    assert [f.verified for f in found] == [True] * 4 + [False] * 5
    assert found[0].path[-1] == pki.root().der  # the built chain ends in the root
    assert [f.error for f in found[4:]] == [
        "expired",
        "self_signed",
        "invalid_chain",
        "incomplete_chain",
        "malformed",
    ]
    assert "not valid at validation time" in found[4].detail and found[4].days < 0
    assert found[6].detail.startswith("the chain has 12 intermediates; path builders stop at 8")
    assert "exceeds max depth" in found[6].detail  # pyca's own words stay in the detail


def test_a_child_that_cannot_load_its_stores_says_why() -> None:
    spec = StoreSpec((("android", (b"not a certificate",)),))
    with pytest.raises(ChildError, match=r"cannot load the trust stores: error parsing asn1"):
        started(spec, NOW)


def test_a_killed_child_is_an_error_not_a_hang(bundle: Path) -> None:
    child = started(in_process(bundle).spec, NOW)
    os.kill(child._proc.pid, signal.SIGKILL)
    child._proc.wait()
    with pytest.raises(ChildError, match=r"gone|exited"):
        child.build(chains())
    child.close()


@pytest.mark.parametrize("chains_sent", [9, 360])  # 360 chains overflow the pipe's buffer
def test_a_child_that_stops_answering_is_killed(
    bundle: Path, monkeypatch, chains_sent: int
) -> None:
    monkeypatch.setattr(verify_pool, "_BATCH_TIMEOUT", 0.5)
    child = started(in_process(bundle).spec, NOW)
    os.kill(child._proc.pid, signal.SIGSTOP)
    # Distinct bytes objects: pickle would send a repeated object once.
    batch = [tuple(bytes(bytearray(d)) for d in chain) for chain in (chains() * 40)[:chains_sent]]
    with pytest.raises(ChildError, match="stopped answering"):
        child.build(batch)
    assert child._proc.wait(timeout=5) == -signal.SIGKILL
    child.close()


@pytest.mark.parametrize(
    ("program", "error"),
    [
        ("import sys; sys.stdout.write('x' * 100)", "garbage"),  # not a verification child
        ("import sys; sys.stdout.buffer.write(b'\\xff' * 8)", "garbage"),  # an absurd length
        ("raise SystemExit(3)", "exited"),
        ("import time; time.sleep(60)", "stopped answering"),
    ],
)
def test_a_child_that_is_not_one_is_an_error(monkeypatch, program: str, error: str) -> None:
    monkeypatch.setattr(verify_pool, "_START_TIMEOUT", 1.0)
    monkeypatch.setattr(verify_child, "command", lambda: [sys.executable, "-c", program])
    # One root: the spec fits in the pipe, so what the program writes back is what is judged.
    spec = Verifier.of_certificates([("ca_bundle", [pki.root().cert])]).spec
    with pytest.raises(ChildError, match=error):
        started(spec, NOW)


def test_a_child_that_exits_while_it_is_sent_its_stores_says_so(monkeypatch) -> None:
    """Stores given as DER (users' bundles: the shipped stores' roots here) can be more than a
    pipe holds: a child that exits at start breaks the pipe mid-write, and the error says it
    exited, with its status."""
    monkeypatch.setattr(verify_child, "command", lambda: [sys.executable, "-c", "exit(3)"])
    spec = StoreSpec(tuple((name, stores.roots(name)) for name in TRUST_STORES))
    assert len(pickle.dumps(spec)) > 1 << 16
    with pytest.raises(ChildError, match=r"exited \(3\)"):
        started(spec, NOW)


def rows_for(chains_: list[tuple[bytes, ...]], names: list[str]) -> list[list[Endpoint]]:
    """One target per (chain, name): each chain is served under every name."""
    targets = []
    for i, chain in enumerate(chains_):
        for name in names:
            row = Endpoint(
                target_id=b"%d" % i, line=i, target=f"{name}:443", host=name, ip="127.0.0.1",
                port=443, sni=name, status="ok", error=None, presented=list(chain),
            )  # fmt: skip
            targets.append([row])
    return targets


def verdicts(targets: list[list[Endpoint]]) -> list[tuple]:
    return [
        (r.verified, r.verify_error, r.trust_store, r.hostname_match, r.verified_chain)
        for rows in targets
        for r in rows
    ]


async def run_pool(pool: VerifyPool, targets: list[list[Endpoint]]) -> None:
    async with anyio.create_task_group() as tg:
        tg.start_soon(pool.run)
        for rows in targets:
            await pool.submit(rows)
        pool.close()


def _broken(*args: object) -> None:
    raise ChildError("the verification process exited (-9)")


@pytest.mark.parametrize(
    ("child", "queue_limit", "built_here"),
    [
        ("works", 1024, 0),
        ("works", 2, len(chains()) - 2),  # the queue is full: the scan builds the rest itself
        ("dies", 1024, len(chains())),  # its queue is built in-process
        ("cannot start", 1024, len(chains())),
    ],
)
def test_the_pool_releases_every_target_once_with_in_process_verdicts(
    bundle: Path, monkeypatch, child: str, queue_limit: int, built_here: int
) -> None:
    names = ["a.test", "x.w.test", "c.test", "127.0.0.1"]
    expected = rows_for(chains(), names)
    reference = in_process(bundle)
    for rows in expected:
        for row in rows:
            v = reference.verify(row.presented, row.sni)
            row.verified, row.verify_error = v.verified, v.verify_error
            row.trust_store, row.hostname_match = v.trust_store, v.hostname_match
            row.verified_chain = list(v.chain)

    monkeypatch.setattr(verify_pool, "_QUEUE_LIMIT", queue_limit)
    if child == "dies":
        monkeypatch.setattr(VerifyProcess, "build", _broken)
    elif child == "cannot start":
        monkeypatch.setattr(VerifyProcess, "__init__", _broken)
    targets = rows_for(chains(), names)
    released: list[list[Endpoint]] = []

    async def on_verified(rows: list[Endpoint]) -> None:
        released.append(rows)

    pool = VerifyPool(in_process(bundle), 1, on_verified)
    anyio.run(run_pool, pool, targets)

    assert sorted(map(id, released)) == sorted(map(id, targets))  # each target once
    assert verdicts(targets) == verdicts(expected)
    # Each distinct chain was built once, however many endpoints served it.
    assert (pool.built_here, pool.built_in_children) == (built_here, len(chains()) - built_here)
    assert pool.children == 0  # closed at the end
    assert len(pool.child_errors) == (child in ("dies", "cannot start"))


def test_a_child_started_for_a_scan_that_needs_none_ends_with_it(bundle: Path) -> None:
    """The lane starts its child with the pool, before the first chain: when no chain comes
    (no endpoint presented one), the child is never loaded, and is closed at the end."""
    before = set(_children_of(os.getpid()))
    released: list[list[Endpoint]] = []

    async def on_verified(rows: list[Endpoint]) -> None:
        released.append(rows)

    pool = VerifyPool(in_process(bundle), 1, on_verified)
    targets = rows_for([()], ["a.test", "b.test"])
    anyio.run(run_pool, pool, targets)
    assert len(released) == 2 and pool.built_in_children == pool.built_here == 0
    assert pool.children == 0 and pool.child_errors == []
    assert set(_children_of(os.getpid())) <= before  # the child was waited for


def test_adopted_paths_hold_one_copy_of_each_root(bundle: Path) -> None:
    """A child sends the roots of the stores it reads itself (those pinscan ships) with every
    batch: the scan keeps one bytes object per root, whichever batch brought it."""
    verifier = in_process(bundle)
    chain = chains()[0]
    adopted = []
    for _ in range(2):
        root = bytes(bytearray(pki.other_root().der))  # a fresh copy, as each batch unpickles
        path = (*chain, root)
        found = ChainVerdict(True, None, "apple", [], 1, path, None, (("apple", True, path),))
        adopted.append(verifier.adopt(chain, found))
    first, second = adopted
    assert first.path == second.path == (*chain, pki.other_root().der)
    assert first.path[-1] is second.path[-1] is first.stores[0][2][-1]
    assert all(a is b for a, b in zip(first.path, chain, strict=False))


def test_stores_given_as_certificates_go_to_the_child_too() -> None:
    """A verifier made of certificates (no file, no shipped store: a test's private root under
    a platform's name) is sent to the child as it is, so the child reaches its verdicts."""
    released = []

    async def on_verified(rows: list[Endpoint]) -> None:
        released.append(rows)

    other = pki.leaf("other.test", self_signed=True).cert
    verifier = Verifier.of_certificates([("android", [pki.root().cert]), ("apple", [other])])
    pool = VerifyPool(verifier, 1, on_verified)
    targets = rows_for(chains()[:3], ["a.test"])
    anyio.run(run_pool, pool, targets)
    assert len(released) == 3 and pool.built_in_children == 3 and pool.child_errors == []
    row = targets[0][0]
    assert (row.verified, row.trust_store) == (True, "android")
    assert row.store_paths == [
        ("android", True, (*chains()[0], pki.root().der)),
        ("apple", False, ()),
    ]


def test_a_child_started_ahead_is_the_one_a_scan_takes_or_it_exits(bundle: Path) -> None:
    """`pinscan scan` starts the child first thing: the scan's first child is that one; one
    that no scan takes is ended and reaped."""
    verify_child.start_standby()
    (ahead,) = verify_child._standby
    child = VerifyProcess()
    assert child._proc is ahead and verify_child._standby == []
    try:
        child.load(in_process(bundle).spec, NOW)
        assert [f.verified for f in child.build(chains()[:2])] == [True, True]
    finally:
        child.close()
    assert ahead.returncode == 0
    verify_child.start_standby()
    (left,) = verify_child._standby
    verify_child.drop_standby()
    assert left.returncode is not None and verify_child._standby == []


@pytest.mark.parametrize("verify_processes", [None, 0])
def test_the_command_starts_a_child_ahead_only_where_the_scan_verifies_in_one(
    tmp_path: Path, monkeypatch, verify_processes: int | None
) -> None:
    started: list[subprocess.Popen[bytes]] = []
    spawn = verify_child.spawn

    def spawned() -> subprocess.Popen[bytes]:
        started.append(spawn())
        return started[-1]

    monkeypatch.setattr(verify_child, "spawn", spawned)
    monkeypatch.setattr(verify_child, "available_cores", lambda: 2)
    inventory = tmp_path / "inventory.txt"
    inventory.write_text("127.0.0.1:9\n")
    for sources in ([str(inventory)], ["127.0.0.1:9"]):
        args = ["scan", *sources, "-o", str(tmp_path / sources[0][-3:]), "--retries", "0", "-q"]
        if verify_processes is not None:
            args += ["--verify-processes", str(verify_processes)]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
    # An inventory file (not targets given as arguments) with a child allowed starts one; a
    # one-target scan verifies in-process, so the child started ahead is ended.
    assert len(started) == (verify_processes is None)
    assert verify_child._standby == []
    assert all(child.returncode is not None for child in started)  # ended and reaped


def test_a_scan_verifies_in_a_child_as_it_would_in_process(
    tmp_path: Path, nginx, bundle: Path, monkeypatch
) -> None:
    monkeypatch.setattr(scanner_module, "_SMALL_SCAN", 0)  # a child even for a short inventory
    lines = [f"127.0.0.1:{port}" for port in nginx.ports.values()]
    lines += [f"127.0.0.1:{nginx.shared_port} {name}" for name in ("a.shared.test", "x.test")]
    columns = [
        "target", "status", "verified", "verify_error", "trust_store", "hostname_match",
        "store_paths",
    ]  # fmt: skip
    results = {}
    for processes in (0, 1):
        config = ScanConfig(
            concurrency=8, retries=0, timeouts=Timeouts(2, 2, 4), ca_bundle=bundle,
            verify_processes=processes,
        )  # fmt: skip
        ds = pinscan.scan(lines, tmp_path / f"p{processes}", config=config)
        results[processes] = ds.endpoints.select(columns).sort("target").collect()
        counts = ds.meta["counts"]["chains_verified"]
        presented = (
            ds.chains.filter(pl.col("source") == "presented")
            .sort("position")
            .group_by("endpoint_id")
            .agg(pl.col("cert_sha256"))
            .collect()
        )
        distinct = presented["cert_sha256"].list.join(",").n_unique()
        assert counts["in_process"] + counts["in_children"] == distinct
        assert counts["child_errors"] == []
        # With a child, every chain queues for it from the first one on.
        expected = {"in_process": distinct, "in_children": 0} if processes == 0 else {
            "in_process": 0, "in_children": distinct
        }  # fmt: skip
        assert {k: counts[k] for k in expected} == expected
    assert results[0].equals(results[1])
    assert results[0]["verified"].sum() >= 25  # the fleet's good sites, anchored in the bundle


def test_the_child_imports_neither_polars_nor_pyarrow() -> None:
    """``import pinscan`` is lazy, so a child starts in a fraction of a second and small."""
    code = (
        "import sys, pinscan.scanner.verify_pool\n"
        "print(sorted({'polars', 'pyarrow'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    # Every public name still resolves (an AttributeError here names a broken entry).
    resolved = {name: getattr(pinscan, name) for name in pinscan.__all__}
    assert resolved["scan"] is router.scan
    assert resolved["open"].__module__ == "pinscan.dataset.reader"


def test_the_cli_says_when_its_child_failed_and_loses_nothing(
    tmp_path: Path, nginx, bundle: Path, monkeypatch
) -> None:
    monkeypatch.setattr(scanner_module, "_SMALL_SCAN", 0)
    monkeypatch.setattr(verify_child, "command", lambda: [sys.executable, "-c", "exit(3)"])
    inventory = tmp_path / "fleet.txt"
    inventory.write_text("".join(f"127.0.0.1:{port}\n" for port in nginx.ports.values()))
    out = tmp_path / "out"
    args = ["scan", str(inventory), "-o", str(out), "--ca-bundle", str(bundle)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "verification child failed (the verification process exited (3))" in result.output
    ds = pinscan.open(out)
    assert ds.meta["counts"]["chains_verified"]["in_children"] == 0
    eps = ds.endpoints.collect()
    assert eps.height == len(nginx.ports) and eps["verified"].null_count() == 0
    assert eps["verified"].sum() >= 25


def test_a_killed_scan_takes_its_child_with_it(tmp_path: Path, nginx, bundle: Path) -> None:
    """SIGKILL leaves no verification process behind (it reads EOF and exits), and --resume
    finishes the scan with verdicts for every endpoint."""
    sites = list(nginx.ports.values())
    n = 600  # distinct targets by SNI, paced by --rate so that the kill lands mid-scan
    inventory = tmp_path / "inventory.txt"
    inventory.write_text(
        "".join(f"127.0.0.1:{sites[i % len(sites)]} n{i}.test\n" for i in range(n))
    )
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "pinscan", "scan", str(inventory), "-o", str(out), "-q"]
    cmd += ["--ca-bundle", str(bundle), "--retries", "0", "--verify-processes", "1"]
    proc = subprocess.Popen([*cmd, "--rate", "200", "--flush-rows", "50"])
    children: list[int] = []
    for _ in range(200):  # bounded wait for the child and a committed part
        children = [int(p) for p in _children_of(proc.pid)]
        if children and list((out / "endpoints").glob("part-*.parquet")):
            break
        time.sleep(0.05)
    assert children, "the scan started a verification child"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    for _ in range(100):
        if not any(map(_running, children)):
            break
        time.sleep(0.05)
    assert not any(map(_running, children)), "the child outlived the scan"

    resumed = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    eps = pinscan.open(out).endpoints.collect()
    assert eps.height == n and eps["target"].n_unique() == n
    assert set(eps["status"]) == {"ok"} and eps["verified"].null_count() == 0


def _running(pid: int) -> bool:
    """Alive, not a zombie waiting for an init that does not reap."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _children_of(pid: int) -> list[str]:
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        return [c for t in tasks for c in (t / "children").read_text().split()]
    except OSError:
        return []


def test_the_child_finds_this_copy_of_pinscan_first() -> None:
    # Its command puts the directory that holds this `pinscan` package first on sys.path, so a
    # scan run from a source tree never verifies with another installed copy.
    code = verify_child.command()[2]
    root = Path(code.split("sys.path.insert(0, ", 1)[1].split(")", 1)[0].strip("'\""))
    assert (root / "pinscan" / "scanner" / "verify_pool.py").samefile(verify_pool.__file__)
