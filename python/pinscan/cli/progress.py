# SPDX-License-Identifier: Apache-2.0
"""The live progress bar of long commands: done/total, ok/failed, rate, ETA, on stderr, and only
on a terminal (cron and CI logs get nothing).

The bar is decoration: an error while drawing it, in this thread or in rich's refresh thread,
turns it off (the cursor shown again, one line on stderr) and the command goes on, so a display
problem never costs a scan its output. Only rich's documented API is used: columns are
:class:`~rich.progress.ProgressColumn` subclasses reading public :class:`~rich.progress.Task`
attributes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType

import click
from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress
from rich.text import Text


class _RateColumn(ProgressColumn):
    """Endpoints a second, as rich measures it over the last 30 seconds."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f}/s", style="progress.data.speed")


class _Bar(RichProgress):
    """A rich progress display that records an error in drawing instead of raising it, whichever
    thread draws (rich's refresh thread would otherwise die with a traceback)."""

    failure: Exception | None = None

    def get_renderables(self) -> Iterable[RenderableType]:
        if self.failure is None:
            try:
                return [self.make_tasks_table(self.tasks)]
            except Exception as exc:
                self.failure = exc
        return []


class Progress:
    def __init__(self, *, total: int | None, enabled: bool, label: str = "scan") -> None:
        self._enabled = enabled
        self._label = label
        self._ok = self._failed = 0
        self._bar: _Bar | None = None
        self._total = total

    def __enter__(self) -> Progress:
        if self._enabled:
            self._bar = _Bar(
                TextColumn(f"[bold]{self._label}"),
                BarColumn(),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                TextColumn("[green]{task.fields[ok]} ok [red]{task.fields[failed]} failed"),
                _RateColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._draw(self._start)
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._draw(self._bar.stop)
        self._bar = None

    def advance(self, status: str, n: int = 1) -> None:
        """``n`` more endpoints ended with ``status``."""
        if status == "ok":
            self._ok += n
        else:
            self._failed += n
        if self._bar is not None:
            self._draw(lambda: self._update(n))

    def _start(self) -> None:
        assert self._bar is not None
        self._bar.start()
        self._task = self._bar.add_task(self._label, total=self._total, ok=0, failed=0)

    def _update(self, n: int = 1) -> None:
        assert self._bar is not None
        self._bar.update(self._task, advance=n, ok=self._ok, failed=self._failed)

    def _draw(self, action: Callable[[], None]) -> None:
        """Runs ``action`` on the bar; on any error in it (or one recorded while drawing), turns
        the bar off and says so, instead of raising into the command."""
        bar = self._bar
        assert bar is not None
        try:
            action()
        except Exception as exc:
            bar.failure = bar.failure or exc
        if bar.failure is None:
            return
        self._bar = None
        with contextlib.suppress(Exception):
            bar.stop()
        with contextlib.suppress(Exception):
            bar.console.show_cursor(True)
        failure = bar.failure
        click.echo(
            f"pinscan: progress bar: {type(failure).__name__}: {failure} (turned off; "
            "the command goes on)",
            err=True,
        )


def count_targets(path: str, fmt: str | None) -> int | None:
    """Inventory lines (a bound on the endpoint count for the ETA), counted cheaply; ``None``
    when unknown. Names that resolve to several addresses make the bar run past 100%."""
    p = Path(path)
    try:
        if fmt == "parquet" or (fmt is None and p.suffix in {".parquet", ".pq"}):
            import pyarrow.parquet as pq  # lazy for start-up time: only Parquet needs it

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
