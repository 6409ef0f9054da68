# SPDX-License-Identifier: Apache-2.0
"""Tables that hold pins, as people get them: `pinscan diff` and `pinscan ct` piped (COLUMNS
unset, and set small) and in a pseudo-terminal of a narrow and of a wide window. Every pin and
digest must come out whole on one line, where it can be copied into a pin-set."""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import pinscan

import ctfake
from fleet import pki
from policyfleet import Served, write_dataset
from terminal import PINSCAN, run_in_terminal, run_piped, terminal_env


def piped(args: list[str], **env: str) -> tuple[int | None, str]:
    """Run ``pinscan args`` with its output into a pipe, as `... | grep` or cron's mail get it."""
    run = run_piped([*PINSCAN, *args], env=terminal_env(env))
    return run.returncode, run.output.decode()


def in_terminal(
    args: list[str], columns: int, program: tuple[str, ...] = PINSCAN
) -> tuple[int | None, str]:
    """Run ``pinscan args`` in a pseudo-terminal ``columns`` wide, as someone at a terminal
    does; the text it wrote, escape sequences removed."""
    run = run_in_terminal([*program, *args], columns=columns)
    return run.returncode, run.text


def assert_whole(out: str, *tokens: str) -> None:
    """Each token (a pin, a digest) on one line of ``out``, not folded over two."""
    lines = out.splitlines()
    for token in tokens:
        assert any(token in line for line in lines), f"{token} is not whole on a line:\n{out}"


WAYS = [
    pytest.param(lambda args: piped(args), id="piped"),
    pytest.param(lambda args: piped(args, COLUMNS="40"), id="piped-COLUMNS=40"),
    pytest.param(lambda args: in_terminal(args, 60), id="terminal-60"),
    # Narrower than the table, wider than its narrowest layout: rich narrows columns to fit.
    pytest.param(lambda args: in_terminal(args, 150), id="terminal-150"),
    pytest.param(lambda args: in_terminal(args, 250), id="terminal-250"),
]


@pytest.fixture(scope="module")
def two_scans(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    """Two scans of the same names: one key rotated, one certificate renewed with the same key;
    and the pins and certificate digests `diff` must print."""
    tmp = tmp_path_factory.mktemp("tables")
    rot, renew = pki.leaf("rot.tables.test"), pki.leaf("renew.tables.test")
    rotated = pki.leaf("rot.tables.test", "www.rot.tables.test")
    renewed = pki._issue(
        "renew.tables.test", renew.key, pki.intermediate(), ca=False, names=("renew.tables.test",)
    )
    write_dataset(tmp / "old", [Served("rot.tables.test", rot), Served("renew.tables.test", renew)])
    write_dataset(
        tmp / "new", [Served("rot.tables.test", rotated), Served("renew.tables.test", renewed)]
    )
    # key_rotated shows the keys' pins, renewed the certificates' SHA-256.
    tokens = [pinscan.spki_pin(rot.der), pinscan.spki_pin(rotated.der)]
    tokens += [pinscan.certificates([c.der])["cert_sha256"][0] for c in (renew, renewed)]
    return tmp / "old", tmp / "new", tokens


@pytest.mark.parametrize("run", WAYS)
def test_diff_prints_pins_and_digests_whole(two_scans, run) -> None:
    old, new, tokens = two_scans
    code, out = run(["diff", str(old), str(new), "--fail-on", "none"])
    assert code == 0, out
    assert "key_rotated" in out and "renewed" in out
    assert_whole(out, *tokens)


def test_diff_json_has_the_same_pins(two_scans) -> None:
    old, new, tokens = two_scans
    code, out = piped(["diff", str(old), str(new), "--format", "json", "--fail-on", "none"])
    assert code == 0
    values = {v for row in json.loads(out) for v in (row["old"], row["new"])}
    assert set(tokens) == values


@pytest.mark.parametrize("run", WAYS)
def test_check_prints_matched_pins_whole(two_scans, run, tmp_path: Path) -> None:
    _, new, _ = two_scans
    leaf_pins = pinscan.open(new).endpoints.select("spki_sha256").collect().to_series().to_list()
    policy = tmp_path / "leaf.toml"
    policy.write_text(
        'chain = "leaf"\n'
        + "".join(
            f'[[pin-set]]\ndomain = "{name}"\npins = ["sha256/{pin}", "sha256/{"A" * 43}="]\n'
            for name, pin in zip(("rot.tables.test", "renew.tables.test"), leaf_pins, strict=True)
        )
    )
    code, out = run(["check", str(new), "--policy", str(policy)])
    assert code == 0, out
    assert out.count("pass") >= 2
    assert_whole(out, *(f"sha256/{pin}" for pin in leaf_pins))


ROGUE = ctfake.key(31)


@pytest.fixture
def rogue_log(tmp_path: Path) -> Iterator[tuple[list[str], list[str]]]:
    """A CT log holding a certificate for a watched name with a key nobody allowed; the `ct`
    arguments that find it, and the pin and TBS digest its table must show."""
    issuance = ctfake.issue(ctfake.ca(), ROGUE, ["rogue.tables.example"])
    log = ctfake.FakeRfc6962Log()
    log.entries = [ctfake.x509_entry(issuance)]
    with log.serving() as url:
        key = base64.b64encode(ctfake.spki(log.signing_key)).decode()
        args = ["ct", "-w", "tables.example", "--state", str(tmp_path / "state")]
        args += ["--log", url, "--log-key", key, "--backoff", "0.001"]
        yield args, [ctfake.pin(ROGUE), ctfake.dedupe_hash(issuance)]


@pytest.mark.parametrize("run", WAYS)
def test_ct_prints_pins_and_digests_whole(rogue_log, run) -> None:
    args, tokens = rogue_log
    code, out = run(args)
    assert code == 1, out  # a new alert
    assert "rogue.tables.example" in out
    assert_whole(out, *tokens)


# A table rich narrows unevenly: the widest columns first, below their longest word, and then,
# for the columns kept at that width, wider than the terminal.
_UNEVEN = """
from rich.table import Table
from pinscan.report.terminal import new_console, print_table
table = Table(title="changes")
for column in ("change", "target", "ip", "old", "new", "detail"):
    table.add_column(column, overflow="fold")
table.add_row("key_rotated", "127.0.0.1:8443 rot.tables.test", "127.0.0.1:443", "A" * 43 + "=",
              "B" * 43 + "=", "new key in a new certificate, valid until 2026-01-01 " * 2)
table.add_row("chain_changed", "c.test", "127.0.0.1:443", "a" * 64 + " " + "b" * 64, "",
              "intermediates sent: [CN=x] -> [] the end")
print_table(new_console(), table)
"""


@pytest.mark.parametrize("columns", [40, 150, 182, 200, 260, 400])
def test_no_word_of_a_table_is_cut_or_broken(columns) -> None:
    code, out = in_terminal([], columns, program=(sys.executable, "-c", _UNEVEN))
    assert code == 0, out
    assert_whole(out, "A" * 43 + "=", "B" * 43 + "=", "a" * 64, "b" * 64, "rot.tables.test")
    assert "the end" in out and out.count("2026-01-01") == 2
