# SPDX-License-Identifier: Apache-2.0
"""Android Network Security Configuration (``network_security_config.xml``) and TrustKit-Android.

Two readers of one file, because the two clients read it differently:

* :func:`parse` is Android's own view (AOSP ``XmlConfigSource``, ``NetworkSecurityConfig``,
  ``ApplicationConfig``): any structural mistake makes the platform refuse the whole file, nested
  ``domain-config`` elements inherit their parent's pin-set and trust anchors (replace, never
  merge), and a config without pins shadows broader configs for its names.
* :func:`parse_trustkit` is TrustKit-Android's view (``TrustKitConfigurationParser``,
  ``DomainPinningPolicy``): report-only unless ``<trustkit-config enforcePinning="true">``, at
  least two pins when enforcing, the last ``<domain>`` of a config only, configs without pins
  ignored.

:func:`write` renders a suggestion as a complete ``network_security_config.xml``.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from xml.parsers import expat
from xml.sax.saxutils import escape

from pinscan.errors import PolicyError
from pinscan.policy.model import (
    Combine,
    Diagnostic,
    Location,
    Match,
    Pin,
    PinSet,
    Policy,
    Rule,
    Suggestion,
    comment_text,
    utc_midnight,
)

ROOT = "network-security-config"
# Deeper files are refused rather than walked: no real config nests more than a few levels.
_MAX_DEPTH = 200
_TZ_NOTE = (
    "pin-set expiration: Android (and TrustKit-Android) stop enforcing at 00:00 of that date in "
    "the device's time zone; pinscan uses 00:00 UTC"
)
_PLATFORM_DEFAULT_ANCHORS = (("system", False),)


# --- XML -------------------------------------------------------------------------------------


@dataclass
class _Node:
    """An element as the pull parsers see it: local name, un-namespaced attributes, and content
    (text runs and child elements in order; comments dropped as aapt2 drops them)."""

    name: str
    attrs: dict[str, str]
    line: int
    content: list[str | _Node] = field(default_factory=list)
    end_line: int = 0

    @property
    def children(self) -> list[_Node]:
        return [item for item in self.content if isinstance(item, _Node)]


def _read_xml(data: bytes, source: str) -> _Node:
    """The document tree, with line numbers. Entities and DTDs are refused (defusedxml's rules),
    so hostile input cannot expand or reach outside the file."""
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.buffer_text = True
    stack: list[_Node] = []
    roots: list[_Node] = []

    def refuse(what: str) -> None:
        raise PolicyError(source, f"{what} not allowed in a policy file", parser.CurrentLineNumber)

    def start(name: str, attrs: dict[str, str]) -> None:
        if len(stack) >= _MAX_DEPTH:
            refuse(f"nesting deeper than {_MAX_DEPTH} elements")
        plain = {key: value for key, value in attrs.items() if " " not in key}
        node = _Node(name.rpartition(" ")[2], plain, parser.CurrentLineNumber)
        if stack:
            stack[-1].content.append(node)
        else:
            roots.append(node)
        stack.append(node)

    def end(_name: str) -> None:
        stack.pop().end_line = parser.CurrentLineNumber

    def text(chunk: str) -> None:
        if stack:
            content = stack[-1].content
            if content and isinstance(content[-1], str):
                content[-1] += chunk
            else:
                content.append(chunk)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    parser.StartDoctypeDeclHandler = lambda *_: refuse("a DTD is")
    parser.EntityDeclHandler = lambda *_: refuse("an entity declaration is")
    parser.UnparsedEntityDeclHandler = lambda *_: refuse("an entity declaration is")
    parser.ExternalEntityRefHandler = lambda *_: refuse("an external entity is")  # type: ignore[assignment,return-value]
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise PolicyError(
            source, f"not well-formed XML: {expat.errors.messages[exc.code]}", exc.lineno
        ) from None
    except (ValueError, LookupError) as exc:  # an encoding expat or Python cannot decode
        raise PolicyError(source, f"not readable XML: {exc}") from None
    return roots[0]


def _document(data: bytes, source: str) -> _Node:
    root = _read_xml(data, source)
    if root.name != ROOT:
        raise PolicyError(source, f"not a <{ROOT}> document (root element <{root.name}>)", 1)
    return root


def _java_trim(text: str) -> str:
    """``String.trim()``: strips code points up to U+0020, not Unicode spaces."""
    start, end = 0, len(text)
    while start < end and text[start] <= " ":
        start += 1
    while end > start and text[end - 1] <= " ":
        end -= 1
    return text[start:end]


def _only_text(node: _Node) -> str | None:
    """The element's text when it holds text only (``next() == TEXT`` then ``END_TAG``); ``""``
    for an empty element; None when it holds an element."""
    if not node.content:
        return ""
    if len(node.content) == 1 and isinstance(node.content[0], str):
        return node.content[0]
    return None


def _leading_text(node: _Node) -> str | None:
    """The text right after the start tag (``next() == TEXT``), None when there is none."""
    if node.content and isinstance(node.content[0], str):
        return node.content[0]
    return None


def _android_bool(value: str | None, default: bool) -> tuple[bool, bool]:
    """``getAttributeBooleanValue`` on the compiled resource: aapt2 compiles true/TRUE/True and
    false/FALSE/False (trimmed) to booleans; anything else stays a string and reads as the
    default. Returns (value, understood)."""
    if value is None:
        return default, True
    word = value.strip()
    if word in ("true", "TRUE", "True"):
        return True, True
    if word in ("false", "FALSE", "False"):
        return False, True
    return default, False


# --- values both clients decode the same way -------------------------------------------------

_B64 = {
    c: i for i, c in enumerate(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
}


def android_base64(text: str) -> bytes | None:
    """``android.util.Base64.decode(text, DEFAULT)``: bytes outside the alphabet are skipped,
    padding is optional but must be right when present. None where Android throws."""
    state, value, out = 0, 0, bytearray()
    for byte in text.encode("utf-8", "surrogatepass"):
        digit = _B64.get(byte, -2 if byte == ord("=") else -1)
        if digit == -1:
            continue
        if state in (0, 1):
            if digit < 0:
                return None
            value, state = (value << 6) | digit, state + 1
        elif state == 2:
            if digit >= 0:
                value, state = (value << 6) | digit, 3
            else:
                out.append((value >> 4) & 0xFF)
                state = 4
        elif state == 3:
            if digit >= 0:
                value = (value << 6) | digit
                out += bytes(((value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF))
                state = 0
            else:
                out += bytes(((value >> 10) & 0xFF, (value >> 2) & 0xFF))
                state = 5
        elif state == 4 and digit == -2:
            state = 5
        else:  # data after padding, or one "=" where two are needed
            return None
    if state in (1, 4):
        return None
    if state == 2:
        out.append((value >> 4) & 0xFF)
    elif state == 3:
        out += bytes(((value >> 10) & 0xFF, (value >> 2) & 0xFF))
    return bytes(out)


_DATE = re.compile(r"[ \t]*([0-9]+)-[ \t]*([0-9]+)-[ \t]*([0-9]+)")


@dataclass(frozen=True)
class _Expiry:
    day: dt.date | None
    """None: a year past 9999, which is never reached."""


def java_date(text: str) -> _Expiry | None:
    """``SimpleDateFormat("yyyy-MM-dd")`` with ``setLenient(false)``: any digit count per field,
    text after the day ignored, impossible dates refused. None where Java throws."""
    found = _DATE.match(text)
    if not found:
        return None
    # Leading zeros stripped first: int() of thousands of digits raises.
    year_digits, month_digits, day_digits = (part.lstrip("0") or "0" for part in found.groups())
    if len(month_digits) > 2 or len(day_digits) > 2:
        return None
    month, day = int(month_digits), int(day_digits)
    # The Gregorian calendar repeats every 400 years: a year past 9999 is checked through its
    # twin in 2000-2399, and is never reached.
    far = len(year_digits) > 4
    year = int(year_digits[-4:]) % 400 + 2000 if far else int(year_digits)
    try:
        day_of = dt.date(year, month, day)
    except ValueError:
        return None
    return _Expiry(None if far else day_of)


def _pin(text: str, line: int, source: str) -> Pin | None:
    raw = android_base64(text)
    if raw is None or len(raw) != 32:
        return None
    return Pin("sha256", base64.b64encode(raw).decode(), text, Location(source, line))


def _pin_problem(text: str) -> str:
    raw = android_base64(text)
    if raw is None:
        return "Invalid pin digest"
    return f"digest length {len(raw)} does not match expected length for SHA-256 of 32"


# --- Android ---------------------------------------------------------------------------------


@dataclass
class _PinSetEntry:
    pins: tuple[Pin, ...]
    expiry: _Expiry | None
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


class _AndroidReader:
    """Walks the tree in document order as ``XmlConfigSource`` does, recording every
    ``ParserException`` (the first is the one Android throws) instead of stopping."""

    def __init__(self, source: str, debug: bool) -> None:
        self.source = source
        self.debug = debug
        self.errors: list[Diagnostic] = []
        self.warnings: list[Diagnostic] = []
        self.seen: set[str] = set()
        self.configs: list[_Config] = []
        self.base: _Config | None = None
        self.debug_config: _Config | None = None
        self.debug_seen = False

    def fail(self, line: int, message: str) -> None:
        self.errors.append(Diagnostic(Location(self.source, line), message))

    def warn(self, line: int, message: str) -> None:
        self.warnings.append(Diagnostic(Location(self.source, line), message))

    def read(self, root: _Node) -> None:
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

    def entry(self, node: _Node, kind: str, parent: _Config | None) -> list[_Config]:
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

    def domain(self, node: _Node, config: _Config) -> None:
        include, understood = _android_bool(node.attrs.get("includeSubdomains"), False)
        if not understood:
            self.warn(
                node.line,
                f"includeSubdomains={node.attrs['includeSubdomains']!r} is not a boolean to "
                "aapt2: Android reads the default, false",
            )
        text = _leading_text(node)
        name = _java_trim(text or "").lower()
        if not name:  # aapt2 keeps no whitespace-only text: next() is END_TAG, not TEXT
            self.fail(node.line, "Domain name missing")
            return
        if len(node.content) > 1:
            self.fail(node.line, "domain contains additional elements")
            return
        if name in self.seen:
            self.fail(node.line, f"{name} has already been specified")
            return
        self.seen.add(name)
        config.domains.append((name, include, node.line))

    def anchors(self, node: _Node, default_override: bool) -> list[tuple[str, bool]]:
        found = []
        for child in node.children:
            if child.name != "certificates":
                continue
            override, understood = _android_bool(child.attrs.get("overridePins"), default_override)
            if not understood:
                self.warn(
                    child.line,
                    f"overridePins={child.attrs['overridePins']!r} is not a boolean to aapt2: "
                    f"Android reads the default, {str(default_override).lower()}",
                )
            src = child.attrs.get("src")
            if src is None:
                self.fail(child.line, "certificates element missing src attribute")
            elif src in ("system", "user", "wfa") or src.startswith("@"):
                found.append((src, override))
            else:
                self.fail(
                    child.line,
                    "Unknown certificates src. Should be one of system|user|@resourceVal",
                )
        return found

    def pin_set(self, node: _Node) -> _PinSetEntry:
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
            text = _leading_text(child)
            if text is None:  # next() is END_TAG or START_TAG where TEXT is required
                self.fail(child.line, "Missing pin digest")
                rejected = True
                continue
            pin = _pin(_java_trim(text), child.line, self.source)
            if pin is None:
                self.fail(child.line, _pin_problem(_java_trim(text)))
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
        debug_overrides: set[str] = set()
        if self.debug_config is not None and self.debug_config.anchors:
            debug_overrides = {src for src, override in self.debug_config.anchors if override}
        rules = []
        for config in self.configs:
            pin_set = config.effective_pin_set()
            overrides = {src for src, ov in config.effective_anchors(self.base) if ov}
            overrides |= debug_overrides
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
                        expires=utc_midnight(expiry.day) if expiry and expiry.day else None,
                        exclude=not pinned,
                        override_pins=frozenset(overrides),
                        pattern=name,
                    )
                )
        return rules


def parse(data: bytes, source: str, *, debug: bool = False) -> Policy:
    """Android's view of a network security config. ``debug`` reads ``<debug-overrides>`` as a
    debuggable build does; a release build skips it."""
    root = _document(data, source)
    reader = _AndroidReader(source, debug)
    reader.read(root)
    rules = reader.rules()
    notes = []
    if any(c.pin_set is not None and c.pin_set.expiry is not None for c in reader.configs):
        notes.append(_TZ_NOTE)
    if reader.debug_seen and not debug:
        notes.append("release build: <debug-overrides> ignored (debuggable builds read it)")
    if debug and not reader.debug_seen:
        notes.append(
            "debuggable build: Android would also read debug-overrides from the "
            "<name>_debug.xml resource, which pinscan cannot see"
        )
    return _policy(source, "android", "Android", rules, reader, notes)


# --- TrustKit-Android ------------------------------------------------------------------------


@dataclass
class _TrustKitBuilder:
    """``DomainPinningPolicy.Builder``: None means "not set here, inherit"."""

    line: int
    parent: _TrustKitBuilder | None
    hostname: str | None = None
    host_line: int = 0
    include: bool | None = None
    pins: dict[str, int] | None = None
    """Raw pin strings (a HashSet<String>) and their lines."""
    expiry: _Expiry | None = None
    enforce: bool | None = None

    def resolve(self) -> None:
        """``build()``: parents are built first, so their fields already hold inherited values."""
        parent = self.parent
        if parent is None:
            return
        if self.include is None:
            self.include = parent.include
        if self.pins is None:
            self.pins = parent.pins
        if self.expiry is None:
            self.expiry = parent.expiry
        if self.enforce is None:
            self.enforce = parent.enforce


def _java_parse_boolean(value: str) -> bool:
    return value.lower() == "true"


def _valid_domain(name: str | None) -> bool:
    """Apache commons ``DomainValidator.isValid`` (no local names), minus its TLD list: dotted
    LDH labels, an alphabetic (or ``xn--``) top label. Whitespace and IP addresses fail."""
    if not name:
        return False
    try:
        ascii_name = name if name.isascii() else name.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    labels = ascii_name.split(".")
    if len(ascii_name) > 253 or len(labels) < 2:
        return False
    for label in labels:
        if not 1 <= len(label) <= 63 or not label.isascii():
            return False
        if not (label[0].isalnum() and label[-1].isalnum()):
            return False
        if not all(c.isalnum() or c == "-" for c in label):
            return False
    top = labels[-1]
    return top.isalpha() or top.lower().startswith("xn--")


class _TrustKitReader:
    """``TrustKitConfigurationParser``: scans every start tag, not only the root's children."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.errors: list[Diagnostic] = []
        self.warnings: list[Diagnostic] = []
        self.builders: list[_TrustKitBuilder] = []

    def fail(self, line: int, message: str) -> None:
        self.errors.append(Diagnostic(Location(self.source, line), message))

    def read(self, root: _Node) -> None:
        stack = [root]
        while stack:
            node = stack.pop()
            if node.name == "domain-config":
                self.domain_config(node, None)
            elif node.name != "debug-overrides":
                stack.extend(reversed(node.children))

    def domain_config(self, node: _Node, parent: _TrustKitBuilder | None) -> None:
        builder = _TrustKitBuilder(node.line, parent)
        self.builders.append(builder)
        for child in _descendants(node, {"domain-config", "domain", "pin-set", "trustkit-config"}):
            if child.name == "domain-config":
                self.domain_config(child, builder)
            elif child.name == "domain":
                if builder.hostname is not None:
                    self.warnings.append(
                        Diagnostic(
                            Location(self.source, builder.host_line),
                            f"TrustKit keeps only the last <domain> of a domain-config: "
                            f"{_java_trim(builder.hostname)} is not pinned by TrustKit",
                        )
                    )
                text = _only_text(child)
                if text is None:
                    self.fail(child.line, "domain: nextText() found an element")
                    continue
                builder.hostname, builder.host_line = text, child.line
                if "includeSubdomains" in child.attrs:
                    builder.include = _java_parse_boolean(child.attrs["includeSubdomains"])
                else:
                    builder.include = None
            elif child.name == "pin-set":
                self.pin_set(child, builder)
            else:  # trustkit-config
                value = child.attrs.get("enforcePinning")
                builder.enforce = _java_parse_boolean(value) if value is not None else False

    def pin_set(self, node: _Node, builder: _TrustKitBuilder) -> None:
        builder.pins = {}
        builder.expiry = None
        if "expiration" in node.attrs:
            builder.expiry = java_date(node.attrs["expiration"])
            if builder.expiry is None:
                self.fail(node.line, "Invalid expiration date in pin-set")
        for pin in _descendants(node, {"pin"}):
            digest = pin.attrs.get("digest")
            if digest != "SHA-256":
                self.fail(pin.line, f"Unexpected digest value: {digest}")
                continue
            text = _only_text(pin)
            if text is None:
                self.fail(pin.line, "pin: nextText() found an element")
                continue
            builder.pins.setdefault(text, pin.line)

    def rules(self) -> list[Rule]:
        rules: list[Rule] = []
        seen: dict[str, int] = {}
        for builder in self.builders:
            builder.resolve()
            if builder.pins is None:  # no pin-set here or above: TrustKit does not pin it
                continue
            problem = None
            hostname = builder.hostname
            line = builder.host_line or builder.line
            enforce = bool(builder.enforce)
            name = _java_trim(hostname) if hostname is not None else ""
            pins = []
            if not _valid_domain(hostname):
                problem = f"Tried to pin an invalid domain: {hostname}"
            elif not builder.pins and enforce:
                problem = (
                    f"An empty pin-set was supplied for domain {name} with the enforcePinning "
                    "set to true"
                )
            elif len(builder.pins) < 2 and enforce:
                problem = f"Less than two pins were supplied for domain {name}"
            else:
                for text, pin_line in builder.pins.items():
                    pin = _pin(text, pin_line, self.source)
                    if pin is None:
                        line = line if problem else pin_line
                        problem = problem or f"Invalid pin: {text.strip()!r} is not 32 bytes"
                        continue
                    pins.append(pin)
            if problem:
                self.fail(line, problem)
            if name in seen and not problem:
                problem = f"Policy contains the same domain defined twice: {name}"
                self.fail(line, problem)
            seen.setdefault(name, line)
            if name != name.lower():
                self.warnings.append(
                    Diagnostic(
                        Location(self.source, line),
                        f"{name}: TrustKit compares names case-sensitively; it matches only a "
                        "name requested in exactly this case",
                    )
                )
            expiry = builder.expiry
            rules.append(
                Rule(
                    host=name.lower().rstrip("."),
                    match=Match.SUBDOMAINS if builder.include else Match.EXACT,
                    pin_sets=(PinSet(tuple(pins)),),
                    location=Location(self.source, line),
                    expires=utc_midnight(expiry.day) if expiry and expiry.day else None,
                    enforce=enforce,
                    error=problem,
                    pattern=name,
                )
            )
        if not rules:
            self.fail(1, "Policy contains 0 domains to pin")
        return rules


def _descendants(node: _Node, wanted: set[str]) -> Iterator[_Node]:
    """Elements named ``wanted`` below ``node`` in document order, at any depth, without looking
    inside them: a pull parser's event loop that consumes each one it acts on."""
    stack = list(reversed(node.children))
    while stack:
        child = stack.pop()
        if child.name in wanted:
            yield child
        else:
            stack.extend(reversed(child.children))


def parse_trustkit(data: bytes, source: str) -> Policy:
    """TrustKit-Android's own view of the file (its ``<trustkit-config>`` settings)."""
    reader = _TrustKitReader(source)
    reader.read(_document(data, source))
    rules = reader.rules()
    notes = [
        "TrustKit-Android: enforcePinning defaults to false (report-only); on API 24+ the "
        "platform also enforces the same pin-sets (see the android view)"
    ]
    if any(rule.expires for rule in rules):
        notes.append(_TZ_NOTE)
    return _policy(source, "trustkit-android", "TrustKit", rules, reader, notes)


# --- sniffing and writing --------------------------------------------------------------------


def _policy(
    source: str,
    format: str,
    client: str,
    rules: list[Rule],
    reader: _AndroidReader | _TrustKitReader,
    notes: list[str],
) -> Policy:
    """The client rejects the file for its first error; later ones are reported as warnings, so
    that one run shows everything to fix."""
    first = reader.errors[0] if reader.errors else None
    later = [
        Diagnostic(e.location, f"{client} would also reject: {e.message}")
        for e in reader.errors[1:]
    ]
    return Policy(
        name=source,
        format=format,
        rules=tuple(rules),
        combine=Combine.MOST_SPECIFIC,
        error=first.message if first else None,
        error_location=first.location if first else None,
        warnings=tuple(reader.warnings + later),
        notes=tuple(notes),
    )


def sniff(data: bytes) -> list[str]:
    """``["android"]`` for a network security config, plus ``"trustkit-android"`` when it holds a
    ``<trustkit-config>``. A file that names the root but does not parse is still claimed, so
    that reading it reports the XML error rather than "unknown format"."""
    if b"network-security-config" not in data:
        return []
    try:
        root = _read_xml(data, "<sniff>")
    except PolicyError:
        return ["android"] if b"<network-security-config" in data else []
    if root.name != ROOT:
        return []
    if next(_descendants(root, {"trustkit-config"}), None) is not None:
        return ["android", "trustkit-android"]
    return ["android"]


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


__all__ = ["android_base64", "java_date", "parse", "parse_trustkit", "sniff", "write"]
