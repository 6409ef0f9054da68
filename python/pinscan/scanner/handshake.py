# SPDX-License-Identifier: Apache-2.0
"""One TLS handshake with one address: what the server presented, and how it ended.

The connection is a non-blocking socket driven by anyio (``wait_readable``/``wait_writable``);
TLS is a sans-IO session that takes the server's bytes and gives back ours: rustls in the Rust
core (:mod:`pinscan.scanner.rustls`) or the standard library's OpenSSL over two memory BIOs
(:class:`~pinscan.scanner.tls.OpenSSLSession`). Owning both ends means that every step runs under
its own deadline, that the presented chain can still be read after the handshake failed, and that
nothing but the handshake (and, for STARTTLS, the plaintext preamble before it:
:mod:`pinscan.scanner.starttls`) is ever sent. It is also lean: anyio's ``connect_tcp`` and socket
streams (a task group, events and cancel scopes per connection, asyncio transport and protocol
objects) would cost more CPU than rustls's whole handshake.

``engine="auto"`` tries rustls, and OpenSSL again on a new connection for a server rustls cannot
reach (``docs/engines.md``). Every failure the network or the server can cause becomes a
:class:`~pinscan.records.Handshake` with a status from :data:`~pinscan.records.STATUSES`, mapped in
one table (:data:`_STATUS`); only programming errors raise.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import socket
import ssl
import time

import anyio

from pinscan._core import TlsEngine
from pinscan.records import ENGINES, Handshake
from pinscan.scanner import rustls
from pinscan.scanner import starttls as preamble
from pinscan.scanner.tls import (
    DEFAULT_ALPN,
    OPENSSL_CHAIN_BYTES,
    ClosedAfterRequest,
    OpenSSLSession,
    alert_name,
    chain_limit,
    client_context,
    presented_chain,
)

__all__ = ["client_context", "handshake", "presented_chain"]

#: What :func:`handshake` drives: one connection's TLS client, either engine.
Session = rustls.RustlsSession | OpenSSLSession

_RECV = 65536
#: How long a server that sent a TLS 1.3 CertificateRequest gets to refuse the (empty) client
#: certificate after the handshake, on top of twice the TCP connect time (one round trip).
_CLIENT_CERT_GRACE = 0.2

#: How a failure becomes a status, in the style of httpcore's ``map_exceptions``. Looked up by
#: OpenSSL reason (``SSLError.reason``), then by ``errno`` (socket errors), then by exception
#: type along the MRO. An SSLError with an unlisted reason is ``tls_error`` (``tls_alert`` when
#: the server sent an alert); anything else unlisted is ``error``. Timeouts, ours or the
#: kernel's, and refusals of a client certificate are told apart before this table.
_STATUS: dict[str | int | type[BaseException], str] = {
    # The server answered with something other than a TLS record.
    "WRONG_VERSION_NUMBER": "not_tls",
    "PACKET_LENGTH_TOO_LONG": "not_tls",
    "RECORD_LAYER_FAILURE": "not_tls",
    "HTTP_REQUEST": "not_tls",
    "UNKNOWN_PROTOCOL": "not_tls",
    # The server went away mid-handshake.
    "UNEXPECTED_EOF_WHILE_READING": "reset",
    ssl.SSLEOFError: "reset",
    ssl.SSLZeroReturnError: "reset",
    # TCP
    errno.ECONNREFUSED: "refused",
    errno.ENETUNREACH: "unreachable",
    errno.EHOSTUNREACH: "unreachable",
    errno.ENETDOWN: "unreachable",
    errno.EHOSTDOWN: "unreachable",
    errno.ECONNRESET: "reset",
    errno.ECONNABORTED: "reset",
    errno.EPIPE: "reset",
    ConnectionError: "reset",
    ssl.SSLError: "tls_error",
    rustls.RustlsFailure: "tls_error",
}

#: The first byte of a TLS record: change_cipher_spec, alert, handshake, application_data.
_RECORD_TYPES = frozenset({20, 21, 22, 23})


@functools.cache
def _default_context(starttls: str | None = None) -> ssl.SSLContext:
    """The shared context of callers that bring none: a TLS client's ALPN, or after STARTTLS
    the protocol's own (:data:`pinscan.scanner.starttls.ALPN`: none for most)."""
    if starttls is None:
        return client_context()
    return client_context(alpn=preamble.ALPN.get(starttls, ()))


