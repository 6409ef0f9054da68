# SPDX-License-Identifier: Apache-2.0
"""The front door of every scan (``pinscan.scan``, ``scan_async`` and ``pinscan scan``): the
combinations of where a scan goes, checked once and alike from Python and from the command line,
and policies judged once the scan is whole, in every way a scan goes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

import pinscan
from pinscan.cli import main
from pinscan.config import ScanConfig, Timeouts
from pinscan.dataset import shards as layout
from pinscan.errors import ConfigError
from pinscan.scanner.router import Route

from fleet import pki, servers

# Every scan test, on each TLS engine (issue 16).
pytestmark = pytest.mark.usefixtures("each_engine")

QUICK = Timeouts(connect=2, handshake=2, deadline=4)


def fast(**changes: object) -> ScanConfig:
    """Quick settings for loopback; built at each call, so that a test's engine (the
    `each_engine` fixture's default) is the one its scans use."""
    return ScanConfig(concurrency=16, retries=0, timeouts=QUICK, **changes)


@pytest.fixture(scope="module")
def pinned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[str], Path]]:
    """Four hosts and a policy that pins the leaf key of two of them (one host of each pair
    fails): inventory lines and the policy file."""
    tmp = tmp_path_factory.mktemp("router")
    leaves = {n: pki.leaf(f"{n}.router.test") for n in ("a", "b", "c", "d")}
    policy = tmp / "pins.toml"
    policy.write_text(
        'chain = "leaf"\n'
        + "".join(
            f'[[pin-set]]\ndomain = "{n}.router.test"\n'
            f'pins = ["sha256/{pinscan.spki_pin(leaves["a" if n in "ab" else "c"].der)}"]\n'
            for n in ("a", "b", "c")
        )
    )
    with contextlib.ExitStack() as stack:
        lines = [
            f"127.0.0.1:{stack.enter_context(servers.tls(leaf)).port} {n}.router.test"
            for n, leaf in leaves.items()
        ]
        yield lines, policy


def _verdicts(ds: pinscan.ScanDataset) -> list[tuple[str, str]]:
    rows = ds.pin_results.select("name", "verdict").collect()
    return sorted((n, str(v)) for n, v in rows.iter_rows())


EXPECTED = [
    ("a.router.test", "pass"),
    ("b.router.test", "fail"),
    ("c.router.test", "pass"),
    ("d.router.test", "unpinned"),
]


def test_policies_judge_a_scan_of_one_dataset_from_python(pinned, tmp_path: Path) -> None:
    lines, policy = pinned
    ds = pinscan.scan(lines, tmp_path / "out", config=fast(), policies=[policy])
    assert _verdicts(ds) == EXPECTED
    # As pinscan.evaluate judges it, and as the command line writes it.
    again = pinscan.evaluate(ds, pinscan.load_policies(policy))
    assert sorted((r["name"], str(r["verdict"])) for r in again.iter_rows(named=True)) == EXPECTED
    inventory = tmp_path / "inventory.txt"
    inventory.write_text("\n".join(lines) + "\n")
    cli = CliRunner().invoke(
        main, ["scan", str(inventory), "-o", str(tmp_path / "cli"), "--policy", str(policy),
               "--retries", "0", "-q"],
    )  # fmt: skip
    assert cli.exit_code == 1  # b fails
    assert _verdicts(pinscan.open(tmp_path / "cli")) == EXPECTED


def test_policy_objects_and_files_are_alike(pinned, tmp_path: Path) -> None:
    lines, policy = pinned
    ds = pinscan.scan(lines, tmp_path / "o", config=fast(), policies=pinscan.load_policies(policy))
    assert _verdicts(ds) == EXPECTED
    with pytest.raises(ConfigError, match=r"^policies: must be Policy objects or policy files"):
        pinscan.scan(lines, tmp_path / "x", config=fast(), policies=[42])  # type: ignore[list-item]
    assert not (tmp_path / "x").exists()  # refused before anything was written


def test_a_sharded_scan_is_judged_when_its_last_shard_is_done(pinned, tmp_path: Path) -> None:
    lines, policy = pinned
    out = tmp_path / "sharded"
    first = pinscan.scan(lines, out, shard="0/2", config=fast(), policies=[policy])
    assert not first.meta["complete"]
    assert first.pin_results.collect().height == 0  # a part of the scan is not judged
    whole = pinscan.scan(lines, out, shard="1/2", config=fast(), policies=[policy])
    assert whole.meta["complete"]
    assert _verdicts(whole) == EXPECTED
    assert layout.finished(out, layout.read_manifest(out)).keys() == {0, 1}


def test_a_history_scan_is_judged_before_its_commit(pinned, tmp_path: Path) -> None:
    lines, policy = pinned
    ds = pinscan.scan(lines, history=tmp_path / "H", config=fast(), policies=[policy])
    assert _verdicts(ds) == EXPECTED
    assert pinscan.open(tmp_path / "H").pin_results.collect().height == 4


