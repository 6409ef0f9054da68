# SPDX-License-Identifier: Apache-2.0
"""The command line in-process (click's runner), and what a refused command must look like: exit
2 and one line, ``pinscan: <where>: <what>``, naming what was wrong, never a traceback."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from pinscan.cli import main


def run(*args: str) -> Result:
    """``pinscan ARGS``, with a terminal wide enough that no message is folded."""
    return CliRunner().invoke(main, list(args), env={"COLUMNS": "300"})


def refused(result: Result, *names: str | Path) -> str:
    """An exit 2 with one line that names each of ``names``, and no traceback; the line."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pinscan: "), result.stderr
    for name in names:
        assert str(name) in lines[0], (name, lines[0])
    return lines[0]