@functools.cache
def _default_rustls(starttls: str | None = None) -> TlsEngine:
    """:func:`_default_context`'s counterpart for rustls."""
    return rustls.engine(DEFAULT_ALPN if starttls is None else preamble.ALPN.get(starttls, ()))


async def handshake(
    ip: str,
    port: int,
    sni: str | None,
    *,
    connect_timeout: float,
    handshake_timeout: float,
    engine: str = "auto",
    context: ssl.SSLContext | None = None,
    rustls_engine: TlsEngine | None = None,
    stop_at: float | None = None,
    starttls: str | None = None,
    domain: str | None = None,
) -> Handshake:
    """Connect to ``ip``:``port``, complete a TLS handshake sending ``sni``, and close.

    Parameters
    ----------
    ip
        An IPv4 or IPv6 address literal; names are resolved by the caller.
    port
        TCP port.
    sni
        The server name to send, or ``None`` to send no SNI extension. An IP literal is
        never sent (as RFC 6066 requires).
    connect_timeout, handshake_timeout
        Seconds: the TCP connection, and then the TLS handshake, each from its own start.
    engine
        A name of :data:`pinscan.records.ENGINES`: ``rustls`` (in the Rust core), ``openssl``
        (the standard library's ``ssl``: TLS 1.0 to 1.3, every legacy suite), or ``auto``:
        rustls, and OpenSSL again for a server that rustls cannot reach
        (:func:`pinscan.scanner.rustls.needs_openssl`: TLS 1.0/1.1 only, legacy suites, a
        chain over 64 KB). ``Handshake.engine`` says which one the result is from.
    context, rustls_engine
        From :func:`client_context` and :func:`pinscan.scanner.rustls.engine`, built once per
        scan; ``None`` uses a shared default (after STARTTLS, one with the protocol's ALPN: a
        mail server may refuse ``h2``).
    stop_at
        An instant of :func:`anyio.current_time` after which no step may run: where the
        caller's per-target deadline (``Timeouts.deadline`` seconds) ends. When it cuts a step
        short the status is ``deadline`` and whatever chain arrived is kept, which a
        cancellation from outside could not do.
    starttls, domain
        A protocol of :data:`pinscan.records.STARTTLS` to speak before TLS, over the same
        socket (:mod:`pinscan.scanner.starttls`), within ``handshake_timeout`` of its own;
        ``domain`` is the name it announces (XMPP's ``to``; ``sni``, else ``ip``, by default).

    Returns
    -------
    Handshake
        ``status`` is ``ok`` or one failure from :data:`pinscan.records.STATUSES`, with a human
        ``error``. ``chain`` is the presented chain whenever the server's Certificate message
        arrived, even if the handshake failed after it. ``connect_ms`` and ``handshake_ms``
        are the time spent in each step, failed ones included (``handshake_ms`` from the
        connection on: a STARTTLS exchange is part of it).

    It raises only for programming errors (``ip`` not an address literal, an unknown
    ``engine``); cancellation from outside propagates after the socket is closed.
    """
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    try:
        socket.inet_pton(family, ip.partition("%")[0])
    except OSError:
        msg = f"`ip` must be an IP address literal, not {ip!r}"
        raise ValueError(msg) from None
    if engine not in ENGINES:
        msg = f"`engine` must be one of {', '.join(ENGINES)}, not {engine!r}"
        raise ValueError(msg)
    shake = functools.partial(
        _attempt, family, (ip, port), sni, connect_timeout, handshake_timeout, stop_at,
        starttls, domain or sni or ip,
    )  # fmt: skip
    if engine != "openssl":
        try:
            session: Session = rustls.RustlsSession(
                rustls_engine or _default_rustls(starttls), sni, ip
            )
        except ValueError as exc:
            if engine == "rustls":
                return Handshake("bad_target", f"cannot send SNI {sni!r}: {exc}", engine="rustls")
        else:
            result, failure = await shake(session)
            if engine == "rustls" or not rustls.needs_openssl(failure):
                return result
            if stop_at is not None and anyio.current_time() >= stop_at:
                return result  # no time left to try OpenSSL: rustls's answer says why
    try:
        session = OpenSSLSession(context or _default_context(starttls), sni)
    except (ValueError, UnicodeError) as exc:
        return Handshake("bad_target", f"cannot send SNI {sni!r}: {exc}", engine="openssl")
    result, _ = await shake(session)
    return result


