# SPDX-License-Identifier: Apache-2.0
"""The handshake of one connection through rustls, in the Rust core (``pinscan._core.TlsClient``),
as :mod:`pinscan.scanner.handshake` drives a session: the same steps as
:class:`~pinscan.scanner.tls.OpenSSLSession`, at about a third of its client CPU
(``../docs/benchmarks.md``, "TLS engines").

rustls speaks TLS 1.3 and 1.2 with ECDHE and AEAD suites only, and takes handshake messages of at
most 64 KB. What it cannot reach, :func:`needs_openssl` tells, and the scan retries that endpoint
through OpenSSL (``--engine auto``).
"""

from __future__ import annotations

from pinscan._core import TlsClient, TlsEngine
from pinscan.scanner.tls import ClosedAfterRequest

#: Alerts of servers that rustls's offer does not suit: TLS 1.0/1.1 only, legacy suites or groups,
#: a key it cannot sign with for us. handshake_failure, illegal_parameter, protocol_version,
#: insufficient_security.
LEGACY_ALERTS = frozenset({40, 47, 70, 71})


class RustlsFailure(Exception):
    """The handshake failed: ``kind`` (``alert``, ``too_large``, ``incompatible``,
    ``protocol``), the server's ``alert`` code for an alert, and rustls's words."""

    def __init__(self, kind: str, alert: int | None, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.alert = alert


class ServerClosed(ConnectionError):
    """The server closed the connection in the middle of the handshake."""


def engine(alpn: tuple[str, ...]) -> TlsEngine:
    """The configuration a scan's connections share, offering ``alpn``; build it once."""
    return TlsEngine([p.encode() for p in alpn])


def needs_openssl(exc: BaseException) -> bool:
    """Whether a rustls failure is one the OpenSSL path may get past: a server too old for
    rustls, or a chain too long for it."""
    if not isinstance(exc, RustlsFailure):
        return False
    return exc.kind in ("too_large", "incompatible") or exc.alert in LEGACY_ALERTS


class RustlsSession:
    """One connection's rustls client; ``ValueError`` from the constructor: an SNI rustls cannot
    send."""

    __slots__ = ("alert", "client", "done", "held")

    engine = "rustls"

    def __init__(self, engine: TlsEngine, sni: str | None, ip: str) -> None:
        self.client = TlsClient(engine, sni, ip.partition("%")[0])
        self.done = False
        self.alert: int | None = None
        #: What rustls gave to send with the last step of the handshake, held back (our
        #: TLS 1.3 Finished): it leaves with close_notify, in one write, as on OpenSSL.
        self.held = b""

    def step(self, data: bytes | None) -> bytes:
        """Feed ``data`` (``None`` at the start, ``b""`` at the server's end of stream); the
        bytes to send. Raises :class:`RustlsFailure`, or :class:`ServerClosed`."""
        client = self.client
        out = client.output() if data is None else client.receive(data)
        self._raise_failure()
        if not client.handshaking:
            self.done, self.held = True, out
            return b""
        if client.eof:
            raise ServerClosed("the server closed the connection")
        return out

    def after(self, data: bytes) -> bool:
        """After a TLS 1.3 CertificateRequest, what the server sent next: true when it is
        application data (the server accepted the empty client certificate)."""
        if not data:
            raise ClosedAfterRequest
        self.client.receive(data)
        self._raise_failure()
        return self.client.app_data

    def close_notify(self) -> bytes:
        return self.pending() + self.client.close()

    def pending(self) -> bytes:
        """What is left to send: our Finished, or after a failure our own alert."""
        held, self.held = self.held, b""
        return held + self.client.output()

    @property
    def cert_requested(self) -> bool:
        return self.client.cert_requested

    def chain(self) -> list[bytes]:
        return self.client.chain

    def negotiated(self) -> tuple[str | None, str | None, str | None]:
        client = self.client
        return client.version, client.cipher, client.alpn

    def _raise_failure(self) -> None:
        failure = self.client.failure
        if failure is not None:
            kind, self.alert, message = failure
            raise RustlsFailure(kind, self.alert, message)
