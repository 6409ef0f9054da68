# SPDX-License-Identifier: Apache-2.0
"""The thresholds of an audit, measured on its scan: one :class:`Check` each."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from pinscan.audit.config import AuditConfig
from pinscan.dataset import ScanDataset
from pinscan.policy.model import Policy
from pinscan.records import VERIFY_ERRORS
from pinscan.report.summary import FAILING, Summary, days_left, whole_days
from pinscan.rotation import Analysis

#: Examples listed per crossed threshold; the report and ``pinscan.open`` have the rest.
EXAMPLES = 10


@dataclass(frozen=True)
class Check:
    """One threshold, as measured: ``value`` against ``limit`` (``crossed`` when above it)."""

    name: str
    value: int
    limit: int
    detail: str
    examples: tuple[str, ...] = ()

    @property
    def crossed(self) -> bool:
        return self.value > self.limit

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "limit": self.limit,
            "crossed": self.crossed,
            "detail": self.detail,
            "examples": list(self.examples),
        }


def measure(
    cfg: AuditConfig,
    scan: ScanDataset,
    summary: Summary,
    changes: pl.DataFrame | None,
    policies: list[Policy],
    analysis: Analysis | None = None,
) -> tuple[Check, ...]:
    """Every threshold ``cfg`` sets that applies to this run (the pin ones need policies, the
    lockout ones the ``analysis`` of ``[lockout]``)."""
    limits = cfg.thresholds
    checks: list[Check] = []
    if policies and limits.max_pin_failures is not None:
        checks.append(_pin_failures(scan, limits.max_pin_failures))
    if policies and limits.fail_on_policy_error:
        rejected = [p for p in policies if p.error]
        examples = tuple(f"{p.error_location or p.name}: {p.error}" for p in rejected)
        detail = "policies their clients reject"
        checks.append(Check("fail_on_policy_error", len(rejected), 0, detail, examples))
    if limits.fail_on_changes:
        checks.append(_changes(changes, limits.fail_on_changes))
    endpoints = scan.endpoints
    if limits.max_failed_endpoints is not None:
        failed = endpoints.filter(pl.col("status") != "ok")
        checks.append(
            _count(
                "max_failed_endpoints", failed, limits.max_failed_endpoints,
                "endpoints whose handshake did not succeed",
                lambda r: f"{_where(r)}: {r['error'] or r['status']}",
            )
        )  # fmt: skip
    if limits.max_unverified is not None:
        unverified = endpoints.filter(
            pl.col("leaf_sha256").is_not_null()
            & (pl.col("verified").fill_null(False).not_() | pl.col("hostname_match").not_())
        )
        checks.append(
            _count(
                "max_unverified", unverified, limits.max_unverified,
                "endpoints whose chain does not verify or does not match the name",
                lambda r: f"{_where(r)}: "
                + (VERIFY_ERRORS.get(r["verify_error"], r["verify_error"])
                   or "certificate does not match the name"),
            )
        )  # fmt: skip
    if limits.max_expiring is not None:
        days = limits.expiring_days
        checks.append(
            _count(
                "max_expiring", _expiring(scan, summary.as_of, days), limits.max_expiring,
                f"endpoints whose certificate expires within {days} days",
                lambda r: f"{_where(r)}: "
                + (f"expires in {r['days']} days" if r["days_left"] > 0 else "expired"),
            )
        )  # fmt: skip
    lockout = cfg.lockout
    if lockout is not None and analysis is not None:
        if lockout.fail_on and lockout.max_locked_out is not None:
            checks.append(_locked_out(analysis, lockout.fail_on, lockout.max_locked_out))
        if lockout.max_expiry_headroom is not None:
            checks.append(
                _expiry_headroom(analysis, lockout.warn_days, lockout.max_expiry_headroom)
            )
    return tuple(checks)


def _locked_out(analysis: Analysis, fail_on: tuple[str, ...], limit: int) -> Check:
    """Endpoints passing today that a gating scenario locks out: the next routine renewal (by
    default) bricks their clients."""
    gate = analysis.gate(list(fail_on)).sort("target", "policy", "scenario")
    per_endpoint = gate.group_by("endpoint_id", "policy", maintain_order=True).agg(
        pl.first("target", "name"), scenarios=pl.col("scenario").cast(pl.String)
    )
    examples = tuple(
        f"{_named(r)}: {Path(r['policy']).name}: locks out under {', '.join(r['scenarios'])}"
        for r in per_endpoint.head(EXAMPLES).iter_rows(named=True)
    )
    detail = "endpoints passing today that a scenario of " + ", ".join(fail_on) + " locks out"
    return Check("max_locked_out", gate["endpoint_id"].n_unique(), limit, detail, examples)


def _expiry_headroom(analysis: Analysis, days: int, limit: int) -> Check:
    """Endpoints whose pass ends within ``days``: the certificate carrying their last matching
    pin expires (or the pin-set does), soonest first."""
    ending = (
        analysis.headroom()
        .filter((pl.col("today") == "pass") & (pl.col("days_left") <= days))
        .sort("days_left", "target", "policy")
    )
    examples = tuple(
        f"{_named(r)}: {Path(r['policy']).name}: its pass ends in {r['days_left']} days, "
        f"when the {r['carrier']} expires"
        for r in ending.unique("endpoint_id", keep="first", maintain_order=True)
        .head(EXAMPLES)
        .iter_rows(named=True)
    )
    detail = f"endpoints whose pass ends within {days} days (their last matching pin's carrier)"
    return Check("max_expiry_headroom", ending["endpoint_id"].n_unique(), limit, detail, examples)


def _where(row: dict[str, Any]) -> str:
    """The endpoint as people read it: its inventory line, and the address when a name (not
    an ``ip:port`` line) resolved to it."""
    ip, target = row["ip"], row["target"]
    return target if ip is None or ip in target else f"{target} ({ip})"


def _named(row: dict[str, Any]) -> str:
    """An endpoint of the rotation tables: its inventory line, and the name it was judged by
    when the line does not say it."""
    target, name = row["target"], row["name"]
    return target if not name or name in target else f"{target} ({name})"


def _count(
    name: str,
    rows: pl.LazyFrame,
    limit: int,
    detail: str,
    describe: Callable[[dict[str, Any]], str],
) -> Check:
    """A threshold on the number of endpoints in ``rows``, with the first few as examples."""
    total, first = pl.collect_all([rows.select(pl.len()), rows.head(EXAMPLES)])
    examples = tuple(describe(r) for r in first.iter_rows(named=True))
    return Check(name, total.item(), limit, detail, examples)


def _pin_failures(scan: ScanDataset, limit: int) -> Check:
    failing = scan.pin_results.filter(pl.col("verdict").is_in(FAILING))
    total, first = pl.collect_all(
        [
            failing.select(pl.col("endpoint_id").n_unique()),
            failing.sort("target", "policy").head(EXAMPLES),
        ]
    )
    examples = tuple(
        f"{_where(r)}: {Path(r['policy']).name}: {r['verdict']}"
        + (f" ({r['note']})" if r["note"] else "")
        for r in first.iter_rows(named=True)
    )
    detail = "endpoints a pinned client would refuse (verdict fail or error)"
    return Check("max_pin_failures", total.item(), limit, detail, examples)


def _changes(changes: pl.DataFrame | None, kinds: tuple[str, ...]) -> Check:
    if changes is None:
        return Check("fail_on_changes", 0, 0, "first scan of this history: nothing to compare")
    detail = "changes of the kinds " + ", ".join(kinds)
    hits = changes.filter(pl.col("change").cast(pl.String).is_in(kinds))
    examples = tuple(
        f"{_where(r)}: {r['change']}" + (f" ({r['detail']})" if r["detail"] else "")
        for r in hits.head(EXAMPLES).iter_rows(named=True)
    )
    return Check("fail_on_changes", hits.height, 0, detail, examples)


def _expiring(scan: ScanDataset, moment: dt.datetime, days: int) -> pl.LazyFrame:
    """Endpoints whose leaf expires within ``days`` of ``moment`` (or has expired), soonest
    first."""
    leaves = (
        scan.certificates.select(leaf_sha256="cert_sha256", not_after="not_after")
        .unique("leaf_sha256", keep="any")
        .with_columns(days_left=days_left(moment))
        .with_columns(days=whole_days(pl.col("days_left")))
        .filter(pl.col("days_left") <= days)
    )
    return (
        scan.endpoints.select("endpoint_id", "target", "ip", "leaf_sha256")
        .join(leaves, on="leaf_sha256")
        .sort("days_left", "target", "endpoint_id")
    )


__all__ = ["EXAMPLES", "Check", "measure"]
