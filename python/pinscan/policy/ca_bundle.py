# SPDX-License-Identifier: Apache-2.0
"""A PEM bundle of CA certificates as a policy: Node.js ``https.Agent({ ca })`` and
``tls.connect({ ca })``.

``ca`` replaces Node's default trust store (``tls.createSecureContext``: "the well-known CAs are
used unless explicitly replaced"), so a client with a bundle accepts only a chain that builds to
one of its certificates: in effect a pin on every key of the bundle. The file names no host; the
hosts the client talks to are given beside it (``pinscan check --policy ca.pem --host NAME``,
``hosts=`` in Python). Each certificate's key becomes a pin at :attr:`Position.ANCHOR`: the
verified path must end at, or pass through, one of the bundle's keys.
"""

from __future__ import annotations

from collections.abc import Iterable

from cryptography import x509

from pinscan.certs.keys import spki_pin
from pinscan.certs.pem import is_pem, read_pem
from pinscan.errors import InputError, PolicyError
from pinscan.policy.model import (
    Combine,
    Diagnostic,
    Location,
    Match,
    Pin,
    PinSet,
    Policy,
    Position,
    Rule,
    normalize_host,
)

NOTE = (
    "Node.js `ca`: replaces the default CAs; the chain must build to a certificate of the "
    "bundle. Node (OpenSSL without X509_V_FLAG_PARTIAL_CHAIN; `allowPartialTrustChain` since "
    "Node 22.9) also needs the path to end at a self-signed certificate of the bundle, so a "
    "bundle of intermediates alone anchors nothing: pinscan passes a path through one and warns"
)
_LABELS = (b"CERTIFICATE", b"TRUSTED CERTIFICATE")


def _certificates(data: bytes, source: str) -> list[tuple[bytes, int]]:
    """Every certificate of the bundle with its line; InputError when a block is anything else."""
    blocks = read_pem(data, source)
    others = sorted({b.label for b in blocks if b.label.encode() not in _LABELS})
    if others or not blocks:
        raise InputError(source, f"not only certificates: {', '.join(others) or 'none'}")
    return [(b.der, b.line) for b in blocks]


def _is_anchor_like(der: bytes) -> bool | None:
    """True for a CA or a self-signed certificate (both may anchor a path); None if unreadable."""
    if _self_signed(der):
        return True
    try:
        cert = x509.load_der_x509_certificate(der)
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    except ValueError:
        return None
    return constraints.ca


def _self_signed(der: bytes) -> bool:
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return False
    return cert.subject == cert.issuer


def sniff(data: bytes) -> bool:
    """Whether the data is a PEM file of CA (or self-signed) certificates and nothing else."""
    if not is_pem(data[:4_000_000]):
        return False
    try:
        certs = _certificates(data, "<sniff>")
    except InputError:
        return False
    return all(_is_anchor_like(der) for der, _ in certs)


def parse(data: bytes, source: str, hosts: Iterable[str] = ()) -> Policy:
    """The bundle as a policy for ``hosts`` (exact names); without hosts it covers nothing and a
    warning says so."""
    try:
        certs = _certificates(data, source)
    except InputError as exc:
        raise PolicyError(source, exc.message) from None
    warnings: list[Diagnostic] = []
    pins: list[Pin] = []
    for der, line in certs:
        where = Location(source, line)
        try:
            pin = Pin.sha256(spki_pin(der), where)
        except InputError as exc:
            warnings.append(Diagnostic(where, f"a certificate Node cannot load: {exc.message}"))
            continue
        kind = _is_anchor_like(der)
        if kind is None:
            warnings.append(Diagnostic(where, "a certificate Node cannot load: skipped"))
            continue
        if not kind:
            warnings.append(
                Diagnostic(where, "not a CA certificate: Node trusts it only as a self-signed one")
            )
        if all(p.digest != pin.digest for p in pins):
            pins.append(pin)
    if pins and not any(_self_signed(der) for der, _ in certs):
        warnings.append(
            Diagnostic(
                Location(source, None),
                "no self-signed certificate: Node anchors a path only at one (unless "
                "allowPartialTrustChain, Node 22.9+), so this bundle alone may verify nothing; "
                "pinscan passes a path through its keys",
            )
        )
    names = sorted({normalize_host(h) for h in hosts if normalize_host(h)})
    if not names:
        warnings.append(
            Diagnostic(
                Location(source, None),
                "a CA bundle names no host: say which hosts use it (--host, hosts=)",
            )
        )
    location = Location(source, None)
    rules = tuple(
        Rule(name, Match.EXACT, (PinSet(tuple(pins), Position.ANCHOR),), location) for name in names
    )
    return Policy(
        name=source,
        format="ca-bundle",
        rules=rules,
        combine=Combine.MOST_SPECIFIC,
        warnings=tuple(warnings),
        notes=(NOTE,),
    )
