# SPDX-License-Identifier: Apache-2.0
"""The live progress bar of long commands: done/total, ok/failed, rate, ETA, on stderr, and only
on a terminal (cron and CI logs get nothing).

The bar is decoration, drawn by rich (in :mod:`~.bar`, imported only when there is a terminal):
an error while drawing it, in this thread or in rich's refresh thread, turns it off (the cursor
shown again, one line on stderr) and the command goes on, so a display problem never costs a
scan its output. Only rich's documented API is used: columns are
:class:`~rich.progress.ProgressColumn` subclasses reading public :class:`~rich.progress.Task`
attributes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from pinscan.cli.bar import Bar


class Progress:
    def __init__(self, *, total: int | None, enabled: bool, label: str = "scan") -> None:
        self._enabled = enabled
        self._label = label
        self._ok = self._failed = 0
        self._bar: Bar | None = None
        self._total = total

    def __enter__(self) -> Progress:
        if self._enabled:
            # Lazy for start-up time: rich only when there is a terminal to draw on.
            from pinscan.cli.bar import bar

            self._bar = bar(self._label)
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
