# SPDX-License-Identifier: Apache-2.0
"""In-process servers, good and hostile, on loopback ephemeral ports.

Every server is a context manager that yields a :class:`Server` once it listens and stops it
(listener closed, connections cancelled) on exit. They all run on one asyncio loop in a daemon
thread, so they serve sync and async tests alike, on any event loop the client uses, and
hundreds of concurrent connections cost a coroutine each. Every connection handler is bounded
by ``lifetime`` seconds as well, so nothing outlives a hung test by long.

TLS servers drive :class:`ssl.SSLObject` over memory BIOs themselves, unlike asyncio's own TLS
transport, so that their alerts reach the client the way OpenSSL sends them (asyncio drops the
alert of a failed handshake).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import struct
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from cryptography import x509

from fleet import pki

LOOPBACK = "127.0.0.1"
#: Upper bound on how long one server connection lives, whatever the client does.
LIFETIME = 60.0
_log = logging.getLogger(__name__)
T = TypeVar("T")

Handler = Callable[["Server", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Server:
    """A listening server: connect to ``host``:``port``.

    ``chain`` is the DER chain a TLS server presents by default (leaf first); ``sni_seen``
    records the SNI of every ClientHello, ``None`` for none; ``said``, what clients sent
    before TLS (STARTTLS servers, :mod:`fleet.starttls`).
    """

    kind: str
    host: str
    port: int = 0
    chain: list[bytes] = field(default_factory=list)
    sni_seen: list[str | None] = field(default_factory=list)
    said: list[bytes] = field(default_factory=list)


class _LoopThread:
    """The event loop every in-process server runs on, started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    def run(self, coro: Awaitable[T], timeout: float = 30.0) -> T:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._loop.set_exception_handler(_ignore_loop_error)
                threading.Thread(
                    target=self._loop.run_forever, name="fleet-loop", daemon=True
                ).start()
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)