@pytest.mark.parametrize(
    ("route", "setting", "words"),
    [
        ({"out": "o", "history": "h"}, "history", "not both"),
        ({"history": "h", "shard": "0/2"}, "history", "not sharded"),
        ({"history": "h", "scan_id": "x"}, "scan_id", "names its scans itself"),
        ({"out": "o", "shard": "0/2", "dask": "local"}, "shard", "not both"),
        ({"out": "o", "shards": 4}, "shards", "give dask= (--dask) too"),
        ({"out": "o", "dask": "local", "shards": 0}, "shards", "from 1"),
        ({"shard": "0/2"}, "out", "needs an output directory"),
        ({"out": "o", "dask": "local", "on_endpoint": print}, "on_endpoint", "not available"),
        ({"resume": True}, "resume", "give one"),
    ],
)
def test_every_bad_route_is_refused_before_anything_runs(
    route: dict, setting: str, words: str, tmp_path: Path
) -> None:
    arguments = {k: tmp_path / v if k in ("out", "history") else v for k, v in route.items()}
    with pytest.raises(ConfigError) as raised:
        pinscan.scan(["127.0.0.1:9"], config=fast(), **arguments)
    assert raised.value.setting == setting and words in raised.value.reason
    assert list(tmp_path.iterdir()) == []  # nothing written, no cluster started


def test_the_command_line_refuses_the_same_routes_with_the_same_words(tmp_path: Path) -> None:
    inventory = tmp_path / "i.txt"
    inventory.write_text("127.0.0.1:9\n")
    cases = [
        (["-o", str(tmp_path / "o"), "--history", str(tmp_path / "h")], "not both"),
        (["--history", str(tmp_path / "h"), "--shard", "0/2"], "not sharded"),
        (["-o", str(tmp_path / "o"), "--shard", "0/2", "--dask", "local"], "not both"),
        (["-o", str(tmp_path / "o"), "--shards", "4"], "give dask= (--dask) too"),
    ]
    for args, words in cases:
        result = CliRunner().invoke(main, ["scan", str(inventory), *args])
        assert result.exit_code == 2, (args, result.output)
        assert words in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["i.txt"]


def test_a_route_says_which_way_the_scan_goes(tmp_path: Path) -> None:
    assert Route().way == "dataset"
    assert Route(out=tmp_path).way == "dataset"
    assert Route(history=tmp_path).way == "history"
    assert Route(out=tmp_path, shard=layout.Shard(0, 2)).way == "shard"
    assert Route(out=tmp_path, dask="local").way == "dask"


def test_the_scan_arguments_are_recorded_once(pinned, tmp_path: Path) -> None:
    lines, _ = pinned
    ds = pinscan.scan(lines[:1], tmp_path / "o", config=fast(), arguments={"note": "weekly"})
    # With the platform stores verified against, each at its version and date.
    stores = ["mozilla (2026-07-19)", "android 17.0.0_r1 (2026-06-21)"]
    stores += [
        "apple iOS 26, iPadOS 26, macOS 26, tvOS 26, visionOS 26 and watchOS 26 (2025-12-28)"
    ]
    stores += ["microsoft (2026-07-19)", "java jdk-17.0.2 (2022-01-23)"]
    assert ds.meta["arguments"] == {
        "inventory": "<python iterable>",
        "note": "weekly",
        "trust_stores": stores,
    }
    assert ds.endpoints.select(pl.len()).collect().item() == 1


def test_scan_to_says_where_the_scan_went_and_opens_it_on_demand(pinned, tmp_path) -> None:
    """`pinscan.scan_to` is `scan` without opening the result: `meta()` reads a plain dataset's
    scan.json alone, and is `open().meta` for a history's scan and a sharded dataset too."""
    lines, policy = pinned
    plain = pinscan.scan_to(lines, tmp_path / "plain", config=fast(), policies=[policy])
    assert plain == pinscan.Written(tmp_path / "plain")
    meta = plain.meta()
    assert meta["complete"] and meta["counts"]["endpoints"] == 4
    ds = plain.open()
    assert ds.meta == meta and sorted(_verdicts(ds)) == sorted(_verdicts(pinscan.open(plain.path)))
    history = [pinscan.scan_to(lines, history=tmp_path / "h", config=fast()) for _ in range(2)]
    assert [w.history_scan for w in history] == pinscan.open(tmp_path / "h", "all").scans[
        "scan_id"
    ].to_list()
    assert history[0].meta() == history[0].open().meta != history[1].meta()
    sharded = pinscan.scan_to(lines, tmp_path / "s", shard="0/2", config=fast())
    assert sharded.meta() == sharded.open().meta and not sharded.meta()["complete"]
