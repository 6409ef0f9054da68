# SPDX-License-Identifier: Apache-2.0
"""``pinscan extract DIR_OR_LIST... -o OUT``: the pins of thousands of apps into Parquet."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pinscan._core import __version__
from pinscan.cli import options

# The bulk reader (polars) and the progress bar (rich) are imported in the command, so that
# `pinscan extract --help` starts fast (lazy for start-up time).
if TYPE_CHECKING:
    from pinscan.cli.progress import Progress


@click.command()
@click.argument("inputs", nargs=-1, metavar="DIR_OR_LIST...", type=click.Path())
@click.option(
    "-o",
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write (or, with --resume, to finish).",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Finish an interrupted extract in OUT: the artifacts already read are skipped (without "
    "DIR_OR_LIST, those the first run was given).",
)
@click.option(
    "-j",
    "--workers",
    type=click.IntRange(min=1),
    help="Processes reading artifacts at once.  [default: one per CPU]",
)
@click.option(
    "--no-code",
    is_flag=True,
    help="Read configurations and bundled certificates only: do not search code (dex, native "
    "libraries, executables) for pin strings.",
)
@options.output_format("The summary as text, or as a JSON object.")
@options.quiet("No progress bar and no summary.")
def extract_command(
    inputs: tuple[str, ...],
    out: Path,
    resume: bool,
    workers: int | None,
    no_code: bool,
    output: str,
    quiet: bool,
) -> None:
    """Read the pins of every app artifact in DIR_OR_LIST... into a Parquet table in OUT.

    Each DIR_OR_LIST is an artifact (APK, AAB, split APKs, IPA, .app directory), a directory
    searched for them, or a file listing their paths, one a line. OUT/pins/ holds one row per
    (artifact, pin, source) and one row per artifact with its kind, counts and errors: an
    artifact that cannot be read (damaged, a zip bomb, hostile names) is its row's error, and
    the run goes on. Interrupted, what was read is kept: --resume finishes it. Exits 0 once
    every artifact has its row, unreadable ones included; 2 when an input or OUT cannot be used.
    """
    from pinscan.cli.progress import Progress
    from pinscan.policy.artifacts.bulk import extract

    if not inputs and not resume:
        raise click.UsageError("give a directory of apps, a list of their paths, or apps")
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        bars: list[Progress] = []

        def start(total: int) -> None:
            bar = Progress(total=total, enabled=not quiet and sys.stderr.isatty(), label="extract")
            bars.append(stack.enter_context(bar))

        def done(rows: list[dict[str, Any]]) -> None:
            bars[0].advance("ok" if rows[-1]["artifact_kind"] else "failed")

        counts = extract(
            inputs, out, resume=resume, workers=workers, code=not no_code, version=__version__,
            on_start=start, on_done=done,
        )  # fmt: skip
    if quiet:
        return
    seconds = round(time.monotonic() - started, 3)
    if output == "json":
        click.echo(json.dumps({"out": str(out), **counts, "seconds": seconds}, indent=2))
        return
    click.echo(
        f"{out}: {counts['artifacts']:,} artifacts: {counts['read']:,} read "
        f"({counts['read_with_errors']:,} with errors), {counts['unreadable']:,} unreadable; "
        f"{counts['pins']:,} pins; {seconds:,.1f} s"
    )
