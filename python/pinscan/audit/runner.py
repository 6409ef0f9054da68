# SPDX-License-Identifier: Apache-2.0
"""One audit run: scan into the history (judged by the policies), diff against the previous
scan, write the report, measure the thresholds. The result says whether the run passed; the
command line turns that into its exit status.

(Named ``runner``, not ``run``: a submodule named like the function :mod:`pinscan.audit`
exports would shadow it on the package.)
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from pinscan.atomic import atomic_write_json
from pinscan.audit.checks import Check, measure
from pinscan.audit.config import AuditConfig, Lockout, load_config
from pinscan.catalog.graph import Catalog
from pinscan.config import checked
from pinscan.dataset import ScanDataset
from pinscan.dataset import history as hist
from pinscan.dataset import open as open_dataset
from pinscan.diffing import diff as diff_scans
from pinscan.diffing import summary as diff_summary
from pinscan.errors import AuditConfigError, ConfigError
from pinscan.inventory import read_inventory
from pinscan.policy import load_policies
from pinscan.policy.suggest import BackupKey
from pinscan.records import Endpoint
from pinscan.report.page import write_html
from pinscan.report.summary import Summary, summarize
from pinscan.rotation import Analysis, analyse
from pinscan.rotation.paths import switch_target
from pinscan.scanner.router import scan as scan_inventory


@dataclass(frozen=True)
class AuditResult:
    """What one audit found. ``changes`` is ``None`` on the first scan of a history (there is
    nothing to compare with), else :func:`pinscan.diff`'s frame; ``summary`` is the report's."""

    config: AuditConfig
    scan: ScanDataset
    previous: str | None
    changes: pl.DataFrame | None
    summary: Summary
    pin_verdicts: dict[str, int]
    rejected_policies: tuple[str, ...]
    checks: tuple[Check, ...]
    #: The scenarios of ``[lockout]`` played on the scan; ``None`` without the table.
    lockout: Analysis | None = None

    @property
    def crossed(self) -> tuple[Check, ...]:
        """The thresholds this run crossed; empty when it passed."""
        return tuple(c for c in self.checks if c.crossed)

    @property
    def passed(self) -> bool:
        """No threshold crossed: a scheduled job has nothing to act on."""
        return not self.crossed

    @property
    def exit_code(self) -> int:
        """The status ``pinscan audit`` exits with for this result: 0 passed, 1 crossed. Kept
        because the JSON output and report carry it (docs/audit.md); decide by :attr:`passed`."""
        return 0 if self.passed else 1

    @property
    def change_counts(self) -> dict[str, int]:
        """Changes per kind, only the kinds present; empty on the first scan."""
        if self.changes is None:
            return {}
        return {str(k): n for k, n in diff_summary(self.changes).iter_rows() if n}

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready values (``--format json``; the JSON report adds the
        summary)."""
        meta = self.scan.meta
        return {
            "config": str(self.config.path),
            "history": str(self.config.history),
            "scan": {
                "scan_id": meta["scan_id"],
                "started_at": meta.get("started_at"),
                "finished_at": meta.get("finished_at"),
                **{k: meta["counts"].get(k) for k in ("targets", "endpoints", "seconds")},
                "statuses": meta["counts"].get("statuses", {}),
            },
            "previous_scan": self.previous,
            "changes": self.change_counts if self.previous else None,
            "pin_verdicts": self.pin_verdicts,
            "rejected_policies": list(self.rejected_policies),
            "report": {
                "html": None if self.config.html is None else str(self.config.html),
                "json": None if self.config.json is None else str(self.config.json),
            },
            "lockout": None if self.lockout is None else self._lockout_counts(),
            "checks": [c.to_dict() for c in self.checks],
            "crossed": [c.name for c in self.crossed],
            "exit_code": self.exit_code,
        }

    def _lockout_counts(self) -> dict[str, Any]:
        """Per scenario played, how many pinned endpoints survive it and how many it locks out
        (all of them, passing today or not; ``max_locked_out`` counts the passing ones)."""
        assert self.lockout is not None
        counts = (
            self.lockout.lockout.group_by("scenario", "outcome")
            .agg(pl.col("endpoint_id").n_unique())
            .with_columns(pl.col("scenario", "outcome").cast(pl.String))
        )
        per = {(s, o): n for s, o, n in counts.iter_rows()}
        return {
            "scenarios": [
                {
                    "scenario": str(r["scenario"]),
                    "kind": str(r["kind"]),
                    "routine": r["routine"],
                    "detail": r["detail"],
                    "endpoints": r["endpoints"],
                    **{
                        outcome: per.get((str(r["scenario"]), outcome), 0)
                        for outcome in ("survives", "locks_out", "untrusted")
                    },
                }
                for r in self.lockout.scenarios.iter_rows(named=True)
            ],
            "fail_on": list(self.config.lockout.fail_on) if self.config.lockout else [],
        }


