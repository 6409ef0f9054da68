# SPDX-License-Identifier: Apache-2.0
"""Android Network Security Configuration (``network_security_config.xml``): reader and writer.

:func:`parse` is Android's own view (AOSP ``XmlConfigSource``, ``NetworkSecurityConfig``,
``ApplicationConfig``): any structural mistake makes the platform refuse the whole file, nested
``domain-config`` elements inherit their parent's pin-set and trust anchors (replace, never
merge), and a config without pins shadows broader configs for its names. TrustKit-Android reads
the same file its own way: :mod:`.trustkit_android`.

:func:`write` renders a suggestion as a complete ``network_security_config.xml``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

from pinscan.certs.keys import read_certificates, spki_pin
from pinscan.errors import InputError, PolicyError
from pinscan.policy._java_values import JavaDate, aapt2_bool, android_base64, java_date, java_trim
from pinscan.policy._network_security_config import (
    EXPIRY_NOTE,
    ROOT,
    ConfigReader,
    build_errors,
    expires_at,
    read_config,
    sha256_pin,
)
from pinscan.policy._xml import CompiledValue, Node, leading_text, read_xml
from pinscan.policy.model import (
    Diagnostic,
    Location,
    Match,
    Pin,
    PinSet,
    Policy,
    Rule,
    Suggestion,
    TrustAnchor,
    comment_text,
)

_PLATFORM_DEFAULT_ANCHORS = (("system", False),)


def _is_reference(value: str) -> bool:
    """Whether ``src`` is a resource (``getAttributeResourceValue`` gives an id): a typed
    reference; ``\\@raw/x`` is a string aapt2 left as written, which Android refuses."""
    if isinstance(value, CompiledValue):
        return value.kind in ("reference", "null")
    return value.startswith("@")


def _pin_problem(text: str) -> str:
    raw = android_base64(text)
    if raw is None:
        return "Invalid pin digest"
    return f"digest length {len(raw)} does not match expected length for SHA-256 of 32"


@dataclass
class _PinSetEntry:
    pins: tuple[Pin, ...]
    expiry: JavaDate | None
    line: int


@dataclass
class _Config:
    """One parsed ``base-config``/``domain-config``/``debug-overrides`` (a Builder in AOSP)."""

    line: int
    parent: _Config | None = None
    domains: list[tuple[str, bool, int]] = field(default_factory=list)
    pin_set: _PinSetEntry | None = None
    anchors: list[tuple[str, bool]] | None = None

    def effective_pin_set(self) -> _PinSetEntry | None:
        config: _Config | None = self
        while config is not None:
            if config.pin_set is not None:
                return config.pin_set
            config = config.parent
        return None

    def effective_anchors(self, base: _Config | None) -> list[tuple[str, bool]]:
        config: _Config | None = self
        while config is not None:
            if config.anchors is not None:
                return config.anchors
            config = config.parent
        if base is not None and base.anchors is not None:
            return base.anchors
        return list(_PLATFORM_DEFAULT_ANCHORS)


class _AndroidReader(ConfigReader):
    """Walks the tree in document order as ``XmlConfigSource`` does, recording every
    ``ParserException`` (the first is the one Android throws) instead of stopping."""

    def __init__(self, source: str, debug: bool) -> None:
        super().__init__(source)
        self.debug = debug
        self.seen: set[str] = set()
        self.configs: list[_Config] = []
        self.base: _Config | None = None
        self.debug_config: _Config | None = None
        self.debug_seen = False

    def read(self, root: Node) -> None:
        for line, message in build_errors(root):
            self.fail(line, message)
        for node in root.children:
            if node.name == "base-config":
                if self.base is not None:
                    self.fail(node.line, "Only one base-config allowed")
                    continue
                self.base = self.entry(node, "base-config", None)[0]
            elif node.name == "domain-config":
                self.configs += self.entry(node, "domain-config", None)
            elif node.name == "debug-overrides":
                if self.debug_seen:
                    self.fail(node.line, "Only one debug-overrides allowed")
                    continue
                self.debug_seen = True
                if self.debug:
                    self.debug_config = self.entry(node, "debug-overrides", None)[0]

    def entry(self, node: Node, kind: str, parent: _Config | None) -> list[_Config]:
        """``parseConfigEntry``: this config first, then its nested configs."""
        config = _Config(node.line, parent)
        found = [config]
        if kind == "domain-config" and "enforcePinning" in node.attrs:
            self.warn(
                node.line,
                "Android ignores enforcePinning on <domain-config> (TrustKit reads it only on "
                "<trustkit-config>)",
            )
        pin_set_seen = False
        for child in node.children:
            if child.name == "domain":
                if kind != "domain-config":
                    self.fail(child.line, f"domain element not allowed in {kind}")
                    continue
                self.domain(child, config)
            elif child.name == "trust-anchors":
                if config.anchors is not None:
                    self.fail(child.line, "Multiple trust-anchor elements not allowed")
                    continue
                config.anchors = self.anchors(child, kind == "debug-overrides")
            elif child.name == "pin-set":
                if kind != "domain-config":
                    self.fail(child.line, f"pin-set element not allowed in {kind}")
                    continue
                if pin_set_seen:
                    self.fail(child.line, "Multiple pin-set elements not allowed")
                    continue
                pin_set_seen = True
                config.pin_set = self.pin_set(child)
            elif child.name == "domain-config":
                if kind != "domain-config":
                    self.fail(child.line, f"Nested domain-config not allowed in {kind}")
                    continue
                found += self.entry(child, kind, config)
        if kind == "domain-config" and not config.domains:
            self.fail(node.end_line or node.line, "No domain elements in domain-config")
        return found

    def domain(self, node: Node, config: _Config) -> None:
        include, understood = aapt2_bool(node.attrs.get("includeSubdomains"), False)
        if not understood:
            self.warn(
                node.line,
                f"includeSubdomains={node.attrs['includeSubdomains']!r} is not a boolean to "
                "aapt2: Android reads the default, false",
            )
        text = leading_text(node)
        name = java_trim(text or "").lower()
        if not name:  # aapt2 keeps no whitespace-only text: next() is END_TAG, not TEXT
            self.fail(node.line, "Domain name missing")
            return
        if len(node.content) > 1:
            self.fail(node.line, "domain contains additional elements")
            if all(isinstance(item, str) for item in node.content):
                # Text split by a comment: the names meant get the verdict error.
                name = java_trim("".join(node.content)).lower()  # type: ignore[arg-type]
                if name not in self.seen:
                    self.seen.add(name)
                    config.domains.append((name, include, node.line))
            return
        if name in self.seen:
            self.fail(node.line, f"{name} has already been specified")
            return
        self.seen.add(name)
        config.domains.append((name, include, node.line))

    def anchors(self, node: Node, default_override: bool) -> list[tuple[str, bool]]:
        found = []
        for child in node.children:
            if child.name != "certificates":
                continue
            override, understood = aapt2_bool(child.attrs.get("overridePins"), default_override)
            if not understood:
                self.warn(
                    child.line,
                    f"overridePins={child.attrs['overridePins']!r} is not a boolean to aapt2: "
                    f"Android reads the default, {str(default_override).lower()}",
                )
            src = child.attrs.get("src")
            if src is None:
                self.fail(child.line, "certificates element missing src attribute")
            elif src in ("system", "user", "wfa") or _is_reference(src):
                found.append((src, override))
            else:
                self.fail(
                    child.line,
                    "Unknown certificates src. Should be one of system|user|@resourceVal",
                )
        if not default_override and not any(c.name == "certificates" for c in node.children):
            self.warn(
                node.line,
                "empty <trust-anchors>: Android trusts no root for these names, every connection "
                "to them fails (pinscan judges their chains as if the anchors were the "
                "platform's)",
            )
        return found

    def pin_set(self, node: Node) -> _PinSetEntry:
        expiry = None
        if "expiration" in node.attrs:
            expiry = java_date(node.attrs["expiration"])
            if expiry is None:
                self.fail(node.line, "Invalid expiration date in pin-set")
        pins: dict[str, Pin] = {}
        rejected = False
        for child in node.children:
            if child.name != "pin":
                continue
            digest = child.attrs.get("digest")
            if digest is None or digest.upper() != "SHA-256":
                self.fail(child.line, f"Unsupported pin digest algorithm: {digest}")
                rejected = True
                continue
            text = leading_text(child)
            if text is None:  # next() is END_TAG or START_TAG where TEXT is required
                self.fail(child.line, "Missing pin digest")
                rejected = True
                continue
            pin = sha256_pin(java_trim(text), child.line, self.source)
            if pin is None:
                self.fail(child.line, _pin_problem(java_trim(text)))
                rejected = True
                continue
            if len(child.content) > 1:
                self.fail(child.line, "pin contains additional elements")
                rejected = True
                continue
            pins.setdefault(pin.digest, pin)  # an ArraySet: the same digest counts once
        # After a rejected pin the file fails anyway, and a count of the pins left would mislead.
        if not rejected and not pins:
            self.warn(node.line, "empty pin-set: Android does not pin these names")
        elif not rejected and len(pins) == 1:
            self.warn(node.line, "a single pin and no backup pin (Android lint MissingBackupPin)")
        return _PinSetEntry(tuple(pins.values()), expiry, node.line)

    def rules(self) -> list[Rule]:
        # A debuggable build adds the debug-overrides anchors to every config's (AOSP
        # XmlConfigSource.addDebugAnchorsIfNeeded, on the platform default, the base config and
        # each config with anchors of its own: inherited by the others).
        debug_anchors: list[tuple[str, bool]] = []
        if self.debug_config is not None and self.debug_config.anchors:
            debug_anchors = self.debug_config.anchors
        rules = []
        for config in self.configs:
            pin_set = config.effective_pin_set()
            anchors = config.effective_anchors(self.base) + debug_anchors
            overrides = {src for src, ov in anchors if ov}
            for name, include, line in config.domains:
                if name.endswith("."):
                    self.warn(
                        line,
                        f"{name}: Android strips the trailing dot from the name it looks up, so "
                        "this domain never matches",
                    )
                    continue
                pinned = pin_set is not None and bool(pin_set.pins)
                expiry = pin_set.expiry if pin_set is not None else None
                rules.append(
                    Rule(
                        host=name,
                        match=Match.SUBDOMAINS if include else Match.EXACT,
                        # No pins: Android does not pin these names, and the config still
                        # shadows any broader one; a carve-out says exactly that.
                        pin_sets=(PinSet(pin_set.pins),) if pinned and pin_set else (),
                        location=Location(self.source, line),
                        expires=expires_at(expiry),
                        exclude=not pinned,
                        override_pins=frozenset(overrides),
                        anchors=tuple(map(TrustAnchor, dict.fromkeys(s for s, _ in anchors))),
                        pattern=name,
                    )
                )
        return rules


def parse(data: bytes, source: str, *, debug: bool = False) -> Policy:
    """Android's view of a network security config. ``debug`` reads ``<debug-overrides>`` as a
    debuggable build does; a release build skips it. A file in a source tree's ``res/xml/``
    has its ``@raw`` anchors resolved in ``res/raw/`` beside it (:func:`raw_anchors`)."""
    policy = parse_tree(read_config(data, source), source, debug=debug)
    return raw_anchors(policy, Path(source))


def _raw_directories(config: Path) -> list[Path]:
    """``res/raw/`` and its qualified variants (``raw-v24``) beside the ``res/xml*/`` holding
    ``config``, the default first; none when ``config`` is not in a resource tree."""
    folder = config.parent
    if folder.name.split("-")[0] != "xml" or folder.parent.name != "res":
        return []
    try:
        found = [d for d in folder.parent.iterdir() if d.name.split("-")[0] == "raw"]
    except OSError:
        return []
    return sorted((d for d in found if d.is_dir()), key=lambda d: (d.name != "raw", d.name))


def raw_anchors(policy: Policy, config: Path) -> Policy:
    """``<certificates src="@raw/name">`` resolved as the app build resolves it: the file of
    ``res/raw/`` whose name up to its first dot is ``name`` (aapt2's resource name, whatever the
    extension), its certificates' keys the rule's anchors (``ResourceCertificateSource`` reads
    every certificate, PEM or DER). No such file: ``aapt2 link`` fails ("resource raw/name not
    found"), the app does not build: the policy's error. A config outside a ``res/`` tree is
    left as it is."""
    directories = _raw_directories(config)
    if not directories:
        return policy
    resolved: dict[str, TrustAnchor | None] = {}
    problems: list[Diagnostic] = []

    def resolve(anchor: TrustAnchor, location: Location) -> TrustAnchor:
        name = anchor.source.removeprefix("@raw/")
        if not anchor.source.startswith("@raw/") or "/" in name or ":" in name:
            return anchor
        if anchor.source not in resolved:
            files = [
                f for d in directories for f in sorted(d.iterdir()) if f.name.split(".")[0] == name
            ]
            if not files:
                resolved[anchor.source] = None
                problems.append(
                    Diagnostic(
                        location,
                        f"{anchor.source}: no res/raw/{name}.* beside res/xml/: aapt2 link fails "
                        f"(resource raw/{name} not found), the app does not build",
                    )
                )
            else:
                pins = []
                try:
                    for der in read_certificates(files[0].read_bytes()):
                        digest = spki_pin(der)
                        pins.append(Pin("sha256", digest, f"sha256/{digest}"))
                except (InputError, OSError) as exc:
                    problems.append(
                        Diagnostic(location, f"{anchor.source}: {files[0]}: not read ({exc})")
                    )
                resolved[anchor.source] = TrustAnchor(anchor.source, tuple(pins), str(files[0]))
        return resolved[anchor.source] or anchor

    rules = tuple(
        dataclasses.replace(rule, anchors=tuple(resolve(a, rule.location) for a in rule.anchors))
        for rule in policy.rules
    )
    missing = [d for d in problems if "does not build" in d.message]
    warnings = [d for d in problems if d not in missing]
    policy = dataclasses.replace(policy, rules=rules, warnings=(*policy.warnings, *warnings))
    if missing and policy.error is None:
        first, *later = missing
        later_warnings = tuple(
            Diagnostic(d.location, f"Android would also reject: {d.message}") for d in later
        )
        policy = dataclasses.replace(
            policy,
            error=first.message,
            error_location=first.location,
            warnings=(*policy.warnings, *later_warnings),
        )
    return policy


def parse_tree(root: Node, source: str, *, debug: bool = False) -> Policy:
    """:func:`parse` on a ``<network-security-config>`` element already read: the one an app
    ships compiled (:mod:`.artifacts.android`)."""
    reader = _AndroidReader(source, debug)
    reader.read(root)
    rules = reader.rules()
    notes = []
    if any(c.pin_set is not None and c.pin_set.expiry is not None for c in reader.configs):
        notes.append(EXPIRY_NOTE)
    if reader.debug_seen and not debug:
        notes.append("release build: <debug-overrides> ignored (debuggable builds read it)")
    if debug and not reader.debug_seen:
        notes.append(
            "debuggable build: Android would also read debug-overrides from the "
            "<name>_debug.xml resource, which pinscan cannot see"
        )
    return reader.policy("android", "Android", rules, notes)


def sniff(data: bytes) -> bool:
    """Whether ``data`` is a network security config. A file that names the root but does not
    parse is still claimed, so that reading it reports the XML error rather than "unknown
    format"."""
    if b"network-security-config" not in data:
        return False
    try:
        return read_xml(data, "<sniff>").name == ROOT
    except PolicyError:
        return b"<network-security-config" in data


def write(suggestion: Suggestion) -> str:
    """A complete ``res/xml/network_security_config.xml`` pinning ``suggestion.domain``."""
    if not suggestion.pins:
        raise ValueError("an Android pin-set needs at least one pin (an empty one pins nothing)")
    for suggested in suggestion.pins:
        if suggested.pin.algorithm != "sha256":
            raise ValueError(f"Android pins SHA-256 only, not {suggested.pin.algorithm}")
    lines = ['<?xml version="1.0" encoding="utf-8"?>', "<!--"]
    lines += [f"  {comment_text(line)}" for line in suggestion.header]
    lines += [
        "  Reference it from AndroidManifest.xml:",
        '  <application android:networkSecurityConfig="@xml/network_security_config">',
        "-->",
        "<network-security-config>",
        "    <domain-config>",
    ]
    include = "true" if suggestion.include_subdomains else "false"
    lines.append(
        f'        <domain includeSubdomains="{include}">{escape(suggestion.domain)}</domain>'
    )
    if not suggestion.enforce:
        lines.append("        <!-- Android has no report-only mode: these pins are enforced. -->")
    if suggestion.expires is not None:
        day = suggestion.expires.isoformat()
        lines.append(
            f"        <!-- Android stops enforcing these pins at 00:00 on {day} in the device's "
            "time zone. -->"
        )
        lines.append(f'        <pin-set expiration="{day}">')
    else:
        lines.append("        <pin-set>")
    for suggested in suggestion.pins:
        about = comment_text(f"{suggested.role}: {suggested.comment}")
        lines.append(f"            <!-- {about} -->")
        lines.append(f'            <pin digest="SHA-256">{suggested.pin.digest}</pin>')
    lines += ["        </pin-set>", "    </domain-config>", "</network-security-config>", ""]
    return "\n".join(lines)


__all__ = ["parse", "parse_tree", "raw_anchors", "sniff", "write"]
