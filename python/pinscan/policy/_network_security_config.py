# SPDX-License-Identifier: Apache-2.0
"""What Android's reader (:mod:`.android`) and TrustKit-Android's (:mod:`.trustkit_android`)
share about the one file both read, ``res/xml/network_security_config.xml``: its root element,
how a pin's text becomes a SHA-256 pin, and how a reader that walks the whole file turns what it
recorded into a :class:`Policy`.
"""

from __future__ import annotations

import base64
import datetime as dt

from pinscan.errors import PolicyError
from pinscan.policy._java_values import JavaDate, aapt2_value, android_base64
from pinscan.policy._xml import CompiledValue, Node, read_xml
from pinscan.policy.model import Combine, Diagnostic, Location, Pin, Policy, Rule, utc_midnight

ROOT = "network-security-config"
EXPIRY_NOTE = (
    "pin-set expiration: Android (and TrustKit-Android) stop enforcing at 00:00 of that date in "
    "the device's time zone; pinscan uses 00:00 UTC"
)


ANDROID_NS = "http://schemas.android.com/apk/res/android"
#: The config's attribute names, none of which any framework version defines as an
#: ``android:`` attribute (``aapt2 link`` says "attribute android:includeSubdomains not found").
_NOT_FRAMEWORK = frozenset(
    {
        "includeSubdomains",
        "overridePins",
        "digest",
        "expiration",
        "cleartextTrafficPermitted",
        "hstsEnforced",
        "enforcePinning",
        "reportUri",
        "disableDefaultReportUri",
    }
)


def read_config(data: bytes, source: str) -> Node:
    """The ``<network-security-config>`` element as the app holds it compiled: every
    un-namespaced attribute typed as aapt2 types it (:func:`.aapt2_value`), so that a source
    config reads as its compiled form does. :class:`PolicyError` for any other file."""
    root = read_xml(data, source)
    if root.name != ROOT:
        raise PolicyError(source, f"not a <{ROOT}> document (root element <{root.name}>)", 1)
    stack = [root]
    while stack:
        node = stack.pop()
        node.attrs = {
            key: value if isinstance(value, CompiledValue) else aapt2_value(value)
            for key, value in node.attrs.items()
        }
        stack.extend(node.children)
    return root


def build_errors(root: Node) -> list[tuple[int, str]]:
    """What makes ``aapt2 link`` refuse the file, so that the app does not build: an
    ``android:`` attribute no framework defines (AOSP ``tools/aapt2/link/XmlReferenceLinker.cpp``:
    an attribute in a package namespace must resolve to a defined attribute)."""
    found = []
    stack = [root]
    while stack:
        node = stack.pop(0)
        for namespace, name in node.namespaced:
            if namespace == ANDROID_NS and name in _NOT_FRAMEWORK:
                found.append(
                    (
                        node.line,
                        f"attribute android:{name} not found: aapt2 link fails, the app does "
                        f"not build (the attribute is {name}, without a namespace)",
                    )
                )
        stack[:0] = node.children
    return found


def sha256_pin(text: str, line: int, source: str) -> Pin | None:
    """The pin ``text`` decodes to as Android's base64 reads it, None unless 32 bytes."""
    raw = android_base64(text)
    if raw is None or len(raw) != 32:
        return None
    return Pin("sha256", base64.b64encode(raw).decode(), text, Location(source, line))


def expires_at(expiry: JavaDate | None) -> dt.datetime | None:
    """When a pin-set with this ``expiration`` stops being enforced (00:00 UTC of the day)."""
    return utc_midnight(expiry.day) if expiry and expiry.day else None


class ConfigReader:
    """Walks the file recording every error the client would throw (the first one is the one it
    throws) and every warning, instead of stopping at the first."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.errors: list[Diagnostic] = []
        self.warnings: list[Diagnostic] = []

    def fail(self, line: int, message: str) -> None:
        self.errors.append(Diagnostic(Location(self.source, line), message))

    def warn(self, line: int, message: str) -> None:
        self.warnings.append(Diagnostic(Location(self.source, line), message))

    def policy(self, format: str, client: str, rules: list[Rule], notes: list[str]) -> Policy:
        """The client rejects the file for its first error; later ones are reported as
        warnings, so that one run shows everything to fix."""
        first = self.errors[0] if self.errors else None
        later = [
            Diagnostic(e.location, f"{client} would also reject: {e.message}")
            for e in self.errors[1:]
        ]
        return Policy(
            name=self.source,
            format=format,
            rules=tuple(rules),
            combine=Combine.MOST_SPECIFIC,
            error=first.message if first else None,
            error_location=first.location if first else None,
            warnings=tuple(self.warnings + later),
            notes=tuple(notes),
        )


__all__ = [
    "ANDROID_NS",
    "EXPIRY_NOTE",
    "ROOT",
    "ConfigReader",
    "build_errors",
    "expires_at",
    "read_config",
    "sha256_pin",
]
