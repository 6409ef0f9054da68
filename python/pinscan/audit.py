# SPDX-License-Identifier: Apache-2.0
"""``pinscan audit``: the scheduled job in one call, driven by a small TOML file.

One run scans the inventory into the history (judging it by the policies, whose verdicts go into
the scan's ``pin_results``), diffs it against the previous scan of that history, writes the
report, and checks the thresholds. Its result is an :class:`AuditResult`; ``exit_code`` is what
cron or CI act on: 0 nothing crossed, 1 a threshold crossed. Errors in the configuration are
:class:`ConfigError` (exit 2 on the command line), raised before anything is sent.

The format is documented key by key in ``docs/audit.md``. Every key is checked: an unknown key
is an error rather than a silently ignored threshold, because a misspelt ``max_pin_failure``
would otherwise turn a gate off without anyone noticing.
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import polars as pl

from pinscan import errors
from pinscan.atomic import atomic_write_json
from pinscan.config import Bounds, ScanConfig, Timeouts, checked
from pinscan.dataset import ScanDataset
from pinscan.dataset import history as hist
from pinscan.dataset import open as open_dataset
from pinscan.diffing import CHANGES, DEFAULT_FAIL_ON
from pinscan.diffing import diff as diff_scans
from pinscan.diffing import summary as diff_summary
from pinscan.inventory import read_inventory
from pinscan.policy import FORMATS, load_policies
from pinscan.policy.model import Policy
from pinscan.records import VERIFY_ERRORS, Endpoint
from pinscan.report.page import write_html
from pinscan.report.summary import FAILING, Summary, days_left, summarize, whole_days
from pinscan.scanner.router import scan as run_scan

#: Exit status when a threshold is crossed (usage and input errors exit 2, via PinscanError).
EXIT_CROSSED = 1
#: Examples listed per crossed threshold; the report and ``pinscan.open`` have the rest.
EXAMPLES = 10


class ConfigError(errors.ConfigError):
    """An audit configuration that cannot be used: ``source`` is the file, ``key`` the dotted
    key at fault (``thresholds.max_unverified``), ``None`` for the file as a whole. A
    :class:`pinscan.errors.ConfigError` whose ``setting`` is ``source: key``."""

    def __init__(self, source: str, key: str | None, message: str) -> None:
        super().__init__(f"{source}: {key}" if key else source, message)
        self.source = source
        self.key = key
        self.message = f"{key}: {message}" if key else message


@dataclass(frozen=True)
class Thresholds:
    """When an audit fails (exit 1). ``None`` means not checked. The defaults gate on what
    ``pinscan check`` and ``pinscan diff`` gate on: failing pins, rejected policies, rotated keys
    and endpoints that stopped working."""

    #: Endpoints with a ``fail`` or ``error`` pin verdict under any policy.
    max_pin_failures: int | None = 0
    #: A policy file its client rejects as a whole (Android on a bad date, OkHttp on a bad pin).
    fail_on_policy_error: bool = True
    #: Change kinds (see :data:`pinscan.diffing.CHANGES`) of which a single one fails the audit.
    fail_on_changes: tuple[str, ...] = DEFAULT_FAIL_ON
    #: Endpoints whose handshake did not succeed (status other than ``ok``).
    max_failed_endpoints: int | None = None
    #: Endpoints whose chain does not verify, or does not match the name.
    max_unverified: int | None = None
    #: Horizon of ``max_expiring``, in days.
    expiring_days: int = 30
    #: Endpoints whose leaf expires within ``expiring_days`` (or has expired).
    max_expiring: int | None = None


@dataclass(frozen=True)
class AuditConfig:
    """An audit configuration with every path absolute (relative ones are taken from the
    configuration file's directory, so a cron job's working directory does not matter)."""

    path: Path
    inventory: Path
    history: Path
    policies: tuple[Path, ...] = ()
    policy_format: str | None = None
    android_debug: bool = False
    inventory_format: str | None = None
    strict: bool = False
    scan: ScanConfig = field(default_factory=ScanConfig)
    html: Path | None = None
    json: Path | None = None
    top: int = 10
    rows: int = 5000
    thresholds: Thresholds = field(default_factory=Thresholds)


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

    @property
    def crossed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.crossed)

    @property
    def exit_code(self) -> int:
        return EXIT_CROSSED if self.crossed else 0

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
            "checks": [c.to_dict() for c in self.checks],
            "crossed": [c.name for c in self.crossed],
            "exit_code": self.exit_code,
        }


# --- the configuration --------------------------------------------------------------------


def load_config(path: str | os.PathLike[str]) -> AuditConfig:
    """Read and check an audit configuration; raises :class:`ConfigError` naming the key."""
    source = Path(path).absolute()
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(source), None, exc.strerror or str(exc)) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(str(source), None, f"not valid TOML: {exc}") from None
    top = _Table(source, data, "")
    inventory = top.path("inventory", required=True, exists=True)
    history = top.path("history", required=True)
    policies = top.paths("policies")
    policy_format = top.choice("policy_format", FORMATS)
    android_debug = top.boolean("android_debug", False)
    scan = top.table("scan")
    scan_config = _scan_config(scan)
    inventory_format = scan.choice("inventory_format", ("text", "csv", "parquet"))
    strict = scan.boolean("strict", False)
    report = top.table("report")
    html, json_path = report.path("html"), report.path("json")
    top_n = report.integer("top", 10, minimum=1)
    rows = report.integer("rows", 5000, minimum=0)
    limits = top.table("thresholds")
    base = Thresholds()
    thresholds = Thresholds(
        max_pin_failures=limits.integer("max_pin_failures", base.max_pin_failures, minimum=0),
        fail_on_policy_error=limits.boolean("fail_on_policy_error", base.fail_on_policy_error),
        fail_on_changes=limits.choices("fail_on_changes", CHANGES, base.fail_on_changes),
        max_failed_endpoints=limits.integer("max_failed_endpoints", None, minimum=0),
        max_unverified=limits.integer("max_unverified", None, minimum=0),
        expiring_days=limits.integer("expiring_days", base.expiring_days, minimum=0),
        max_expiring=limits.integer("max_expiring", None, minimum=0),
    )
    for table in (scan, report, limits, top):
        table.finish()
    return AuditConfig(
        path=source,
        inventory=inventory,  # type: ignore[arg-type]  # required
        history=history,  # type: ignore[arg-type]
        policies=policies,
        policy_format=policy_format,
        android_debug=android_debug,
        inventory_format=inventory_format,
        strict=strict,
        scan=scan_config,
        html=html,
        json=json_path,
        top=top_n,
        rows=rows,
        thresholds=thresholds,
    )


#: The keys of ``[scan]`` that set a number of :class:`Timeouts`, and the field each sets; the
#: others are :class:`ScanConfig`'s own names.
_TIMEOUT_KEYS = {
    "connect_timeout": "connect",
    "handshake_timeout": "handshake",
    "deadline": "deadline",
}
_SCAN_KEYS = ("concurrency", "rate", "per_address", "retries", "verify_processes")


def _scan_config(scan: _Table) -> ScanConfig:
    """``[scan]`` as a :class:`ScanConfig`, with its defaults and bounds."""
    defaults = ScanConfig()
    timeouts = {
        field: scan.setting(key, Timeouts.BOUNDS[field], getattr(defaults.timeouts, field))
        for key, field in _TIMEOUT_KEYS.items()
    }
    numbers = {
        key: scan.setting(key, ScanConfig.BOUNDS[key], getattr(defaults, key)) for key in _SCAN_KEYS
    }
    try:
        return ScanConfig(
            **numbers,
            timeouts=Timeouts(**timeouts),
            first_address=scan.boolean("first_address", defaults.first_address),
            ca_bundle=scan.path("ca_bundle", exists=True),
            system_store=scan.boolean("system_store", defaults.system_store),
        )
    except errors.ConfigError as exc:  # every key was checked above: a backstop
        raise ConfigError(str(scan.source), "scan", str(exc)) from None


class _Table:
    """One TOML table of the configuration: typed getters that name the key in every error, and
    :meth:`finish`, which rejects the keys no getter asked for."""

    def __init__(self, source: Path, data: dict[str, Any], prefix: str) -> None:
        self.source, self.data, self.prefix = source, data, prefix
        self.seen: set[str] = set()

    def _get(self, key: str, required: bool = False) -> Any:
        self.seen.add(key)
        if key not in self.data and required:
            self.fail(key, "is required")
        return self.data.get(key)

    def fail(self, key: str, message: str) -> NoReturn:
        raise ConfigError(str(self.source), self.prefix + key, message)

    def _wrong(self, key: str, value: Any, wanted: str) -> None:
        self.fail(key, f"must be {wanted}, not {_toml_type(value)} {value!r}")

    def table(self, key: str) -> _Table:
        value = self._get(key)
        if value is None:
            value = {}
        elif not isinstance(value, dict):
            self._wrong(key, value, f"a table ([{key}])")
        return _Table(self.source, value, f"{self.prefix}{key}.")

    def integer(
        self, key: str, default: int | None, *, minimum: int, maximum: int | None = None
    ) -> int | None:
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self._wrong(key, value, "an integer")
        self._range(key, value, minimum, maximum)
        return value

    def setting(self, key: str, bounds: Bounds, default: Any) -> Any:
        """A number of the scan's settings, with the bounds :mod:`pinscan.config` states."""
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, bounds.kind | int):
            self._wrong(key, value, bounds.describe())
        try:
            return bounds.check(key, value)
        except errors.ConfigError as exc:
            self.fail(key, exc.reason)

    def _range(self, key: str, value: float, minimum: float, maximum: float | None) -> None:
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"at least {minimum:g}" if maximum is None else f"{minimum:g} to {maximum:g}"
            self.fail(key, f"must be {bounds}, not {value!r}")

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self._wrong(key, value, "true or false")
        return value

    def choice(self, key: str, choices: tuple[str, ...]) -> str | None:
        value = self._get(key)
        if value is not None and value not in choices:
            self.fail(key, f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    def choices(
        self, key: str, choices: tuple[str, ...], default: tuple[str, ...]
    ) -> tuple[str, ...]:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self._wrong(key, value, "a list of strings")
        for word in value:
            if word not in choices:
                self.fail(key, f"unknown kind {word!r}; kinds: {', '.join(choices)}")
        return tuple(value)

    def path(self, key: str, *, required: bool = False, exists: bool = False) -> Path | None:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            self._wrong(key, value, "a path (a string)")
        return self._resolve(key, value, exists)

    def paths(self, key: str) -> tuple[Path, ...]:
        value = self._get(key)
        if value is None:
            return ()
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
            self._wrong(key, value, "a path or a list of paths")
        return tuple(self._resolve(key, v, exists=True) for v in values)

    def _resolve(self, key: str, value: str, exists: bool) -> Path:
        path = self.source.parent / Path(value).expanduser()
        if exists and not path.is_file():
            self.fail(key, f"no such file: {path}")
        return path

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            key = unknown[0]
            close = difflib.get_close_matches(key, sorted(self.seen), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            known = ", ".join(sorted(self.seen))
            self.fail(key, f"unknown key{hint}; known here: {known}")


def _toml_type(value: Any) -> str:
    names = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array"}
    return "table" if isinstance(value, dict) else names.get(type(value), type(value).__name__)


# --- the run ------------------------------------------------------------------------------


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
    >>> result.exit_code, [c.name for c in result.crossed]  # doctest: +SKIP
    """
    cfg = config if isinstance(config, AuditConfig) else load_config(config)
    checked(cfg.scan)  # an AuditConfig made in Python: its scan settings, before anything runs
    policies = [
        p
        for path in cfg.policies
        for p in load_policies(path, cfg.policy_format, android_debug=cfg.android_debug)
    ]
    items = read_inventory(cfg.inventory, format=cfg.inventory_format, strict=cfg.strict)
    arguments = {
        "audit": str(cfg.path),
        "policies": [str(p) for p in cfg.policies],
        "ca_bundle": None if cfg.scan.ca_bundle is None else str(cfg.scan.ca_bundle),
    }
    scan = run_scan(
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
    # The page's trend and changes: the diff above, not a second one.
    summary = summarize(
        scan, top=cfg.top, table_rows=cfg.rows if cfg.html else 0, history=True, changes=changes
    )
    result = AuditResult(
        config=cfg,
        scan=scan,
        previous=previous,
        changes=changes,
        summary=summary,
        pin_verdicts=_verdict_counts(scan) if policies else {},
        rejected_policies=tuple(p.name for p in policies if p.error),
        checks=_checks(cfg, scan, summary, changes, policies),
    )
    _write_reports(result)
    return result


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


def _checks(
    cfg: AuditConfig,
    scan: ScanDataset,
    summary: Summary,
    changes: pl.DataFrame | None,
    policies: list[Policy],
) -> tuple[Check, ...]:
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
    return tuple(checks)


def _where(row: dict[str, Any]) -> str:
    """The endpoint as people read it: its inventory line, and the address when a name (not
    an ``ip:port`` line) resolved to it."""
    ip, target = row["ip"], row["target"]
    return target if ip is None or ip in target else f"{target} ({ip})"


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


__all__ = [
    "EXIT_CROSSED",
    "AuditConfig",
    "AuditResult",
    "Check",
    "ConfigError",
    "Thresholds",
    "load_config",
    "run",
]