def _ignore_loop_error(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    # A client that vanishes mid-handshake is what these servers exist for, not a failure.
    _log.debug("fleet loop: %s", context.get("message"), exc_info=context.get("exception"))


_LOOP = _LoopThread()


@contextlib.contextmanager
def serve(
    kind: str, handler: Handler, *, host: str = LOOPBACK, backlog: int = 128
) -> Iterator[Server]:
    """Listen on ``host`` and run ``handler(server, reader, writer)`` for every connection:
    the building block of every server here, and of one-off servers in tests."""
    server = Server(kind, host)
    tasks: set[asyncio.Task] = set()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        tasks.add(task)
        try:
            async with asyncio.timeout(LIFETIME):
                await handler(server, reader, writer)
                writer.close()  # after what was written: FIN, not RST
                await writer.wait_closed()
        except (OSError, ssl.SSLError, TimeoutError, asyncio.CancelledError):
            pass  # the client left, or the fleet is stopping
        finally:
            writer.transport.abort()
            tasks.discard(task)

    async def start() -> asyncio.Server:
        return await asyncio.start_server(on_connect, host, 0, backlog=backlog)

    async def stop(listener: asyncio.Server) -> None:
        listener.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    listener = _LOOP.run(start())
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        _LOOP.run(stop(listener))


# --- TLS ------------------------------------------------------------------------------------


def server_context(
    issued: pki.Issued,
    *,
    alpn: tuple[str, ...] = ("h2", "http/1.1"),
    version: ssl.TLSVersion | None = None,
    client_ca: pki.Issued | None = None,
    verify_mode: ssl.VerifyMode = ssl.CERT_REQUIRED,
) -> ssl.SSLContext:
    """A server context presenting ``issued.chain``; ``version`` pins one TLS version;
    ``client_ca`` asks for a client certificate issued under it (``verify_mode``: demands it,
    or only asks with ``CERT_OPTIONAL``)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory(prefix="pinscan-fleet-") as tmp:
        context.load_cert_chain(*issued.write(Path(tmp), "server"))
        if client_ca:
            ca_path, _ = client_ca.write(Path(tmp), "client-ca")
            context.load_verify_locations(ca_path)
            context.verify_mode = verify_mode
    if version:
        context.minimum_version = context.maximum_version = version
    if alpn:
        context.set_alpn_protocols(list(alpn))
    context.options |= ssl.OP_NO_TICKET
    return context


async def _tls_accept(
    server: Server,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    context: ssl.SSLContext,
    *,
    stall: bool = False,
) -> None:
    """Serve one TLS handshake, then wait for the client to close; send our alert on failure.
    ``stall`` stops answering after the first flight (ServerHello to ServerHelloDone)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    sslobj = context.wrap_bio(incoming, outgoing, server_side=True)
    sslobj.fleet_server = server  # for the SNI callback
    try:
        while True:
            try:
                sslobj.do_handshake()
                break
            except ssl.SSLWantReadError:
                pass
            flight = outgoing.read()
            writer.write(flight)
            if stall and flight:
                while await reader.read(65536):
                    pass
                return
            data = await reader.read(65536)
            if not data:
                return
            incoming.write(data)
        while True:  # until close_notify, an alert or EOF
            writer.write(outgoing.read())
            data = await reader.read(65536)
            if not data:
                return
            incoming.write(data)
            with contextlib.suppress(ssl.SSLWantReadError):
                sslobj.read(65536)
    except ssl.SSLError:
        pass  # handshake refused (e.g. no client certificate) or the client's alert
    finally:
        writer.write(outgoing.read())
        with contextlib.suppress(OSError):
            await writer.drain()


def _sni_router(
    contexts: dict[str, ssl.SSLContext],
) -> Callable[[ssl.SSLObject, str | None, ssl.SSLContext], None]:
    def on_sni(sslobj: ssl.SSLObject, name: str | None, default: ssl.SSLContext) -> None:
        sslobj.fleet_server.sni_seen.append(name)
        if name in contexts:
            sslobj.context = contexts[name]

    return on_sni


@contextlib.contextmanager
def tls(
    *certificates: pki.Issued,
    alpn: tuple[str, ...] = ("h2", "http/1.1"),
    version: ssl.TLSVersion | None = None,
    client_ca: pki.Issued | None = None,
    verify_mode: ssl.VerifyMode = ssl.CERT_REQUIRED,
    delay: float = 0.0,
    stall: bool = False,
    host: str = LOOPBACK,
    kind: str = "tls",
    backlog: int = 128,
) -> Iterator[Server]:
    """A TLS server. The first certificate is the default; the others are selected by SNI,
    by the DNS names in their SAN. ``delay`` holds each connection that long before reading
    the ClientHello; ``stall`` goes silent after the server's first flight."""
    contexts = [
        server_context(c, alpn=alpn, version=version, client_ca=client_ca, verify_mode=verify_mode)
        for c in certificates
    ]
    by_name = {
        name: ctx
        for issued, ctx in zip(certificates[1:], contexts[1:], strict=True)
        for name in issued.cert.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value.get_values_for_type(x509.DNSName)
    }
    contexts[0].sni_callback = _sni_router(by_name)

    async def handle(server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        if delay:
            await asyncio.sleep(delay)
        await _tls_accept(server, reader, writer, contexts[0], stall=stall)

    with serve(kind, handle, host=host, backlog=backlog) as server:
        server.chain = certificates[0].chain_der
        yield server


@dataclass
class Swappable:
    """What a server on a fixed port serves: a certificate chain, or nothing (it closes the
    connection at once). Changed between scans, the port and so the endpoint stay the same."""

    issued: pki.Issued | None

    def __post_init__(self) -> None:
        self.swap(self.issued)

    def swap(self, issued: pki.Issued | None) -> None:
        self.issued = issued
        self.context = server_context(issued) if issued else None


@contextlib.contextmanager
def swappable(state: Swappable) -> Iterator[Server]:
    async def handle(server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        if state.context is not None:
            await _tls_accept(server, reader, writer, state.context)

    with serve("swappable", handle) as server:
        yield server


def good(host: str = LOOPBACK) -> contextlib.AbstractContextManager[Server]:
    """Ordinary TLS 1.2/1.3 with ALPN: ``default.test`` without SNI or for an unknown name,
    ``a.test`` (RSA) and ``b.test`` (ECDSA) by SNI."""
    return tls(
        pki.leaf("default.test"),
        pki.leaf("a.test", key="rsa"),
        pki.leaf("b.test", "www.b.test"),
        host=host,
        kind="good",
    )


def client_cert(version: ssl.TLSVersion) -> contextlib.AbstractContextManager[Server]:
    """TLS ``version`` only, and a client certificate required (none will do)."""
    return tls(pki.leaf("mtls.test"), version=version, client_ca=pki.root(), kind="client_cert")


def stall_after_certificate() -> contextlib.AbstractContextManager[Server]:
    """TLS 1.2: sends ServerHello, Certificate, ServerKeyExchange and ServerHelloDone, then
    goes silent: a handshake that times out after the chain arrived."""
    return tls(pki.leaf("stall.test"), version=ssl.TLSVersion.TLSv1_2, stall=True, kind="stall")


def huge_chain(kind: str = "deep") -> contextlib.AbstractContextManager[Server]:
    """``deep``: 50 intermediates above the leaf; ``big``: a leaf larger than 64 KiB."""
    issued = pki.long_chain(50) if kind == "deep" else pki.big_leaf()
    return tls(issued, kind=f"huge_chain_{kind}")


def delayed(delay: float = 0.2, backlog: int = 1024) -> contextlib.AbstractContextManager[Server]:
    """A TLS server that answers each ClientHello ``delay`` seconds late: a distant server."""
    return tls(pki.leaf("delayed.test"), delay=delay, backlog=backlog, kind="delayed")


# --- Hostile --------------------------------------------------------------------------------


@contextlib.contextmanager
def silent(host: str = LOOPBACK) -> Iterator[Server]:
    """Accepts the connection, reads the ClientHello, never answers."""

    async def handle(server: Server, reader: asyncio.StreamReader, _: asyncio.StreamWriter):
        while await reader.read(65536):
            pass

    with serve("silent", handle, host=host) as server:
        yield server


#: What servers of other protocols say to a ClientHello.
GARBAGE = {
    "ssh": b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n",
    "http": b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    "smtp": b"220 mail.example ESMTP Postfix\r\n",
}


@contextlib.contextmanager
def garbage(protocol: str = "ssh") -> Iterator[Server]:
    """Speaks ``protocol`` from :data:`GARBAGE`: SSH and SMTP first, HTTP after the request."""

    async def handle(server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        if protocol == "http":
            await reader.read(65536)
        writer.write(GARBAGE[protocol])
        await writer.drain()
        if protocol != "http":
            while await reader.read(65536):
                pass

    with serve(f"garbage_{protocol}", handle, host=LOOPBACK) as server:
        yield server


@contextlib.contextmanager
def reset(after_hello: bool = True) -> Iterator[Server]:
    """Resets the connection (RST, by ``SO_LINGER`` 0) after the ClientHello or at once."""

    async def handle(server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        if after_hello:
            await reader.read(65536)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    with serve("reset", handle, host=LOOPBACK) as server:
        yield server


@contextlib.contextmanager
def slow_drip(interval: float = 1.0) -> Iterator[Server]:
    """Starts a 16 KiB handshake record and sends it one byte every ``interval`` seconds, so
    the connection is never idle and never done: only a handshake deadline ends it."""

    async def handle(server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        await reader.read(65536)
        writer.write(b"\x16\x03\x03\x40\x00")
        while True:  # bounded by LIFETIME
            await writer.drain()
            await asyncio.sleep(interval)
            writer.write(b"\x02")

    with serve("slow_drip", handle, host=LOOPBACK) as server:
        yield server


#: TLS alert descriptions (RFC 8446 section 6).
HANDSHAKE_FAILURE = 40
PROTOCOL_VERSION = 70
UNRECOGNIZED_NAME = 112


@contextlib.contextmanager
def alert(description: int = HANDSHAKE_FAILURE) -> Iterator[Server]:
    """Answers the ClientHello with a fatal alert record, then closes."""

    async def handle(server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        await reader.read(65536)
        writer.write(bytes([21, 3, 3, 0, 2, 2, description]))
        await writer.drain()

    with serve(f"alert_{description}", handle, host=LOOPBACK) as server:
        yield server


# --- No server ------------------------------------------------------------------------------


@contextlib.contextmanager
def closed_port() -> Iterator[Server]:
    """A loopback port nothing listens on (free a moment ago): connections are refused."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port = sock.getsockname()[1]
    yield Server("closed_port", LOOPBACK, port)


@contextlib.contextmanager
def blackhole() -> Iterator[Server]:
    """A listener whose accept queue is full and never drained: the kernel drops further SYNs,
    so a connection attempt hangs until the client gives up."""
    with socket.socket() as listener, socket.socket() as filler:
        listener.bind((LOOPBACK, 0))
        listener.listen(0)  # Linux queues backlog + 1 = one connection: the filler's
        filler.connect(listener.getsockname())
        yield Server("blackhole", LOOPBACK, listener.getsockname()[1])
