# SPDX-License-Identifier: Apache-2.0
"""The typed values that flow through a scan, in order:
inventory (:class:`Target`, :class:`BadTarget`) -> resolve -> handshake (:class:`Handshake`) ->
:class:`Endpoint` -> dataset writer.

They are plain slotted dataclasses: a scan holds at most ``concurrency`` of them at once, and the
writer turns them into Arrow columns in batches.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

#: Every value of the ``status`` column of ``endpoints``, with what it means.
STATUSES: dict[str, str] = {
    "ok": "the handshake completed; the chain was captured",
    "bad_target": "the inventory line could not be understood; nothing was sent",
    "dns_error": "the name did not resolve (NXDOMAIN, no address, resolver failure)",
    "refused": "the TCP connection was refused (RST to SYN)",
    "unreachable": "no route to the address (ICMP unreachable, network down)",
    "connect_timeout": "the TCP connection did not complete in time",
    "handshake_timeout": "the TLS handshake, or the STARTTLS exchange before it, did not complete "
    "in time",
    "deadline": "the per-target deadline (DNS, connect and handshake together) ran out",
    "reset": "the server reset or closed the connection during the handshake",
    "tls_alert": "the server answered with a TLS alert (its name is in `error`)",
    "client_cert_required": "the server asked for a client certificate and refused to go on",
    "not_tls": "the server answered with something that is not TLS",
    "tls_error": "the handshake failed locally (no shared version or cipher, bad message)",
    "error": "anything else, described in `error`",
    # New statuses go last: datasets store the column as an enum of these values in this order,
    # and parts written before a value was added read only when it was added at the end.
    "starttls_unsupported": "the server does not offer STARTTLS (its reply is in `error`)",
    "starttls_error": "the server broke the protocol before TLS: an unexpected reply, or bytes "
    "after its STARTTLS go-ahead (described in `error`)",
}

#: The protocols a scan speaks before TLS (STARTTLS, see :mod:`pinscan.scanner.starttls`), each
#: with its default port: the URL schemes of inventory lines (``smtp://mx.example.com``), the
#: values of ``--starttls`` and of the ``starttls`` column. Implicit TLS (``smtps://``,
#: ``imaps://``...) is plain TLS on its own port.
STARTTLS: dict[str, int] = {
    "smtp": 25,
    "submission": 587,
    "imap": 143,
    "pop3": 110,
    "ftp": 21,
    "xmpp": 5222,
    "xmpp-server": 5269,
    "ldap": 389,
    "postgres": 5432,
    "mysql": 3306,
}

#: The TLS engines a scan can use (``--engine``), with what each is; ``auto`` is rustls, and
#: OpenSSL again for an endpoint rustls cannot reach. The ``engine`` column of ``endpoints`` says
#: which of the two gave each result.
ENGINES: dict[str, str] = {
    "auto": "rustls, then OpenSSL for a server rustls cannot reach (TLS 1.0/1.1 only, legacy "
    "suites, a chain over 64 KB)",
    "rustls": "rustls 0.23 in pinscan's Rust core: TLS 1.3 and 1.2, ECDHE and AEAD suites only",
    "openssl": "the system OpenSSL through Python's ssl module: TLS 1.0 to 1.3, every suite at "
    "security level 0",
}

#: Every value of the ``verify_error`` column of ``endpoints`` (why a chain does not verify, as a
#: TLS engineer names it; see :mod:`pinscan.scanner.verify`), with the words reports print for it. A
#: name the certificate does not cover is not among them: the chain verifies, and ``hostname_match``
#: is false.
VERIFY_ERRORS: dict[str, str] = {
    "incomplete_chain": "incomplete chain (missing intermediate)",
    "unknown_root": "unknown root (issuer not in the trust store)",
    "self_signed": "self-signed certificate",
    "expired": "expired certificate",
    "not_yet_valid": "certificate not yet valid",
    "unsupported_algorithm": "unsupported key or signature algorithm",
    "bad_signature": "bad signature",
    "invalid_chain": "certificate or chain breaks RFC 5280 rules",
    "no_san": "no usable name in subjectAltName",
    "malformed": "unparsable certificate",
    "no_certificate": "no certificate presented",
}

#: The platform root stores pinscan ships (:mod:`pinscan.catalog.stores`), by the name a scan's
#: ``trust_stores`` and the ``trust_store`` column use, in the order a scan tries them by default.
#: Besides these, ``trust_store`` may say ``ca_bundle`` (``--ca-bundle``) or ``system`` (the
#: machine's bundle, ``--system-store``).
TRUST_STORES: dict[str, str] = {
    "mozilla": "Mozilla NSS (Firefox; curl and most Linux distributions use it)",
    "android": "Android's system store (AOSP)",
    "apple": "Apple's (iOS, iPadOS, macOS, tvOS, visionOS, watchOS)",
    "microsoft": "Microsoft's (Windows)",
    "java": "Java's (OpenJDK's cacerts)",
}
#: Where a scan's ``--ca-bundle`` roots sit on an Android device: the system store (where
#: ``overridePins`` applies to ``src="system"``) or the user store (trusted only by configs that
#: name ``src="user"``).
ANCHOR_STORES = ("system", "user")


@dataclass(frozen=True, slots=True)
class Target:
    """One endpoint to scan, as the inventory gave it.

    ``host`` is a DNS name or an IP literal; ``ip`` fixes the address to connect to (then no DNS
    lookup is made); ``sni`` is the name sent in the ClientHello, ``None`` for none;
    ``starttls`` the protocol spoken before TLS (a name of :data:`STARTTLS`), ``None`` for TLS
    from the first byte.
    """

    line: int
    target: str
    host: str
    port: int
    sni: str | None
    ip: str | None = None
    starttls: str | None = None

    @property
    def key(self) -> str:
        """Identity for de-duplication and ``--resume``: equal keys are the same scan. A plain
        TLS target's key is what it was before STARTTLS, so its id does not change."""
        key = f"{self.host}\x1f{self.port}\x1f{self.sni or ''}\x1f{self.ip or ''}"
        return f"{key}\x1f{self.starttls}" if self.starttls else key

    @property
    def target_id(self) -> str:
        return hashlib.sha256(self.key.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class BadTarget:
    """An inventory line that could not be understood: it becomes a ``bad_target`` row."""

    line: int
    target: str
    error: str

    @property
    def key(self) -> str:
        return f"bad\x1f{self.line}\x1f{self.target}"

    @property
    def target_id(self) -> str:
        return hashlib.sha256(self.key.encode()).hexdigest()[:16]


@dataclass(slots=True)
class Handshake:
    """What one connection attempt to one address saw.

    ``chain`` is the presented chain (leaf first) and is kept even when the handshake failed after
    the server's Certificate message (client certificate demanded, alert).
    """

    status: str
    error: str | None = None
    chain: list[bytes] = field(default_factory=list)
    tls_version: str | None = None
    cipher: str | None = None
    alpn: str | None = None
    connect_ms: float | None = None
    handshake_ms: float | None = None
    #: Which engine gave this result: ``rustls`` or ``openssl`` (see :data:`ENGINES`).
    engine: str | None = None


@dataclass(slots=True)
class Endpoint:
    """One row of ``endpoints``: one (target, address) pair and everything seen there."""

    target_id: str
    line: int
    target: str
    host: str | None
    ip: str | None
    port: int | None
    sni: str | None
    status: str
    error: str | None = None
    #: The protocol spoken before TLS (a name of `STARTTLS`), None for plain TLS.
    starttls: str | None = None
    attempts: int = 0
    tls_version: str | None = None
    cipher: str | None = None
    alpn: str | None = None
    #: The TLS engine that gave this result (``rustls`` or ``openssl``); None when no handshake
    #: was tried (a bad target, a name that did not resolve).
    engine: str | None = None
    resolve_ms: float | None = None
    connect_ms: float | None = None
    handshake_ms: float | None = None
    verified: bool | None = None
    #: Why the chain did not verify: a kind of `VERIFY_ERRORS`; the detail says
    #: which certificate and keeps pyca's own message.
    verify_error: str | None = None
    verify_detail: str | None = None
    #: Which trust store anchored the verified chain: the first of the scan's stores (a name of
    #: `TRUST_STORES`, then "ca_bundle", then "system") that verifies it.
    trust_store: str | None = None
    hostname_match: bool | None = None
    days_to_expiry: int | None = None
    scanned_at: dt.datetime | None = None
    presented: list[bytes] = field(default_factory=list)
    verified_chain: list[bytes] = field(default_factory=list)
    #: Each of the scan's stores, in order: (store, whether it verifies the chain, the path it
    #: builds, leaf first; empty when it does not verify).
    store_paths: list[tuple[str, bool, tuple[bytes, ...]]] = field(default_factory=list)

    @property
    def endpoint_id(self) -> str:
        """Deterministic: the same target and address get the same id in every scan."""
        return hashlib.sha256(f"{self.target_id}\x1f{self.ip or ''}".encode()).hexdigest()[:16]