async def _attempt(
    family: socket.AddressFamily,
    address: tuple[str, int],
    sni: str | None,
    connect_timeout: float,
    handshake_timeout: float,
    stop_at: float | None,
    starttls: str | None,
    domain: str,
    session: Session,
) -> tuple[Handshake, Exception | None]:
    """One connection's handshake through ``session``: the result, and the exception that
    ended it, if any."""
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:  # out of file descriptors, address family unsupported
        return Handshake("error", f"cannot open a socket: {exc}", engine=session.engine), exc

    result = Handshake("ok", engine=session.engine)
    failure: Exception | None = None
    conn = _Connection(sock, session)
    step, limit = "connect", connect_timeout
    end, stops = _step_end(limit, stop_at)
    started = connected = time.perf_counter()
    try:
        sock.setblocking(False)
        # One scope for both steps, its deadline moved between them: a scope costs more than
        # moving a deadline.
        with anyio.CancelScope(deadline=end) as scope:
            await conn.connect(address)
            connected = time.perf_counter()
            result.connect_ms = (connected - started) * 1000
            if starttls is not None:
                step, limit = "starttls", handshake_timeout
                end, stops = _step_end(limit, stop_at)
                scope.deadline = end
                conn.wire = preamble.Wire(sock)
                await preamble.negotiate(starttls, conn.wire, domain)
            step, limit = "handshake", handshake_timeout
            end, stops = _step_end(limit, stop_at)
            scope.deadline = end
            await conn.handshake()
        if scope.cancelled_caught:
            raise TimeoutError
        result.handshake_ms = (time.perf_counter() - connected) * 1000
        result.chain = session.chain()
        result.tls_version, result.cipher, result.alpn = session.negotiated()
        if session.cert_requested and result.tls_version == "TLSv1.3":
            grace = _CLIENT_CERT_GRACE + 2 * (connected - started)
            with anyio.move_on_at(min(end, anyio.current_time() + grace)):
                await conn.await_refusal()
        conn.send_nowait(session.close_notify())
    except Exception as exc:
        failure = exc
        if step != "connect" and result.handshake_ms is None:
            result.handshake_ms = (time.perf_counter() - connected) * 1000
        if step == "handshake":
            result.chain = session.chain()
            # Our own alert, if the engine wrote one. Only once TLS has begun: rustls queues
            # its ClientHello from the start, and no TLS byte may follow a refused STARTTLS.
            conn.send_nowait(session.pending())
        if step == "starttls":
            result.status, result.error = _preamble_failure(exc, starttls, limit, stops, conn)
        else:
            result.status, result.error = _classify(exc, step, limit, stops, conn)
    finally:
        sock.close()
    return result, failure


def _step_end(limit: float, stop_at: float | None) -> tuple[float, bool]:
    """When a step of at most ``limit`` seconds must end, and whether ``stop_at`` (not the step's
    own limit) is what ends it then."""
    end = anyio.current_time() + limit
    if stop_at is None or end < stop_at:
        return end, False
    return stop_at, True


