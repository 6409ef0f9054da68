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
from pinscan.policy._java_values import JavaDate, android_base64
from pinscan.policy._xml import Node, read_xml
from pinscan.policy.model import Combine, Diagnostic, Location, Pin, Policy, Rule, utc_midnight

ROOT = "network-security-config"
EXPIRY_NOTE = (
    "pin-set expiration: Android (and TrustKit-Android) stop enforcing at 00:00 of that date in "
    "the device's time zone; pinscan uses 00:00 UTC"
)


def read_config(data: bytes, source: str) -> Node:
    """The ``<network-security-config>`` element; :class:`PolicyError` for any other file."""
    root = read_xml(data, source)
    if root.name != ROOT:
        raise PolicyError(source, f"not a <{ROOT}> document (root element <{root.name}>)", 1)
    return root


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


__all__ = ["EXPIRY_NOTE", "ROOT", "ConfigReader", "expires_at", "read_config", "sha256_pin"]
