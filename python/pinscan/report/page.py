# SPDX-License-Identifier: Apache-2.0
"""The HTML report: one self-contained file (inline CSS, SVG and script, no network access) built
from a :class:`Summary` and ``template.html``.

The endpoint table is the summary's capped ``table`` (problem endpoints first, then those expiring
soonest), embedded as JSON and drawn by a small inline script that sorts and filters it; the page
says how many endpoints were left out. A million rows would make a page no browser can use, and
the full data is one ``pinscan.open`` away.
"""

from __future__ import annotations

import json
import os
import re
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl

from pinscan._core import __version__
from pinscan.dataset._files import atomic_write
from pinscan.dataset.schema import VERDICTS
from pinscan.report import charts
from pinscan.report.summary import TIMELINE_WEEKS, Summary, policy_label, scan_state

VERDICT_COLORS = {
    "pass": charts.GOOD,
    "fail": charts.BAD,
    "error": "#8b1a1a",
    "report-only": charts.WARN,
    "expired": charts.SOON,
    "no_chain": "#cc79a7",
    "unpinned": "#c8ced3",
}
STATUS_COLORS = {"ok": charts.GOOD}
_PLACEHOLDER = re.compile(r"<!--@(\w+)-->")
#: Endpoint table columns: (column of Summary.table, heading, numeric).
_COLUMNS = (
    ("rank", "rank", True),
    ("target", "target", False),
    ("ip", "address", False),
    ("port", "port", True),
    ("status", "status", False),
    ("tls_version", "TLS", False),
    ("key", "key", False),
    ("issuer", "issuer", False),
    ("not_after", "expires", False),
    ("days", "days", True),
    ("verified", "verified", False),
    ("problem", "problem", False),
    ("pins", "pins", False),
)


