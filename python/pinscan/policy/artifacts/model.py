# SPDX-License-Identifier: Apache-2.0
"""What reading an app artifact gives: the policies its clients load, and every pin found in it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pinscan.policy.model import Policy

#: What an artifact is, told from its content (:func:`pinscan.policy.artifacts.sniff`).
ARTIFACT_KINDS = ("apk", "aab", "apks", "ipa", "app")

#: Where a pin was found: a configuration a client reads (Network Security Config, Info.plist,
#: TrustKit), a string in code (dex, native library, executable, JavaScript bundle), or the key
#: of a certificate bundled in the app.
PIN_KINDS = ("config", "code", "bundled_certificate")


@dataclass(frozen=True)
class FoundPin:
    """One pin found in an artifact, at one place.

    ``pin`` is the digest as canonical padded base64; ``hosts`` the names it is tied to, empty
    when the artifact does not say (a pin string in code outside a ``CertificatePinner`` call, a
    bundled certificate no configuration names): ``note`` then says why."""

    pin: str
    algorithm: str
    """``sha256`` or ``sha1``."""
    hosts: tuple[str, ...]
    source: str
    """The artifact and the member: ``app.apk!classes2.dex``, ``App.ipa!Payload/App.app/x.cer``."""
    kind: str
    """One of :data:`PIN_KINDS`."""
    note: str | None = None

    @property
    def label(self) -> str:
        """``sha256/<base64>``, as OkHttp and pinscan's output write a pin."""
        return f"{self.algorithm}/{self.pin}"

    def to_dict(self) -> dict[str, Any]:
        """The pin as a row: ``pins --format json``'s entries, ``extract``'s columns."""
        return {
            "pin": self.pin,
            "algorithm": self.algorithm,
            "hosts": list(self.hosts),
            "source": self.source,
            "kind": self.kind,
            "note": self.note,
        }


@dataclass
class Artifact:
    """An app artifact read: the policies it holds, each named after its place
    (``app.apk!res/xml/nsc.xml``), the pins found, and ``errors``, one line each, for what
    could not be read (a refused member, a damaged resource); the rest is still read."""

    path: str
    kind: str
    """One of :data:`ARTIFACT_KINDS`."""
    policies: list[Policy] = field(default_factory=list)
    pins: list[FoundPin] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def problems(self) -> list[tuple[str, str]]:
        """``errors`` as ``(place, what)``: each line is ``app.apk!member: what`` (the place an
        :class:`~pinscan.errors.ArtifactError` names), or ``app.apk: what``."""
        split = []
        for line in self.errors:
            # The artifact's own path may hold ": "; the place ends at the first one after it.
            start = len(self.path) if line.startswith(self.path) else 0
            end = line.find(": ", start)
            split.append((self.path, line) if end < 0 else (line[:end], line[end + 2 :]))
        return split


__all__ = ["ARTIFACT_KINDS", "PIN_KINDS", "Artifact", "FoundPin"]
