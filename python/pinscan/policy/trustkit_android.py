# SPDX-License-Identifier: Apache-2.0
"""TrustKit-Android: its own reading of ``network_security_config.xml``.

TrustKit-Android (``TrustKitConfigurationParser``, ``DomainPinningPolicy``) reads the same file
as Android (:mod:`.android`) but by its own rules: report-only unless ``<trustkit-config
enforcePinning="true">``, at least two pins when enforcing, the last ``<domain>`` of a config
only, configs without pins ignored. On API 24+ the platform enforces the same pin-sets too, so a
file with a ``<trustkit-config>`` gives both views.
"""

from __future__ import annotations

from dataclasses import dataclass

from pinscan.errors import PolicyError
from pinscan.policy._java_values import JavaDate, java_date, java_parse_boolean, java_trim
from pinscan.policy._network_security_config import (
    EXPIRY_NOTE,
    ROOT,
    ConfigReader,
    build_errors,
    expires_at,
    read_config,
    sha256_pin,
)
from pinscan.policy._xml import Node, descendants, only_text, read_xml
from pinscan.policy.model import Location, Match, PinSet, Policy, Rule


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
    expiry: JavaDate | None = None
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


class _TrustKitReader(ConfigReader):
    """``TrustKitConfigurationParser``: scans every start tag, not only the root's children."""

    def __init__(self, source: str) -> None:
        super().__init__(source)
        self.builders: list[_TrustKitBuilder] = []

    def read(self, root: Node) -> None:
        for line, message in build_errors(root):
            self.fail(line, message)
        stack = [root]
        while stack:
            node = stack.pop()
            if node.name == "domain-config":
                self.domain_config(node, None)
            elif node.name != "debug-overrides":
                stack.extend(reversed(node.children))

    def domain_config(self, node: Node, parent: _TrustKitBuilder | None) -> None:
        builder = _TrustKitBuilder(node.line, parent)
        self.builders.append(builder)
        for child in descendants(node, {"domain-config", "domain", "pin-set", "trustkit-config"}):
            if child.name == "domain-config":
                self.domain_config(child, builder)
            elif child.name == "domain":
                if builder.hostname is not None:
                    self.warn(
                        builder.host_line,
                        f"TrustKit keeps only the last <domain> of a domain-config: "
                        f"{java_trim(builder.hostname)} is not pinned by TrustKit",
                    )
                text = only_text(child)
                if text is None:
                    self.fail(child.line, "domain: nextText() found an element")
                    continue
                builder.hostname, builder.host_line = text, child.line
                if "includeSubdomains" in child.attrs:
                    builder.include = java_parse_boolean(child.attrs["includeSubdomains"])
                else:
                    builder.include = None
            elif child.name == "pin-set":
                self.pin_set(child, builder)
            else:  # trustkit-config
                value = child.attrs.get("enforcePinning")
                builder.enforce = java_parse_boolean(value) if value is not None else False

    def pin_set(self, node: Node, builder: _TrustKitBuilder) -> None:
        builder.pins = {}
        builder.expiry = None
        if "expiration" in node.attrs:
            builder.expiry = java_date(node.attrs["expiration"])
            if builder.expiry is None:
                self.fail(node.line, "Invalid expiration date in pin-set")
        for pin in descendants(node, {"pin"}):
            digest = pin.attrs.get("digest")
            if digest != "SHA-256":
                self.fail(pin.line, f"Unexpected digest value: {digest}")
                continue
            text = only_text(pin)
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
            name = java_trim(hostname) if hostname is not None else ""
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
                    pin = sha256_pin(text, pin_line, self.source)
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
                self.warn(
                    line,
                    f"{name}: TrustKit compares names case-sensitively; it matches only a "
                    "name requested in exactly this case",
                )
            rules.append(
                Rule(
                    host=name.lower().rstrip("."),
                    match=Match.SUBDOMAINS if builder.include else Match.EXACT,
                    pin_sets=(PinSet(tuple(pins)),),
                    location=Location(self.source, line),
                    expires=expires_at(builder.expiry),
                    enforce=enforce,
                    error=problem,
                    pattern=name,
                )
            )
        if not rules:
            self.fail(1, "Policy contains 0 domains to pin")
        return rules


def parse(data: bytes, source: str) -> Policy:
    """TrustKit-Android's own view of the file (its ``<trustkit-config>`` settings)."""
    return parse_tree(read_config(data, source), source)


def parse_tree(root: Node, source: str) -> Policy:
    """:func:`parse` on a ``<network-security-config>`` element already read (a compiled one)."""
    reader = _TrustKitReader(source)
    reader.read(root)
    rules = reader.rules()
    notes = [
        "TrustKit-Android: enforcePinning defaults to false (report-only); on API 24+ the "
        "platform also enforces the same pin-sets (see the android view)"
    ]
    if any(rule.expires for rule in rules):
        notes.append(EXPIRY_NOTE)
    return reader.policy("trustkit-android", "TrustKit", rules, notes)


def sniff(data: bytes) -> bool:
    """Whether ``data`` is a network security config with a ``<trustkit-config>``."""
    if b"trustkit-config" not in data or b"network-security-config" not in data:
        return False
    try:
        root = read_xml(data, "<sniff>")
    except PolicyError:
        return False
    return root.name == ROOT and next(descendants(root, {"trustkit-config"}), None) is not None


__all__ = ["parse", "parse_tree", "sniff"]
