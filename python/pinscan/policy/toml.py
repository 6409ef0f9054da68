# SPDX-License-Identifier: Apache-2.0
"""pinscan's own pin policy: TOML that states the rule model directly (``docs/policy-toml.md``).

Every other format's meaning hides in a client's code; this one says it in the file: which names
a pin-set covers (``match``), where pins may match (``positions``), until when (``expires``, in
UTC), enforced or report-only, and how rules for one name combine. It is the default output of
``pinscan suggest``. The reader is strict: a TOML syntax error is a :class:`PolicyError`; an
unknown key, a bad pin or a bad date is :attr:`Policy.error` at its line, since a typo silently
dropping a pin would be worse than refusing the file.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import tomllib
from typing import Any

from pinscan.errors import PolicyError
from pinscan.policy.model import (
    ChainSource,
    Combine,
    Diagnostic,
    Location,
    Match,
    Pin,
    PinSet,
    Policy,
    Position,
    Rule,
    Suggestion,
    normalize_host,
    utc_midnight,
)

_TOP_KEYS = {"combine", "chain", "pin-set"}
_SET_KEYS = {
    "domain",
    "include-subdomains",
    "match",
    "pins",
    "positions",
    "leaf-pins",
    "ca-pins",
    "expires",
    "enforce",
    "bad-pins",
    "exclude",
    "override-pins",
}
_COMBINE = {"most-specific": Combine.MOST_SPECIFIC, "union": Combine.UNION}
_CHAIN = {"verified": ChainSource.VERIFIED, "leaf": ChainSource.LEAF}
_MATCH = {
    "exact": Match.EXACT,
    "subdomains": Match.SUBDOMAINS,
    "one-level": Match.ONE_LEVEL,
    "one-label": Match.ONE_LABEL,
}
_POSITIONS = {
    "any": Position.ANY,
    "leaf": Position.LEAF,
    "ca": Position.CA,
    "anchor": Position.ANCHOR,
}
_DIGEST_SIZES = {"sha256": 32, "sha1": 20}
_TABLE = re.compile(r"^[ \t]*\[\[[ \t]*pin-set[ \t]*\]\]", re.MULTILINE)
_HOST = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*|[0-9a-f:.]+")
_SNIFF = re.compile(rb"(?m)^[ \t]*\[\[[ \t]*pin-set[ \t]*\]\]")


def sniff(data: bytes) -> bool:
    """Whether the text has a ``[[pin-set]]`` table."""
    return _SNIFF.search(data[:4_000_000]) is not None


class _Invalid(Exception):
    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


def _key_line(lines: list[str], start: int, end: int, key: str) -> int:
    """The line of ``key =`` between two table headers (1-based), else the table's line."""
    pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
    for number in range(start, min(end, len(lines) + 1)):
        if pattern.match(lines[number - 1]):
            return number
    return start


def _pin(value: Any, line: int, source: str) -> Pin:
    if not isinstance(value, str) or "/" not in value:
        raise _Invalid(f"pin {value!r} is not 'sha256/<base64>' or 'sha1/<base64>'", line)
    algorithm, _, digest = value.partition("/")
    if algorithm not in _DIGEST_SIZES:
        raise _Invalid(f"pin {value!r}: the algorithm must be sha256 or sha1", line)
    try:
        pin = Pin.parse(algorithm, digest, text=value, location=Location(source, line))
    except ValueError as exc:
        raise _Invalid(f"pin {value!r}: {exc}", line) from None
    if len(base64.b64decode(pin.digest)) != _DIGEST_SIZES[algorithm]:
        raise _Invalid(f"pin {value!r}: not a {algorithm} digest (wrong length)", line)
    return pin


def _choice(
    table: dict[str, Any], key: str, options: dict[str, Any], default: Any, line: int
) -> Any:
    value = table.get(key)
    if value is None:
        return default
    if value not in options:
        raise _Invalid(f"{key} = {value!r}: one of {', '.join(options)}", line)
    return options[value]


def _bool(table: dict[str, Any], key: str, default: bool, line: int) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise _Invalid(f"{key} must be true or false, not {value!r}", line)
    return value


