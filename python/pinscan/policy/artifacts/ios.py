# SPDX-License-Identifier: Apache-2.0
"""Pins out of an iOS app as it ships: an ``.ipa`` (``Payload/X.app/``) or an ``.app`` directory.

- ``Info.plist`` (binary or XML): App Transport Security's ``NSPinnedDomains`` and TrustKit's
  ``TSKConfiguration``, read by the source readers (:mod:`..ios`, :mod:`..trustkit`) on the
  plist's bytes; the policies are named ``App.ipa!Payload/App.app/Info.plist``.
- Certificates bundled in the app (``*.cer``, ``*.der``, ``*.pem``, ``*.crt``): Alamofire's
  ``PinnedCertificatesTrustEvaluator``/``PublicKeysTrustEvaluator`` (which load every
  certificate of the main bundle by default) and hand-written ``SecTrustEvaluateWithError``
  delegates pin these. Their keys are reported as ``bundled_certificate`` pins; the code that
  decides which hosts they guard is compiled, so the hosts are unknown.
- Pin strings in the main executable (``CFBundleExecutable``) and the embedded frameworks and
  libraries (``Frameworks/``): ``sha256/``/``sha1/`` strings, and bare base64 strings of a
  SHA-256's length (TrustKit's ``kTSKPublicKeyHashes`` in code) as candidates, all ``code``
  pins without hosts.
"""

from __future__ import annotations

import plistlib
import re

from pinscan import _core
from pinscan.certs.keys import read_certificates, spki_pin
from pinscan.certs.pem import is_pem
from pinscan.errors import ArtifactError, InputError
from pinscan.policy import ios, trustkit
from pinscan.policy.artifacts.archive import Archive
from pinscan.policy.artifacts.model import Artifact, FoundPin
from pinscan.policy.model import Policy

_APP = re.compile(r"(Payload/[^/]+\.app/)Info\.plist")
_CERTIFICATE = re.compile(r"[^/]+\.(cer|der|pem|crt)", re.IGNORECASE)
_FRAMEWORK = re.compile(r"Frameworks/(?:[^/]+\.framework/[^/]+|[^/]+\.dylib)")
#: The first bytes of a Mach-O file (32/64-bit, either byte order) or a universal one.
_MACH_O = (
    b"\xfe\xed\xfa\xce",
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",
)
#: Bytes each chunk of a streamed executable keeps from the one before, so that a pin string
#: across the boundary is found (``sha256/`` and 44 digits, in UTF-16 at most 102 bytes).
_OVERLAP = 128
_BUNDLED_NOTE = (
    "the key of a certificate bundled in the app: Alamofire's pinned-certificate and "
    "public-key evaluators and SecTrust delegates pin these; the hosts are in compiled code"
)


def read_ios(archive: Archive, artifact: Artifact, *, code: bool = True) -> None:
    """Fill ``artifact`` with the app's policies and pins; what cannot be read goes to
    ``artifact.errors`` one line each, and the rest is still read."""
    if artifact.kind == "app":
        apps = [""]
    else:
        apps = [m.group(1) for name in archive.names() if (m := _APP.fullmatch(name))]
    for app in apps:
        # Without a readable CFBundleExecutable, Xcode's default: the bundle's own name.
        bundle = (app.rstrip("/") or archive.name.rstrip("/")).rsplit("/", 1)[-1]
        executable = _read_plist(archive, app, artifact) or bundle.removesuffix(".app")
        for name in archive.names():
            inner = name[len(app) :] if name.startswith(app) else None
            if inner is None:
                continue
            if _CERTIFICATE.fullmatch(inner.rsplit("/", 1)[-1]):
                _attempt(artifact, lambda name=name: _bundled(archive, name, artifact))
            elif code and (inner == executable or _FRAMEWORK.fullmatch(inner)):
                _attempt(artifact, lambda name=name: _code(archive, name, artifact))


def _attempt(artifact: Artifact, step) -> None:  # type: ignore[no-untyped-def]
    """Runs one step of the reading; an unreadable member becomes an error line."""
    try:
        step()
    except InputError as exc:
        artifact.errors.append(str(exc))


def _read_plist(archive: Archive, app: str, artifact: Artifact) -> str | None:
    """Reads the app's Info.plist into policies; the main executable's name, if it says."""
    name = app + "Info.plist"
    source = archive.source(name)
    try:
        data = archive.read(name)
    except InputError as exc:
        artifact.errors.append(str(exc))
        return None
    try:
        root = plistlib.loads(data)
    except Exception as exc:  # plistlib raises anything on hostile input
        artifact.errors.append(f"{source}: not a readable plist: {exc}")
        return None
    for reader in (ios, trustkit):
        if not reader.sniff(data):
            continue
        try:
            policy = reader.parse(data, source)
        except InputError as exc:
            artifact.errors.append(str(exc))
            continue
        artifact.policies.append(policy)
        artifact.pins.extend(_config_pins(policy))
    executable = root.get("CFBundleExecutable") if isinstance(root, dict) else None
    return executable if isinstance(executable, str) and "/" not in executable else None


def _config_pins(policy: Policy) -> list[FoundPin]:
    """Each pin of a configuration with the hosts its rules name."""
    hosts: dict[tuple[str, str], list[str]] = {}
    for rule in policy.rules:
        for pin in rule.pins:
            hosts.setdefault((pin.algorithm, pin.digest), []).append(rule.label())
    return [
        FoundPin(digest, algorithm, tuple(dict.fromkeys(names)), policy.name, "config")
        for (algorithm, digest), names in hosts.items()
    ]


def _bundled(archive: Archive, name: str, artifact: Artifact) -> None:
    source = archive.source(name)
    data = archive.read(name)
    if is_pem(data) and b"-----BEGIN CERTIFICATE-----" not in data:
        return  # a key or a CSR beside the certificates: nothing a trust evaluator loads
    try:
        ders = read_certificates(data)
    except ArtifactError:
        raise
    except InputError as exc:
        artifact.errors.append(f"{source}: not a certificate pinscan can read: {exc.message}")
        return
    for der in ders:
        try:
            pin = spki_pin(der)
        except InputError as exc:
            artifact.errors.append(f"{source}: a certificate without a readable key: {exc.message}")
            continue
        artifact.pins.append(
            FoundPin(pin, "sha256", (), source, "bundled_certificate", _BUNDLED_NOTE)
        )


def _code(archive: Archive, name: str, artifact: Artifact) -> None:
    """Streams an executable (a 200 MB one is never held whole) when it is a Mach-O file."""
    source = archive.source(name)
    seen: set[tuple[str, str]] = set()
    carry = b""
    first = True
    for chunk in archive.chunks(name):
        if first and chunk[:4] not in _MACH_O:
            return  # a resource inside a framework, not its binary
        first = False
        data = carry + chunk
        for _offset, algorithm, digest, prefixed in _core.pin_strings(data, bare=True):
            if (algorithm, digest) in seen:
                continue
            seen.add((algorithm, digest))
            note = (
                "a pin string in the executable; hosts unknown"
                if prefixed
                else "a bare base64 string of a SHA-256's length in the executable (TrustKit "
                "hashes in code, a Swift constant): a candidate pin; hosts unknown"
            )
            artifact.pins.append(FoundPin(digest, algorithm, (), source, "code", note))
        carry = data[-_OVERLAP:]


__all__ = ["read_ios"]
