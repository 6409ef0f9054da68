# SPDX-License-Identifier: Apache-2.0
"""The CLI the way people run it: in a colour terminal (progress bars and colours on) and piped
(cron, CI, `| less`), as separate processes against a loopback fleet.

Every command must exit with its documented status, write what it writes, print no traceback
and no warning, and leave the terminal as it found it (a cursor hidden by a progress bar shown
again). Piped, nothing is drawn: no escape sequences at all.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cryptography_vectors
import pytest
from cryptography.hazmat.primitives.serialization import Encoding

import pinscan
from pinscan.config import ScanConfig

from demo import run as demo_run
from fleet import pki, servers
from terminal import HIDE_CURSOR, PINSCAN, ROOT, Run, run_in_terminal, run_piped

MODES = ["terminal", "piped"]
#: How Python prints a warning: `file.py:12: SomeWarning: message`.
PYTHON_WARNING = re.compile(rb":\d+: \w*Warning: ")


def pinscan_cli(mode: str, *args: str | Path, cwd: Path = ROOT, timeout: float = 120.0) -> Run:
    """``pinscan ARGS`` in a terminal or piped; checks what every run must do."""
    argv = [*PINSCAN, *args]
    run = (
        run_in_terminal(argv, cwd=cwd, timeout=timeout)
        if mode == "terminal"
        else run_piped(argv, cwd=cwd, timeout=timeout)
    )
    everything = run.output + run.stderr
    assert run.returncode is not None, f"still running after {timeout} s: {everything[-2000:]!r}"
    assert b"Traceback" not in everything, everything.decode(errors="replace")
    assert not PYTHON_WARNING.search(everything), everything.decode(errors="replace")
    if mode == "terminal":
        assert run.cursor_restored, run.output[-2000:]
    else:
        assert b"\x1b" not in everything, "escape sequences in piped output"
    return run


@dataclass
class Fleet:
    directory: Path
    inventory: Path
    ca_bundle: Path
    policy: Path
    dataset: Path
    history: Path
    lines: int


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """Two names on a good server (chains from the test CA) and a closed port; a dataset and a
    history of two scans of them; a policy that pins a.test's key and pins b.test to a key it
    does not serve (one pass, one fail)."""
    tmp = tmp_path_factory.mktemp("terminal")
    ca_bundle = tmp / "root.pem"
    ca_bundle.write_bytes(pki.root().cert.public_bytes(Encoding.PEM))
    with servers.good() as good, servers.closed_port() as closed:
        lines = [f"{good.host}:{good.port} a.test", f"{good.host}:{good.port} b.test"]
        lines.append(f"{closed.host}:{closed.port}")
        inventory = tmp / "inventory.txt"
        inventory.write_text("\n".join(lines) + "\n")
        config = ScanConfig(retries=0, ca_bundle=ca_bundle)
        dataset = tmp / "dataset"
        pinscan.scan(str(inventory), dataset, config=config)
        history = tmp / "history"
        for _ in range(2):
            pinscan.scan(str(inventory), history=history, config=config)
        served = dict(
            pinscan.open(dataset).endpoints.select("target", "spki_sha256").collect().iter_rows()
        )
        a_pin = served[lines[0]]
        other = pinscan.spki_pin((ROOT / "demo" / "sample" / "backup-key.csr").read_bytes())
        policy = tmp / "pins.toml"
        policy.write_text(
            f'[[pin-set]]\ndomain = "a.test"\npositions = "leaf"\npins = ["sha256/{a_pin}"]\n'
            f'[[pin-set]]\ndomain = "b.test"\npositions = "leaf"\npins = ["sha256/{other}"]\n'
        )
        yield Fleet(tmp, inventory, ca_bundle, policy, dataset, history, len(lines))


def endpoint_count(dataset: Path | str) -> int:
    return pinscan.open(dataset).endpoints.select("target").collect().height


@pytest.mark.parametrize("mode", MODES)
def test_scan(fleet: Fleet, tmp_path: Path, mode: str) -> None:
    out = tmp_path / "out"
    run = pinscan_cli(mode, "scan", fleet.inventory, "-o", out, "--ca-bundle", fleet.ca_bundle)
    assert run.returncode == 0
    assert endpoint_count(out) == fleet.lines
    summary = run.text if mode == "terminal" else run.output.decode()
    assert f"scanned {fleet.lines} targets" in summary
    if mode == "terminal":
        assert HIDE_CURSOR in run.output and b"\x1b[3" in run.output  # a bar, in colour
        assert f"{fleet.lines}/{fleet.lines}" in run.text  # it counted every endpoint


@pytest.mark.parametrize("mode", MODES)
def test_scan_into_a_history_with_a_policy(fleet: Fleet, tmp_path: Path, mode: str) -> None:
    history = tmp_path / "history"
    args = ["--history", history, "--ca-bundle", fleet.ca_bundle, "--policy", fleet.policy]
    run = pinscan_cli(mode, "scan", fleet.inventory, *args)
    assert run.returncode == 1  # b.test's pin fails, as `check` would say
    assert endpoint_count(history) == fleet.lines


@pytest.mark.parametrize("mode", MODES)
def test_audit(fleet: Fleet, tmp_path: Path, mode: str) -> None:
    config = tmp_path / "audit.toml"
    config.write_text(
        f'inventory = "{fleet.inventory}"\nhistory = "history"\npolicies = ["{fleet.policy}"]\n'
        f'[scan]\nretries = 0\nca_bundle = "{fleet.ca_bundle}"\n'
        '[report]\nhtml = "fleet.html"\n'
    )
    run = pinscan_cli(mode, "audit", config)
    assert run.returncode == 1  # b.test's pin fails: max_pin_failures is crossed
    assert "FAIL max_pin_failures" in (run.text if mode == "terminal" else run.output.decode())
    assert endpoint_count(tmp_path / "history") == fleet.lines
    assert (tmp_path / "fleet.html").stat().st_size > 0
    if mode == "terminal":
        assert HIDE_CURSOR in run.output


@pytest.mark.parametrize("mode", MODES)
def test_check(fleet: Fleet, mode: str) -> None:
    run = pinscan_cli(mode, "check", fleet.dataset, "--policy", fleet.policy)
    assert run.returncode == 1
    text = run.text if mode == "terminal" else run.output.decode()
    assert "pass" in text and "fail" in text
    as_json = pinscan_cli(
        mode, "check", fleet.dataset, "--policy", fleet.policy, "--format", "json"
    )
    verdicts = {(r["name"], r["verdict"]) for r in json.loads(as_json.text)}
    assert {("a.test", "pass"), ("b.test", "fail")} <= verdicts


@pytest.mark.parametrize("mode", MODES)
def test_report(fleet: Fleet, tmp_path: Path, mode: str) -> None:
    page = tmp_path / "fleet.html"
    run = pinscan_cli(mode, "report", fleet.dataset, "--policy", fleet.policy, "--html", page)
    assert run.returncode == 0
    assert page.read_text().lower().startswith("<!doctype html>")
    assert str(fleet.lines) in run.text


@pytest.mark.parametrize("mode", MODES)
def test_diff(fleet: Fleet, mode: str) -> None:
    run = pinscan_cli(mode, "diff", fleet.history)
    assert run.returncode == 0  # the same fleet twice: no rotated key, no new failure
    as_json = pinscan_cli(mode, "diff", fleet.history, "--format", "json")
    assert as_json.returncode == 0
    assert isinstance(json.loads(as_json.text), list)


@pytest.mark.parametrize("mode", MODES)
def test_pin(mode: str) -> None:
    sample = ROOT / "demo" / "sample"
    dsa = (
        Path(cryptography_vectors.__file__).parent / "asymmetric" / "PKCS8" / "unenc-dsa-pkcs8.pem"
    )
    run = pinscan_cli(mode, "pin", sample / "mozilla-roots.pem", sample / "backup-key.csr", dsa)
    assert run.returncode == 0  # and no DSA deprecation warning: pinscan_cli checks
    spare = pinscan.spki_pin((sample / "backup-key.csr").read_bytes())
    assert f"sha256/{spare}" in run.text
    assert "sha256/C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M=" in run.text  # ISRG Root X1


def test_a_failing_progress_bar_loses_nothing(fleet: Fleet, tmp_path: Path) -> None:
    """Whatever breaks in the progress display (here: the bar column raises once an endpoint is
    done, in rich's refresh thread or when the bar stops), the scan goes on, writes every
    endpoint and exits 0; the user is told in one line and gets the cursor back."""
    script = (
        "import sys, rich.progress as p\n"
        "draw = p.BarColumn.render\n"
        "def broken(self, task):\n"
        "    if task.completed:\n"
        "        raise RuntimeError('no bar today')\n"
        "    return draw(self, task)\n"
        "p.BarColumn.render = broken\n"
        "from pinscan.cli import main\n"
        "main(sys.argv[1:], prog_name='pinscan')\n"
    )
    out = tmp_path / "out"
    with servers.silent() as silent:  # keeps the scan running past a few refreshes
        inventory = tmp_path / "inventory.txt"
        inventory.write_text(fleet.inventory.read_text() + f"{silent.host}:{silent.port}\n")
        argv = [sys.executable, "-c", script, "scan", inventory, "-o", out, "--deadline", "1"]
        run = run_in_terminal([*argv, "--ca-bundle", fleet.ca_bundle], timeout=60)
    assert run.returncode == 0, run.text
    assert "Traceback" not in run.text
    assert "pinscan: progress bar: RuntimeError: no bar today" in run.text
    assert run.cursor_restored
    assert endpoint_count(out) == fleet.lines + 1


def test_the_demo_scan(tmp_path: Path) -> None:
    """`make demo`'s scan: its fleet (in-process servers, openssl s_server and nginx where
    installed), its inventory and its command line, in a terminal."""
    ca_bundle = tmp_path / "fleet-ca.pem"
    ca_bundle.write_bytes(pki.root().cert.public_bytes(Encoding.PEM))
    dataset = tmp_path / "scan"
    with contextlib.ExitStack() as stack:
        lines = demo_run.start_fleet(stack, tmp_path)
        inventory = tmp_path / "inventory.txt"
        inventory.write_text(lines)
        command = demo_run.scan_command(inventory, dataset, ca_bundle)
        assert command[0] == "pinscan"
        run = pinscan_cli("terminal", *command[1:], timeout=90)
    assert run.returncode == 0
    targets = [line for line in lines.splitlines() if line.split("#")[0].strip()]
    assert endpoint_count(dataset) == len(targets)
    assert HIDE_CURSOR in run.output
    assert f"scanned {len(targets)} targets" in run.text


def test_the_demo_apps(fleet: Fleet) -> None:
    """`make demo`'s apps: an APK aapt2 compiles and an IPA, their pins listed and the fleet
    judged by them (a.test by its leaf key, b.test by its CA: both pass)."""
    runs = []

    def cli(*args: str | Path) -> int:
        runs.append(pinscan_cli("piped", *args))
        return runs[-1].returncode

    demo_run.show_apps(fleet.dataset, cli)
    pins, check = runs
    assert pins.returncode == 0, pins.text
    issuer = pinscan.spki_pin(pki.intermediate().der)
    apk, ipa = fleet.directory / "demo.apk", fleet.directory / "Demo.ipa"
    lines = pins.text.splitlines()
    for kind, hosts, where in (
        ("config", "b.test", f"{apk}!res/xml/network_security_config.xml"),
        ("config", "b.test", f"{ipa}!Payload/Demo.app/Info.plist"),
        ("bundled_certificate", "-", f"{ipa}!Payload/Demo.app/demo-ca.cer"),
    ):
        assert any(line.startswith(f"sha256/{issuer}  {kind}  {hosts}  {where}") for line in lines)
    assert f"  code  a.test  {ipa}!Payload/Demo.app/Demo  " in pins.text
    assert check.returncode == 0, check.text
    for policy in ("demo.apk!res/xml/network_security_config.xml", "Demo.ipa!overlay"):
        assert re.search(rf"{re.escape(policy)}: pass \d", check.text), check.text


def test_the_demo_goes_on_without_aapt2(fleet: Fleet, monkeypatch, capsys) -> None:
    """Without aapt2 the demo says so in one line and checks the fleet by the IPA alone."""
    monkeypatch.setattr(demo_run.shutil, "which", lambda program: None)
    commands = []
    demo_run.show_apps(fleet.dataset, lambda *args: commands.append(args) or 0)
    printed = capsys.readouterr().out
    assert "(no APK: aapt2 or the Android framework resources are missing" in printed
    assert [str(a) for a in commands[-1] if str(a).endswith((".apk", ".ipa"))] == [
        str(fleet.directory / "Demo.ipa")
    ]
