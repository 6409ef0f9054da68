# SPDX-License-Identifier: Apache-2.0
"""Inline SVG charts for the HTML report, drawn directly: horizontal bars, a weekly histogram,
100% stacked bars and lines over scans are all the page needs, so no plotting library is loaded,
the page stays small and it renders identically offline. Every label is escaped: subjects and
issuers come from the servers scanned."""

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


def distinct_labels(texts: Sequence[str], limit: int = 30) -> list[str]:
    """``texts`` clipped to ``limit`` characters, each still told apart from the others: where
    clipping would make labels look the same ("certificate verify failed: u…" twice), each shows
    its start, then the words where it differs from the others. Labels still alike are
    numbered."""
    clipped = [_clip(text, limit) for text in texts]
    head = limit // 3
    shown = []
    for i, text in enumerate(texts):
        alike = [t for j, t in enumerate(texts) if j != i and clipped[j] == clipped[i]]
        if not alike:
            shown.append(clipped[i])
            continue
        differs = max(_same_start(text, other) for other in alike)
        # From the word the difference is in, so that it reads as a phrase (a long word: from a
        # few characters before the difference); either way the difference itself is shown.
        start = text.rfind(" ", head, differs) + 1
        if not start or differs - start > head:
            start = max(head, differs - 4)
        shown.append(text[:head] + "\u2026" + _clip(text[start:], limit - head - 1))
    seen: dict[str, int] = {}
    for i, label in enumerate(shown):
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            shown[i] = f"{label} ({seen[label]})"
    return shown


def _same_start(a: str, b: str) -> int:
    """How many leading characters ``a`` and ``b`` share."""
    pairs = zip(a, b, strict=False)
    return next((i for i, (x, y) in enumerate(pairs) if x != y), min(len(a), len(b)))


def bars(items: Sequence[tuple[str, int]], colors: Sequence[str] = (), *, title: str) -> str:
    """Horizontal bars, one per ``(label, value)``, longest first as given; labels are clipped
    (:func:`distinct_labels`) and the full label is the tooltip."""
    if not items:
        return f'<p class="empty">{escape(title)}: nothing to show</p>'
    labels = distinct_labels([label for label, _ in items])
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
            f"{escape(labels[i])}</text>"
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
    out = _axes(title, unit, width, height, left, top_margin, base, top)
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
    """One 100% bar per ``(label, [(part, value), ...])``, parts in ``colors``' order, the count
    of each part written under its bar (a part of one in a thousand is too thin to see), and a
    legend of the parts that occur."""
    if not rows:
        return f'<p class="empty">{escape(title)}: nothing to show</p>'
    parts = [p for p in colors if any(p == name and n for _, row in rows for name, n in row)]
    labels = distinct_labels([label for label, _ in rows])
    step = _ROW + 16
    width = _LABEL_WIDTH + _BAR_WIDTH + 80
    height = step * len(rows) + 34
    out = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" aria-label="{escape(title)}">'
    ]
    for i, (label, row) in enumerate(rows):
        y = 4 + i * step
        total = sum(n for _, n in row) or 1
        out.append(
            f'<text x="{_LABEL_WIDTH - 6}" y="{y + 15}" text-anchor="end">'
            f"<title>{escape(label)}</title>{escape(labels[i])}</text>"
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
        said = ", ".join(f"{part} {counts[part]:,}" for part in parts if counts.get(part))
        out.append(
            f'<text class="counts" x="{_LABEL_WIDTH}" y="{y + _ROW + 9}">{escape(said)}</text>'
        )
    legend_y = 4 + len(rows) * step + 14
    x = 8.0
    for part in parts:
        out.append(
            f'<rect x="{x:.0f}" y="{legend_y - 10}" width="10" height="10" fill="{colors[part]}"/>'
            f'<text x="{x + 14:.0f}" y="{legend_y}">{escape(part)}</text>'
        )
        x += 26 + 7 * len(part)
    out.append("</svg>")
    return "".join(out)


def lines(
    points: Sequence[str],
    series: Sequence[tuple[str, Sequence[int | None], str]],
    *,
    title: str,
    unit: str,
) -> str:
    """One line per ``(name, values, colour)`` over ``points`` (x labels, oldest first), a dot
    and a tooltip at each value (``None``: no dot, the line skips it), and a legend."""
    width, height, left, top_margin, bottom = 760, 250, 56, 24, 58
    plot_w, plot_h = width - left - 20, height - bottom - top_margin
    base = top_margin + plot_h
    top = max((v for _, values, _ in series for v in values if v is not None), default=0) or 1
    step = plot_w / max(1, len(points) - 1)

    def x(i: int) -> float:
        return left + (i * step if len(points) > 1 else plot_w / 2)

    def y(value: int) -> float:
        return base - plot_h * value / top

    out = _axes(title, unit, width, height, left, top_margin, base, top)
    # At most six x labels (a date and time is 100 pixels wide), the last one always.
    every = max(1, -(-len(points) // 6))
    last = len(points) - 1
    for i, label in enumerate(points):
        if i != last and (i % every or last - i < every):
            continue
        # The end labels are kept inside the chart.
        anchor = "start" if i == 0 and last else "end" if i == last and last else "middle"
        out.append(
            f'<line x1="{x(i):.1f}" y1="{base}" x2="{x(i):.1f}" y2="{base + 4}" stroke="#888"/>'
            f'<text class="tick" x="{x(i):.1f}" y="{base + 18}" text-anchor="{anchor}">'
            f"{escape(label)}</text>"
        )
    for name, values, color in series:
        drawn = [(i, v) for i, v in enumerate(values) if v is not None]
        path = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in drawn)
        out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        out.extend(
            f"<g><title>{escape(points[i])}: {escape(name)} {v:,}</title>"
            f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3.5" fill="{color}"/></g>'
            for i, v in drawn
        )
    legend_y = height - 10
    lx = float(left)
    for name, _, color in series:
        out.append(
            f'<rect x="{lx:.0f}" y="{legend_y - 10}" width="10" height="10" fill="{color}"/>'
            f'<text x="{lx + 14:.0f}" y="{legend_y}">{escape(name)}</text>'
        )
        lx += 26 + 7 * len(name)
    out.append("</svg>")
    return "".join(out)


def _axes(
    title: str,
    unit: str,
    width: int,
    height: int,
    left: int,
    top_margin: int,
    base: float,
    top: int,
) -> list[str]:
    """The opening of a chart with a value axis: the SVG element, the base line, the unit, and
    the axis's top and zero."""
    return [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" aria-label="{escape(title)}">',
        f'<line x1="{left}" y1="{base}" x2="{width - 10}" y2="{base}" stroke="#888"/>',
        f'<text x="{left}" y="12" class="axis">{escape(unit)}</text>',
        f'<text x="{left - 6}" y="{top_margin + 4}" text-anchor="end">{top:,}</text>',
        f'<text x="{left - 6}" y="{base}" text-anchor="end">0</text>',
    ]
