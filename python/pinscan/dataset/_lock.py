# SPDX-License-Identifier: Apache-2.0
"""One writer per output: an exclusive ``flock`` on a lock file in the output directory, held
for as long as the scan writes there. The kernel drops the lock when the process ends, however
it ends (``kill -9`` too), so a lock never outlives its scan: a file left by a killed scan is
not locked, and the next writer takes it over. A holder that ends normally deletes the file
(while still holding the lock; a writer that locked the deleted file notices and starts again).

The file records who holds it (pid, host, start, scan id), for the message that refuses a second
writer and for readers, which tell a scan that is still running from one that was interrupted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from pinscan.dataset import outputs
from pinscan.errors import DatasetError

LOCK_FILE = ".pinscan.lock"
# A reader's probe (see holder) holds the lock for a moment: try again before calling it busy.
_ATTEMPTS = 50
_PAUSE = 0.01


class Lock:
    """A held lock; :meth:`release` (or leaving the ``with`` block) lets the next writer in."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):  # a file left behind is taken over next time
                self.path.unlink()
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = None

    def __enter__(self) -> Lock:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def acquire(
    directory: Path, *, scan_id: str | None, name: str = LOCK_FILE, what: str = "scan"
) -> Lock:
    """Locks ``directory`` (which must exist) for this process, or raises
    :class:`~pinscan.errors.DatasetError` naming the process that holds it. ``what`` says what
    this holder does, read with the scan id (``"scan"``, ``"shard 3/16 of scan"``), for the
    message another writer gets."""
    path = directory / name
    record: dict[str, Any] = {}
    for _ in range(_ATTEMPTS):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise outputs.output_error(path, exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            record = _read(fd)
            os.close(fd)
            time.sleep(_PAUSE)
            continue
        except OSError as exc:
            os.close(fd)
            if exc.errno == errno.ENOLCK:  # a network file system without locks
                msg = "cannot lock (the file system has no locks); pinscan needs flock here"
                raise DatasetError(str(path), msg) from None
            raise outputs.output_error(path, exc) from None
        if _same_file(fd, path):
            break
        os.close(fd)  # its holder deleted it on release, after we opened it: start again
    else:
        msg = f"{describe(record)} is writing here; wait for it to end, or stop it"
        raise DatasetError(str(directory), msg)
    record = {
        "what": what,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "scan_id": scan_id,
    }
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
    except OSError as exc:
        os.close(fd)
        raise outputs.output_error(path, exc) from None
    return Lock(path, fd)


def holder(directory: Path, name: str = LOCK_FILE) -> dict[str, Any] | None:
    """Who holds the lock of ``directory`` (the record it wrote; ``{}`` when it has not written
    it yet), or ``None`` when no process does."""
    try:
        fd = os.open(directory / name, os.O_RDONLY)
    except OSError:
        return None  # never locked, or not ours to look at: nothing known to be running
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(fd)
        except OSError:
            return None
        return None
    finally:
        os.close(fd)


def describe(record: dict[str, Any] | None) -> str:
    """``scan 2025...-a1b2c3 (pid 4242 on host, started 2025-01-01T06:00:00+00:00)``."""
    if not record:
        return "another pinscan process"
    what = f"{record.get('what') or 'scan'} {record.get('scan_id') or ''}".strip()
    return (
        f"{what} (pid {record.get('pid')} on {record.get('host')}, "
        f"started {record.get('started_at')})"
    )


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _read(fd: int) -> dict[str, Any]:
    try:
        record = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}  # being written at this very moment
    return record if isinstance(record, dict) else {}
