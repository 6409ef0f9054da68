# SPDX-License-Identifier: Apache-2.0
"""Files that are either whole or absent: write to a temporary name, fsync, rename, fsync the
directory (as certspotter's `writeFile` does). A killed writer leaves at most stray temporaries,
which carry a leading dot and a `.tmp-` infix so readers never see them and the next writer
deletes them. Datasets, CT state, reports and pin-sets are all written this way.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
