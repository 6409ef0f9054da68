# SPDX-License-Identifier: Apache-2.0
"""`pinscan audit CONFIG.toml` against a real in-process fleet on loopback: the first run of a
history (nothing to compare with), a second run after a key rotation (exit 1, key_rotated and
the failing pin), every threshold at its limit (exit 0) and one below it (exit 1), bad
configurations (exit 2, the key named, nothing scanned), the reports, --quiet and --format json."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization

import pinscan
from pinscan.audit import AuditResult, ConfigError, load_config
from pinscan.cli import main

from fleet import pki, servers

NOW = dt.datetime.now(dt.UTC)


@dataclass
class Result:
    code: int
    out: str
    err: str


def run(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args), env={"COLUMNS": "300"})
    return Result(result.exit_code, result.stdout, result.stderr)


@dataclass
class Fleet:
    directory: Path
    config: Callable[..., Path]
    first: Result
    second: Result


BASE = """\
inventory = "inventory.txt"
history = "{history}"
policies = ["pins.toml"]

[scan]
concurrency = 16
retries = 0
deadline = 5
ca_bundle = "root.pem"
"""


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """Five endpoints: `rot` (its key pinned at the leaf, then rotated), `stable`, `soon` (expires
    in 10 days), `self` (self-signed) and `down` (refused); audited twice into one history, with
    the rotation in between. The inventory, policy and root are beside the configurations, which
    name them by relative paths."""
    tmp = tmp_path_factory.mktemp("audit")
    (tmp / "root.pem").write_bytes(pki.root().cert.public_bytes(serialization.Encoding.PEM))
    rot = pki.leaf("rot.audit.test")
    soon = pki._issue(
        "soon.audit.test", pki._key("ec"), pki.intermediate(), ca=False,
        names=("soon.audit.test",), not_after=NOW + dt.timedelta(days=10),
    )  # fmt: skip
    (tmp / "pins.toml").write_text(
        '[[pin-set]]\ndomain = "rot.audit.test"\npositions = "leaf"\n'
        f'pins = ["sha256/{pinscan.spki_pin(rot.der)}"]\n'
    )

    def config(name: str, history: str = "history", extra: str = "", top: str = "") -> Path:
        path = tmp / f"{name}.toml"
        path.write_text(top + BASE.format(history=history) + extra)
        return path

    rotating = servers.Swappable(rot)
    with contextlib.ExitStack() as stack, socket.socket() as refusing:
        refusing.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        ports = {
            "rot": stack.enter_context(servers.swappable(rotating)).port,
            "stable": stack.enter_context(servers.tls(pki.leaf("stable.audit.test"))).port,
            "soon": stack.enter_context(servers.tls(soon)).port,
            "self": stack.enter_context(
                servers.tls(pki.leaf("self.audit.test", self_signed=True))
            ).port,
            "down": refusing.getsockname()[1],
        }
        (tmp / "inventory.txt").write_text(
            "".join(f"127.0.0.1:{port} {name}.audit.test\n" for name, port in ports.items())
        )
        report = '\n[report]\nhtml = "out/report.html"\njson = "out/report.json"\n'
        first = run("audit", str(config("default", extra=report)))
        rotating.swap(pki.leaf("rot.audit.test", "www.rot.audit.test"))
        second = run("audit", str(config("default", extra=report)))
        yield Fleet(tmp, config, first, second)


def test_first_run_has_nothing_to_compare(fleet: Fleet) -> None:
    assert fleet.first.code == 0, fleet.first
    out = fleet.first.out
    assert "changes: none to show, this is the first scan of the history" in out
    assert "5 endpoints" in out and "pin verdicts: " in out
    assert "ok   max_pin_failures: 0 (limit 0)" in out
    assert "ok   fail_on_changes: 0 (limit 0) first scan of this history" in out
    assert out.rstrip().endswith("result: ok")


def test_a_rotated_key_fails_the_second_run(fleet: Fleet) -> None:
    assert fleet.second.code == 1, fleet.second
    out = fleet.second.out
    assert re.search(r"changes since \S+: key_rotated 1", out)
    assert "FAIL fail_on_changes: 1 (limit 0)" in out
    assert "FAIL max_pin_failures: 1 (limit 0)" in out
    assert re.search(r"127\.0\.0\.1:\d+ rot\.audit\.test: key_rotated", out)
    assert re.search(r"127\.0\.0\.1:\d+ rot\.audit\.test: pins\.toml: fail", out)
    assert "result: FAIL (max_pin_failures, fail_on_changes)" in out
    scans = pinscan.open(fleet.directory / "history", scans="all").scans
    assert scans.height == 2


def test_the_reports_are_written_and_self_contained(fleet: Fleet) -> None:
    html = (fleet.directory / "out" / "report.html").read_text()
    assert "<svg" in html and "rot.audit.test" in html
    # Nothing is fetched: no external script, style, image or font.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert not re.search(r"@import|url\(\s*['\"]?https?:", html)
    report = json.loads((fleet.directory / "out" / "report.json").read_text())
    assert report["crossed"] == ["max_pin_failures", "fail_on_changes"]
    assert report["changes"] == {"key_rotated": 1, "verdict_changed": 1}
    # The page and the summary show the trend and the same changes as the audit.
    assert 'id="trend"' in html and 'id="changes"' in html
    summary = report["summary"]
    assert [r["pin_failing"] for r in summary["trend"]] == [0, 1]
    assert {k: n for k, n in summary["changes"].items() if n} == report["changes"]
    assert summary["previous"]["scan_id"] == report["previous_scan"]
    assert report["summary"]["endpoints"] == 5
    assert report["report"]["html"] == str(fleet.directory / "out" / "report.html")


LENIENT = """
[thresholds]
max_pin_failures = 1
fail_on_changes = ["vanished"]
max_failed_endpoints = 1
max_unverified = 1
expiring_days = 14
max_expiring = 1
"""


def test_thresholds_at_their_limits_pass_and_below_fail(fleet: Fleet, tmp_path: Path) -> None:
    history = str(tmp_path / "h")  # absolute: the configuration's directory does not matter
    lenient = run("audit", str(fleet.config("lenient", history, LENIENT)))
    assert lenient.code == 0, lenient
    assert "FAIL" not in lenient.out
    strict = re.sub(r"= 1$", "= 0", LENIENT, flags=re.MULTILINE)
    crossing = run("audit", str(fleet.config("strict", history, strict)), "--format", "json")
    assert crossing.code == 1, crossing
    result = json.loads(crossing.out)
    checks = {c["name"]: c for c in result["checks"]}
    assert result["crossed"] == [
        "max_pin_failures", "max_failed_endpoints", "max_unverified", "max_expiring"
    ]  # fmt: skip
    assert checks["fail_on_changes"]["value"] == 0  # the fleet did not change between the runs
    assert result["changes"] == {} and result["previous_scan"] is not None
    (failed,) = checks["max_failed_endpoints"]["examples"]
    assert re.fullmatch(rf"{re.escape(_target(fleet, 'down'))}: .*refused", failed, re.IGNORECASE)
    assert "self.audit.test" in checks["max_unverified"]["examples"][0]
    assert re.fullmatch(r".*soon\.audit\.test.*: expires in 9 days",
                        checks["max_expiring"]["examples"][0])  # fmt: skip


def _target(fleet: Fleet, name: str) -> str:
    lines = (fleet.directory / "inventory.txt").read_text().splitlines()
    return next(line for line in lines if line.endswith(f" {name}.audit.test"))


def test_quiet_prints_only_what_crossed(fleet: Fleet, tmp_path: Path) -> None:
    history = str(tmp_path / "h")
    clean = run("audit", str(fleet.config("lenient", history, LENIENT)), "--quiet")
    assert (clean.code, clean.out, clean.err) == (0, "", "")
    strict = LENIENT.replace("max_unverified = 1", "max_unverified = 0")
    crossed = run("audit", str(fleet.config("strict", history, strict)), "-q")
    assert crossed.code == 1
    lines = crossed.out.splitlines()
    assert lines[0].startswith("  FAIL max_unverified: 1 (limit 0)")
    assert len(lines) == 2 and "self.audit.test" in lines[1]


def test_python_api_returns_a_typed_result(fleet: Fleet, tmp_path: Path) -> None:
    config = fleet.config("api", str(tmp_path / "h"), LENIENT)
    result = pinscan.audit.run(config)
    assert isinstance(result, AuditResult)
    assert result.exit_code == 0 and result.previous is None and result.changes is None
    assert result.pin_verdicts["fail"] == 1
    assert result.summary.endpoints == 5
    # The unverified count agrees with the report's.
    unverified = next(c for c in result.checks if c.name == "max_unverified")
    assert unverified.value == result.summary.unverified["endpoints"].sum()
    again = pinscan.audit.run(config)
    assert again.previous == result.scan.meta["scan_id"]
    assert again.changes is not None and again.changes.is_empty()


def test_the_result_says_whether_it_passed(fleet: Fleet, tmp_path: Path) -> None:
    """The API answers with `passed` and `crossed`; the exit status is the command line's, and
    the JSON output still carries it."""
    history = str(tmp_path / "h")
    clean = pinscan.audit.run(fleet.config("passing", history, LENIENT))
    assert clean.passed and clean.crossed == () and clean.to_dict()["exit_code"] == 0
    strict = LENIENT.replace("max_unverified = 1", "max_unverified = 0")
    failing = pinscan.audit.run(fleet.config("failing", history, strict))
    assert not failing.passed and [c.name for c in failing.crossed] == ["max_unverified"]
    assert failing.to_dict()["exit_code"] == 1


@pytest.mark.parametrize(
    ("top", "extra", "message"),
    [
        (
            "",
            "\n[thresholds]\nmax_pin_failure = 0\n",
            "thresholds.max_pin_failure: unknown key (did you mean 'max_pin_failures'?)",
        ),
        (
            "",
            "\n[thresholds]\nmax_unverified = -1\n",
            "thresholds.max_unverified: must be at least 0",
        ),
        (
            "",
            "\n[thresholds]\nmax_unverified = true\n",
            "thresholds.max_unverified: must be an integer, not boolean True",
        ),
        (
            "",
            '\n[thresholds]\nfail_on_changes = ["key_rotate"]\n',
            "thresholds.fail_on_changes: unknown kind 'key_rotate'",
        ),
        ("", "\n[scan]\nconcurrency = 0\n", "not valid TOML"),  # [scan] given twice
        ("", "per_address = 0\n", "scan.per_address: must be an integer of at least 1, not 0"),
        (
            "",
            "verify_processes = -1\n",
            "scan.verify_processes: must be an integer from 0 to 64, not -1",
        ),
        # NaN and infinity are TOML numbers: a scan would crash on them after staging.
        (
            "",
            "connect_timeout = nan\n",
            "scan.connect_timeout: must be a finite number of at least 0.01, not nan",
        ),
        ("", "rate = inf\n", "scan.rate: must be a finite number of at least 0.1, not inf"),
        ("", "handshake_timeout = -1\n", "scan.handshake_timeout: must be a finite number of"),
        ("", "verify_processes = 65\n", "scan.verify_processes: must be an integer from 0 to 64"),
        ("", "processes = 0\n", "scan.processes: must be an integer from 1 to 1024, not 0"),
        (
            "",
            "per_address = 1.5\n",
            "scan.per_address: must be an integer of at least 1, not float 1.5",
        ),
        ("android_debug = 1\n", "", "android_debug: must be true or false, not integer 1"),
        (
            "",
            "connect_timeout = '5s'\n",
            "scan.connect_timeout: must be a finite number of at least 0.01, not string '5s'",
        ),
        ("", "\n[report]\nhtml = 3\n", "report.html: must be a path (a string), not integer 3"),
        ("colour = true\n", "", "colour: unknown key; known here: android_debug, history, inv"),
        ("thresholds = 3\n", "", "thresholds: must be a table ([thresholds]), not integer 3"),
    ],
)
def test_a_bad_config_exits_2_naming_the_key(
    fleet: Fleet, tmp_path: Path, top: str, extra: str, message: str
) -> None:
    history = tmp_path / "h"
    config = fleet.config("bad", str(history), extra, top)
    result = run("audit", str(config))
    assert result.code == 2, result
    assert result.err.startswith(f"pinscan: {config}: ")
    assert message in result.err
    assert "Traceback" not in result.err and not history.exists()  # nothing was scanned


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-5"])
def test_a_bad_deadline_stages_nothing(fleet: Fleet, tmp_path: Path, value: str) -> None:
    history = tmp_path / "h"
    config = fleet.config("deadline", str(history))
    config.write_text(config.read_text().replace("deadline = 5", f"deadline = {value}"))
    result = run("audit", str(config))
    assert result.code == 2, result
    assert result.err == (
        f"pinscan: {config}: scan.deadline: must be a finite number of at least 0.01, not {value}\n"
    )
    assert not history.exists()  # no staged scan, no history


def test_missing_inputs_are_config_errors(fleet: Fleet, tmp_path: Path) -> None:
    config = tmp_path / "audit.toml"
    config.write_text('inventory = "nowhere.txt"\nhistory = "h"\n')
    with pytest.raises(ConfigError, match=r"inventory: no such file: .*nowhere\.txt") as info:
        load_config(config)
    assert info.value.key == "inventory"
    config.write_text(f'inventory = "{fleet.directory / "inventory.txt"}"\n')
    result = run("audit", str(config))
    assert result.code == 2 and "history: is required" in result.err
    result = run("audit", str(tmp_path / "absent.toml"))
    assert result.code == 2 and "absent.toml: No such file or directory" in result.err


def test_a_config_error_is_every_documented_kind(tmp_path: Path) -> None:
    """docs/audit.md: `pinscan.audit.ConfigError`, a `pinscan.ConfigError`, a `ValueError`."""
    config = tmp_path / "audit.toml"
    config.write_text('history = "h"\n')
    with pytest.raises(pinscan.errors.AuditConfigError) as info:
        load_config(config)
    for kind in (ConfigError, pinscan.ConfigError, ValueError, pinscan.PinscanError):
        assert isinstance(info.value, kind), kind
    assert (info.value.source, info.value.key) == (str(config), "inventory")
    assert str(info.value) == f"{config}: inventory: is required"


def test_the_documented_example_config_loads(tmp_path: Path) -> None:
    doc = (Path(__file__).parent.parent / "docs" / "audit.md").read_text()
    example = re.search(r"```toml\n(.*?)```", doc, re.DOTALL).group(1)  # type: ignore[union-attr]
    for name in ("fleet.txt", "corp-root.pem", "policies/network_security_config.xml",
                 "policies/Info.plist", "spare.pub", "corp-cas.pem"):  # fmt: skip
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).touch()
    (tmp_path / "fleet.toml").write_text(example)
    config = load_config(tmp_path / "fleet.toml")
    assert config.inventory == tmp_path / "fleet.txt"
    assert config.history == Path("/var/lib/pinscan/fleet")
    assert config.scan.ca_bundle == tmp_path / "corp-root.pem"
    assert (config.scan.rate, config.scan.timeouts.deadline, config.strict) == (50.0, 30.0, True)
    assert config.thresholds.expiring_days == 14 and config.thresholds.max_expiring == 0
    assert config.android_debug is False and config.scan.verify_processes == 1
    assert config.scan.processes == 2
    lockout = config.lockout
    assert lockout is not None and lockout.scenarios == "all"
    assert lockout.fail_on == ("renew_new_key", "sibling") and lockout.switch_to == ("DigiCert",)
    assert lockout.backup_keys == (tmp_path / "spare.pub",)
    assert (lockout.max_locked_out, lockout.max_expiry_headroom) == (0, 0)


def test_days_to_expiry_are_the_reports(fleet: Fleet, tmp_path: Path) -> None:
    """The audit's "expires in N days" is the report's `days` for the same leaf at the same
    moment: whole days, rounded down (the leaf of `soon` has 9.99... days left)."""
    history = tmp_path / "h"
    limits = "\n[thresholds]\nexpiring_days = 14\nmax_expiring = 0\n"
    result = pinscan.audit.run(fleet.config("days", str(history), limits))
    (check,) = (c for c in result.checks if c.name == "max_expiring")
    (example,) = check.examples
    moment = result.summary.as_of
    report = run("report", str(history), "--as-of", moment.isoformat(), "--format", "json")
    assert report.code == 0, report
    (soonest,) = (r for r in json.loads(report.out)["soonest"] if "soon.audit.test" in r["subject"])
    leaf = dt.datetime.fromisoformat(soonest["not_after"])
    assert soonest["days"] == (leaf - moment).days  # timedelta's days: rounded down
    assert example.endswith(f"soon.audit.test: expires in {soonest['days']} days"), example
    assert (
        result.summary.soonest.filter(pl.col("subject").str.contains("soon"))["days"][0]
        == (soonest["days"])
    )
