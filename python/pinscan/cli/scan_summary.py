# SPDX-License-Identifier: Apache-2.0
"""The closing summary of ``pinscan scan``, as text or JSON: all a scan that keeps its dataset
prints, so it imports neither polars nor rich (a scan's last tenth of a second)."""

from __future__ import annotations

import datetime as dt
from typing import Any


def json_value(value: Any) -> Any:
    """What ``json`` cannot encode itself: times in ISO 8601 (``2026-11-27T09:30:00+00:00``)."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def summary_text(out: str | None, s: dict[str, Any]) -> str:
    kept = f"-> {out}" if out is not None else "(nothing kept: -o OUT writes a dataset)"
    lines = [
        f"pinscan: scanned {s['targets']} targets, {s['endpoints']} endpoints "
        f"in {s['seconds']:.1f} s {kept}",
    ]
    if s.get("skipped_already_done"):
        lines.append(f"  already done before --resume: {s['skipped_already_done']}")
    statuses = sorted(s["statuses"].items(), key=lambda kv: -kv[1])
    lines.append("  status: " + ", ".join(f"{k} {v}" for k, v in statuses))
    if s["tls_versions"]:
        versions = sorted(s["tls_versions"].items())
        lines.append("  TLS: " + ", ".join(f"{k} {v}" for k, v in versions))
    if s.get("engines"):
        engines = sorted(s["engines"].items(), key=lambda kv: -kv[1])
        lines.append("  engine: " + ", ".join(f"{k} {v}" for k, v in engines))
    if "shards" in s:
        left = s["shards"]["missing"]
        done = s["shards"]["count"] - len(left)
        todo = f"; still to scan: {_ranges(left)}" if left else ""
        lines.append(f"  shards done: {done} of {s['shards']['count']}{todo}")
    lines.append(f"  endpoints whose chain does not verify: {s['unverified']}")
    for error in s.get("chains_verified", {}).get("child_errors", []):
        lines.append(f"  verification child failed ({error}): verified in-process instead")
    expiring = s["expiring_within_30_days"]
    lines.append(f"  endpoints whose certificate has expired or expires within 30 days: {expiring}")
    if "pin_verdicts" in s and s["pin_verdicts"] is None:
        lines.append("  pin verdicts: once every shard is done")
    elif "pin_verdicts" in s:
        verdicts = ", ".join(f"{k} {v}" for k, v in s["pin_verdicts"].items())
        lines.append(f"  pin verdicts: {verdicts or 'no endpoints'} (pinscan check {out} for more)")
    return "\n".join(lines)


def _ranges(indexes: list[int]) -> str:
    """``[0, 1, 2, 5]`` as ``0-2, 5``."""
    runs: list[list[int]] = []
    for i in indexes:
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)
