# SPDX-License-Identifier: Apache-2.0
"""The audit's TOML file, read into an :class:`AuditConfig`, every key checked.

An unknown key is an error rather than a silently ignored threshold, because a misspelt
``max_pin_failure`` would otherwise turn a gate off without anyone noticing. ``[scan]`` takes its
bounds and defaults from :class:`~pinscan.config.ScanConfig` and
:class:`~pinscan.config.Timeouts`, where they are stated once. Errors are
:class:`~pinscan.errors.AuditConfigError`, naming the file and the key.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from pinscan.config import Bounds, ScanConfig, Timeouts, trust_stores
from pinscan.diffing import CHANGES, DEFAULT_FAIL_ON
from pinscan.errors import AuditConfigError, ConfigError
from pinscan.policy import FORMATS
from pinscan.records import ANCHOR_STORES, ENGINES, STARTTLS
from pinscan.rotation.scenarios import parse_scenarios
from pinscan.rotation.schema import ROUTINE


@dataclass(frozen=True)
class Thresholds:
    """When an audit does not pass (``pinscan audit`` exits 1). ``None`` means not checked. The
    defaults gate on what ``pinscan check`` and ``pinscan diff`` gate on: failing pins, rejected
    policies, rotated keys and endpoints that stopped working."""

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
class Lockout:
    """``[lockout]``: the rotation scenarios played on every scan (``pinscan check
    --scenarios``), and its two thresholds. Present only when the file has the table."""

    #: What to play: ``"all"``, ``"routine"``, or kinds and names (``sibling:R11``).
    scenarios: str | tuple[str, ...] = "all"
    #: The scenarios whose lockouts count in ``max_locked_out``; empty: none gates.
    fail_on: tuple[str, ...] = ROUTINE
    #: CA families (or CA names) to play ``switch:`` with, besides the fleet's other ones.
    switch_to: tuple[str, ...] = ()
    #: Spare keys (public keys, certificates or CSRs) for ``backup_key``.
    backup_keys: tuple[Path, ...] = ()
    #: PEM bundles of a private PKI's CAs, added to the shipped catalog.
    ca_catalog: tuple[Path, ...] = ()
    #: Horizon of ``max_expiry_headroom`` and of the ``expiry_headroom`` findings, in days.
    warn_days: int = 30
    #: Endpoints passing today that a ``fail_on`` scenario locks out.
    max_locked_out: int | None = 0
    #: Endpoints whose pass ends within ``warn_days`` (the certificate carrying their last
    #: matching pin expires, or the pin-set does).
    max_expiry_headroom: int | None = None


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
    #: ``[lockout]``; ``None`` when the file has none (no scenario is played).
    lockout: Lockout | None = None


def load_config(path: str | os.PathLike[str]) -> AuditConfig:
    """Read and check an audit configuration; a fault is an
    :class:`~pinscan.errors.AuditConfigError` naming the key."""
    source = Path(path).absolute()
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AuditConfigError(str(source), None, exc.strerror or str(exc)) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise AuditConfigError(str(source), None, f"not valid TOML: {exc}") from None
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
    tables = [scan, report, limits, top]
    lockout = None
    if "lockout" in data:
        if not policies:
            top.fail("lockout", "plays rotation scenarios on the policies: give policies too")
        played = top.table("lockout")
        lockout = _lockout(played)
        tables.insert(0, played)
    for table in tables:
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
        lockout=lockout,
    )


def _lockout(table: _Table) -> Lockout:
    """``[lockout]``, its scenarios parsed here so that a misspelt kind fails before the scan."""
    base = Lockout()
    scenarios = table.words("scenarios", base.scenarios)
    try:
        played = parse_scenarios(scenarios)
    except ConfigError as exc:
        table.fail("scenarios", exc.reason)
    if not str(played):
        table.fail("scenarios", "names no scenario: give all, routine, or kinds and names")
    words = table.words("fail_on", base.fail_on)
    try:
        gate = parse_scenarios(words)
    except ConfigError as exc:
        table.fail("fail_on", exc.reason)
    missing = played.unplayed(gate)
    if missing:
        table.fail("fail_on", f"{', '.join(missing)} would gate but scenarios does not play it")
    switch_to = table.words("switch_to", ())
    return Lockout(
        scenarios=scenarios,
        fail_on=tuple(str(gate).split(",")) if str(gate) else (),
        switch_to=(switch_to,) if isinstance(switch_to, str) else switch_to,
        backup_keys=table.paths("backup_keys"),
        ca_catalog=table.paths("ca_catalog"),
        warn_days=table.integer("warn_days", base.warn_days, minimum=0),  # type: ignore[arg-type]
        max_locked_out=table.integer("max_locked_out", base.max_locked_out, minimum=0),
        max_expiry_headroom=table.integer("max_expiry_headroom", None, minimum=0),
    )


#: The keys of ``[scan]`` that set a number of :class:`Timeouts`, and the field each sets; the
#: others are :class:`ScanConfig`'s own names.
_TIMEOUT_KEYS = {
    "connect_timeout": "connect",
    "handshake_timeout": "handshake",
    "deadline": "deadline",
}
_SCAN_KEYS = ("concurrency", "rate", "per_address", "retries", "processes", "verify_processes")


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
            anchor_store=scan.choice("anchor_store", ANCHOR_STORES) or defaults.anchor_store,
            system_store=scan.boolean("system_store", defaults.system_store),
            trust_stores=scan.trust_stores("trust_stores", defaults.trust_stores),
            starttls=scan.choice("starttls", tuple(STARTTLS)),
            engine=scan.choice("engine", tuple(ENGINES)) or defaults.engine,
        )
    except ConfigError as exc:  # every key was checked above: a backstop
        raise AuditConfigError(str(scan.source), "scan", str(exc)) from None


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
        raise AuditConfigError(str(self.source), self.prefix + key, message)

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
        except ConfigError as exc:
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

    def words(self, key: str, default: str | tuple[str, ...]) -> str | tuple[str, ...]:
        """One word, or a list of words: scenarios and CA families."""
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, str) and value.strip():
            return value.strip()
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self._wrong(key, value, "a string or a list of strings")
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

    def trust_stores(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        """Store names as ``ScanConfig.trust_stores`` takes them: a list (or a comma-separated
        string); the file of a ``NAME=FILE`` is found from the configuration's directory."""
        value = self._get(key)
        if value is None:
            return default
        values = value.split(",") if isinstance(value, str) else value
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            self._wrong(key, value, "a list of store names")
        resolved = []
        for entry in values:
            name, equals, path = (part.strip() for part in entry.partition("="))
            resolved.append(f"{name}={self._resolve(key, path, False)}" if equals else name)
        try:
            return trust_stores(resolved, setting=key)
        except ConfigError as exc:
            self.fail(key, exc.reason)

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


__all__ = ["AuditConfig", "Lockout", "Thresholds", "load_config"]
