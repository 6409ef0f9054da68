# SPDX-License-Identifier: Apache-2.0
"""The HTML report: one self-contained file (inline CSS, SVG and script, no network access) built
from a :class:`Summary` and ``template.html``.

The endpoint table is the summary's capped ``table`` (problem endpoints first, then those expiring
soonest), embedded as JSON and drawn by a small inline script that sorts and filters it; the page
says how many endpoints were left out. A million rows would make a page no browser can use, and
the full data is one ``pinscan.open`` away. On a scan of a history, the page also has the trend
over its scans and what changed since the scan before (the summary's ``trend`` and ``changes``).
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
from pinscan.atomic import atomic_write
from pinscan.dataset.schema import VERDICTS
from pinscan.diffing import summary as diff_summary
from pinscan.report import charts
from pinscan.report.lockout import Lockout
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
#: Lockout outcomes as the heat map draws them: (colour, mark, words). The mark and the words
#: are in every cell, so the map reads without colour; the colours are the stylesheet's
#: ``.o-*`` classes, dark text on each (contrast 4.5:1 or more) but white on ``untrusted``.
OUTCOME_LOOK = {
    "locks_out": (charts.BAD, "\u2717", "locks out"),
    "untrusted": ("#5e3c99", "!", "untrusted"),
    "survives": (charts.GOOD, "\u2713", "survives"),
    "unpinned": ("#c8ced3", "\u2013", "unpinned"),
}
#: The trend's lines: (column of Summary.trend, name, colour).
TREND_LINES = (
    ("handshake_ok", "handshake ok", charts.GOOD),
    ("handshake_failed", "handshake failed", charts.BAD),
    ("unverified", "not verified", charts.SOON),
    ("pin_failing", "failing a pin check", "#8b1a1a"),
)
#: Changes listed on the page; the counts above the list cover them all.
CHANGE_ROWS = 200
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
    ("pin", "leaf pin (SPKI SHA-256)", False),
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
        "lockout": "" if s.lockout is None else _lockout(s.lockout),
        "problems": _html_table(
            s.problems.select("kind", "problem", "endpoints", pl.col("example").alias("e.g.")),
            numeric={2},
        ),
        "table_note": _table_note(s),
        "data": _table_json(s.table),
        "history": _history(s),
    }


def _cards(s: Summary) -> str:
    ok = s.count("status", status="ok")
    expired = s.count("expiring", window="expired")
    soon = s.count("expiring", window="within 30 days")
    unverified = int(s.unverified["endpoints"].sum()) if s.unverified.height else 0
    cards = [
        ("endpoints", f"{s.endpoints:,}", ""),
        ("handshake ok", f"{ok:,}", "good" if ok == s.endpoints else "warn"),
        ("expired", f"{expired:,}", "bad" if expired else "good"),
        ("expiring in 30 days", f"{soon:,}", "warn" if soon else "good"),
        ("not verified", f"{unverified:,}", "bad" if unverified else "good"),
    ]
    if s.verdict_source != "none":
        failing = s.pin_failing
        label = "endpoints failing a pin check"
        cards.append((label, f"{failing:,}", "bad" if failing else "good"))
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
                ticks[i] = f"{starts:%Y-%m-%d}"
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


def _lockout(lock: Lockout) -> str:
    """The lockout section: the riskiest pin-sets, the heat map (a table: rows by host or
    domain and policy, a column per scenario, each cell coloured, marked and worded by its
    outcome, the riskiest rows first) with its legend, and each scenario's outcomes over the
    whole fleet."""
    pairs = int(lock.outcomes["pairs"].sum()) if lock.outcomes.height else 0
    head = (
        '<section id="lockout"><h2>Lockout: what the next renewal, CA switch or key change '
        "does to the pins</h2>"
        f'<p class="meta">{len(lock.scenario_names)} scenarios over {pairs:,} pinned (endpoint, '
        "policy) pairs, each judged on the chain the scenario would serve. Routine scenarios "
        "(marked *: renew_new_key and each sibling:) happen at a renewal without anyone choosing "
        f"them. Endpoints a routine scenario locks out: <b>{lock.routine_locked:,}</b>.</p>"
    )
    if lock.matrix.is_empty():
        empty = "No pin-set covers an endpoint: nothing to lock out."
        return f'{head}<p class="empty">{empty}</p></section>'
    risky = _html_table(
        _riskiest(lock.riskiest),
        numeric={i for i, d in enumerate(lock.riskiest.dtypes) if d.is_numeric()},
    )
    by = "host" if lock.by == "name" else "registrable domain"
    note = (
        f"The {lock.matrix.height:,} riskiest of {lock.matrix_total:,} rows; "
        f"{lock.left_out:,} more are left out (<code>pinscan check --scenarios</code> and "
        "<code>pinscan.lockout()</code> have every endpoint)."
        if lock.left_out
        else f"Every {by} a pin-set covers ({lock.matrix_total:,} rows), the riskiest first."
    )
    chart = charts.stacked(
        [
            (name, [(OUTCOME_LOOK[o][2], n) for _, o, n in rows.iter_rows()])
            for (name,), rows in lock.outcomes.group_by("scenario", maintain_order=True)
        ],
        {words: color for color, _, words in OUTCOME_LOOK.values()},
        title="(endpoint, policy) pairs by outcome, per scenario",
    )
    return (
        head
        + f"<h3>Riskiest pin-sets ({lock.riskiest.height:,} of {lock.pin_sets:,})</h3>{risky}"
        + f"<h3>By {escape(by)} and scenario</h3>"
        + f'<p class="meta">{note} A cell is the worst outcome among the row\'s endpoints; '
        "empty where the scenario does not apply.</p>"
        + _legend()
        + f'<div class="scroll heatmap">{_heat_map(lock)}</div>'
        + f"<h3>Outcomes per scenario, whole fleet</h3>{chart}</section>"
    )


def _riskiest(frame: pl.DataFrame) -> pl.DataFrame:
    """The riskiest pin-sets as the page shows them: policies by file name, lists joined,
    shares in per cent, headings in words."""
    return frame.with_columns(
        *(pl.col(c).str.split("/").list.last() for c in ("policy",) if c in frame.columns),
        *(pl.col(c).list.join(", ") for c, d in frame.schema.items() if isinstance(d, pl.List)),
        *(
            (pl.col(c) * 100).round(0).cast(pl.Int64).cast(pl.String) + "%"
            for c, d in frame.schema.items()
            if d.is_float()
        ),
    ).rename(lambda c: c.replace("_", " "))


def _legend() -> str:
    items = "".join(
        f'<li><span class="cell o-{o}">{mark}</span> {escape(words)}</li>'
        for o, (_, mark, words) in OUTCOME_LOOK.items()
    )
    blank = '<li><span class="cell">&nbsp;</span> does not apply</li>'
    return f'<ul class="legend" aria-label="legend">{items}{blank}</ul>'


def _heat_map(lock: Lockout) -> str:
    by = "host" if lock.by == "name" else "domain"
    routine = set(lock.scenarios.filter(pl.col("routine"))["scenario"])
    details = dict(lock.scenarios.select("scenario", "detail").iter_rows())
    names = lock.scenario_names
    head = "".join(
        f'<th scope="col" title="{escape(details.get(n) or n)}">{escape(n)}'
        f"{' *' if n in routine else ''}</th>"
        for n in names
    )
    rows = []
    for row in lock.matrix.iter_rows(named=True):
        where, policy = row[lock.by], policy_label(row["policy"])
        cells = []
        for name in names:
            outcome = row[name]
            if outcome is None:
                tip = escape(f"{where}, {policy}, {name}: does not apply")
                cells.append(f'<td class="cell" title="{tip}"></td>')
                continue
            _, mark, words = OUTCOME_LOOK[outcome]
            tip = escape(f"{where}, {policy}, {name}: {words}")
            cells.append(f'<td class="cell o-{outcome}" title="{tip}">{mark} {escape(words)}</td>')
        rows.append(
            f'<tr><th scope="row">{escape(where)}</th><td>{escape(policy)}</td>{"".join(cells)}'
            f'<td class="n">{row["locked_out"]}/{len(names)}</td></tr>'
        )
    return (
        f'<table id="lockout-matrix"><thead><tr><th scope="col">{by}</th>'
        f'<th scope="col">policy</th>{head}<th scope="col" class="n">locks out</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _html_table(
    frame: pl.DataFrame,
    numeric: set[int] = frozenset(),  # type: ignore[assignment]
    digests: set[int] = frozenset(),  # type: ignore[assignment]
) -> str:
    """``frame`` as a table; ``numeric`` columns right-aligned, ``digests`` (pins, fingerprints)
    in a monospace font and never broken within one, a click selecting the cell to copy."""
    if frame.is_empty():
        return '<p class="empty">none</p>'
    cls = [
        ' class="n"' if i in numeric else ' class="pin"' if i in digests else ""
        for i in range(frame.width)
    ]
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


def _history(s: Summary) -> str:
    """The trend and the changes since the scan before; nothing when the scan is not one of a
    history."""
    if s.trend.is_empty():
        return ""
    trend = s.trend
    dates = [f"{t:%Y-%m-%d %H:%M}" for t in trend["started_at"]]
    chart = charts.lines(
        dates,
        # A line for failing pins only when some scan stored verdicts.
        [
            (name, trend[column].to_list(), color)
            for column, name, color in TREND_LINES
            if trend[column].null_count() < trend.height
        ],
        title="endpoints per scan",
        unit="endpoints",
    )
    table = _html_table(
        trend.select(
            pl.col("started_at").dt.strftime("%Y-%m-%d %H:%M").alias("started (UTC)"),
            "scan_id",
            "endpoints",
            *(pl.col(column).alias(name) for column, name, _ in TREND_LINES),
        ),
        numeric={2, 3, 4, 5, 6},
    )
    scans = trend.height
    parts = [
        '<section id="trend"><h2>Over the last '
        f"{scans} scan{'s' if scans != 1 else ''} of this history</h2>",
        '<p class="meta">Endpoints per scan. Failing a pin check: endpoints with a fail or error '
        "verdict under at least one policy, from the verdicts each scan stored (scan --policy, "
        "audit); empty for a scan judged by none.</p>",
        chart,
        table,
        "</section>",
        '<section id="changes">',
    ]
    if s.previous is None or s.changes is None:
        parts.append(
            "<h2>Changed since the scan before</h2>"
            '<p class="empty">The first scan of this history: nothing to compare with.</p>'
        )
    else:
        parts.append(_changes(s.previous, s.changes, judged=s.verdict_source == "policy"))
    parts.append("</section>")
    return "".join(parts)


def _changes(previous: dict[str, Any], changes: pl.DataFrame, judged: bool) -> str:
    counts = [(str(kind), n) for kind, n in diff_summary(changes).iter_rows() if n]
    head = (
        f"<h2>Changed since the scan before ({escape(str(previous['scan_id']))}, started "
        f"{escape(str(previous['started_at']))})</h2>"
        '<p class="meta">What <code>pinscan diff</code> reports between the two scans'
        + (" (verdicts judged by the report's policies)" if judged else "")
        + ".</p>"
    )
    if not counts:
        return head + '<p class="empty">No change.</p>'
    chart = charts.bars(counts, title="changes by kind")
    shown = changes.head(CHANGE_ROWS).select(
        pl.col("change").cast(pl.String),
        "target",
        pl.when(pl.col("ip").is_not_null()).then(pl.format("{}:{}", "ip", "port")).alias("address"),
        "old",
        "new",
        "detail",
    )
    more = changes.height - shown.height
    note = (
        f'<p class="meta">The first {shown.height:,} of {changes.height:,} changes; '
        "<code>pinscan diff --format json</code> lists them all.</p>"
        if more
        else ""
    )
    return head + chart + note + _html_table(shown, digests={3, 4})


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
