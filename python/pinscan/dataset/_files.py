# SPDX-License-Identifier: Apache-2.0
"""Files that are either whole or absent: write to a temporary name, fsync, rename, fsync the
directory (as certspotter's `writeFile` does). A killed scan leaves at most stray temporaries,
which carry a leading dot and a `.tmp-` infix so readers never see them and `--resume` deletes them.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

from pinscan.errors import DatasetError

TMP_MARK = ".tmp-"


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Calls ``write(tmp)`` to fill a temporary file, then makes it ``path`` in one rename."""
    tmp = path.with_name(f".{path.name}{TMP_MARK}{secrets.token_hex(4)}")
    try:
        write(tmp)
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_json(path: Path, value: Any) -> None:
    text = json.dumps(value, indent=2, sort_keys=True, default=str) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_temporaries(directory: Path) -> int:
    removed = 0
    for stray in directory.glob(f".*{TMP_MARK}*"):
        stray.unlink(missing_ok=True)
        removed += 1
    return removed


def is_temporary(name: str) -> bool:
    return name.startswith(".") and TMP_MARK in name


def output_error(path: Path, exc: OSError) -> DatasetError:
    """An output that cannot be written (disk full, read-only, not a directory, permission), as
    the one-line error every command prints."""
    where = exc.filename or path
    what = (exc.strerror or str(exc)).lower()
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        what += "; what was written before is kept: make room, then finish with --resume"
    return DatasetError(str(where), f"cannot write: {what}")


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """Turns an ``OSError`` of writing to ``path`` into :func:`output_error`."""
    try:
        yield
    except OSError as exc:
        raise output_error(path, exc) from exc


def check_output(root: Path, ours: Collection[str], kind: str) -> None:
    """``root`` is to be written by pinscan: it must be missing, or a directory that holds
    nothing but ``ours`` (and temporaries), none of them a symbolic link, so that a scan writes
    nowhere but inside it and never among someone else's files."""
    if not root.exists():
        if root.is_symlink():
            raise DatasetError(str(root), "is a symbolic link to nothing")
        return
    if not root.is_dir():
        raise DatasetError(str(root), f"is not a directory; give {kind} a directory")
    with writing(root):  # a directory we may not list
        entries = sorted(root.iterdir())
    for entry in entries:
        if entry.name not in ours and not is_temporary(entry.name):
            msg = (
                f"holds {entry.name!r}, which pinscan did not write; "
                f"give {kind} an empty or new directory"
            )
            raise DatasetError(str(root), msg)
        refuse_link(entry)


def refuse_link(path: Path) -> None:
    """``path`` is where pinscan is about to write: it must not be a symbolic link, which would
    take the write out of the output directory."""
    if path.is_symlink():
        msg = (
            "is a symbolic link; pinscan writes only inside the output directory and "
            "follows no link there: replace it with a directory of its own"
        )
        raise DatasetError(str(path), msg)