class _Connection:
    """The socket and the TLS session of one handshake, and what was received so far."""

    __slots__ = ("received", "session", "sock", "start", "wire")

    def __init__(self, sock: socket.socket, session: Session) -> None:
        self.sock = sock
        self.session = session
        self.received = 0
        #: The first bytes the server sent, to show what a non-TLS server speaks.
        self.start = b""
        #: The STARTTLS exchange, if there is one.
        self.wire: preamble.Wire | None = None

    async def connect(self, address: tuple[str, int]) -> None:
        sock = self.sock
        sock.setblocking(False)
        err = sock.connect_ex(address)
        if err == errno.EINPROGRESS:
            await anyio.wait_writable(sock)
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise OSError(err, os.strerror(err))

    async def handshake(self) -> None:
        session = self.session
        out = session.step(None)
        while not session.done:
            await preamble.send_all(self.sock, out)
            data = await self._receive()
            if data is not None:
                out = session.step(data)

    async def await_refusal(self) -> None:
        """After a TLS 1.3 CertificateRequest: wait for the server to refuse the empty client
        certificate. Returns when it sends data instead (it accepted); the caller bounds the
        wait. Raises what the refusal raises: an alert, a reset, or
        :class:`~pinscan.scanner.tls.ClosedAfterRequest`.
        """
        await preamble.send_all(self.sock, self.session.pending())  # our Finished
        while True:
            data = await self._receive()
            if data is not None and self.session.after(data):
                return

    def send_nowait(self, data: bytes) -> None:
        """Best effort: send ``data`` if the socket takes it now; never wait."""
        if data:
            with contextlib.suppress(OSError):
                self.sock.send(data)

    async def _receive(self) -> bytes | None:
        """Wait for bytes: ``b""`` at EOF, ``None`` after a spurious wake-up."""
        await anyio.wait_readable(self.sock)
        try:
            data = self.sock.recv(_RECV)
        except BlockingIOError:
            return None
        if not self.received:
            self.start = data[:48]
        self.received += len(data)
        return data


def _preamble_failure(
    exc: Exception, protocol: str | None, limit: float, at_stop: bool, conn: _Connection
) -> tuple[str, str]:
    """The status and human error of a STARTTLS exchange that did not reach its go-ahead."""
    received = conn.wire.received if conn.wire is not None else 0
    seen = f" ({received} bytes received)"
    if isinstance(exc, preamble.StarttlsUnsupported):
        return "starttls_unsupported", f"{protocol}: {exc}"
    if isinstance(exc, preamble.StarttlsError):
        return "starttls_error", f"{protocol}: {exc}"
    if isinstance(exc, TimeoutError):
        if exc.errno is not None:  # the kernel gave up (TCP retransmissions)
            return "handshake_timeout", f"{protocol}: {exc.strerror}{seen}"
        if at_stop:
            return (
                "deadline",
                f"the per-target deadline ran out during the {protocol} STARTTLS{seen}",
            )
        return "handshake_timeout", f"no {protocol} STARTTLS go-ahead within {limit:g} s{seen}"
    if isinstance(exc, OSError) and exc.errno in (errno.ECONNRESET, errno.EPIPE):
        return "reset", f"{protocol}: {exc.strerror or exc}{seen}"
    return _classify(exc, "starttls", limit, at_stop, conn)