def write_html(summary: Summary, path: str | os.PathLike[str]) -> Path:
    """Write the report page to ``path`` atomically (a reader never sees half a page)."""
    target = Path(path)
    page = render(summary)
    atomic_write(target, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return target


def render(summary: Summary) -> str:
    template = resources.files("pinscan.report").joinpath("template.html").read_text("utf-8")
    parts = _parts(summary)
    return _PLACEHOLDER.sub(lambda m: parts[m.group(1)], template)


def _parts(s: Summary) -> dict[str, str]:
    scan = s.scan
    title = escape(f"{Path(scan['path']).name} ({scan.get('scan_id')})")
    state = scan_state(scan)
    meta = (
        f"{escape(scan['path'])}, scan {escape(str(scan.get('scan_id')))} started "
        f"{escape(str(scan.get('started_at')))} ({state}); as of "
        f"{s.as_of:%Y-%m-%d %H:%M} UTC; pinscan {escape(__version__)}"
    )
    return {
        "version": escape(__version__),
        "title": title,
        "meta": meta,
        "cards": _cards(s),
        "timeline": _timeline(s),
        "expiring": _html_table(
            s.expiring.select("window", "endpoints", "certificates"), numeric={1, 2}
        ),
        "soonest": _html_table(
            s.soonest.select(
                pl.col("not_after").dt.strftime("%Y-%m-%d").alias("not after"),
                "days",
                "subject",
                "endpoints",
                pl.col("example").alias("e.g."),
            ),
            numeric={1, 3},
        ),
        "top": str(s.issuers.height),
        "issuer_count": f"{s.distinct_issuers:,}",
        "issuers": charts.bars(
            [(_short(i), n) for i, n in s.issuers.select("issuer", "endpoints").iter_rows()],
            title="issuers",
        ),
        "keys": charts.bars(list(s.key_types.iter_rows()), title="key types"),
        "status": charts.bars(
            [(str(k), n) for k, n in s.status.iter_rows()],
            [STATUS_COLORS.get(str(k), charts.BAD) for k, _ in s.status.iter_rows()],
            title="status",
        ),
        "tls": charts.bars(list(s.tls_versions.iter_rows()), title="TLS versions"),
        "unverified": charts.bars(
            list(s.unverified.iter_rows()), [charts.BAD] * s.unverified.height, title="not verified"
        ),
        "pins": _pins(s),
        "problems": _html_table(
            s.problems.select("kind", "problem", "endpoints", pl.col("example").alias("e.g.")),
            numeric={2},
        ),
        "table_note": _table_note(s),
        "data": _table_json(s.table),
    }


def _cards(s: Summary) -> str:
    ok = s.count("status", status="ok")
    expired = s.count("expiring", window="expired")
    soon = s.count("expiring", window="within 30 days")
    unverified = int(s.unverified["endpoints"].sum()) if s.unverified.height else 0
    failing = int(s.coverage["failing"].sum()) if s.coverage.height else 0
    cards = [
        ("endpoints", f"{s.endpoints:,}", ""),
        ("handshake ok", f"{ok:,}", "good" if ok == s.endpoints else "warn"),
        ("expired", f"{expired:,}", "bad" if expired else "good"),
        ("expiring in 30 days", f"{soon:,}", "warn" if soon else "good"),
        ("not verified", f"{unverified:,}", "bad" if unverified else "good"),
    ]
    if s.verdict_source != "none":
        cards.append(("failing pins", f"{failing:,}", "bad" if failing else "good"))
    return "".join(
        f'<div class="card {kind}"><b>{value}</b>{escape(label)}</div>'
        for label, value, kind in cards
    )


def _timeline(s: Summary) -> str:
    bins: list[tuple[str, int, str]] = []
    ticks: dict[int, str] = {}
    for i, (week, endpoints, starts) in enumerate(
        s.timeline.select("week", "endpoints", "starts").iter_rows()
    ):
        if week < 0:
            tip, color = "expired", charts.BAD
            ticks[i] = "expired"
        elif week == TIMELINE_WEEKS:
            tip, color = f"from {starts} on", charts.GOOD
            ticks[i] = "later"
        else:
            tip = f"week of {starts}"
            color = charts.SOON if week < 1 else charts.WARN if week < 13 else charts.GOOD
            if week % 8 == 4:
                ticks[i] = f"{starts:%b %d}"
        bins.append((tip, endpoints, color))
    return charts.histogram(
        bins, ticks, title="endpoints by week their leaf certificate expires", unit="endpoints"
    )


def _pins(s: Summary) -> str:
    if s.verdict_source == "none":
        return '<p class="empty">No pin verdicts: give --policy, or scan with --policy.</p>'
    by_policy: dict[str, list[tuple[str, int]]] = {}
    for policy, verdict, n in s.verdicts.iter_rows():
        by_policy.setdefault(policy, []).append((str(verdict), n))
    chart = charts.stacked(
        [(policy_label(p), row) for p, row in sorted(by_policy.items())],
        {v: VERDICT_COLORS[v] for v in VERDICTS},
        title="pin verdicts per policy",
    )
    coverage = _html_table(
        s.coverage.select(
            pl.col("policy").str.split("/").list.last(),
            "endpoints",
            "pinned",
            "passing",
            "failing",
            (pl.col("coverage") * 100).round(1).cast(pl.String).alias("coverage %"),
        ),
        numeric={1, 2, 3, 4, 5},
    )
    return f"{chart}<h3>Coverage (from {escape(s.verdict_source)})</h3>{coverage}"


def _html_table(frame: pl.DataFrame, numeric: set[int] = frozenset()) -> str:  # type: ignore[assignment]
    if frame.is_empty():
        return '<p class="empty">none</p>'
    cls = [' class="n"' if i in numeric else "" for i in range(frame.width)]
    head = "".join(
        f"<th{c}>{escape(name)}</th>" for name, c in zip(frame.columns, cls, strict=True)
    )
    body = "".join(
        "<tr>"
        + "".join(f"<td{c}>{escape(_cell(v))}</td>" for v, c in zip(row, cls, strict=True))
        + "</tr>"
        for row in frame.iter_rows()
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _short(issuer: str | None) -> str:
    """An issuer's CN (or O), which is how people name a CA; the whole name when it has neither."""
    if issuer is None:
        return "(unreadable)"
    for attribute in ("CN", "O"):
        found = re.search(rf"(?:^|,){attribute}=((?:\\.|[^,\\])*)", issuer)
        if found:
            return found.group(1).replace("\\", "")
    return issuer


def _table_note(s: Summary) -> str:
    shown, left = s.table.height, s.table_left_out
    if not left:
        return f"All {shown:,} endpoints. Click a heading to sort; type to filter."
    return (
        f"{shown:,} of {s.endpoints:,} endpoints: every problem endpoint first, then those "
        f"expiring soonest; {left:,} more are left out of this page "
        f"(pinscan.open() has them all). Click a heading to sort; type to filter."
    )


def _table_json(table: pl.DataFrame) -> str:
    """The table as compact JSON for the inline script, safe inside ``<script>``."""
    columns = [name for name, _, _ in _COLUMNS]
    if table.is_empty():
        rows: list[list[Any]] = []
    else:
        frame = table.with_columns(
            pl.col("issuer")
            .str.extract(r"(?:^|,)CN=((?:\\.|[^,\\])*)", 1)
            .fill_null(pl.col("issuer")),
            pl.col("not_after").dt.strftime("%Y-%m-%d"),
        ).select(columns)
        rows = [list(row) for row in frame.iter_rows()]
    data = {
        "columns": columns,
        "titles": [title for _, title, _ in _COLUMNS],
        "numeric": [numeric for _, _, numeric in _COLUMNS],
        "rows": rows,
    }
    text = json.dumps(data, separators=(",", ":"), default=str, ensure_ascii=False)
    # "</script>" or "<!--" inside a certificate name must not end the script element.
    return text.replace("<", "\\u003c")
