# SPDX-License-Identifier: Apache-2.0
"""The standard library ``ssl`` plumbing under :mod:`pinscan.scanner.handshake`: the accept-anything
client context, the presented chain, and what the TLS message callback saw.

The message callback is how a scan learns two things OpenSSL exposes nowhere else: the alert
the server sent (its code, not only a reason string), and whether the server sent a
CertificateRequest. The second is the only reliable sign of a server that demands a client
certificate under TLS 1.3, where it refuses only *after* the client has finished the handshake.
The callback is a private CPython hook (``SSLContext._msg_callback``, since 3.8); it is set on
the C base class so that CPython's wrapper does not build three enums per call. It runs for
every record header and handshake message, 25 times in a TLS 1.3 handshake, at about 0.3 us of
Python each: some 1% of the 1.5 to 2 ms of client CPU a handshake costs, below the noise of
A/B runs with and without it. Without the hook (another Python) both signs are lost, and alerts
are named from OpenSSL's reason string instead.

OpenSSL refuses a certificate chain longer than 100 KiB by default, and the ``ssl`` module has no
setting for it: :func:`client_context` raises it to :data:`MAX_CHAIN_BYTES` through ctypes, on
the ``SSL_CTX`` inside the context, and leaves OpenSSL's default wherever it cannot vouch for
that (:func:`chain_limit` says which a context got).
"""

from __future__ import annotations

import _ssl
import contextlib
import ctypes
import functools
import ssl
import sys
import warnings
from collections.abc import Callable

#: ALPN protocols offered by default, the ones a web endpoint selects from.
DEFAULT_ALPN = ("h2", "http/1.1")

# OpenSSL's SSL_OP_LEGACY_SERVER_CONNECT; `ssl` names it only from Python 3.12. Without it
# OpenSSL 3 refuses servers that predate RFC 5746 before their Certificate message arrives.
_OP_LEGACY_SERVER_CONNECT = getattr(ssl, "OP_LEGACY_SERVER_CONNECT", 0x4)

_ALERT = 21
_FATAL = 2
_HANDSHAKE = 22
_CERTIFICATE_REQUEST = 13
_ALERT_NAMES = {int(a): a.name.lower() for a in getattr(ssl, "_TLSAlertType", ())}

#: The longest certificate chain, in bytes of the TLS Certificate message, that the contexts of
#: :func:`client_context` accept. 4 MiB is 40 times OpenSSL's default and 4 times the 1 MB
#: chain the issue asked for (real chains stay well under 100 KiB), and it still bounds what
#: hostile servers can make a scan hold: a connection holds about 1.4 times its chain while the
#: chain arrives and is parsed (measured: 5.3 MiB each for 20 connections at once, 4.1 MB chains),
#: so the default 500 connections in flight some 2.6 GiB at worst. TLS would allow 16 MiB.
MAX_CHAIN_BYTES = 4 * 1024 * 1024
#: OpenSSL's own limit (``SSL_CTX_get_max_cert_list`` of a new context): what a context keeps
#: where :func:`client_context` cannot raise it.
OPENSSL_CHAIN_BYTES = 100 * 1024
# The SSL_CTX_ctrl commands behind OpenSSL's SSL_CTX_get/set_max_cert_list macros.
_CTRL_GET_MAX_CERT_LIST = 50
_CTRL_SET_MAX_CERT_LIST = 51


class ObservedSSLObject(ssl.SSLObject):
    """An :class:`ssl.SSLObject` that keeps what :func:`_on_message` saw on the wire.

    ``alert`` is the code of the last fatal alert the server sent; ``cert_requested`` is true once
    the server sent a CertificateRequest. Both stay at their class defaults for connections
    that never see either, so an ordinary handshake stores nothing.
    """

    alert: int | None = None
    cert_requested: bool = False


def _on_message(
    conn: ObservedSSLObject,
    direction: str,
    version: int,
    content_type: int,
    msg_type: int,
    data: bytes,
) -> None:
    # Called from inside OpenSSL for every message; anything raised here would resurface from
    # the next ssl call, so it only compares ints and sets attributes.
    if content_type == _HANDSHAKE:
        if msg_type == _CERTIFICATE_REQUEST and direction == "read":
            conn.cert_requested = True
    elif content_type == _ALERT and direction == "read" and data[0] == _FATAL:
        # Warnings (close_notify, a TLS 1.2 unrecognized_name the server carries on after)
        # explain no failure.
        conn.alert = msg_type


