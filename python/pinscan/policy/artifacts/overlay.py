# SPDX-License-Identifier: Apache-2.0
"""The user's word on the pins an app holds without a host: a TOML overlay mapping them to hosts.

A pin string in code outside a ``CertificatePinner.Builder.add`` call site the bytecode spells
out, a pin in a React Native bundle or a Flutter library, a certificate bundled in an iOS app:
the artifact does not say which hosts these guard (compiled code decides), so a reader lists them
without hosts. Whoever knows the app says it in an overlay::

    [[map]]                       # every pin without a host found in this member of the app
    source = "classes2.dex"
    hosts = ["api.example.com"]
    match = "subdomains"          # exact (the default): the host alone; subdomains: and below

    [[map]]                       # these pins, wherever the app holds them without a host
    pins = ["sha256/7HIpactkIAq2Y49orFOOQKurWxmmSFZhBCoQYcRhJ3Y="]
    hosts = ["b.example.com"]

:func:`read_overlay` validates the file once, where it is read (a syntax error, an unknown key, a
bad host or pin is a :class:`PolicyError` naming the file and the key); :func:`apply` maps the
pins of the artifacts given and makes of them one policy per artifact, named
``app.apk!overlay``, in the format of the client the pins came from (``okhttp`` when they all
come from DEX, where OkHttp's ``CertificatePinner`` reads them; pinscan's ``toml`` otherwise),
its rules combined by union as several ``add()`` calls are. A pin or source the overlay names
that none of the artifacts holds without a host is an error too: a mapping that maps nothing is
a typo or an app that changed.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path

from pinscan.errors import InputError, PolicyError
from pinscan.policy.artifacts.model import Artifact, FoundPin
from pinscan.policy.model import (
    Combine,
    Location,
    Match,
    Pin,
    PinSet,
    Policy,
    Rule,
    canonical_digest,
    normalize_host,
)

_KEYS = ("source", "pins", "hosts", "match")
_MATCH = {"exact": Match.EXACT, "subdomains": Match.SUBDOMAINS}
_HOST = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*|[0-9a-f:.]+")
_PIN = re.compile(r"(sha256|sha1)/(.+)")
_DIGEST_SIZES = {"sha256": 44, "sha1": 28}
_HEADER = re.compile(r"(?m)^[ \t]*\[\[[ \t]*map[ \t]*\]\]")
_DEX = re.compile(r"(?:.*/)?classes\d*\.dex")


@dataclasses.dataclass(frozen=True)
class Mapping:
    """One ``[[map]]`` entry: the pins it names (empty: all of ``source``'s), the member it
    names (``None``: any), and the hosts they guard."""

    key: str
    """``map[N]``, 1-based, as errors name it."""
    line: int | None
    source: str | None
    pins: tuple[tuple[str, str], ...]
    """``(algorithm, canonical base64)``."""
    hosts: tuple[str, ...]
    match: Match

    def takes(self, found: FoundPin) -> bool:
        """Whether this entry maps ``found``: a pin without a host, in its source, one of its
        pins."""
        if found.hosts:
            return False
        if self.source is not None:
            member = found.source.partition("!")[2]
            if self.source not in (found.source, member):
                return False
        return not self.pins or (found.algorithm, found.pin) in self.pins


@dataclasses.dataclass(frozen=True)
class Overlay:
    """A validated overlay file."""

    path: str
    mappings: tuple[Mapping, ...]


def read_overlay(path: str | os.PathLike[str]) -> Overlay:
    """The overlay at ``path``, validated: :class:`PolicyError` (file, key, line) for what it
    cannot use, :class:`InputError` when it cannot be read."""
    name = str(path)
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as exc:
        raise InputError(name, exc.strerror or str(exc)) from None
    except UnicodeDecodeError:
        raise PolicyError(name, "not UTF-8 text: an overlay is TOML") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(name, f"not TOML: {exc}") from None
    for key in document:
        if key != "map":
            raise PolicyError(name, f"unknown key {key!r}: an overlay holds [[map]] tables")
    entries = document.get("map", [])
    if not isinstance(entries, list) or not entries:
        raise PolicyError(name, "no [[map]] table: nothing to map")
    lines = [text.count("\n", 0, m.start()) + 1 for m in _HEADER.finditer(text)]
    mappings = []
    for index, entry in enumerate(entries):
        line = lines[index] if index < len(lines) else None
        mappings.append(_mapping(entry, f"map[{index + 1}]", line, name))
    return Overlay(name, tuple(mappings))


def _mapping(entry: object, key: str, line: int | None, name: str) -> Mapping:
    def invalid(what: str) -> PolicyError:
        return PolicyError(name, f"{key}{what}", line)

    if not isinstance(entry, dict):
        raise invalid(": must be a table")
    for field in entry:
        if field not in _KEYS:
            raise invalid(f": unknown key {field!r} (one of: {', '.join(_KEYS)})")
    source = entry.get("source")
    if source is not None and (not isinstance(source, str) or not source):
        raise invalid(f".source = {source!r}: the member of the app, as `pinscan pins` names it")
    pins = entry.get("pins", [])
    if not isinstance(pins, list) or ("pins" in entry and not pins):
        raise invalid(".pins: a list of 'sha256/<base64>' pins")
    if source is None and not pins:
        raise invalid(": names neither a source nor pins: say which pins it maps")
    parsed = []
    for value in pins:
        found = _PIN.fullmatch(value) if isinstance(value, str) else None
        try:
            if found is None:
                raise ValueError("not 'sha256/<base64>' or 'sha1/<base64>'")
            digest = canonical_digest(found[2])
            if len(digest) != _DIGEST_SIZES[found[1]]:
                raise ValueError(f"not a {found[1]} digest (wrong length)")
        except ValueError as exc:
            raise invalid(f".pins: {value!r}: {exc}") from None
        parsed.append((found[1], digest))
    hosts = entry.get("hosts")
    if not isinstance(hosts, list) or not hosts:
        raise invalid(".hosts: a list of the host names these pins guard")
    for host in hosts:
        if not isinstance(host, str) or not _HOST.fullmatch(normalize_host(host)):
            raise invalid(f".hosts: {host!r} is not a host name (use match for subdomains)")
    match = entry.get("match", "exact")
    if not isinstance(match, str) or match not in _MATCH:
        raise invalid(f".match = {match!r}: one of {', '.join(_MATCH)}")
    return Mapping(
        key,
        line,
        source,
        tuple(parsed),
        tuple(dict.fromkeys(normalize_host(h) for h in hosts)),
        _MATCH[match],
    )


def apply(overlays: Sequence[Overlay], artifacts: Sequence[Artifact]) -> None:
    """Maps the pins without a host of ``artifacts`` as ``overlays`` say: each artifact gets its
    policy ``<artifact>!overlay`` and its mapped pins their hosts. :class:`PolicyError` naming
    the entry when an entry maps no pin of any of them."""
    for overlay in overlays:
        for mapping in overlay.mappings:
            held = {
                (found.algorithm, found.pin)
                for artifact in artifacts
                for found in artifact.pins
                if mapping.takes(found)
            }
            where = f" in {mapping.source}" if mapping.source else ""
            missing = [p for p in mapping.pins if p not in held]
            if missing:
                algorithm, digest = missing[0]
                raise PolicyError(
                    overlay.path,
                    f"{mapping.key}.pins: {algorithm}/{digest} is not a pin without a host"
                    f"{where} in {_names(artifacts)} (`pinscan pins` lists them)",
                    mapping.line,
                )
            if not held:
                raise PolicyError(
                    overlay.path,
                    f"{mapping.key}.source: no pin without a host in {mapping.source} of "
                    f"{_names(artifacts)} (`pinscan pins` lists them)",
                    mapping.line,
                )
    for artifact in artifacts:
        _apply(overlays, artifact)


def _names(artifacts: Sequence[Artifact]) -> str:
    return ", ".join(a.path for a in artifacts) or "no app (give one with --policy)"


def _apply(overlays: Sequence[Overlay], artifact: Artifact) -> None:
    rules: list[Rule] = []
    mapped: dict[int, list[Mapping]] = {}
    for overlay in overlays:
        for mapping in overlay.mappings:
            taken = [i for i, found in enumerate(artifact.pins) if mapping.takes(found)]
            if not taken:
                continue
            chosen: dict[tuple[str, str], Pin] = {}
            for i in taken:
                found = artifact.pins[i]
                mapped.setdefault(i, []).append(mapping)
                # The pin's location is where the app holds it, for findings to point there.
                pin = Pin(found.algorithm, found.pin, found.label, Location(found.source))
                chosen.setdefault((found.algorithm, found.pin), pin)
            location = Location(overlay.path, mapping.line)
            rules.extend(
                Rule(
                    host,
                    mapping.match,
                    (PinSet(tuple(chosen.values())),),
                    location,
                    pattern=f"**.{host}" if mapping.match is Match.SUBDOMAINS else host,
                )
                for host in mapping.hosts
            )
    if not rules:
        return
    paths = ", ".join(o.path for o in overlays)
    for i, mappings in mapped.items():
        found = artifact.pins[i]
        said = f"hosts from {paths} ({', '.join(m.key for m in mappings)})"
        artifact.pins[i] = dataclasses.replace(
            found,
            hosts=tuple(dict.fromkeys(h for m in mappings for h in m.hosts)),
            note=f"{said}; in the app alone: {found.note}" if found.note else said,
        )
    dex = all(_DEX.fullmatch(artifact.pins[i].source.rsplit("!", 1)[-1]) for i in mapped)
    artifact.policies.append(
        Policy(
            f"{artifact.path}!overlay",
            "okhttp" if dex else "toml",
            tuple(rules),
            Combine.UNION,
            notes=(
                f"pins the app holds without a host, mapped to hosts by {paths}: the app's "
                "code decides which hosts they guard, the overlay says which; rules for one "
                "host are united, as CertificatePinner unites add() calls",
            ),
        )
    )


__all__ = ["Mapping", "Overlay", "apply", "read_overlay"]
