# SPDX-License-Identifier: Apache-2.0
"""`pinscan.ct` end to end against loopback fakes: an RFC 6962 log (batch cap, 503s, tampering), a
static-ct-api tile tree (partial tiles, gzip, issuers) and crt.sh. Rogue keys must be flagged once
per issuance, allowed keys never, and a log that fails verification must not move its state."""

from __future__ import annotations

import base64
import dataclasses
import functools
import importlib
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from pinscan import ct
from pinscan.ct.fetch import FetchPolicy
from pinscan.ct.loglist import RFC6962, STATIC, Log
from pinscan.ct.signatures import LogKey
from pinscan.ct.state import Progress, Verified

import ctfake

FAST = FetchPolicy(retries=4, backoff=0.001, max_backoff=0.01, timeout=10.0, parallel=3)
ALLOWED, ROGUE, OTHER = ctfake.key(10), ctfake.key(11), ctfake.key(12)
WATCH = ["example.com", "=exact.other.test"]


@functools.cache
def issuances() -> dict[str, ctfake.Issuance]:
    """The cast: allowed and rogue keys for watched names, and unwatched filler."""
    issuer = ctfake.ca()
    return {
        "allowed": ctfake.issue(issuer, ALLOWED, ["www.example.com", "example.com"]),
        "rogue": ctfake.issue(issuer, ROGUE, ["login.example.com"]),
        "rogue_cn": ctfake.issue(issuer, ROGUE, ["cdn.other.test"], cn="api.example.com"),
        "rogue_exact": ctfake.issue(issuer, OTHER, ["exact.other.test"]),
        "not_exact": ctfake.issue(issuer, ROGUE, ["sub.exact.other.test"]),
        "lookalike": ctfake.issue(issuer, ROGUE, ["example.com.evil.test", "notexample.com"]),
        "filler": ctfake.issue(issuer, OTHER, ["filler.other.test"]),
    }


def _filler(n: int) -> list[ctfake.Entry]:
    return [ctfake.x509_entry(issuances()["filler"], 1_790_000_000_000 + i) for i in range(n)]


def _cast_entries() -> list[ctfake.Entry]:
    i = issuances()
    return [
        ctfake.precert_entry(i["allowed"]),
        ctfake.x509_entry(i["allowed"]),
        ctfake.precert_entry(i["rogue"]),
        *_filler(5),
        ctfake.x509_entry(i["rogue"]),
        ctfake.x509_entry(i["rogue_cn"]),
        ctfake.precert_entry(i["rogue_exact"]),
        ctfake.x509_entry(i["not_exact"]),
        ctfake.x509_entry(i["lookalike"]),
    ]


@pytest.fixture
def rfc_log() -> Iterator[tuple[ctfake.FakeRfc6962Log, Log]]:
    fake = ctfake.FakeRfc6962Log(entries=[*_filler(11), *_cast_entries(), *_filler(20)], cap=7)
    with fake.serving() as url:
        yield fake, Log("fake rfc6962", RFC6962, url, LogKey(ctfake.spki(fake.signing_key)))


def _monitor(state: Path, logs: list[Log], **kwargs: object) -> ct.RunResult:
    kwargs.setdefault("allowed", {ctfake.pin(ALLOWED)})
    kwargs.setdefault("fetch", FAST)
    return ct.monitor(WATCH, state, logs=logs, **kwargs)  # type: ignore[arg-type]


def _expected_rogues() -> set[str]:
    i = issuances()
    return {ctfake.dedupe_hash(i[k]) for k in ("rogue", "rogue_cn", "rogue_exact")}


