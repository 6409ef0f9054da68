# SPDX-License-Identifier: Apache-2.0
"""Chromium's static pins: ``transport_security_state_static_pins.json`` (or the older
``transport_security_state_static.json``) resolved through ``transport_security_state_static.pins``.

The JSON names keys; the ``.pins`` file defines them (a PEM certificate, a PEM public key, or
``sha256/<base64>``) and holds ``PinsListTimestamp``. The ``.pins`` file is found next to the
JSON (same directory, a name ending in ``transport_security_state_static.pins``, preferring the
same file-name prefix) or given as ``parse(..., pins_file=PATH)``. Without one nothing can be
resolved: :attr:`Policy.error`. A name that the ``.pins`` file does not define makes Chromium's
generator refuse the list, so the rules of that pinset get :attr:`Rule.error` naming it. A
``.pins`` file given alone is a :class:`PolicyError`: it holds named keys, not rules.

Semantics (``net/http/transport_security_state.cc``): a chain passes when one of its SPKI hashes
is in ``static_spki_hashes`` and none is in ``bad_static_spki_hashes``; the lookup takes the
exact host, else the closest parent with ``include_subdomains`` (or the older
``include_subdomains_for_pinning``); the whole list stops being enforced once it is 70 days old,
counted from ``PinsListTimestamp``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from pathlib import Path

from pinscan.certs.keys import spki_pin
from pinscan.errors import InputError, PolicyError
from pinscan.policy.model import (
    Combine,
    Diagnostic,
    Location,
    Match,
    Pin,
    PinSet,
    Policy,
    Rule,
    normalize_host,
)

MAX_AGE = dt.timedelta(days=70)
NOTES = (
    "Chromium skips static pins for chains to locally installed (non-public) roots",
    "Chromium stops enforcing static pins once the list is 70 days old (PinsListTimestamp)",
)
_PINS_SUFFIX = "transport_security_state_static.pins"
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def sniff(data: bytes) -> bool:
    """Whether ``data`` is the pins JSON (``pinsets``/``static_spki_hashes``) or a ``.pins``."""
    head = data[:8_000_000]
    pins_json = b'"static_spki_hashes"' in head or (b'"pinsets"' in head and b'"entries"' in head)
    return pins_json or b"PinsListTimestamp" in head


def read_pins_file(data: bytes, source: str) -> tuple[dt.datetime | None, dict[str, str | None]]:
    """``PinsListTimestamp`` and each name's SHA-256 SPKI pin (None when it cannot be computed).

    Raises :class:`PolicyError` when the text is not a ``.pins`` file at all.
    """
    lines = data.decode("utf-8", errors="replace").splitlines()
    timestamp: dt.datetime | None = None
    keys: dict[str, str | None] = {}
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        if not _NAME.fullmatch(line):
            raise PolicyError(source, f"expected a name, not {line[:60]!r}", line=i)
        name = line
        while i < len(lines) and not lines[i].strip():
            i += 1
        value = lines[i].strip() if i < len(lines) else ""
        if name == "PinsListTimestamp":
            if not value.isdigit():
                raise PolicyError(source, "PinsListTimestamp is not a number", line=i + 1)
            timestamp = dt.datetime.fromtimestamp(int(value), dt.UTC)
            i += 1
        elif value.startswith("sha256/"):
            try:
                raw = base64.b64decode(value[len("sha256/") :], validate=True)
                keys[name] = base64.b64encode(raw).decode() if len(raw) == 32 else None
            except (binascii.Error, ValueError):
                keys[name] = None
            i += 1
        elif value.startswith("-----BEGIN"):
            end = i
            while end < len(lines) and not lines[end].strip().startswith("-----END"):
                end += 1
            block = "\n".join(lines[i : end + 1]).encode()
            try:
                keys[name] = spki_pin(block)
            except InputError:
                keys[name] = None
            i = end + 1
        else:
            raise PolicyError(source, f"{name}: no key after the name", line=i + 1)
    return timestamp, keys


def _find_pins_file(source: str) -> Path | None:
    path = Path(source)
    try:
        candidates = sorted(p for p in path.parent.glob(f"*{_PINS_SUFFIX}") if p.is_file())
    except OSError:
        return None
    prefix = path.name.split("transport_security_state_static")[0]
    same = [p for p in candidates if p.name == prefix + _PINS_SUFFIX]
    if same:
        return same[0]
    return candidates[0] if len(candidates) == 1 else None


def _json_lines(text: str) -> dict[str, list[int]]:
    """Line numbers of each ``"name": "..."`` in document order."""
    found: dict[str, list[int]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        for m in re.finditer(r'"name"\s*:\s*"([^"\\]{0,300})"', line):
            found.setdefault(m.group(1), []).append(number)
    return found


def parse(data: bytes, source: str, *, pins_file: str | Path | None = None) -> Policy:
    """Read the static pins JSON and resolve its key names through the ``.pins`` file."""
    text = data.decode("utf-8", errors="replace")
    if "PinsListTimestamp" in text and '"pinsets"' not in text:
        raise PolicyError(
            source,
            "a transport_security_state_static.pins file holds named keys, not rules: give the "
            "transport_security_state_static_pins.json that uses it (pinscan finds this file "
            "next to it)",
        )
    # Chromium's JSON has whole-line // comments; blank them to keep line numbers.
    stripped = "\n".join(
        "" if line.lstrip().startswith("//") else line for line in text.split("\n")
    )
    try:
        doc = json.loads(stripped)
    except (json.JSONDecodeError, RecursionError) as exc:
        line = exc.lineno if isinstance(exc, json.JSONDecodeError) else None
        raise PolicyError(source, f"not JSON: {exc}", line=line) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("pinsets"), list):
        raise PolicyError(source, "no 'pinsets' list: not a Chromium static pins file")
    raw_entries = doc.get("entries")
    if not isinstance(raw_entries, list):
        raise PolicyError(source, "no 'entries' list: not a Chromium static pins file")

    found = Path(pins_file) if pins_file is not None else _find_pins_file(source)
    timestamp: dt.datetime | None = None
    keys: dict[str, str | None] = {}
    error: str | None = None
    if found is None:
        error = f"no *{_PINS_SUFFIX} next to it: its key names cannot be resolved (pass pins_file=)"
    else:
        try:
            pins_data = found.read_bytes()
        except OSError as exc:
            raise PolicyError(str(found), f"cannot read: {exc.strerror or exc}") from None
        timestamp, keys = read_pins_file(pins_data, str(found))

    lines = _json_lines(text)
    warnings: list[Diagnostic] = []

    def line_of(name: str) -> int | None:
        seen = lines.get(name)
        return seen.pop(0) if seen else None

    pinsets: dict[str, tuple[tuple[Pin, ...], tuple[Pin, ...], str | None]] = {}
    for item in doc["pinsets"]:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            warnings.append(Diagnostic(Location(source), "a pinset without a name: skipped"))
            continue
        location = Location(source, line_of(item["name"]))
        resolved: list[tuple[Pin, ...]] = []
        missing: list[str] = []
        for field in ("static_spki_hashes", "bad_static_spki_hashes"):
            names = item.get(field) or []
            pins: list[Pin] = []
            for key in names if isinstance(names, list) else []:
                digest = keys.get(key) if isinstance(key, str) else None
                if digest is None:
                    missing.append(str(key))
                else:
                    pins.append(Pin("sha256", digest, str(key), location))
            resolved.append(tuple(pins))
        why = None
        if missing and found is not None:
            why = (
                f"pinset {item['name']!r} names keys that {found.name} does not define "
                f"(Chromium's generator refuses the list): {', '.join(missing)}"
            )
        pinsets[item["name"]] = (resolved[0], resolved[1], why)

    expires = timestamp + MAX_AGE - dt.timedelta(microseconds=1) if timestamp else None
    rules: list[Rule] = []
    for entry in raw_entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            continue
        line = line_of(entry["name"])
        pinset_name = entry.get("pins")
        if not pinset_name:
            continue  # an HSTS-only entry of the older combined file
        location = Location(source, line)
        host = normalize_host(entry["name"])
        if pinset_name not in pinsets:
            warnings.append(
                Diagnostic(location, f"{host}: pinset {pinset_name!r} does not exist: skipped")
            )
            continue
        good, bad, why = pinsets[pinset_name]
        subdomains = bool(
            entry.get("include_subdomains") or entry.get("include_subdomains_for_pinning")
        )
        rules.append(
            Rule(
                host=host,
                match=Match.SUBDOMAINS if subdomains else Match.EXACT,
                pin_sets=(PinSet(good),),
                location=location,
                bad_pins=bad,
                expires=expires,
                error=why,
                pattern=entry["name"],
            )
        )
    notes = NOTES
    if timestamp is not None:
        notes += (
            f"PinsListTimestamp {timestamp:%Y-%m-%d %H:%M:%S} UTC: enforced until "
            f"{timestamp + MAX_AGE:%Y-%m-%d %H:%M:%S} UTC",
        )
    return Policy(
        name=source,
        format="chromium",
        rules=tuple(rules),
        combine=Combine.MOST_SPECIFIC,
        error=error,
        error_location=Location(source) if error else None,
        warnings=tuple(warnings),
        notes=notes,
    )
