# SPDX-License-Identifier: Apache-2.0
"""The ``pinscan`` command line: the only place that reads flags and ``PINSCAN_*`` variables.

Every command prints problems as ``pinscan: <file>: <what>`` on stderr, never a traceback. Exit
status (:mod:`pinscan.cli.exits`): 0 ran clean, 1 findings a scheduled job should act on, 2 the
job could not be done (usage errors, unreadable input, unwritable output, and internal errors:
``PINSCAN_DEBUG=1`` shows their traceback).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os
import sys
import threading
from typing import Any

import click
from click.shell_completion import CompletionItem

from pinscan._core import __version__
from pinscan.cli import exits
from pinscan.errors import PinscanError

# Each command lives in its own module, imported only when it runs: `pinscan pin` does not pay
# for the scanner, nor `pinscan check` for anyio.
COMMANDS = {
    "pin": "pinscan.cli.pin:pin",
    "scan": "pinscan.cli.scan:scan_command",
    "check": "pinscan.cli.check:check_command",
    "suggest": "pinscan.cli.suggest:suggest_command",
    "ct": "pinscan.cli.ct:ct_command",
    "diff": "pinscan.cli.diff:diff_command",
    "report": "pinscan.cli.report:report_command",
    "audit": "pinscan.cli.audit:audit_command",
    "ca": "pinscan.cli.ca:ca_command",
    "pins": "pinscan.cli.pins:pins_command",
    "extract": "pinscan.cli.extract:extract_command",
}

# What `pinscan --help` and shell completion say of each command: the first sentence of its
# help, kept here so that listing the commands imports none of them (importing them all, for
# polars, pyarrow, cryptography and rich, took about a second). tests/test_cli_start.py checks
# that each is still the command's own.
SUMMARIES = {
    "pin": "Print the pin of every certificate, public key, CSR and private key in FILE...",
    "scan": "Handshake with every endpoint of INVENTORY, or of the TARGETs, and write what each "
    "serves to OUT; without -o, print it.",
    "check": "Judge every endpoint of the scan in OUT by each --policy, as its client would.",
    "suggest": "Write a pin policy for DOMAIN from what its endpoints serve in the scan in OUT.",
    "ct": "Report certificates for watched names whose key is not allowed, from CT logs.",
    "diff": "What changed per endpoint from scan OLD to scan NEW.",
    "report": "Summarise the scan OUT (a dataset, a history's latest scan, or HISTORY@SCAN_ID or "
    "HISTORY@-2 for an earlier one): status, TLS versions, keys, issuers, expiry in 7/30/90 "
    "days, unverified endpoints, pin verdicts and coverage, and the most common problems; for a "
    "scan of a history, also the trend over its scans and what changed since the scan before.",
    "audit": "Scan the fleet of CONFIG into its history, judge it by its policies, compare it "
    "with the previous scan, write the report and check the thresholds.",
    "ca": "Print the family of the CA QUERY names, or the CAs in the chains of the scan QUERY.",
    "pins": "List the pins in each ARTIFACT (APK, AAB, split APKs, IPA, .app directory), where "
    "each is and which hosts it is tied to.",
    "extract": "Read the pins of every app artifact in DIR_OR_LIST... into a Parquet table in OUT.",
}


def short_help(name: str, limit: int = 45) -> str:
    """A command's one-line help as click shortens it, without importing the command."""
    return click.Command(name, help=SUMMARIES[name]).get_short_help_str(limit)


class _Group(click.Group):
    """Turns pinscan's own errors into one line and exit 2, and a closed pipe into silence;
    lists its commands without importing them."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        limit = formatter.width - 6 - max(map(len, COMMANDS))
        with formatter.section("Commands"):
            formatter.write_dl([(name, short_help(name, limit)) for name in COMMANDS])

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        commands = [
            CompletionItem(name, help=short_help(name))
            for name in COMMANDS
            if name.startswith(incomplete)
        ]
        return [*commands, *click.Command.shell_complete(self, ctx, incomplete)]

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PinscanError as exc:
            click.echo(f"pinscan: {exc}", err=True)
            ctx.exit(exits.ERROR)
        except KeyboardInterrupt:
            msg = "pinscan: interrupted; what was written is kept (scan, extract: --resume)"
            click.echo(msg, err=True)
            ctx.exit(exits.INTERRUPTED)
        except BrokenPipeError:
            # `pinscan ... | head`: the reader is gone. Point stdout at /dev/null so the flush at
            # exit does not fail again, and stop quietly.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(exits.OK)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise  # click's own: usage errors (exit 2, as ERROR), ctx.exit(), Ctrl-C at a prompt
        except Exception as exc:
            damaged = _damaged_part(exc)
            if damaged is not None:
                click.echo(f"pinscan: {damaged}", err=True)
                ctx.exit(exits.ERROR)
            if os.environ.get("PINSCAN_DEBUG"):
                raise
            # A bug. Exit 1 would tell a cron job "findings"; it is the job that did not run.
            what = f"{type(exc).__name__}: {exc}".rstrip(": ")
            msg = f"internal error ({what}); rerun with PINSCAN_DEBUG=1 for the traceback"
            click.echo(f"pinscan: {msg}, and please report it", err=True)
            ctx.exit(exits.ERROR)


def _damaged_part(exc: Exception) -> PinscanError | None:
    """When a Parquet decoder failed: the damaged part of a dataset the command read, found by
    reading its parts again one by one. ``None`` for any other error (a bug stays a traceback)."""
    polars, pyarrow = sys.modules.get("polars"), sys.modules.get("pyarrow")
    decoders = (
        *((polars.exceptions.PolarsError,) if polars else ()),
        *((pyarrow.ArrowException,) if pyarrow else ()),
    )
    if not isinstance(exc, decoders):
        return None
    # Imported here, when a decoder failed: `pinscan --help` does not load the dataset code.
    from pinscan.dataset.reader import damaged_part

    return damaged_part()


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pinscan")
def main() -> None:
    """Which keys your hosts really serve, and whether pinned clients keep working."""


def run() -> None:
    """The ``pinscan`` command (``python -m pinscan`` too): :func:`main`, then a quick exit.

    Once a command has returned, its files are closed and synced and its child processes waited
    for; what is left is the interpreter tearing down every module and object, which costs a
    scan of 500 hosts 0.1-0.15 s of CPU and wall time for nothing. So the exit handlers run, the
    standard streams are flushed, and the process ends there. Code importing pinscan (notebooks,
    tests through click's runner) calls :func:`main` and exits as it always does.
    """
    try:
        main(prog_name="pinscan")
        code: Any = 0
    except SystemExit as exc:
        code = exc.code
    # What the interpreter's own exit runs, in its order: first the wait for non-daemon threads
    # (a process pool's manager shuts its workers down there), then the exit handlers.
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        # A reader gone away (| head), a closed stream: nothing left to say to it.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)  # sys.exit("message"), as the interpreter would print it
        code = 1
    os._exit(code)
