# SPDX-License-Identifier: Apache-2.0
"""The Parquet dataset a scan writes, histories of scans, and reading them back.

The names below are imported on first use (PEP 562), as the package's public face does: the
layout's light modules (``meta``, ``shards``, ``_lock``, ``outputs``) load without polars, so a
scan reaches its first connection before the reader and the writer's encoders are loaded.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pinscan.dataset.reader import ScanDataset, open, select
    from pinscan.dataset.writer import DatasetWriter

_EXPORTS = {
    "DatasetWriter": "pinscan.dataset.writer",
    "ScanDataset": "pinscan.dataset.reader",
    "open": "pinscan.dataset.reader",
    "select": "pinscan.dataset.reader",
}

__all__ = ["DatasetWriter", "ScanDataset", "open", "select"]


def __getattr__(name: str) -> Any:
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'pinscan.dataset' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