def client_context(alpn: tuple[str, ...] = DEFAULT_ALPN) -> ssl.SSLContext:
    """A client context that completes a handshake with anything that speaks TLS 1.0 to 1.3.

    It verifies nothing (verification happens later, per trust store, on the captured chain),
    offers every cipher at OpenSSL security level 0 (TLS 1.0 servers with SHA-1 signatures and
    small DH groups included), offers ``alpn``, and asks for no session ticket. Creating a
    context is expensive (OpenSSL loads its cipher tables): build one per scan and pass it to
    every :func:`pinscan.scanner.handshake.handshake`.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        # Deprecated because it is insecure for a client that trusts the connection; a scanner
        # only records what the server presents.
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    # SECLEVEL=0: OpenSSL 3 otherwise rejects SHA-1 signatures and TLS 1.0/1.1 altogether.
    context.set_ciphers("ALL:@SECLEVEL=0")
    if alpn:
        context.set_alpn_protocols(list(alpn))
    context.options |= ssl.OP_NO_TICKET | _OP_LEGACY_SERVER_CONNECT
    context.sslobject_class = ObservedSSLObject
    if hasattr(_ssl._SSLContext, "_msg_callback"):
        _ssl._SSLContext._msg_callback.__set__(context, _on_message)
    if _raise_chain_limit(context):
        context._pinscan_chain_limit = MAX_CHAIN_BYTES
    return context


def chain_limit(context: ssl.SSLContext) -> int:
    """The longest certificate chain (bytes of the Certificate message) ``context`` accepts:
    :data:`MAX_CHAIN_BYTES` for a context of :func:`client_context`, unless this Python's ``ssl``
    could not be given more than OpenSSL's default, :data:`OPENSSL_CHAIN_BYTES`."""
    return getattr(context, "_pinscan_chain_limit", OPENSSL_CHAIN_BYTES)


@functools.cache
def _ssl_ctx_ctrl() -> Callable[..., int] | None:
    """``SSL_CTX_ctrl`` of the libssl that ``_ssl`` is linked against, or ``None`` where that
    cannot be vouched for (another Python, ``_ssl`` built in or OpenSSL linked in statically
    without its symbols, or a library other than the one ``_ssl`` reports)."""
    if not getattr(_ssl, "__file__", None):
        return None
    try:
        # dlsym on _ssl's own handle searches _ssl, then the libraries it depends on: its libssl.
        library = ctypes.CDLL(_ssl.__file__)
        version, ctrl = library.OpenSSL_version_num, library.SSL_CTX_ctrl
    except (OSError, AttributeError):
        return None
    version.argtypes, version.restype = [], ctypes.c_ulong
    if version() != ssl.OPENSSL_VERSION_NUMBER:  # _ssl asked its own libssl at import
        return None
    ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
    ctrl.restype = ctypes.c_long
    return ctrl


def _raise_chain_limit(context: ssl.SSLContext) -> bool:
    """Raise a new context's chain limit to :data:`MAX_CHAIN_BYTES`; whether it now has it.

    The ``ssl`` module has no setting for it (OpenSSL's ``SSL_CTX_set_max_cert_list``, a macro
    over ``SSL_CTX_ctrl``), so it is set by ctypes on the ``SSL_CTX`` found by :func:`_ssl_ctx`.
    Nothing is written unless that pointer reads back OpenSSL's default limit (a wrong pointer
    would not), and the value set is read back; where anything is off the context keeps
    OpenSSL's default, and :func:`chain_limit` says so.
    """
    ctrl, pointer = _ssl_ctx_ctrl(), _ssl_ctx(context)
    if ctrl is None or pointer is None:
        return False
    current = ctrl(pointer, _CTRL_GET_MAX_CERT_LIST, 0, None)
    if current == MAX_CHAIN_BYTES:
        return True
    if current != OPENSSL_CHAIN_BYTES:  # not a new SSL_CTX, or not an SSL_CTX at all
        return False
    ctrl(pointer, _CTRL_SET_MAX_CERT_LIST, MAX_CHAIN_BYTES, None)
    return ctrl(pointer, _CTRL_GET_MAX_CERT_LIST, 0, None) == MAX_CHAIN_BYTES


