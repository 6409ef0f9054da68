# SPDX-License-Identifier: Apache-2.0
"""`pinscan check --scenarios` and `pinscan audit`'s `[lockout]` through the real command line:
datasets written from the test PKI, a private PKI with two issuing intermediates given by
--ca-catalog (so that the second is the sibling a renewal may come from), real policy files
(pinscan TOML, Android XML), the exit statuses a CI job gates on, and one run in a terminal."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization

import pinscan
from pinscan.audit import ConfigError, load_config
from pinscan.cli import main

from fleet import pki, servers
from policyfleet import Served, pin_of, write_dataset
from terminal import PINSCAN, run_in_terminal, terminal_env

PEM = serialization.Encoding.PEM
HOSTS = ("api.example.com", "www.example.com")
SIBLING = "sibling:Pinscan Test Intermediate 2"


@dataclass
class Result:
    code: int
    out: str
    err: str


def run(*args: str | Path) -> Result:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return Result(result.exit_code, result.stdout, result.stderr)


@dataclass
class Fleet:
    directory: Path
    dataset: Path
    #: The private PKI's CAs: the root and both issuing intermediates.
    cas: Path
    spare: Path

    def policy(self, name: str, *pins: str) -> Path:
        """A pinscan TOML policy pinning example.com and its subdomains to ``pins``."""
        path = self.directory / f"{name}.toml"
        listed = ", ".join(f'"sha256/{p}"' for p in pins)
        path.write_text(
            f'[[pin-set]]\ndomain = "example.com"\ninclude-subdomains = true\npins = [{listed}]\n'
        )
        return path

    def check(self, policy: Path, *args: str | Path) -> Result:
        return run("check", self.dataset, "--policy", policy, *args)


def leaves() -> list[pki.Issued]:
    return [pki.leaf(host) for host in HOSTS]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    """Two hosts under the test intermediate; the PEM bundle of the private PKI; a spare key."""
    tmp = tmp_path_factory.mktemp("lockout")
    write_dataset(tmp / "scan", [Served(host, pki.leaf(host)) for host in HOSTS])
    cas = tmp / "private-cas.pem"
    cas.write_bytes(
        b"".join(
            issued.cert.public_bytes(PEM)
            for issued in (pki.root(), pki.intermediate(), pki.second_intermediate())
        )
    )
    spare = tmp / "spare.pub"
    spare.write_bytes(
        pki.leaf("spare.invalid")
        .key.public_key()
        .public_bytes(PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return Fleet(tmp, tmp / "scan", cas, spare)


def leaf_pins() -> list[str]:
    return [pin_of(issued) for issued in leaves()]


def spare_pin(fleet: Fleet) -> str:
    return pinscan.spki_pin(fleet.spare.read_bytes())


def outcomes(document: dict, scenario: str) -> set[str]:
    return {r["outcome"] for r in document["lockout"] if r["scenario"] == scenario}


def test_leaf_only_pins_lock_out_at_the_next_renewal(fleet: Fleet) -> None:
    policy = fleet.policy("leaf-only", *leaf_pins(), spare_pin(fleet))
    result = fleet.check(
        policy, "--scenarios", "all", "--ca-catalog", fleet.cas, "--format", "json"
    )
    assert result.code == 1, result
    document = json.loads(result.out)
    assert {"verdicts", "findings", "lockout", "headroom", "gate"} <= set(document)
    assert document["fail_on"] == ["renew_new_key", "sibling"]
    assert {r["verdict"] for r in document["verdicts"]} == {"pass"}  # today, all is well
    assert outcomes(document, "renew_same_key") == {"survives"}
    assert outcomes(document, "renew_new_key") == {"locks_out"}
    assert {(r["name"], r["scenario"]) for r in document["gate"]} >= {
        (host, "renew_new_key") for host in HOSTS
    }
    headroom = {r["name"]: r for r in document["headroom"]}
    assert set(headroom) == set(HOSTS)
    for row in headroom.values():
        assert row["pins_matched"] == 1 and row["positions"] == ["leaf"]
        assert row["carrier"] == "leaf" and "renew_new_key" in row["locks_out"]


def test_the_intermediate_pin_carries_renewals_until_a_sibling_issues(fleet: Fleet) -> None:
    pins = [*leaf_pins(), pin_of(pki.intermediate())]
    policy = fleet.policy("intermediate", *pins)
    # The shipped catalog does not know the private PKI: a renewal under the same intermediate.
    alone = fleet.check(policy, "--scenarios", "routine", "--format", "json")
    assert alone.code == 0, alone
    document = json.loads(alone.out)
    assert outcomes(document, "renew_new_key") == {"survives"} and document["gate"] == []
    # With the private PKI, its second intermediate may issue the next certificate.
    known = fleet.check(
        policy, "--scenarios", "routine", "--ca-catalog", fleet.cas, "--format", "json"
    )
    assert known.code == 1, known
    document = json.loads(known.out)
    assert {r["scenario"] for r in document["gate"]} == {SIBLING}
    assert outcomes(document, "renew_new_key") == {"survives"}
    # The root's key is in every chain either intermediate builds.
    rooted = fleet.policy("rooted", *pins, pin_of(pki.root()))
    result = fleet.check(rooted, "--scenarios", "routine", "--ca-catalog", fleet.cas)
    assert result.code == 0, result
    assert "no endpoint that passes today locks out" in result.out


def test_the_matrix_reads_as_text_one_row_per_line(fleet: Fleet) -> None:
    policy = fleet.policy("leaf-only", *leaf_pins(), spare_pin(fleet))
    result = fleet.check(policy, "--scenarios", "all", "--ca-catalog", fleet.cas)
    assert result.code == 1 and not result.err, result
    out = result.out
    assert out.index("pin verdicts") < out.index("lockout matrix") < out.index("headroom:")
    for host in HOSTS:
        # The matrix row: renew_same_key survives, renew_new_key and the sibling lock out.
        (row,) = [
            line
            for line in out.splitlines()
            if line.startswith(f"│ {host} ") and "survives" in line
        ]
        assert "leaf-only.toml" in row and row.count("LOCKS_OUT") == 2
    assert "renew_new_key*" in out and f"{SIBLING}*" in out  # the columns that gate
    assert "gate (--fail-on-lockout renew_new_key,sibling): 2 passing endpoints locked out" in out
    assert "headroom: 2 of 2 passing endpoint-policy pairs pass through one pin only" in out


def test_quiet_prints_nothing_when_clean_and_only_the_gate_when_not(fleet: Fleet) -> None:
    rooted = fleet.policy("rooted", *leaf_pins(), pin_of(pki.intermediate()), pin_of(pki.root()))
    clean = fleet.check(rooted, "--scenarios", "all", "--ca-catalog", fleet.cas, "-q")
    assert (clean.code, clean.out, clean.err) == (0, "", "")
    clean = fleet.check(rooted, "--scenarios", "all", "-q", "--format", "json")
    assert (clean.code, clean.out, clean.err) == (0, "", "")
    leaf_only = fleet.policy("leaf-only", *leaf_pins(), spare_pin(fleet))
    failing = fleet.check(leaf_only, "--scenarios", "routine", "-q")
    assert failing.code == 1
    assert "lockouts that fail the check" in failing.out and "renew_new_key" in failing.out
    assert "lockout matrix" not in failing.out and "headroom" not in failing.out


def test_fail_on_lockout_none_reports_and_emergencies_gate_only_when_named(fleet: Fleet) -> None:
    leaf_only = fleet.policy("leaf-only", *leaf_pins(), spare_pin(fleet))
    reported = fleet.check(leaf_only, "--scenarios", "all", "--fail-on-lockout", "none")
    assert reported.code == 0, reported
    assert "LOCKS_OUT" in reported.out and "lockouts that fail the check" not in reported.out
    # backup_key is an emergency: reported, gating only when named.
    no_spare = fleet.policy("no-spare", *leaf_pins())
    args = ("--scenarios", "all", "--backup-key", fleet.spare)
    reported = fleet.check(no_spare, *args, "--fail-on-lockout", "none", "--format", "json")
    assert reported.code == 0, reported
    assert outcomes(json.loads(reported.out), "backup_key") == {"locks_out"}
    gated = fleet.check(no_spare, *args, "--fail-on-lockout", "backup_key")
    assert gated.code == 1, gated
    assert "backup_key" in gated.out.split("lockouts that fail the check")[1]
    # Pinned, the spare key carries the leaf's re-keying (not a renewal with another key).
    spared = fleet.check(leaf_only, *args, "--fail-on-lockout", "backup_key", "--format", "json")
    assert spared.code == 0, spared
    assert outcomes(json.loads(spared.out), "backup_key") == {"survives"}


def test_an_android_config_is_played_like_the_toml(fleet: Fleet) -> None:
    xml = fleet.directory / "network_security_config.xml"
    pins = "".join(f'<pin digest="SHA-256">{p}</pin>' for p in (*leaf_pins(), spare_pin(fleet)))
    xml.write_text(
        "<network-security-config><domain-config>"
        '<domain includeSubdomains="true">example.com</domain>'
        f"<pin-set>{pins}</pin-set></domain-config></network-security-config>\n"
    )
    result = fleet.check(xml, "--scenarios", "routine", "--format", "json")
    assert result.code == 1, result
    document = json.loads(result.out)
    assert {r["format"] for r in document["lockout"]} == {"android"}
    assert outcomes(document, "renew_new_key") == {"locks_out"}


def test_expiry_headroom_findings_follow_warn_days(fleet: Fleet) -> None:
    # The leaves end in 90 days: outside the default 30, inside 365.
    policy = fleet.policy("leaf-only", *leaf_pins(), spare_pin(fleet))
    kinds = []
    for days in ("30", "365"):
        result = fleet.check(
            policy, "--scenarios", "all", "--warn-days", days, "--fail-on-lockout", "none",
            "--format", "json",
        )  # fmt: skip
        assert result.code == 0, result
        kinds.append({f["kind"] for f in json.loads(result.out)["findings"]})
    assert "expiry_headroom" not in kinds[0]
    assert "expiry_headroom" in kinds[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--scenarios", "renewal"), "pinscan: --scenarios: "),
        (("--scenarios", ""), "pinscan: --scenarios: "),
        (("--switch-to", "DigiCert"), "pinscan: --switch-to: plays rotation scenarios"),
        (("--fail-on-lockout", "none"), "pinscan: --fail-on-lockout: plays rotation scenarios"),
        (
            ("--scenarios", "routine", "--fail-on-lockout", "root_removed"),
            "pinscan: --fail-on-lockout: root_removed would gate but --scenarios does not play it",
        ),
        (("--scenarios", "all", "--fail-on-lockout", "renewal"), "pinscan: --fail-on-lockout: "),
        (
            ("--scenarios", "switch", "--switch-to", "No Such CA"),
            "pinscan: --switch-to: 'No Such CA' is no CA family or issuing CA the catalog knows",
        ),
    ],
)
def test_bad_scenario_options_are_one_line_and_exit_2(
    fleet: Fleet, args: tuple[str, ...], message: str
) -> None:
    policy = fleet.policy("leaf-only", *leaf_pins())
    result = fleet.check(policy, *args)
    assert result.code == 2, result
    assert result.out == "" and result.err.startswith(message), result.err
    assert result.err.count("\n") == 1 and "Traceback" not in result.err


def test_in_a_terminal_names_and_pins_stay_whole(fleet: Fleet) -> None:
    policy = fleet.policy("leaf-only", *leaf_pins(), spare_pin(fleet))
    argv = [*PINSCAN, "check", fleet.dataset, "-p", policy, "--scenarios", "all"]
    shown = run_in_terminal([*argv, "--ca-catalog", fleet.cas], columns=80, timeout=90)
    assert shown.returncode == 1, shown.text
    assert b"\x1b[" in shown.output  # colours, in a terminal
    text = shown.text
    assert "Traceback" not in text
    # Wider than 80 columns, the lines wrap on screen but each is written whole.
    assert SIBLING in text and "LOCKS_OUT" in text
    for pin in leaf_pins():
        assert f"sha256/{pin}" in text
    # Without colour the outcomes are still words.
    plain = run_in_terminal(
        [*argv, "--ca-catalog", fleet.cas], env=terminal_env({"NO_COLOR": "1"}), timeout=90
    )
    assert plain.returncode == 1
    assert not re.search(rb"\x1b\[[0-9;]*3[0-9]m", plain.output)  # no foreground colour
    assert "LOCKS_OUT" in plain.text and "survives" in plain.text


# --- pinscan audit: [lockout] -----------------------------------------------------------------


def write_config(directory: Path, lockout: str, *, policies: bool = True, name: str = "a") -> Path:
    """An audit configuration named ``name``, with a history of its own."""
    path = directory / f"{name}.toml"
    top = f'inventory = "inventory.txt"\nhistory = "history-{name}"\n'
    top += 'policies = ["pins.toml"]\n' if policies else ""
    path.write_text(top + '\n[scan]\nretries = 0\nca_bundle = "root.pem"\n' + lockout)
    return path


@pytest.fixture
def config_dir(tmp_path: Path, fleet: Fleet) -> Path:
    for name in ("inventory.txt", "pins.toml", "root.pem"):
        (tmp_path / name).touch()
    (tmp_path / "cas.pem").write_bytes(fleet.cas.read_bytes())
    return tmp_path


def test_the_lockout_table_defaults_and_paths(config_dir: Path) -> None:
    assert load_config(write_config(config_dir, "")).lockout is None
    lockout = load_config(write_config(config_dir, "[lockout]\n")).lockout
    assert lockout is not None
    assert (lockout.scenarios, lockout.fail_on) == ("all", ("renew_new_key", "sibling"))
    assert (lockout.warn_days, lockout.max_locked_out, lockout.max_expiry_headroom) == (30, 0, None)
    lockout = load_config(
        write_config(
            config_dir,
            '[lockout]\nscenarios = ["renew_new_key", "switch"]\nfail_on = "none"\n'
            'switch_to = "DigiCert"\nca_catalog = "cas.pem"\nmax_expiry_headroom = 2\n',
        )
    ).lockout
    assert lockout is not None and lockout.fail_on == ()
    assert lockout.scenarios == ("renew_new_key", "switch") and lockout.switch_to == ("DigiCert",)
    assert lockout.ca_catalog == (config_dir / "cas.pem",) and lockout.max_expiry_headroom == 2


@pytest.mark.parametrize(
    ("lockout", "key", "message"),
    [
        ('scenarios = "renewal"\n', "lockout.scenarios", "renewal"),
        ("scenarios = 3\n", "lockout.scenarios", "must be a string or a list of strings"),
        (
            'scenarios = "routine"\nfail_on = ["root_removed"]\n',
            "lockout.fail_on",
            "root_removed would gate but scenarios does not play it",
        ),
        ('fail_on = ["renewal"]\n', "lockout.fail_on", "renewal"),
        ("max_locked_out = -1\n", "lockout.max_locked_out", "must be at least 0"),
        ('warn_days = "30"\n', "lockout.warn_days", "must be an integer"),
        ("max_lockedout = 0\n", "lockout.max_lockedout", "did you mean 'max_locked_out'?"),
        ('backup_keys = ["spare.pub"]\n', "lockout.backup_keys", "no such file"),
    ],
)
def test_a_bad_lockout_key_is_named(config_dir: Path, lockout: str, key: str, message: str) -> None:
    config = write_config(config_dir, "[lockout]\n" + lockout)
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert info.value.key == key and message in str(info.value)
    # On the command line: one line, exit 2, nothing scanned.
    result = run("audit", config)
    assert result.code == 2 and result.err.startswith(f"pinscan: {config}: {key}: ")
    assert result.err.count("\n") == 1 and not (config_dir / "history-a").exists()


def test_lockout_needs_policies(config_dir: Path) -> None:
    with pytest.raises(ConfigError, match="lockout: plays rotation scenarios on the policies"):
        load_config(write_config(config_dir, "[lockout]\n", policies=False))


@pytest.fixture(scope="module")
def audited(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A loopback server of api.example.com (the test intermediate's leaf), with the files an
    audit of it needs beside its configurations."""
    tmp = tmp_path_factory.mktemp("audit-lockout")
    (tmp / "root.pem").write_bytes(pki.root().cert.public_bytes(PEM))
    (tmp / "cas.pem").write_bytes(fleet.cas.read_bytes())
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(servers.tls(pki.leaf(HOSTS[0])))
        (tmp / "inventory.txt").write_text(f"127.0.0.1:{server.port} {HOSTS[0]}\n")
        yield tmp