def run(
    config: AuditConfig | str | os.PathLike[str],
    *,
    resume: bool = False,
    on_endpoint: Callable[[Endpoint], None] | None = None,
) -> AuditResult:
    """Run one audit: scan into the history, judge, diff with the previous scan, report, check.

    ``config`` is an :class:`AuditConfig` or the path of its TOML file. ``resume`` finishes the
    history's interrupted scan instead of starting a new one. ``on_endpoint`` is called with each
    endpoint as it is scanned (a progress bar). Policies and, with ``strict``, the inventory are
    read before any connection, so that a broken input fails the run before it scans.

    Examples
    --------
    >>> result = pinscan.audit.run("/etc/pinscan/fleet.toml")  # doctest: +SKIP
    >>> result.passed, [c.name for c in result.crossed]  # doctest: +SKIP
    """
    cfg = config if isinstance(config, AuditConfig) else load_config(config)
    checked(cfg.scan)  # an AuditConfig made in Python: its scan settings, before anything runs
    policies = [
        p
        for path in cfg.policies
        for p in load_policies(path, cfg.policy_format, android_debug=cfg.android_debug)
    ]
    items = read_inventory(
        cfg.inventory, format=cfg.inventory_format, strict=cfg.strict, starttls=cfg.scan.starttls
    )
    # The spare keys and private CAs of [lockout], read before any connection as the policies.
    rotation = None if cfg.lockout is None else _scenario_inputs(cfg.lockout, cfg.path)
    arguments = {
        "audit": str(cfg.path),
        "policies": [str(p) for p in cfg.policies],
        "ca_bundle": None if cfg.scan.ca_bundle is None else str(cfg.scan.ca_bundle),
    }
    # The scan's front door stages, judges and commits the history scan.
    scan = scan_inventory(
        items,
        history=cfg.history,
        resume=resume,
        policies=policies,
        config=cfg.scan,
        inventory_format=cfg.inventory_format,
        on_endpoint=on_endpoint,
        arguments=arguments,
    )
    previous = _previous(cfg.history, scan.meta["scan_id"])
    changes = None
    if previous is not None:
        before = open_dataset(cfg.history, scans=previous, verify=True)
        changes = diff_scans(before, scan, policies or None)
    # One moment for the report and the scenarios, as for the other thresholds.
    moment = dt.datetime.now(dt.UTC)
    analysis = None
    if cfg.lockout is not None and rotation is not None:
        try:
            analysis = analyse(scan, policies, cfg.lockout.scenarios, as_of=moment, **rotation)
            analysis.lockout  # noqa: B018  # played now, so that its errors are said here
        except ConfigError as exc:  # the library names its argument: name the file's key
            key = f"lockout.{exc.setting}"
            raise AuditConfigError(str(cfg.path), key, exc.reason) from None
    # The page's trend, changes and lockout section: the diff and the analysis above, not
    # second ones.
    summary = summarize(
        scan,
        as_of=moment,
        top=cfg.top,
        table_rows=cfg.rows if cfg.html else 0,
        history=True,
        changes=changes,
        scenarios=None if analysis is None else cfg.lockout.scenarios,
        analysis=analysis,
    )
    result = AuditResult(
        config=cfg,
        scan=scan,
        previous=previous,
        changes=changes,
        summary=summary,
        pin_verdicts=_verdict_counts(scan) if policies else {},
        rejected_policies=tuple(p.name for p in policies if p.error),
        checks=measure(cfg, scan, summary, changes, policies, analysis),
        lockout=analysis,
    )
    _write_reports(result)
    return result


def _scenario_inputs(lockout: Lockout, cfg_path: Path) -> dict[str, Any]:
    """The catalog (with the private CAs) and the spare keys ``[lockout]`` names."""
    catalog = Catalog.shipped()
    if lockout.ca_catalog:
        catalog = catalog.with_pems(lockout.ca_catalog)
    now = dt.datetime.now(dt.UTC)
    try:
        for name in lockout.switch_to:
            switch_target(catalog, name, now)
    except ConfigError as exc:
        raise AuditConfigError(str(cfg_path), f"lockout.{exc.setting}", exc.reason) from None
    return {
        "catalog": catalog,
        "switch_to": lockout.switch_to,
        "backup_keys": [BackupKey.read(path) for path in lockout.backup_keys],
    }


def _previous(history: Path, scan_id: str) -> str | None:
    """The committed scan just before ``scan_id`` (by start time), if any."""
    ids = [m["scan_id"] for m in hist.committed(history)]
    at = ids.index(scan_id)
    return ids[at - 1] if at else None


def _verdict_counts(scan: ScanDataset) -> dict[str, int]:
    counts = scan.pin_results.group_by("verdict").len().sort("verdict").collect()
    return {str(v): n for v, n in counts.iter_rows()}


def _write_reports(result: AuditResult) -> None:
    cfg = result.config
    if cfg.html is not None:
        cfg.html.parent.mkdir(parents=True, exist_ok=True)
        write_html(result.summary, cfg.html)
    if cfg.json is not None:
        cfg.json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(cfg.json, {**result.to_dict(), "summary": result.summary.to_dict()})


__all__ = ["AuditResult", "run"]