def _classify(
    exc: Exception, step: str, limit: float, at_stop: bool, conn: _Connection
) -> tuple[str, str]:
    """The status and human error of a failed ``step`` (``connect`` or ``handshake``)."""
    session = conn.session
    seen = f" ({conn.received} bytes received)" if step == "handshake" else ""
    if isinstance(exc, TimeoutError):
        if exc.errno is not None:  # the kernel gave up (TCP retransmissions)
            return f"{step}_timeout", f"{exc.strerror}{seen}"
        if at_stop:
            return "deadline", f"the per-target deadline ran out during the {step}{seen}"
        what = "TCP connection" if step == "connect" else "TLS handshake"
        return f"{step}_timeout", f"no complete {what} within {limit:g} s{seen}"

    alert = session.alert
    reason = getattr(exc, "reason", None)
    if step == "handshake" and session.cert_requested:
        refusal = "the server requires a client certificate"
        if alert is not None:
            return "client_cert_required", f"{refusal} (alert {alert_name(alert)})"
        if isinstance(exc, ClosedAfterRequest | ConnectionError | ssl.SSLEOFError):
            return "client_cert_required", f"{refusal} (it closed the connection)"

    status = _STATUS.get(reason) if reason else None
    if isinstance(exc, rustls.RustlsFailure) and exc.kind == "protocol" and not _tls_start(conn):
        status = "not_tls"
    if status is None and isinstance(exc, OSError) and not isinstance(exc, ssl.SSLError):
        status = _STATUS.get(exc.errno)
    if status is None:
        status = next((_STATUS[t] for t in type(exc).__mro__ if t in _STATUS), "error")

    if status == "tls_error" and alert is not None:
        return "tls_alert", f"{alert_name(alert)} (alert {alert} from the server)"
    if status == "tls_error" and reason and "_ALERT_" in reason:  # a context without callback
        return "tls_alert", f"{reason.partition('_ALERT_')[2].lower()} (from the server)"
    if status == "not_tls":
        return status, f"not TLS: the server sent {conn.start!r}"
    if status == "reset":
        how = "closed" if isinstance(exc, ssl.SSLError | rustls.ServerClosed) else "reset"
        return status, f"connection {how} by the server during the {step}{seen}"
    if status in ("refused", "unreachable"):
        return status, exc.strerror or str(exc)
    if reason == "EXCESSIVE_MESSAGE_SIZE":
        return status, _too_long(session.sslobj.context, _ssl_message(exc))
    if isinstance(exc, ssl.SSLError):
        return status, _ssl_message(exc)
    if isinstance(exc, rustls.RustlsFailure):
        if exc.kind == "too_large":
            return status, f"the server's certificate chain is over the 64 KB rustls takes{seen}"
        return status, f"rustls: {exc}"
    return status, f"{type(exc).__name__}: {exc}"


def _tls_start(conn: _Connection) -> bool:
    """Whether what the server sent first looks like a TLS record (type, then major version 3)."""
    return len(conn.start) >= 2 and conn.start[0] in _RECORD_TYPES and conn.start[1] == 3


def _too_long(context: ssl.SSLContext, message: str) -> str:
    """A handshake message above OpenSSL's limit for it. The limit that a server can reach with
    an honest message is the one of the Certificate message (:func:`chain_limit`), which
    OpenSSL also applies to a CertificateRequest's list of CA names; the others have fixed
    limits no real server comes near (a ServerHello of 20,000 bytes)."""
    limit = chain_limit(context)
    size = f"{limit // 2**20} MiB" if limit % 2**20 == 0 else f"{limit // 1024} KiB"
    accepts = f"the {size} pinscan accepts"
    if limit == OPENSSL_CHAIN_BYTES:
        accepts = f"the {size} OpenSSL accepts by default (pinscan cannot raise it on this Python)"
    return f"the server's certificate chain exceeds {accepts} (OpenSSL: {message})"


def _ssl_message(exc: ssl.SSLError) -> str:
    """OpenSSL's message without CPython's decorations: ``[SSL: UNSUPPORTED_PROTOCOL]
    unsupported protocol (_ssl.c:1006)`` becomes ``unsupported protocol``."""
    message = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], str) else str(exc)
    if message.startswith("["):
        message = message.partition("] ")[2] or message
    return message.rpartition(" (_ssl.c:")[0] or message
