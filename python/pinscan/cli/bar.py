# SPDX-License-Identifier: Apache-2.0
"""The rich side of :mod:`~pinscan.cli.progress`' bar: imported only when a bar is drawn, so
that a command run by cron or a pipe never loads rich."""

from __future__ import annotations

from collections.abc import Iterable

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


class Bar(RichProgress):
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


def bar(label: str) -> Bar:
    """The bar of a command: done/total, ok/failed, rate, ETA, on stderr, gone once done."""
    return Bar(
        TextColumn(f"[bold]{label}"),
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
