# SPDX-License-Identifier: Apache-2.0
"""`pinscan ct` as cron runs it: a log list pointing at both fakes, allowed keys from a pin file, a
policy and a scan dataset, exit 1 on new alerts then 0, JSON lines, and 2 naming a bad log."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from pinscan.cli import main

import ctfake
from fleet import pki
from policyfleet import Served, write_dataset

ALLOWED, FLEET, POLICY, ROGUE = (ctfake.key(n) for n in (20, 21, 22, 23))
ISO_8601 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


def _issue(key, name: str) -> ctfake.Issuance:
    return ctfake.issue(ctfake.ca(), key, [name])


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Path, ctfake.FakeRfc6962Log, ctfake.TileTree]]:
    rfc = ctfake.FakeRfc6962Log(cap=4)
    rfc.entries = [
        ctfake.precert_entry(_issue(ALLOWED, "a.example.com")),
        ctfake.x509_entry(_issue(FLEET, "b.example.com")),
        ctfake.precert_entry(_issue(ROGUE, "evil.example.com")),
        ctfake.x509_entry(_issue(ROGUE, "unwatched.test")),
    ]
    tree = ctfake.TileTree(tmp_path / "tiles")
    tree.entries = [
        ctfake.precert_entry(_issue(POLICY, "c.example.com"), index=0),
        ctfake.x509_entry(_issue(ROGUE, "tiled-evil.example.com"), index=1),
    ]
    tree.publish()
    with rfc.serving() as rfc_url, tree.serving() as tiled_url:
        document = ctfake.log_list(
            (rfc_url, rfc.signing_key), (tiled_url, f"https://{tree.origin}/", tree.signing_key)
        )
        (tmp_path / "loglist.json").write_text(json.dumps(document))
        (tmp_path / "pins.txt").write_text(f"# allowed\n{ctfake.pin(ALLOWED)}\n")
        (tmp_path / "policy.txt").write_text(
            "# host: c.example.com\n"
            f'Public-Key-Pins: pin-sha256="{ctfake.pin(POLICY)}"; '
            f'pin-sha256="{ctfake.pin(ALLOWED)}"; max-age=600\n'
        )
        fleet_issuance = _issue(FLEET, "b.example.com")
        served = pki.Issued(FLEET, fleet_issuance.cert, (fleet_issuance.cert,))
        write_dataset(tmp_path / "dataset", [Served("b.example.com", served, verified=False)])
        yield tmp_path, rfc, tree


def _run(base: Path, *extra: str) -> tuple[int, str, str]:
    args = [
        "ct",
        "--watch", "example.com",
        "--state", str(base / "state"),
        "--log-list", str(base / "loglist.json"),
        "--allow-pins", str(base / "pins.txt"),
        "--allow-policy", str(base / "policy.txt"),
        "--allow-dataset", str(base / "dataset"),
        "--backoff", "0.001",
        *extra,
    ]  # fmt: skip
    result = CliRunner().invoke(main, args)
    return result.exit_code, result.stdout, result.stderr


def test_new_alerts_exit_1_then_0(setup) -> None:
    base, _, _ = setup
    code, out, err = _run(base, "--format", "json")
    assert code == 1, err
    alerts = [json.loads(line) for line in out.splitlines()]
    assert sorted(a["names"][0] for a in alerts) == ["evil.example.com", "tiled-evil.example.com"]
    assert {a["spki_sha256"] for a in alerts} == {ctfake.pin(ROGUE)}
    assert {a["log"] for a in alerts} == {"Fake RFC 6962 log", "Fake tiled log"}
    # Times in ISO 8601 with a "T" and their offset, as everywhere else in pinscan's JSON.
    for alert in alerts:
        for key in ("timestamp", "not_before", "not_after"):
            assert ISO_8601.fullmatch(alert[key]), (key, alert[key])
            assert dt.datetime.fromisoformat(alert[key]).utcoffset() == dt.timedelta(0)
    assert "verified" in err
    code, out, err = _run(base, "--quiet")
    assert (code, out, err) == (0, "", "")


def test_text_table(setup) -> None:
    base, _, _ = setup
    code, out, _ = _run(base)
    assert code == 1
    assert "evil.example.com" in out and ctfake.pin(ROGUE) in out and "precert" in out


def test_a_log_that_fails_verification_exits_2_naming_it(setup) -> None:
    base, rfc, _ = setup
    rfc.bad_signature = True
    code, out, err = _run(base, "--format", "json")
    assert code == 2
    assert "pinscan: Fake RFC 6962 log" in err and "signature" in err
    # The tiled log still ran: its alert is printed and recorded.
    assert [json.loads(line)["names"] for line in out.splitlines()] == [["tiled-evil.example.com"]]
    assert "Traceback" not in err


def test_single_log_with_its_key_and_start_at_end(setup) -> None:
    base, _, tree = setup
    key = ctfake.spki(tree.signing_key)
    url = json.loads((base / "loglist.json").read_text())["operators"][0]["tiled_logs"][0]
    args = ["ct", "-w", "=tiled-evil.example.com", "--state", str(base / "one")]
    args += ["--log", url["monitoring_url"], "--log-type", "static", "--start-at-end"]
    args += ["--log-key", base64.b64encode(key).decode()]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.stderr
    assert "entries 2..2 verified" in result.stderr


def test_usage_errors_exit_2(setup, tmp_path: Path) -> None:
    base, _, _ = setup
    bad = tmp_path / "bad-pins.txt"
    bad.write_text("not a pin\n")
    code, _, err = _run(base, "--allow-pins", str(bad))
    assert code == 2 and "bad-pins.txt:1" in err
    code, _, err = _run(base, "--log", "https://unknown.example/")
    assert code == 2 and "no monitored log" in err
    result = CliRunner().invoke(main, ["ct", "--state", str(tmp_path / "s")])
    assert result.exit_code == 2 and "--watch" in result.stderr


@pytest.mark.parametrize("damage", ["truncated", "other_columns"])
def test_a_damaged_alerts_part_exits_2_naming_it(setup, damage: str) -> None:
    """Exit 1 means new alerts to cron: a damaged state file must not say that."""
    base, _, _ = setup
    assert _run(base)[0] == 1
    part = sorted((base / "state" / "alerts").glob("*.parquet"))[0]
    if damage == "truncated":
        part.write_bytes(part.read_bytes()[:-20])
    else:
        pl.DataFrame({"tbs_sha256": ["00"]}).write_parquet(part)
    code, _, err = _run(base)
    assert code == 2, err
    assert err.startswith(f"pinscan: {part}: ") and len(err.splitlines()) == 1, err
    assert "Traceback" not in err
