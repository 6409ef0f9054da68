# SPDX-License-Identifier: Apache-2.0
"""Running a command the way a person does: in a pseudo-terminal, or piped.

In a pseudo-terminal standard input, output and error are all the terminal, so ``isatty()`` is
true, rich draws its progress bars and colours, and the output is what the person reads (both
streams, interleaved, with the escape sequences). :func:`run_in_terminal` is bounded in time: a
command still running at ``timeout`` is killed with its process group and the result says so.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The command line, as the installed ``pinscan`` script runs it.
PINSCAN = (sys.executable, "-m", "pinscan")

HIDE_CURSOR = b"\x1b[?25l"
SHOW_CURSOR = b"\x1b[?25h"
_ESCAPE = re.compile(rb"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07]*\x07|[@-Z\\-_])")


@dataclass
class Run:
    returncode: int | None  # None: killed at the time limit
    output: bytes  # what the terminal received (stdout and stderr), or stdout when piped
    stderr: bytes = b""  # piped runs only

    @property
    def text(self) -> str:
        """The output without escape sequences and carriage returns, as plain text."""
        return _ESCAPE.sub(b"", self.output).replace(b"\r", b"").decode("utf-8", "replace")

    @property
    def cursor_restored(self) -> bool:
        """Every hidden cursor was shown again afterwards."""
        hidden = self.output.rfind(HIDE_CURSOR)
        return hidden == -1 or self.output.rfind(SHOW_CURSOR) > hidden


def terminal_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a person's colour terminal: TERM set, no NO_COLOR, no forced or
    disabled terminal features, no fixed COLUMNS (the terminal's size is used)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS"}
        and k not in {"LINES", "PYTEST_CURRENT_TEST", "PYTHONWARNINGS"}
    }
    env["TERM"] = "xterm-256color"
    env.update(extra or {})
    return env


def run_in_terminal(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: str | os.PathLike[str] = ROOT,
    env: Mapping[str, str] | None = None,
    timeout: float = 120.0,
    columns: int = 120,
    rows: int = 40,
) -> Run:
    """Runs ``argv`` on a new pseudo-terminal of ``columns`` x ``rows`` and returns what it
    printed; the process is killed (with its children) at ``timeout`` seconds."""
    controller, terminal = os.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    try:
        process = subprocess.Popen(
            [os.fspath(a) for a in argv],
            cwd=cwd,
            env=terminal_env() if env is None else dict(env),
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,
            start_new_session=True,  # its own session: the terminal becomes its controlling one
            close_fds=True,
        )
    except BaseException:
        os.close(controller)
        raise
    finally:
        os.close(terminal)
    output = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([controller], [], [], min(left, 1.0))
            if not ready:
                if process.poll() is not None and not _drain(controller, output):
                    break
                continue
            if not _read(controller, output):
                break  # every writer closed the terminal
        else:
            _kill(process)
            return Run(None, bytes(output))
        try:
            returncode = process.wait(timeout=max(deadline - time.monotonic(), 1.0))
        except subprocess.TimeoutExpired:
            _kill(process)
            return Run(None, bytes(output))
        return Run(returncode, bytes(output))
    finally:
        os.close(controller)
        if process.poll() is None:
            _kill(process)


def run_piped(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: str | os.PathLike[str] = ROOT,
    env: Mapping[str, str] | None = None,
    timeout: float = 120.0,
) -> Run:
    """Runs ``argv`` with stdin closed and stdout and stderr piped, as cron and CI do."""
    try:
        done = subprocess.run(
            [os.fspath(a) for a in argv],
            cwd=cwd,
            env=terminal_env() if env is None else dict(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired as exc:
        return Run(None, exc.stdout or b"", exc.stderr or b"")
    return Run(done.returncode, done.stdout, done.stderr)


def _read(fd: int, into: bytearray) -> bool:
    try:
        chunk = os.read(fd, 65536)
    except OSError as exc:
        if exc.errno == errno.EIO:  # Linux: the other side is closed
            return False
        raise
    into += chunk
    return bool(chunk)


def _drain(fd: int, into: bytearray) -> bool:
    """Reads what is left once the process has exited; False when nothing was."""
    ready, _, _ = select.select([fd], [], [], 0)
    return bool(ready) and _read(fd, into)


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