def _rule(table: Any, lines: list[str], start: int, end: int, source: str) -> Rule:
    def at(key: str) -> int:
        return _key_line(lines, start, end, key)

    if not isinstance(table, dict):
        raise _Invalid("pin-set must be a table", start)
    for key in table:
        if key not in _SET_KEYS:
            raise _Invalid(f"unknown key {key!r} in [[pin-set]]", at(key))
    domain = table.get("domain")
    if not isinstance(domain, str) or not _HOST.fullmatch(normalize_host(domain)):
        raise _Invalid(f"domain = {domain!r}: a host name (use match for wildcards)", at("domain"))
    host = normalize_host(domain)
    match = _choice(table, "match", _MATCH, None, at("match"))
    if "include-subdomains" in table:
        wide = _bool(table, "include-subdomains", False, at("include-subdomains"))
        implied = Match.SUBDOMAINS if wide else Match.EXACT
        if match is not None and match != implied:
            raise _Invalid(
                f"include-subdomains = {str(wide).lower()} contradicts match = {table['match']!r}",
                at("match"),
            )
        match = implied
    pin_sets: list[PinSet] = []
    lists = (
        ("pins", _choice(table, "positions", _POSITIONS, Position.ANY, at("positions"))),
        ("leaf-pins", Position.LEAF),
        ("ca-pins", Position.CA),
    )
    for key, position in lists:
        if key not in table:
            continue
        values = table[key]
        if not isinstance(values, list):
            raise _Invalid(f"{key} must be a list of 'sha256/...' strings", at(key))
        pins = tuple(
            _pin(value, _pin_line(lines, start, end, value, at(key)), source) for value in values
        )
        pin_sets.append(PinSet(pins, position))
    if not pin_sets:
        raise _Invalid(f"[[pin-set]] for {host} has no pins, leaf-pins or ca-pins", start)
    if "positions" in table and "pins" not in table:
        raise _Invalid("positions applies to pins, which is missing", at("positions"))
    bad = table.get("bad-pins", [])
    if not isinstance(bad, list):
        raise _Invalid("bad-pins must be a list of 'sha256/...' strings", at("bad-pins"))
    bad_pins = tuple(_pin(v, _pin_line(lines, start, end, v, at("bad-pins")), source) for v in bad)
    expires = _expires(table.get("expires"), at("expires"))
    overrides = table.get("override-pins", [])
    if not isinstance(overrides, list) or not all(isinstance(v, str) for v in overrides):
        raise _Invalid("override-pins must be a list of strings", at("override-pins"))
    return Rule(
        host=host,
        match=match or Match.EXACT,
        pin_sets=tuple(pin_sets),
        location=Location(source, start),
        bad_pins=bad_pins,
        expires=expires,
        enforce=_bool(table, "enforce", True, at("enforce")),
        exclude=_bool(table, "exclude", False, at("exclude")),
        override_pins=frozenset(overrides),
        pattern=domain,
    )


def _pin_line(lines: list[str], start: int, end: int, value: Any, default: int) -> int:
    """The line that holds a pin string (lists may span lines), else ``default``."""
    if isinstance(value, str) and value:
        for number in range(start, min(end, len(lines) + 1)):
            if value in lines[number - 1]:
                return number
    return default


def _expires(value: Any, line: int) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise _Invalid("expires: a date-time needs a time zone offset (or use a date)", line)
        return value.astimezone(dt.UTC)
    if isinstance(value, dt.date):
        return utc_midnight(value)
    raise _Invalid(f"expires = {value!r}: a TOML date such as 2027-01-31 (not a string)", line)


def parse(data: bytes, source: str) -> Policy:
    """Read a pinscan TOML policy."""
    try:
        text = data.decode("utf-8")
        doc = tomllib.loads(text)
    except UnicodeDecodeError as exc:
        raise PolicyError(source, f"not UTF-8: {exc.reason}") from None
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        raise PolicyError(
            source, f"not TOML: {exc}", line=int(found[1]) if found else None
        ) from None
    lines = text.splitlines()
    starts = [text.count("\n", 0, m.start()) + 1 for m in _TABLE.finditer(text)]
    error: str | None = None
    error_line: int | None = None
    rules: list[Rule] = []
    combine, chain = Combine.MOST_SPECIFIC, ChainSource.VERIFIED
    first_table = starts[0] if starts else len(lines) + 1
    try:
        for key in doc:
            if key not in _TOP_KEYS:
                raise _Invalid(
                    f"unknown top-level key {key!r}", _key_line(lines, 1, first_table, key)
                )
        combine = _choice(
            doc, "combine", _COMBINE, combine, _key_line(lines, 1, first_table, "combine")
        )
        chain = _choice(doc, "chain", _CHAIN, chain, _key_line(lines, 1, first_table, "chain"))
    except _Invalid as exc:
        error, error_line = str(exc), exc.line
    tables = doc.get("pin-set", [])
    if not isinstance(tables, list):
        tables = []
        error = error or "pin-set must be written as [[pin-set]] tables"
    for n, table in enumerate(tables):
        start = starts[n] if n < len(starts) else 1
        end = starts[n + 1] if n + 1 < len(starts) else len(lines) + 1
        try:
            rules.append(_rule(table, lines, start, end, source))
        except _Invalid as exc:
            if error is None:
                error, error_line = str(exc), exc.line
    warnings = tuple(
        Diagnostic(rule.location, f"{rule.host}: an empty pin list never matches")
        for rule in rules
        if any(not pin_set.pins for pin_set in rule.pin_sets)
    )
    return Policy(
        name=source,
        format="toml",
        rules=tuple(rules),
        combine=combine,
        chain=chain,
        error=error,
        error_location=Location(source, error_line) if error else None,
        warnings=warnings,
    )


def _string(value: str) -> str:
    return json.dumps(value)


def write(suggestion: Suggestion) -> str:
    """The suggestion as a pinscan TOML policy, with a comment on every pin."""
    lines = [f"# {' '.join(line.split())}" for line in suggestion.header]
    lines += [
        "# pinscan pin policy: see docs/policy-toml.md. Dates are 00:00 UTC.",
        'combine = "most-specific"',
        'chain = "verified"',
        "",
        "[[pin-set]]",
        f"domain = {_string(suggestion.domain)}",
        f"include-subdomains = {str(suggestion.include_subdomains).lower()}",
        'positions = "any"',
    ]
    if suggestion.expires is not None:
        lines.append(
            f"expires = {suggestion.expires.isoformat()}  # not enforced from 00:00 UTC that day"
        )
    lines.append(f"enforce = {str(suggestion.enforce).lower()}")
    lines.append("pins = [")
    for suggested in suggestion.pins:
        comment = " ".join(suggested.comment.split())
        lines.append(f"  {_string(suggested.pin.label)},  # {suggested.role}: {comment}")
    lines += ["]", ""]
    return "\n".join(lines)
