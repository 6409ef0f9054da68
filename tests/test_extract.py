# SPDX-License-Identifier: Apache-2.0
"""``pinscan pins``, ``pinscan extract`` and :func:`pinscan.extract_pins` on real APKs (compiled
here by Debian's aapt2 against android-framework-res: tests/android_apps.py) and on broken and
hostile archives: one row each, never a crash, never a file outside OUT; resumable after an
interruption."""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import plistlib
import random
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import polars as pl
import pytest
from android_apps import PIN_A, PIN_B, App, build_apk, domain_config, nsc

import pinscan
from pinscan.cli import exits
from pinscan.policy.artifacts import bulk

from cliresult import refused, run
from terminal import PINSCAN, run_in_terminal


def build_app(directory: Path, name: str = "app.apk") -> Path:
    """A real APK of about 2 KB: a manifest naming its Network Security Config, compiled."""
    return build_apk(directory, App(config=nsc(domain_config("api.example.com"))), name)


def info_plist() -> bytes:
    """An iOS app's Info.plist pinning api.example.com's leaf key to either pin (ATS)."""
    leaf = [{"SPKI-SHA256-BASE64": pin} for pin in (PIN_A, PIN_B)]
    ats = {"NSPinnedDomains": {"api.example.com": {"NSPinnedLeafIdentities": leaf}}}
    plist = {"CFBundleExecutable": "App", "NSAppTransportSecurity": ats}
    return plistlib.dumps(plist, fmt=plistlib.FMT_BINARY)


MACH_O = b"\xcf\xfa\xed\xfe" + bytes(60)


def with_members(apk: Path, path: Path, members: dict[str, bytes]) -> Path:
    """``apk`` with ``members`` added (names zipfile writes as given)."""
    shutil.copy(apk, path)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.fixture(scope="module")
def apk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_app(tmp_path_factory.mktemp("apk"))


