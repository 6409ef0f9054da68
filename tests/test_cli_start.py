# SPDX-License-Identifier: Apache-2.0
"""How the `pinscan` command starts: `pinscan --help`, `--version` and shell completion list the
commands without importing any of them (polars, pyarrow, cryptography and rich took about a
second), `pinscan <command> --help` imports that command alone, and what they say of each
command is still that command's own help."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import click
import pytest

import pinscan
import pinscan.ct
import pinscan.ct.loglist
import pinscan.diffing
import pinscan.inventory
import pinscan.policy
from pinscan.cli import COMMANDS, SUMMARIES, ct, diff, main, options, scan, short_help, suggest

from fleet import servers
from terminal import PINSCAN, terminal_env

HEAVY = ("polars", "pyarrow", "cryptography", "rich", "anyio", "httpx", "pinscan.")
# What every start may load: the command line's frame, its exit codes and shared options, the
# exceptions, and the core (for --version).
START = {
    "pinscan._core",
    "pinscan.cli",
    "pinscan.cli.exits",
    "pinscan.cli.options",
    "pinscan.errors",
}


def test_the_summaries_are_the_commands_own() -> None:
    assert list(SUMMARIES) == list(COMMANDS)
    ctx = click.Context(main)
    for name in COMMANDS:
        command = main.get_command(ctx, name)
        assert command is not None
        for limit in (45, 67, 10_000):
            assert short_help(name, limit) == command.get_short_help_str(limit), (
                f"`pinscan {name}`'s help changed: update SUMMARIES in pinscan/cli/__init__.py"
            )


def modules_loaded(args: list[str], env: dict[str, str] | None = None) -> tuple[str, list[str]]:
    """Runs ``pinscan ARGS`` in a fresh interpreter; its output and the heavy modules it loaded."""
    script = (
        "import atexit, json, sys\n"
        f"heavy = {HEAVY!r}\n"
        "atexit.register(lambda: sys.stderr.write(json.dumps(\n"
        "    sorted(m for m in sys.modules if m.startswith(heavy)))))\n"
        "from pinscan.cli import main\n"
        "main(sys.argv[1:], prog_name='pinscan')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=terminal_env(env), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout, sorted(set(json.loads(done.stderr)) - START)


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["--version"]])
def test_help_and_version_import_no_command(args: list[str]) -> None:
    output, heavy = modules_loaded(args)
    assert heavy == []
    if args != ["--version"]:
        for name in COMMANDS:
            assert f"  {name} " in output


#: What a command's help may import besides the command itself: `scan` shows the settings'
#: bounds and defaults, which pinscan.config states once (it imports nothing heavy).
HELP_NEEDS = {"scan": ["pinscan.config", "pinscan.records"], "check": ["pinscan.records"]}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_commands_help_imports_that_command_alone(command: str) -> None:
    # The library (polars, the scanner, rich...) is imported when the command runs.
    output, heavy = modules_loaded([command, "--help"])
    assert heavy == sorted([f"pinscan.cli.{command}", *HELP_NEEDS.get(command, [])])
    assert output.startswith(f"Usage: pinscan {command} ")


def test_a_scan_reaches_its_first_connection_without_the_heavy_libraries(tmp_path) -> None:
    """polars, pyarrow, pyca/cryptography, the dataset reader, the policy readers and rich are
    loaded after the scan's first connection, if at all (a scan with -o and -q prints nothing):
    issue 16's start-up. (The stores pinscan ships are read where paths are built, and the
    dataset's parts are written with pyarrow once rows come.)"""
    script = (
        "import json, socket, sys\n"
        "connect = socket.socket.connect_ex\n"
        "seen = []\n"
        "def first(self, address):\n"
        "    if not seen:\n"
        "        seen.append(sorted(m for m in sys.modules if m.split('.')[0] in\n"
        "            ('polars', 'rich', 'pyarrow', 'cryptography', 'pinscan')\n"
        "            and not m.startswith('pinscan.scanner')))\n"
        "        sys.stderr.write(json.dumps(seen[0]) + '\\n')\n"
        "    return connect(self, address)\n"
        "socket.socket.connect_ex = first\n"
        "from pinscan.cli import main\n"
        "main(sys.argv[1:], prog_name='pinscan')\n"
    )
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-c", script, "scan", f"127.0.0.1:{port}", "-o", str(tmp_path / "o"),
             "-q", "--retries", "0", "--deadline", "1"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stderr.splitlines()[0])
    late = ["polars", "rich", "pyarrow", "cryptography", "pinscan.dataset.reader"]
    late += ["pinscan.policy", "pinscan.cli.bar"]
    late += ["pinscan.cli.scan_output", "pinscan.certs.table", "pinscan.dataset.history"]
    for heavy in late:
        assert heavy not in loaded, heavy
    assert "pinscan.dataset.writer" in loaded  # the dataset is created before the connection


