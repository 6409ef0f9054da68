# SPDX-License-Identifier: Apache-2.0
"""Where pinscan writes a dataset, a history or a sharded scan: an output that cannot be written is
one line naming it (exit 2 on the command line), and pinscan writes only inside a directory of its
own, through no symbolic link."""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Collection, Iterator
from pathlib import Path

from pinscan.atomic import is_temporary
from pinscan.errors import DatasetError


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
