# SPDX-License-Identifier: Apache-2.0
"""The live progress bar of long commands: done/total, ok/failed, rate, ETA, on stderr, and only
on a terminal (cron and CI logs get nothing)."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress


class Progress:
    def __init__(self, *, total: int | None, enabled: bool) -> None:
        self._enabled = enabled
        self._ok = self._failed = 0
        self._bar: RichProgress | None = None
        self._total = total

    def __enter__(self) -> Progress:
        if self._enabled:
            self._bar = RichProgress(
                TextColumn("[bold]scan"),
                BarColumn(),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                TextColumn("[green]{task.fields[ok]} ok [red]{task.fields[failed]} failed"),
                TextColumn("{task.speed_text}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task("scan", total=self._total, ok=0, failed=0)
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(t, e, tb)

    def advance(self, status: str) -> None:
        if status == "ok":
            self._ok += 1
        else:
            self._failed += 1
        if self._bar is not None:
            self._bar.update(self._task, advance=1, ok=self._ok, failed=self._failed)


def count_targets(path: str, fmt: str | None) -> int | None:
    """Inventory lines (a bound on the endpoint count for the ETA), counted cheaply; ``None``
    when unknown. Names that resolve to several addresses make the bar run past 100%."""
    p = Path(path)
    try:
        if fmt == "parquet" or (fmt is None and p.suffix in {".parquet", ".pq"}):
            import pyarrow.parquet as pq

            return pq.ParquetFile(p).metadata.num_rows
        count = 0
        with p.open("rb") as f:
            while chunk := f.read(1 << 20):
                count += chunk.count(b"\n")
        is_csv = fmt == "csv" or (fmt is None and p.suffix == ".csv")
        return max(count - 1, 0) if is_csv else count
    except (OSError, ImportError, ValueError):
        return None


__all__ = ["Progress", "count_targets"]