@pytest.fixture
def corpus(tmp_path: Path, apk: Path) -> Path:
    """A directory of apps as a bulk job finds them: good APKs, a split-APK set, an IPA and an
    .app directory, broken and hostile ones, and files that are not apps."""
    apps = tmp_path / "apps"
    (apps / "nested" / "deeper").mkdir(parents=True)
    for i in range(3):
        shutil.copy(apk, apps / f"good{i}.apk")
    shutil.copy(apk, apps / "nested" / "deeper" / "renamed.bin.zip")
    (apps / "linked.apk").symlink_to(apk)  # read: a farm of links to apps is common
    (apps / "loop").symlink_to(apps, target_is_directory=True)  # not entered
    (apps / "notes.txt").write_text("not an app, not named like one: skipped")
    (apps / "garbage.apk").write_bytes(os.urandom(2_000))
    data = apk.read_bytes()
    (apps / "cut.apk").write_bytes(data[: len(data) // 2])
    with_members(apk, apps / "bomb.apk", {"assets/zeros": bytes(32 << 20)})
    with_members(apk, apps / "evil.apk", {"../../../../tmp/evil": b"x", "/etc/evil": b"x"})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("base-master.apk", data)
    (apps / "split.apks").write_bytes(buffer.getvalue())
    with zipfile.ZipFile(apps / "App.ipa", "w") as ipa:
        ipa.writestr("Payload/App.app/Info.plist", info_plist())
        ipa.writestr("Payload/App.app/App", MACH_O)
    bundle = apps / "nested" / "Bundle.app"
    bundle.mkdir()
    (bundle / "Info.plist").write_bytes(info_plist())
    (bundle / "App").write_bytes(MACH_O)
    return apps


def _tree(root: Path) -> set[Path]:
    return set(root.rglob("*"))


# --- pinscan pins ------------------------------------------------------------------------------


def test_pins_lists_each_pin_with_its_hosts_kind_and_place(apk: Path) -> None:
    result = run("pins", str(apk))
    assert result.exit_code == exits.OK, result.output
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    source = f"{apk}!res/xml/network_security_config.xml"
    assert lines == [
        f"sha256/{PIN_A}  config  api.example.com  {source}",
        f"sha256/{PIN_B}  config  api.example.com  {source}",
    ]


def test_pins_as_json(apk: Path) -> None:
    result = run("pins", "--format", "json", str(apk))
    assert result.exit_code == exits.OK
    [document] = json.loads(result.stdout)
    assert document["artifact"] == str(apk) and document["kind"] == "apk"
    assert document["errors"] == []
    assert next(p["name"] for p in document["policies"]) == (
        f"{apk}!res/xml/network_security_config.xml"
    )
    assert {(p["pin"], p["algorithm"], tuple(p["hosts"]), p["kind"]) for p in document["pins"]} == {
        (PIN_A, "sha256", ("api.example.com",), "config"),
        (PIN_B, "sha256", ("api.example.com",), "config"),
    }


def test_pins_of_an_unreadable_artifact_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "garbage.apk"
    path.write_bytes(b"not a zip at all")
    line = refused(run("pins", str(path)), path)
    assert "not a zip file" in line


def test_pins_reports_refused_members_and_exits_1(apk: Path, tmp_path: Path) -> None:
    evil = with_members(apk, tmp_path / "evil.apk", {"../../evil.sh": b"#!/bin/sh"})
    result = run("pins", str(evil))
    assert result.exit_code == exits.FINDINGS
    assert result.stderr.splitlines() == [
        f"pinscan: {evil}!../../evil.sh: refused: '..' in the path"
    ]
    assert len(result.stdout.splitlines()) == 2  # the pins are still read
    assert not (tmp_path.parent / "evil.sh").exists()


def test_pins_goes_on_after_an_unreadable_artifact(apk: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.apk"
    result = run("pins", str(missing), str(apk))
    assert result.exit_code == exits.ERROR
    assert len(result.stdout.splitlines()) == 2
    assert result.stderr.count("\n") == 1 and str(missing) in result.stderr
    documents = json.loads(run("pins", "--format", "json", str(missing), str(apk)).stdout)
    assert [(d["artifact"], d["kind"], len(d["pins"])) for d in documents] == [
        (str(missing), None, 0),
        (str(apk), "apk", 2),
    ]
    assert documents[0]["errors"] == [f"{missing}: No such file or directory"]


# --- pinscan.extract_pins ----------------------------------------------------------------------


def test_extract_pins_is_one_row_per_pin_and_source_and_one_per_artifact(corpus: Path) -> None:
    before = _tree(corpus.parent)
    df = pinscan.extract_pins(corpus, workers=2)
    assert _tree(corpus.parent) == before  # nothing written, anywhere
    assert df.schema == bulk.SCHEMA
    artifacts = df.filter(pl.col("pin").is_null())
    by_name = {Path(r["artifact"]).name: r for r in artifacts.iter_rows(named=True)}
    assert sorted(by_name) == sorted(
        ["good0.apk", "good1.apk", "good2.apk", "renamed.bin.zip", "linked.apk", "garbage.apk",
         "cut.apk", "bomb.apk", "evil.apk", "split.apks", "App.ipa", "Bundle.app"]
    )  # fmt: skip
    for name in ("good0.apk", "good1.apk", "good2.apk", "renamed.bin.zip", "linked.apk"):
        row = by_name[name]
        assert (row["artifact_kind"], row["pins"], row["policies"], row["errors"]) == (
            "apk",
            2,
            1,
            [],
        )
    for name, message in (("garbage.apk", "not a zip file"), ("cut.apk", "truncated")):
        row = by_name[name]
        assert row["artifact_kind"] is None and row["pins"] == 0
        [error] = row["errors"]
        assert error.startswith(row["artifact"]) and message in error
    bomb = by_name["bomb.apk"]
    assert bomb["artifact_kind"] == "apk" and bomb["pins"] == 2  # the rest is read
    assert [e.split(": ", 1)[1] for e in bomb["errors"]] == [
        "refused: compressed 1028:1, more than 200:1 (a zip bomb?)"
    ]
    evil = by_name["evil.apk"]
    assert evil["errors"] == [
        f"{evil['artifact']}!../../../../tmp/evil: refused: '..' in the path",
        f"{evil['artifact']}!/etc/evil: refused: absolute path",
    ]
    assert by_name["split.apks"]["artifact_kind"] == "apks"
    for name, kind in (("App.ipa", "ipa"), ("Bundle.app", "app")):
        row = by_name[name]
        assert (row["artifact_kind"], row["pins"], row["policies"], row["errors"]) == (
            kind,
            2,
            1,
            [],
        )
    ipa = df.filter(pl.col("artifact").str.ends_with("App.ipa"), pl.col("pin").is_not_null())
    assert set(ipa.select("pin", "source", "kind").rows()) == {
        (pin, f"{by_name['App.ipa']['artifact']}!Payload/App.app/Info.plist", "config")
        for pin in (PIN_A, PIN_B)
    }
    pins = df.filter(pl.col("pin").is_not_null() & (pl.col("artifact").str.ends_with("good0.apk")))
    assert pins.select("pin", "algorithm", "hosts", "kind").sort("pin").rows() == sorted(
        [(PIN_A, "sha256", ["api.example.com"], "config"),
         (PIN_B, "sha256", ["api.example.com"], "config")]
    )  # fmt: skip


def test_extract_pins_in_one_process_gives_the_same_rows(corpus: Path) -> None:
    columns = [c for c in bulk.SCHEMA.names() if c != "seconds"]
    one = pinscan.extract_pins(corpus, workers=1).select(columns)
    two = pinscan.extract_pins(corpus, workers=2).select(columns)
    assert one.sort(columns[:6], nulls_last=True).equals(two.sort(columns[:6], nulls_last=True))


def test_a_list_of_paths_is_read_relative_to_itself(apk: Path, tmp_path: Path) -> None:
    shutil.copy(apk, tmp_path / "a.apk")
    listing = tmp_path / "apps.txt"
    listing.write_text("# the fleet\na.apk\n\nmissing.apk\n./a.apk\n")
    df = pinscan.extract_pins([listing, tmp_path / "a.apk"], workers=1)
    df = df.filter(pl.col("pin").is_null())
    assert df.height == 2  # each once, however it is spelled
    rows = {Path(r["artifact"]).name: r for r in df.iter_rows(named=True)}
    assert rows["a.apk"]["pins"] == 2
    assert rows["missing.apk"]["errors"] == [
        f"{tmp_path / 'missing.apk'}: No such file or directory"
    ]


def test_a_worker_that_dies_costs_no_artifact(corpus: Path) -> None:
    paths = list(bulk.artifact_paths([corpus]))
    rows: list[dict] = []
    killed = []

    def done(result: list[dict]) -> None:
        rows.extend(result)
        if not killed:  # the first result: kill every worker while others are being read
            killed.extend(p.pid for p in multiprocessing.active_children())
            for pid in killed:
                os.kill(pid, signal.SIGKILL)

    bulk.run(paths, done, workers=2)
    assert killed
    artifacts = [r for r in rows if r.get("pin") is None]
    assert sorted(r["artifact"] for r in artifacts) == sorted(paths)
    assert not any("killed the process" in e for r in artifacts for e in r["errors"])


# --- pinscan extract ---------------------------------------------------------------------------


def _read_out(out: Path) -> pl.DataFrame:
    return pl.read_parquet(out / "pins" / "*.parquet")


def test_extract_writes_parquet_and_only_inside_out(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    before = _tree(tmp_path)
    result = run("extract", str(corpus), "-o", str(out), "--format", "json")
    assert result.exit_code == exits.OK, result.output
    summary = json.loads(result.stdout)
    assert {k: summary[k] for k in ("artifacts", "read", "unreadable", "read_with_errors")} == {
        "artifacts": 12, "read": 10, "unreadable": 2, "read_with_errors": 2
    }  # fmt: skip
    assert summary["pins"] == 10 * 2
    assert {p for p in _tree(tmp_path) - before if not p.is_relative_to(out)} == set()
    df = _read_out(out)
    assert df.schema == bulk.SCHEMA and df.filter(pl.col("pin").is_null()).height == 12
    meta = json.loads((out / "extract.json").read_text())
    assert meta["complete"] and meta["inputs"] == [str(corpus)] and meta["counts"]["pins"] == 20
    assert sorted(p.name for p in out.iterdir()) == ["extract.json", "pins"]


def test_extract_refuses_an_output_in_use_and_a_finished_one(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run("extract", str(corpus), "-o", str(out), "-q").exit_code == exits.OK
    again = run("extract", str(corpus), "-o", str(out))
    assert "already holds an extract; use --resume" in refused(again, out)
    stranger = tmp_path / "theirs"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    assert "which pinscan did not write" in refused(
        run("extract", str(corpus), "-o", str(stranger)), stranger
    )
    assert "no such file" in refused(run("extract", str(tmp_path / "nope"), "-o", str(out)))


def test_extract_resumes_after_an_interruption(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    seen: list[str] = []

    def stop_after_four(rows: list[dict]) -> None:
        seen.append(rows[-1]["artifact"])
        if len(seen) == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        bulk.extract([corpus], out, workers=1, on_done=stop_after_four)
    meta = json.loads((out / "extract.json").read_text())
    assert not meta["complete"] and meta["counts"]["artifacts"] == 4
    assert sorted(_read_out(out).filter(pl.col("pin").is_null())["artifact"]) == sorted(seen)

    result = run("extract", "--resume", "-o", str(out), "--format", "json")
    assert result.exit_code == exits.OK, result.output
    assert json.loads(result.stdout)["artifacts"] == 12
    df = _read_out(out).filter(pl.col("pin").is_null())
    assert df.height == 12 and df["artifact"].n_unique() == 12  # each once
    meta = json.loads((out / "extract.json").read_text())
    assert meta["complete"] and len(meta["resumed_at"]) == 1


def test_ctrl_c_keeps_what_was_read_and_resume_finishes(apk: Path, tmp_path: Path) -> None:
    # Each copy holds a 20 MB bundle to search (links to one file: the disk holds it once), so
    # the run is still going when Ctrl-C comes.
    vocabulary = [b"const", b"var", b"function", b"return", b"=>", b"{", b"}", b"x", b"y"]
    bundle = b" ".join(random.Random(7).choices(vocabulary, k=4_000_000))  # deflates 4:1
    heavy = with_members(apk, tmp_path / "heavy.apk", {"assets/index.android.bundle": bundle})
    apps = tmp_path / "many"
    apps.mkdir()
    for i in range(100):
        os.link(heavy, apps / f"app{i:03d}.apk")
    out = tmp_path / "out"
    process = subprocess.Popen(
        [*PINSCAN, "extract", apps, "-o", out, "-j", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not (out / "extract.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(2.0)  # the workers start and read some
    os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole group
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == exits.INTERRUPTED, stderr
    assert stderr.decode().splitlines() == [
        "pinscan: interrupted; what was written is kept (scan, extract: --resume)"
    ]
    meta = json.loads((out / "extract.json").read_text())
    assert not meta["complete"] and meta["counts"]["artifacts"] < 100
    result = run("extract", "--resume", "-o", str(out), "--format", "json")
    assert result.exit_code == exits.OK, result.output
    df = _read_out(out).filter(pl.col("pin").is_null())
    assert df.height == 100 and df["artifact"].n_unique() == 100


def test_extract_in_a_terminal_shows_progress_and_restores_the_cursor(
    corpus: Path, tmp_path: Path
) -> None:
    done = run_in_terminal([*PINSCAN, "extract", corpus, "-o", tmp_path / "out"], timeout=120)
    assert done.returncode == exits.OK, done.text
    assert done.cursor_restored
    assert "Traceback" not in done.text
    assert f"{tmp_path / 'out'}: 12 artifacts: 10 read (2 with errors), 2 unreadable; 20 pins" in (
        done.text
    )


# --- load_policy and check -------------------------------------------------------------------


def test_load_policy_reads_an_apk_by_its_content(apk: Path, tmp_path: Path) -> None:
    renamed = tmp_path / "policy.bin"
    shutil.copy(apk, renamed)
    policies = pinscan.load_policy(renamed)
    assert isinstance(policies, list)
    assert next((p.name, p.format) for p in policies) == (
        f"{renamed}!res/xml/network_security_config.xml",
        "android",
    )
    assert pinscan.load_policies(renamed) == policies
    assert pinscan.read_artifact(renamed).policies == policies
    assert policies[0].rules[0].host == "api.example.com"


def test_a_broken_artifact_as_a_policy_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "cut.apk"
    path.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(pinscan.ArtifactError, match="not a zip file"):
        pinscan.load_policy(path)
    assert sys.modules["pinscan.errors"].ArtifactError is pinscan.ArtifactError


def test_check_refuses_an_app_without_a_policy(tmp_path: Path) -> None:
    bare = build_apk(tmp_path, App(), "bare.apk")
    assert pinscan.load_policies(bare) == []
    (tmp_path / "out").mkdir()  # the policies are read before the scan is opened
    line = refused(run("check", str(tmp_path / "out"), "--policy", str(bare)), bare)
    assert "holds no pin policy a client loads" in line