def test_an_audit_fails_on_a_routine_lockout_and_counts_the_scenarios(audited: Path) -> None:
    leaf = pin_of(pki.leaf(HOSTS[0]))
    (audited / "pins.toml").write_text(
        f'[[pin-set]]\ndomain = "{HOSTS[0]}"\npins = ["sha256/{leaf}"]\n'
    )
    lockout = '[lockout]\nca_catalog = "cas.pem"\nwarn_days = 365\nmax_expiry_headroom = 0\n'
    config = write_config(audited, lockout, name="leaf")
    result = run("audit", config, "--format", "json")
    assert result.code == 1, result
    document = json.loads(result.out)
    assert document["crossed"] == ["max_locked_out", "max_expiry_headroom"]
    checks = {c["name"]: c for c in document["checks"]}
    assert checks["max_locked_out"]["value"] == 1
    (example,) = checks["max_locked_out"]["examples"]
    assert re.fullmatch(rf"127\.0\.0\.1:\d+ {re.escape(HOSTS[0])}: pins\.toml: locks out under .*",
                        example)  # fmt: skip
    assert "renew_new_key" in example and SIBLING in example
    assert "when the leaf expires" in checks["max_expiry_headroom"]["examples"][0]
    played = {s["scenario"]: s for s in document["lockout"]["scenarios"]}
    assert played["renew_new_key"]["locks_out"] == 1 and played["renew_same_key"]["survives"] == 1
    text = run("audit", config)
    assert text.code == 1
    assert "lockout: " in text.out and "FAIL max_locked_out: 1 (limit 0)" in text.out


def test_an_audit_passes_when_the_root_is_pinned(audited: Path) -> None:
    pins = [pin_of(pki.leaf(HOSTS[0])), pin_of(pki.root())]
    listed = ", ".join(f'"sha256/{p}"' for p in pins)
    (audited / "pins.toml").write_text(f'[[pin-set]]\ndomain = "{HOSTS[0]}"\npins = [{listed}]\n')
    config = write_config(audited, '[lockout]\nca_catalog = "cas.pem"\n', name="rooted")
    result = pinscan.audit.run(config)
    assert result.passed, [c.to_dict() for c in result.crossed]
    (check,) = [c for c in result.checks if c.name == "max_locked_out"]
    assert check.value == 0
    assert result.lockout is not None and not result.lockout.lockout.is_empty()
