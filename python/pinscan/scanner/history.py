# SPDX-License-Identifier: Apache-2.0
"""Adding a scan to a history (``pinscan scan --history``, ``pinscan audit``): stage it, let the
engine scan into the stage as into any dataset (in one process or several: :mod:`~.processes`),
judge it there, and commit it. Where a history's
files are, and how a stage is committed, is the layout's (:mod:`pinscan.dataset.history`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

from pinscan.dataset import history as layout
from pinscan.dataset.names import ENDPOINTS
from pinscan.scanner import engine, processes

#: Writes a staged scan's verdicts into it, before the commit (see the router).
Judge = Callable[[Path], None]


async def scan_history(
    items: engine.TargetFeed,
    history: Path,
    *,
    resume: bool,
    judge: Judge | None,
    **engine_options: Any,
) -> str:
    """Scans ``items`` into a new scan of ``history`` (or with ``resume`` finishes the newest
    interrupted one, which may only need its commit); returns the committed scan's id.
    ``engine_options`` go to :func:`pinscan.scanner.processes.scan_dataset`."""
    stage = await anyio.to_thread.run_sync(lambda: layout.begin(history, resume=resume))
    try:
        if stage.scanned:
            items.close()  # a commit was killed: the scan itself is done
        else:
            await processes.scan_dataset(
                items, stage.path, resume=stage.resume, scan_id=stage.scan_id, **engine_options
            )
        # Not when a killed commit has moved the tables already: they were judged before it.
        if judge is not None and (stage.path / ENDPOINTS).is_dir():
            await anyio.to_thread.run_sync(judge, stage.path)
        marker = await anyio.to_thread.run_sync(layout.commit, history, stage.path)
    finally:
        stage.release()
    return marker["scan_id"]


__all__ = ["Judge", "scan_history"]