def _ssl_ctx(context: ssl.SSLContext) -> int | None:
    """The address of the ``SSL_CTX`` inside ``context``, or ``None`` on another Python.

    CPython's ``PySSLContext`` (Modules/_ssl.c: so since Python 2.7, checked on 3.11 to 3.13)
    holds the ``SSL_CTX *`` as its first field, right after the object header, which is
    ``object.__basicsize__`` bytes (more under free threading and ``Py_TRACE_REFS``).
    """
    offset = object.__basicsize__
    if sys.implementation.name != "cpython" or not isinstance(context, _ssl._SSLContext):
        return None
    if _ssl._SSLContext.__basicsize__ < offset + ctypes.sizeof(ctypes.c_void_p):
        return None
    pointer = ctypes.c_void_p.from_address(id(context) + offset).value
    if not pointer or pointer % ctypes.alignment(ctypes.c_void_p):
        return None
    return pointer


if hasattr(ssl.SSLObject, "get_unverified_chain"):  # Python 3.13+: public, DER bytes

    def presented_chain(sslobj: ssl.SSLObject) -> list[bytes]:
        """The certificates the server sent, leaf first, as DER; empty before its Certificate
        message. It stays readable after a failed handshake."""
        return sslobj.get_unverified_chain()

else:  # Python 3.11 and 3.12: on the private C object, as _ssl.Certificate

    def presented_chain(sslobj: ssl.SSLObject) -> list[bytes]:
        """The certificates the server sent, leaf first, as DER; empty before its Certificate
        message. It stays readable after a failed handshake."""
        chain = sslobj._sslobj.get_unverified_chain()
        return [cert.public_bytes(_ssl.ENCODING_DER) for cert in chain] if chain else []


def alert_name(code: int) -> str:
    """The RFC 8446 name of a TLS alert, e.g. ``protocol_version`` for 70."""
    return _ALERT_NAMES.get(code, f"alert_{code}")


class ClosedAfterRequest(Exception):
    """The server asked for a client certificate, then closed without an alert."""


class OpenSSLSession:
    """The handshake of one connection through OpenSSL (:class:`ssl.SSLObject` over two memory
    BIOs), as :mod:`pinscan.scanner.handshake` drives a session: :meth:`step` takes what the
    server sent and returns what to send; failures raise :class:`ssl.SSLError` and its kin.

    ``ValueError`` from the constructor: an SNI OpenSSL cannot send.
    """

    __slots__ = ("done", "incoming", "outgoing", "sslobj")

    engine = "openssl"

    def __init__(self, context: ssl.SSLContext, sni: str | None) -> None:
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.sslobj = context.wrap_bio(self.incoming, self.outgoing, server_hostname=sni)
        self.done = False

    def step(self, data: bytes | None) -> bytes:
        """Feed ``data`` (``None`` at the start, ``b""`` at the server's end of stream) and go as
        far as the handshake can; the bytes to send."""
        if data is not None:
            if data:
                self.incoming.write(data)
            else:
                self.incoming.write_eof()
        try:
            self.sslobj.do_handshake()
            self.done = True
        except ssl.SSLWantReadError:
            pass
        # Under TLS 1.3 our Finished is still in the BIO once done: it leaves with close_notify.
        return self.outgoing.read() if not self.done else b""

    def after(self, data: bytes) -> bool:
        """After a TLS 1.3 CertificateRequest, what the server sent next: true when it is
        application data (the server accepted the empty client certificate). Raises what a
        refusal raises: an alert, or :class:`ClosedAfterRequest`."""
        if not data:
            raise ClosedAfterRequest
        self.incoming.write(data)
        try:
            self.sslobj.read(1)
        except ssl.SSLWantReadError:  # a NewSessionTicket, nothing to decide on
            return False
        except ssl.SSLZeroReturnError:
            raise ClosedAfterRequest from None
        return True

    def close_notify(self) -> bytes:
        """close_notify behind whatever is left of the handshake (our Finished)."""
        # SSLWantReadError: it would wait for the server's close_notify, which we do not.
        with contextlib.suppress(ssl.SSLError):
            self.sslobj.unwrap()
        return self.outgoing.read()

    def pending(self) -> bytes:
        """What is left to send after a failure: our own alert, if OpenSSL wrote one."""
        return self.outgoing.read()

    @property
    def alert(self) -> int | None:
        return getattr(self.sslobj, "alert", None)

    @property
    def cert_requested(self) -> bool:
        return getattr(self.sslobj, "cert_requested", False)

    def chain(self) -> list[bytes]:
        return presented_chain(self.sslobj)

    def negotiated(self) -> tuple[str | None, str | None, str | None]:
        """``(version, cipher, alpn)`` of a completed handshake, as OpenSSL names them."""
        cipher = self.sslobj.cipher()
        return (
            self.sslobj.version(),
            cipher[0] if cipher else None,
            self.sslobj.selected_alpn_protocol(),
        )
