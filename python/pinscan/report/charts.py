# SPDX-License-Identifier: Apache-2.0
"""Inline SVG charts for the HTML report, drawn directly: horizontal bars, a weekly histogram and
100% stacked bars are all the page needs, so no plotting library is loaded, the page stays small
and it renders identically offline. Every label is escaped: subjects and issuers come from the
servers scanned."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

#: Colour-blind-safe categorical palette (Okabe-Ito), then greys.
PALETTE = (
    "#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000",
    "#999999", "#555555",
)  # fmt: skip
GOOD, WARN, SOON, BAD = "#009e73", "#f0c419", "#e69f00", "#d55e00"

_LABEL_WIDTH = 210
_BAR_WIDTH = 330
_ROW = 22


def _clip(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def bars(items: Sequence[tuple[str, int]], colors: Sequence[str] = (), *, title: str) -> str:
    """Horizontal bars, one per ``(label, value)``, longest first as given; the full label is
    the tooltip when the visible one is clipped."""
    if not items:
        return f'<p class="empty">{escape(title)}: nothing to show</p>'
    top = max(value for _, value in items) or 1
    height = _ROW * len(items) + 8
    width = _LABEL_WIDTH + _BAR_WIDTH + 80
    out = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" aria-label="{escape(title)}">'
    ]
    for i, (label, value) in enumerate(items):
        y = 4 + i * _ROW
        length = max(1.0, _BAR_WIDTH * value / top) if value else 0.0
        color = colors[i] if i < len(colors) else PALETTE[i % len(PALETTE)]
        out.append(
            f"<g><title>{escape(label)}: {value:,}</title>"
            f'<text x="{_LABEL_WIDTH - 6}" y="{y + 15}" text-anchor="end">'
            f"{escape(_clip(label))}</text>"
            f'<rect x="{_LABEL_WIDTH}" y="{y + 3}" width="{length:.1f}" height="{_ROW - 6}" '
            f'fill="{color}"/>'
            f'<text x="{_LABEL_WIDTH + length + 5:.1f}" y="{y + 15}">{value:,}</text></g>'
        )
    out.append("</svg>")
    return "".join(out)


def histogram(
    bins: Sequence[tuple[str, int, str]], ticks: dict[int, str], *, title: str, unit: str
) -> str:
    """Vertical bars ``(tooltip, value, colour)`` side by side, with ``ticks`` (bin index to
    label) under the axis."""
    width, height, left, top_margin, bottom = 760, 230, 56, 24, 30
    plot_h = height - bottom - top_margin
    base = top_margin + plot_h
    step = (width - left - 10) / max(1, len(bins))
    top = max((value for _, value, _ in bins), default=0) or 1
    out = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" aria-label="{escape(title)}">',
        f'<line x1="{left}" y1="{base}" x2="{width - 10}" y2="{base}" stroke="#888"/>',
        f'<text x="{left}" y="12" class="axis">{escape(unit)}</text>',
        f'<text x="{left - 6}" y="{top_margin + 4}" text-anchor="end">{top:,}</text>',
        f'<text x="{left - 6}" y="{base}" text-anchor="end">0</text>',
    ]
    for i, (tip, value, color) in enumerate(bins):
        bar_h = plot_h * value / top
        if value:
            bar_h = max(bar_h, 1.5)
        x = left + i * step
        out.append(
            f"<g><title>{escape(tip)}: {value:,}</title>"
            f'<rect x="{x + 1:.1f}" y="{base - bar_h:.1f}" width="{max(1.0, step - 2):.1f}" '
            f'height="{max(bar_h, 0):.1f}" fill="{color}"/>'
            # An invisible full-height target, so empty weeks have a tooltip too.
            f'<rect x="{x:.1f}" y="{top_margin}" width="{step:.1f}" height="{plot_h}" '
            'fill="transparent"/>'
            "</g>"
        )
    for i, label in ticks.items():
        x = left + (i + 0.5) * step
        out.append(
            f'<line x1="{x:.1f}" y1="{base}" x2="{x:.1f}" y2="{base + 4}" stroke="#888"/>'
            f'<text x="{x:.1f}" y="{base + 18}" text-anchor="middle">{escape(label)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def stacked(
    rows: Sequence[tuple[str, Sequence[tuple[str, int]]]], colors: dict[str, str], *, title: str
) -> str:
    """One 100% bar per ``(label, [(part, value), ...])``, parts in ``colors``' order, with a
    legend of the parts that occur."""
    if not rows:
        return f'<p class="empty">{escape(title)}: nothing to show</p>'
    parts = [p for p in colors if any(p == name and n for _, row in rows for name, n in row)]
    width = _LABEL_WIDTH + _BAR_WIDTH + 80
    height = _ROW * len(rows) + 34
    out = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" aria-label="{escape(title)}">'
    ]
    for i, (label, row) in enumerate(rows):
        y = 4 + i * _ROW
        total = sum(n for _, n in row) or 1
        out.append(
            f'<text x="{_LABEL_WIDTH - 6}" y="{y + 15}" text-anchor="end">'
            f"<title>{escape(label)}</title>{escape(_clip(label))}</text>"
        )
        x = float(_LABEL_WIDTH)
        counts = dict(row)
        for part in parts:
            n = counts.get(part, 0)
            if not n:
                continue
            w = _BAR_WIDTH * n / total
            out.append(
                f"<g><title>{escape(label)}: {escape(part)} {n:,} "
                f"({100 * n / total:.1f}%)</title>"
                f'<rect x="{x:.1f}" y="{y + 3}" width="{max(w, 1.0):.1f}" height="{_ROW - 6}" '
                f'fill="{colors[part]}"/></g>'
            )
            x += w
    legend_y = 4 + len(rows) * _ROW + 14
    x = 8.0
    for part in parts:
        out.append(
            f'<rect x="{x:.0f}" y="{legend_y - 10}" width="10" height="10" fill="{colors[part]}"/>'
            f'<text x="{x + 14:.0f}" y="{legend_y}">{escape(part)}</text>'
        )
        x += 26 + 7 * len(part)
    out.append("</svg>")
    return "".join(out)