def test_rfc6962_flags_rogue_keys_once_per_issuance(tmp_path: Path, rfc_log) -> None:
    fake, log = rfc_log
    fake.fail = 3  # the first requests get 503s: retried
    result = _monitor(tmp_path, [log])
    assert result.errors == []
    alerts = result.alerts
    assert set(alerts["tbs_sha256"]) == _expected_rogues()
    assert alerts.height == 3  # precert + cert of "rogue" are one alert
    assert ctfake.pin(ALLOWED) not in set(alerts["spki_sha256"])
    rogue = alerts.filter(pl.col("tbs_sha256") == ctfake.dedupe_hash(issuances()["rogue"])).row(
        0, named=True
    )
    assert rogue["entry_type"] == "precert" and rogue["index"] == 13
    assert rogue["names"] == ["login.example.com"]
    assert rogue["spki_sha256"] == ctfake.pin(ROGUE)
    assert rogue["issuer"] and "Fake CT Test CA" in rogue["issuer"]
    assert rogue["verified"] and rogue["log"] == "fake rfc6962"
    assert rogue["not_after"] is not None
    # The cap of 7 forces several get-entries per chunk.
    assert sum(p.endswith("get-entries") for p in fake.requests) >= len(fake.entries) // 7
    assert result.reports[0].end == len(fake.entries)
    # The alerts table has them too.
    stored = pl.read_parquet(sorted((tmp_path / "alerts").glob("*.parquet")))
    assert set(stored["tbs_sha256"]) == _expected_rogues()


def test_second_run_reports_only_new_entries(tmp_path: Path, rfc_log) -> None:
    fake, log = rfc_log
    assert _monitor(tmp_path, [log]).alerts.height == 3
    again = _monitor(tmp_path, [log])
    assert again.alerts.is_empty() and again.errors == []
    # The final certificate of an issuance already alerted (as precert) is no new alert.
    late = ctfake.issue(ctfake.ca(), ROGUE, ["late.example.com"])
    fake.entries += [
        ctfake.x509_entry(issuances()["rogue"]),
        *_filler(3),
        ctfake.precert_entry(late),
    ]
    third = _monitor(tmp_path, [log])
    assert list(third.alerts["tbs_sha256"]) == [ctfake.dedupe_hash(late)]
    assert third.reports[0].start == len(fake.entries) - 5


@pytest.mark.parametrize("tamper", ["bad_signature", "bad_root", "shrink"])
def test_tampering_is_an_error_and_leaves_the_state(tmp_path: Path, rfc_log, tamper: str) -> None:
    fake, log = rfc_log
    size = len(fake.entries)
    _monitor(tmp_path, [log])
    before = _snapshot(tmp_path)
    fake.entries += [ctfake.precert_entry(ctfake.issue(ctfake.ca(), ROGUE, ["x.example.com"]))]
    if tamper == "shrink":
        fake.shrink_to = size - 4
    else:
        setattr(fake, tamper, True)
    result = _monitor(tmp_path, [log])
    assert result.alerts.is_empty()
    assert len(result.errors) == 1 and "fake rfc6962" in result.errors[0]
    want = {"bad_signature": "signature", "bad_root": "root mismatch", "shrink": "shrank"}[tamper]
    assert want in result.errors[0]
    # Not even rewritten with the same position: every file is the one the first run left.
    assert _snapshot(tmp_path) == before


def _snapshot(state: Path) -> dict[str, tuple[int, bytes]]:
    """Every file of a state directory (but its lock) by path: its inode, which an atomic
    rewrite changes, and its bytes."""
    files = (p for p in state.rglob("*") if p.is_file() and p.name != "lock")
    return {str(p.relative_to(state)): (p.stat().st_ino, p.read_bytes()) for p in files}


def test_wrong_root_on_first_run_saves_nothing(tmp_path: Path, rfc_log) -> None:
    fake, log = rfc_log
    fake.bad_root = True
    result = _monitor(tmp_path, [log])
    assert result.errors and result.alerts.is_empty()
    assert not list((tmp_path / "logs").iterdir()) and not list((tmp_path / "alerts").iterdir())