@pytest.mark.parametrize("output", ["text", "json"])
def test_a_scan_that_keeps_its_dataset_never_loads_polars_or_rich(tmp_path, output: str) -> None:
    """A scan with -o writes its parts with pyarrow alone and prints its summary without
    opening the dataset: polars, rich, pyarrow.compute and pyarrow.dataset (a quarter of a
    second of a 500-host run) are never imported. The dataset is whole all the same."""
    script = (
        "import atexit, json, sys\n"
        "def loaded():\n"
        "    heavy = ('polars', 'rich', 'pyarrow.compute', 'pyarrow.dataset')\n"
        "    found = sorted(m for m in sys.modules if m in heavy or m.split('.')[0] in heavy[:2])\n"
        "    sys.stderr.write('LOADED ' + json.dumps(found) + '\\n')\n"
        "atexit.register(loaded)\n"
        "from pinscan.cli import main\n"
        "main(sys.argv[1:], prog_name='pinscan')\n"
    )
    out = tmp_path / "o"
    with servers.good() as good, servers.closed_port() as closed:
        lines = [f"127.0.0.1:{good.port} {n}" for n in ("a.test", "b.test")]
        inventory = tmp_path / "inventory.txt"
        inventory.write_text("".join(f"{line}\n" for line in [*lines, f"127.0.0.1:{closed.port}"]))
        done = subprocess.run(
            [sys.executable, "-c", script, "scan", str(inventory), "-o", str(out),
             "--format", output, "--retries", "0", "--deadline", "5"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stderr.rsplit("LOADED ", 1)[1])
    assert loaded == [], loaded
    if output == "json":
        summary = json.loads(done.stdout)
        assert summary["dataset"] == str(out) and summary["statuses"] == {"ok": 2, "refused": 1}
    else:
        assert "scanned 3 targets, 3 endpoints" in done.stdout
    ds = pinscan.open(out, verify=True)
    assert ds.endpoints.collect().height == 3 and ds.meta["complete"]


def test_what_the_help_restates_is_still_the_librarys() -> None:
    """The few library constants the commands' help shows, restated in pinscan.cli so that the
    help does not import the library."""
    assert options.POLICY_FORMATS == pinscan.policy.FORMATS
    assert suggest.SUGGEST_FORMATS == pinscan.policy.SUGGEST_FORMATS
    assert diff.DEFAULT_FAIL_ON == pinscan.diffing.DEFAULT_FAIL_ON
    assert ct.DEFAULT_LOG_LIST == pinscan.ct.DEFAULT_LOG_LIST
    assert scan.DEFAULT_PORT == pinscan.inventory.DEFAULT_PORT
    assert ct.LOG_TYPES == (pinscan.ct.loglist.RFC6962, pinscan.ct.loglist.STATIC)


def complete(words: str, shell: str = "bash", env: dict[str, str] | None = None) -> str:
    """What `pinscan`'s completion answers the shell for the command line ``words``."""
    extra = {
        "_PINSCAN_COMPLETE": f"{shell}_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split(" ")) - 1),
    }
    done = subprocess.run(
        [*PINSCAN], env=terminal_env({**extra, **(env or {})}),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    return done.stdout


def test_completion_of_the_commands() -> None:
    assert complete("pinscan ").split() == [f"plain,{name}" for name in COMMANDS]
    assert complete("pinscan s").split() == ["plain,scan", "plain,suggest"]
    zsh = complete("pinscan di", "zsh").splitlines()
    assert zsh == ["plain", "diff", short_help("diff")]


def test_completion_of_a_commands_options_and_files(tmp_path) -> None:
    assert "plain,--deadline" in complete("pinscan scan --dead").split()
    assert complete("pinscan check out --format ").split() == ["plain,text", "plain,json"]
    assert complete("pinscan pin ").split() == ["file,"]  # the shell completes the file


def test_listing_the_commands_for_completion_imports_none() -> None:
    env = {"_PINSCAN_COMPLETE": "bash_complete", "COMP_WORDS": "pinscan ", "COMP_CWORD": "1"}
    output, heavy = modules_loaded([], env)
    assert heavy == [] and "plain,scan" in output.split()


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_completion_scripts(shell: str) -> None:
    """What README.md tells people to put in their shell's start-up file."""
    done = subprocess.run(
        [*PINSCAN], env=terminal_env({"_PINSCAN_COMPLETE": f"{shell}_source"}),
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert "_PINSCAN_COMPLETE" in done.stdout and f"{shell}_complete" in done.stdout


def test_a_reader_that_stops_early_ends_the_command_quietly() -> None:
    # `pinscan ... | head -1`: the pipe closes while pinscan still writes, and the next write
    # raises BrokenPipeError. (One large write does not, so the command is made to raise it.)
    script = (
        "import pinscan.cli.pin as command\n"
        "def closed(**options):\n"
        "    raise BrokenPipeError(32, 'Broken pipe')\n"
        "command.pin.callback = closed\n"
        "from pinscan.cli import main\n"
        "main(['pin', '-'], prog_name='pinscan')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=terminal_env(), capture_output=True, timeout=60
    )
    assert (done.returncode, done.stderr) == (0, b"")


@pytest.mark.parametrize("debug", [False, True])
def test_an_internal_error_is_one_line_and_exit_2(debug: bool) -> None:
    # A bug must not exit 1, which a cron job reads as findings to act on.
    script = (
        "import pinscan.cli.pin as command\n"
        "def broken(**options):\n"
        "    raise RuntimeError('a bug')\n"
        "command.pin.callback = broken\n"
        "from pinscan.cli import main\n"
        "main(['pin', '-'], prog_name='pinscan')\n"
    )
    env = terminal_env({"PINSCAN_DEBUG": "1"} if debug else {})
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    if debug:
        assert done.returncode == 1 and "Traceback" in done.stderr
        assert done.stderr.rstrip().endswith("RuntimeError: a bug")
    else:
        assert done.returncode == 2
        assert done.stderr == (
            "pinscan: internal error (RuntimeError: a bug); rerun with PINSCAN_DEBUG=1 for the "
            "traceback, and please report it\n"
        )


def test_the_command_ends_its_process_once_done_and_loses_nothing(tmp_path) -> None:
    # `pinscan` (pinscan.cli.run) skips the interpreter's teardown after the command: the exit
    # code, every byte of a long output to a pipe, and the clean-up of the temporary dataset of
    # a scan without -o (an exit handler) must all survive that.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]  # nothing listens once the socket is closed
    targets = [f"127.0.0.{i}:{closed}" for i in range(1, 201)]
    env = terminal_env({"TMPDIR": str(tmp_path)})
    done = subprocess.run(
        [*PINSCAN, "scan", *targets, "--format", "json", "--quiet", "--retries", "0"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert len(printed["results"]) == 200 and printed["statuses"] == {"refused": 200}
    assert list(tmp_path.iterdir()) == []  # the temporary dataset is gone
    refused = subprocess.run(
        [*PINSCAN, "scan", "not a target at all"], env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert refused.returncode == 2 and refused.stderr.startswith("pinscan: ")
    # A reader that stops early: exit 0 and nothing on stderr, as with main().
    command = f"{' '.join(PINSCAN)} scan {' '.join(targets)} --format json --quiet | head -c 10"
    head = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command], env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert (head.returncode, head.stderr) == (0, "")