def test_failed_fetch_then_rerun_skips_nothing(tmp_path: Path, rfc_log) -> None:
    fake, log = rfc_log
    fake.fail = 1000
    broken = _monitor(tmp_path, [log], fetch=FetchPolicy(retries=1, backoff=0.001, parallel=2))
    assert broken.errors and "HTTP 503" in broken.errors[0]
    fake.fail = 0
    assert set(_monitor(tmp_path, [log]).alerts["tbs_sha256"]) == _expected_rogues()


def test_kill_between_alerts_and_position_reports_once(
    tmp_path: Path, rfc_log, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after the alerts part was written but before the position: the rerun starts from the
    same position, reports the same alerts again (that run never finished) and stores them once."""
    _fake, log = rfc_log

    def killed(self: object, *args: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(ct.StateDir, "save_verified", killed)
        with pytest.raises(KeyboardInterrupt):
            _monitor(tmp_path, [log])
    assert len(list((tmp_path / "alerts").glob("*.parquet"))) == 1
    rerun = _monitor(tmp_path, [log])
    assert set(rerun.alerts["tbs_sha256"]) == _expected_rogues()
    stored = pl.read_parquet(sorted((tmp_path / "alerts").glob("*.parquet")))
    assert stored.height == 3
    assert _monitor(tmp_path, [log]).alerts.is_empty()


def test_start_at_end_reports_only_later_issuance(tmp_path: Path, rfc_log) -> None:
    fake, log = rfc_log
    first = _monitor(tmp_path, [log], start_at_end=True)
    assert first.errors == [] and first.alerts.is_empty()
    assert first.reports[0].end == len(fake.entries)
    late = ctfake.issue(ctfake.ca(), ROGUE, ["new.example.com"])
    fake.entries += [*_filler(2), ctfake.precert_entry(late)]
    assert list(_monitor(tmp_path, [log]).alerts["tbs_sha256"]) == [ctfake.dedupe_hash(late)]


# --- unverified progress of a long catch-up -----------------------------------------------------

DYING = FetchPolicy(retries=1, backoff=0.001, max_backoff=0.01, timeout=10.0, parallel=3)


def _load(state: Path, log: Log) -> tuple[Verified | None, Progress | None]:
    with ct.StateDir(state) as opened:
        return opened.load_log(log)


def _interrupted(state: Path, fake: ctfake.FakeRfc6962Log, log: Log, at: int = 30) -> Progress:
    """A catch-up whose log dies at entry 32: chunks of 5, three in flight, so from 0 the groups
    [0, 15) and [15, 30) arrived (from 5, [5, 20) only)."""
    fake.fail_from = 32
    broken = _monitor(state, [log], fetch=DYING)
    assert len(broken.errors) == 1 and "fake rfc6962" in broken.errors[0]
    assert broken.alerts.is_empty()  # the rogues below 30 are not verified yet
    fake.fail_from = None
    progress = _load(state, log)[1]
    assert progress is not None
    assert progress.range.size == at and progress.target.size == len(fake.entries)
    # The rogues below it are held back in the progress, not reported.
    assert not progress.alerts.is_empty() and (progress.alerts["index"] < at).all()
    return progress


def test_dead_log_mid_catch_up_resumes_from_saved_progress(tmp_path: Path, rfc_log) -> None:
    fake, log = rfc_log
    log = dataclasses.replace(log, batch_size=5)
    held = _interrupted(tmp_path, fake, log)
    assert set(held.alerts["tbs_sha256"]) == _expected_rogues()
    assert not list((tmp_path / "alerts").iterdir())
    fake.starts.clear()
    resumed = _monitor(tmp_path, [log])
    assert resumed.errors == []
    assert min(fake.starts) == 30  # the first 30 entries are not fetched again
    assert sorted(resumed.alerts["tbs_sha256"]) == sorted(_expected_rogues())
    assert resumed.alerts.height == 3 and resumed.alerts["verified"].all()
    verified, progress = _load(tmp_path, log)
    assert progress is None and verified is not None and verified.size == len(fake.entries)
    assert _monitor(tmp_path, [log]).alerts.is_empty()
    assert pl.read_parquet(sorted((tmp_path / "alerts").glob("*.parquet"))).height == 3


def test_log_grown_since_the_interruption(tmp_path: Path, rfc_log) -> None:
    """The saved progress is verified against its own target first, then the catch-up goes on to
    the new tree head."""
    fake, log = rfc_log
    log = dataclasses.replace(log, batch_size=5)
    target = _interrupted(tmp_path, fake, log).target
    late = ctfake.issue(ctfake.ca(), ROGUE, ["later.example.com"])
    fake.entries += [*_filler(6), ctfake.precert_entry(late)]
    fake.starts.clear()
    resumed = _monitor(tmp_path, [log])
    assert resumed.errors == [] and min(fake.starts) == 30
    assert set(resumed.alerts["tbs_sha256"]) == _expected_rogues() | {ctfake.dedupe_hash(late)}
    assert resumed.alerts.height == 4 and resumed.reports[0].end == len(fake.entries)
    parts = sorted(p.name for p in (tmp_path / "alerts").glob("*.parquet"))
    assert parts == [
        f"{log.id_hex[:16]}-{0:012d}.parquet",
        f"{log.id_hex[:16]}-{target.size:012d}.parquet",
    ]


def test_killed_catch_up_resumes_from_the_last_periodic_save(
    tmp_path: Path, rfc_log, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, log = rfc_log
    log = dataclasses.replace(log, batch_size=5)
    monkeypatch.setattr(importlib.import_module("pinscan.ct.monitor"), "PROGRESS_ENTRIES", 10)
    save = ct.StateDir.save_progress
    saved: list[int] = []

    def save_then_die(self: ct.StateDir, log: Log, verified: object, progress: Progress) -> None:
        save(self, log, verified, progress)  # type: ignore[arg-type]
        saved.append(progress.range.size)
        if len(saved) == 2:
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(ct.StateDir, "save_progress", save_then_die)
        with pytest.raises(KeyboardInterrupt):
            _monitor(tmp_path, [log])
    assert saved == [10, 20]
    fake.starts.clear()
    resumed = _monitor(tmp_path, [log])
    assert resumed.errors == [] and min(fake.starts) == 20
    assert sorted(resumed.alerts["tbs_sha256"]) == sorted(_expected_rogues())
    assert resumed.alerts.height == 3
    assert _monitor(tmp_path, [log]).alerts.is_empty()


def test_tampered_entry_after_resume_reports_nothing(tmp_path: Path, rfc_log) -> None:
    """Entries below 20 came in a first run, a forged one at 40 in the resumed run: the root check
    fails, no alert of the unverified stretch is reported, the verified position stays at 5 and
    the progress is dropped, so the next run fetches everything from 5 again."""
    fake, log = rfc_log
    log = dataclasses.replace(log, batch_size=5)
    fake.size = 5
    assert _monitor(tmp_path, [log]).errors == []
    before = _load(tmp_path, log)[0]
    assert before is not None and before.size == 5
    fake.size = None
    _interrupted(tmp_path, fake, log, at=20)
    evil = ctfake.issue(ctfake.ca(), ROGUE, ["evil.example.com"])
    fake.tampered = {40: ctfake.precert_entry(evil)}
    tampered = _monitor(tmp_path, [log])
    assert len(tampered.errors) == 1 and "fake rfc6962" in tampered.errors[0]
    assert "root mismatch" in tampered.errors[0]
    assert tampered.alerts.is_empty() and not list((tmp_path / "alerts").iterdir())
    verified, progress = _load(tmp_path, log)
    assert progress is None and verified is not None
    assert verified.to_json() == before.to_json()
    fake.tampered.clear()
    fake.starts.clear()
    healed = _monitor(tmp_path, [log])
    assert healed.errors == [] and min(fake.starts) == 5
    assert sorted(healed.alerts["tbs_sha256"]) == sorted(_expected_rogues())


@pytest.mark.parametrize(("tamper", "want"), [("shrink", "shrank"), ("bad_root", "two different")])
def test_progress_contradicted_by_the_new_tree_head_is_dropped(
    tmp_path: Path, rfc_log, tamper: str, want: str
) -> None:
    fake, log = rfc_log
    log = dataclasses.replace(log, batch_size=5)
    _interrupted(tmp_path, fake, log)
    if tamper == "shrink":
        fake.shrink_to = 40  # larger than the progress, smaller than the tree it verifies against
    else:
        fake.bad_root = True  # the same size as that tree, another root
    result = _monitor(tmp_path, [log])
    assert len(result.errors) == 1 and "fake rfc6962" in result.errors[0]
    assert want in result.errors[0] and result.alerts.is_empty()
    assert not list((tmp_path / "logs").iterdir())  # never verified, nothing left to resume


def test_progress_of_another_watch_list_is_not_resumed(tmp_path: Path, rfc_log) -> None:
    fake, log = rfc_log
    log = dataclasses.replace(log, batch_size=5)
    _interrupted(tmp_path, fake, log)
    fake.starts.clear()
    other = _monitor(tmp_path, [log], allowed={ctfake.pin(ALLOWED), ctfake.pin(OTHER)})
    assert other.errors == [] and min(fake.starts) == 0
    assert set(other.alerts["tbs_sha256"]) == _expected_rogues() - {
        ctfake.dedupe_hash(issuances()["rogue_exact"])
    }


# --- static-ct-api --------------------------------------------------------------------------


@pytest.fixture
def tiles(tmp_path: Path) -> Iterator[tuple[ctfake.TileTree, Log]]:
    tree = ctfake.TileTree(tmp_path / "tree")
    tree.entries = [*_filler(520), *_cast_entries(), *_filler(70)]
    tree.entries = [_reindexed(e, i) for i, e in enumerate(tree.entries)]
    tree.publish()
    with tree.serving() as url:
        key = LogKey(ctfake.spki(tree.signing_key))
        yield tree, Log("fake tiled", STATIC, url, key, origin=tree.origin)


def _reindexed(entry: ctfake.Entry, index: int) -> ctfake.Entry:
    """The entry with a leaf_index extension, as static-ct-api logs write it."""
    ts = entry.timestamped
    ext_at = len(ts) - 2
    return ctfake.Entry(
        ts[:ext_at] + b"\x00\x08\x00\x00\x05" + index.to_bytes(5, "big"),
        entry.extra_data,
        entry.tile_tail,
        entry.issuer_der,
    )


def test_static_log_with_partial_tiles(tmp_path: Path, tiles) -> None:
    tree, log = tiles
    state = tmp_path / "state"
    result = _monitor(state, [log])
    assert result.errors == []
    assert set(result.alerts["tbs_sha256"]) == _expected_rogues()
    assert result.alerts.filter(pl.col("entry_type") == "precert")["index"].to_list()[0] == 522
    assert any(".p/" in p and "/data/" in p for p in tree.requests)  # the partial data tile
    # The issuer was looked up, checked and cached.
    issuer_hex = result.alerts["issuer_sha256"][0]
    assert (state / "issuers" / f"{issuer_hex}.der").read_bytes() == ctfake.ca().der
    # Grow across a tile boundary; the log dropped its partial tiles: read the full ones.
    late = ctfake.issue(ctfake.ca(), ROGUE, ["grown.example.com"])
    tree.entries += [
        _reindexed(e, len(tree.entries) + i)
        for i, e in enumerate([*_filler(300), ctfake.precert_entry(late), *_filler(170)])
    ]
    tree.publish(1000, drop_partials=True)  # the full tile 3 exists, not .p/232
    grown = _monitor(state, [log])
    assert grown.errors == []
    assert list(grown.alerts["tbs_sha256"]) == [ctfake.dedupe_hash(late)]
    assert grown.reports[0].end == 1000


def test_static_catch_up_killed_resumes_mid_log(
    tmp_path: Path, tiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree, log = tiles
    state = tmp_path / "state"
    monkeypatch.setattr(importlib.import_module("pinscan.ct.monitor"), "PROGRESS_ENTRIES", 200)
    save = ct.StateDir.save_progress

    def save_then_die(self: ct.StateDir, log: Log, verified: object, progress: Progress) -> None:
        save(self, log, verified, progress)  # type: ignore[arg-type]
        if progress.range.size == 512:
            raise KeyboardInterrupt

    one_tile = dataclasses.replace(FAST, parallel=1)
    with monkeypatch.context() as patch:
        patch.setattr(ct.StateDir, "save_progress", save_then_die)
        with pytest.raises(KeyboardInterrupt):
            _monitor(state, [log], fetch=one_tile)
    tree.requests.clear()
    resumed = _monitor(state, [log], fetch=one_tile)
    assert resumed.errors == [] and resumed.reports[0].end == len(tree.entries)
    data = [p for p in tree.requests if "/data/" in p]
    partial = f".p/{len(tree.entries) - 512}"
    assert data and all(p.endswith(partial) for p in data)  # tiles 0 and 1 not fetched again
    assert sorted(resumed.alerts["tbs_sha256"]) == sorted(_expected_rogues())


def test_static_start_at_end_uses_hash_tiles(tmp_path: Path, tiles) -> None:
    tree, log = tiles
    first = _monitor(tmp_path / "state", [log], start_at_end=True)
    assert first.errors == [] and first.reports[0].end == len(tree.entries)
    assert not any("/data/" in p for p in tree.requests)


def test_static_checkpoint_with_a_bad_signature(tmp_path: Path, tiles) -> None:
    _tree, log = tiles
    forged = Log(
        log.description, STATIC, log.url, LogKey(ctfake.spki(ctfake.key(77))), origin=log.origin
    )
    result = _monitor(tmp_path / "state", [forged])
    assert result.errors and "fake tiled" in result.errors[0] and "signature" in result.errors[0]
    assert not list((tmp_path / "state" / "logs").iterdir())


def test_both_logs_from_a_log_list_and_crtsh(tmp_path: Path, rfc_log, tiles) -> None:
    _, rfc = rfc_log
    tree, tiled = tiles
    document = ctfake.log_list(
        (rfc.url, ctfake.key(101)), (tiled.url, "https://" + tree.origin + "/", tree.signing_key)
    )
    logs = ct.parse_log_list(document, "test")
    assert [log.kind for log in logs] == [RFC6962, STATIC]  # the retired log is skipped
    assert logs[1].origin == tree.origin
    crtsh = ctfake.FakeCrtSh(
        {
            1: issuances()["rogue"],
            2: issuances()["allowed"],
            3: ctfake.issue(ctfake.ca(), ROGUE, ["old.example.com"]),
        },
        fail=2,
    )
    with ctfake.serve(crtsh.route) as crtsh_url:
        result = _monitor(tmp_path / "state", logs, crtsh_url=crtsh_url)
    assert result.errors == []
    # Each rogue issuance once, whichever source saw it first; crt.sh adds the old one, unverified.
    assert result.alerts["tbs_sha256"].n_unique() == result.alerts.height == 4
    old = result.alerts.filter(pl.col("log") == "crt.sh")
    assert old.height >= 1 and not old["verified"].any()
    assert "old.example.com" in old["names"].explode().to_list()


def test_pins_from_files_hex_and_base64(tmp_path: Path) -> None:
    from pinscan.ct.watch import pins_from_file

    raw = base64.b64decode(ctfake.pin(ALLOWED))
    path = tmp_path / "pins.txt"
    path.write_text(f"# comment\n{raw.hex()}\nsha256/{ctfake.pin(ROGUE)}\n\n")
    assert pins_from_file(path) == {ctfake.pin(ALLOWED), ctfake.pin(ROGUE)}
