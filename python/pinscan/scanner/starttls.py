# SPDX-License-Identifier: Apache-2.0
"""STARTTLS: the plaintext preamble of a protocol that upgrades its connection to TLS, spoken
over the connected socket of :func:`pinscan.scanner.handshake.handshake` before it hands the
same socket to the TLS driver.

One coroutine per protocol (:data:`NEGOTIATORS`, named as :data:`pinscan.records.STARTTLS`
names them), each reading exactly the server's replies: a line-based reply is read up to the end
of its last line, a BER element or a MySQL packet by its length, PostgreSQL's answer as one
byte. Whatever the server sends after its go-ahead is *not* passed on to TLS: a server that
pipelines bytes behind it (the STARTTLS command injection of CVE-2011-0411, or PostgreSQL's
CVE-2021-23214 from the other side) fails with :class:`StarttlsError`.

The caller runs a negotiator under its deadline (a cancel scope); a negotiator never waits
on its own. It raises :class:`StarttlsUnsupported` when the server does not offer TLS (the
status ``starttls_unsupported``), :class:`StarttlsError` when the server breaks the protocol
(``starttls_error``), and :class:`ConnectionResetError` when it closes the connection
(``reset``). ``error`` then carries the server's reply, printable and truncated
(:func:`shown`).

Implicit TLS (``smtps``, ``imaps``, ``pop3s``, ``ldaps``, ``ftps``, ``sips``) has no preamble:
those schemes are plain TLS on their own ports (:mod:`pinscan.inventory.grammar`).
"""

from __future__ import annotations

import errno
import re
import socket
import struct
from collections.abc import Awaitable, Callable

import anyio

__all__ = [
    "ALPN",
    "NEGOTIATORS",
    "StarttlsError",
    "StarttlsUnsupported",
    "Wire",
    "negotiate",
    "send_all",
    "shown",
]

#: The most a server may send before TLS starts: a greeting, capabilities, replies.
MAX_PREAMBLE = 64 * 1024
#: What ``EHLO`` says the client is: a name that is no one's (RFC 2606).
EHLO_NAME = "pinscan.invalid"
_SHOWN = 200
_RECV = 4096


class StarttlsUnsupported(Exception):
    """The server does not offer TLS on this connection; the message carries its reply."""


class StarttlsError(Exception):
    """The server broke the protocol before TLS (an unexpected or unparsable reply, bytes
    after its go-ahead, too much data); the message says how."""


def shown(data: bytes, limit: int = _SHOWN) -> str:
    """A server's bytes for ``error``: ASCII, control characters escaped (``\\r\\n`` kept as
    ``\\r\\n`` in the text), cut at ``limit`` characters."""
    text = data[: limit * 4].decode("ascii", "backslashreplace")
    text = "".join(c if " " <= c <= "~" else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


async def send_all(sock: socket.socket, data: bytes) -> None:
    """Write all of ``data`` to a non-blocking socket, waiting while its buffer is full."""
    while data:
        try:
            sent = sock.send(data)
        except BlockingIOError:
            await anyio.wait_writable(sock)
            continue
        data = data[sent:]


class Wire:
    """The socket and the bytes received but not yet consumed."""

    __slots__ = ("buffer", "received", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.received = 0

    async def send(self, data: bytes) -> None:
        await send_all(self.sock, data)

    async def fill(self) -> None:
        """Wait for more bytes; :class:`ConnectionResetError` at EOF."""
        while True:
            await anyio.wait_readable(self.sock)
            try:
                data = self.sock.recv(_RECV)
            except BlockingIOError:  # a spurious wake-up
                continue
            if not data:
                what = f": {shown(bytes(self.buffer))}" if self.buffer else ""
                msg = f"the server closed the connection before TLS{what}"
                raise ConnectionResetError(errno.ECONNRESET, msg)
            self.received += len(data)
            if self.received > MAX_PREAMBLE:
                msg = f"the server sent more than {MAX_PREAMBLE} bytes before TLS"
                raise StarttlsError(msg)
            self.buffer += data
            return

    async def line(self) -> bytes:
        """One line, without its ``\\r\\n`` (or bare ``\\n``)."""
        start = 0
        while (end := self.buffer.find(b"\n", start)) < 0:
            start = len(self.buffer)
            await self.fill()
        line = bytes(self.buffer[:end]).removesuffix(b"\r")
        del self.buffer[: end + 1]
        return line

    async def exactly(self, count: int) -> bytes:
        while len(self.buffer) < count:
            await self.fill()
        data = bytes(self.buffer[:count])
        del self.buffer[:count]
        return data

    def go_ahead(self, reply: bytes) -> None:
        """The server said go: nothing may follow, neither in the buffer nor on the socket."""
        extra = bytes(self.buffer)
        if not extra:
            try:
                extra = self.sock.recv(_RECV, socket.MSG_PEEK)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # a reset: the TLS driver reports it
        if extra:
            msg = (
                f"the server sent {len(extra)} bytes after its go-ahead ({shown(reply, 60)}),"
                f" which TLS must never see (STARTTLS injection, CVE-2011-0411): {shown(extra, 60)}"
            )
            raise StarttlsError(msg)


# --- SMTP, FTP: numbered replies -------------------------------------------------------------

_CODE = re.compile(rb"([0-9]{3})([ -]?)")


async def _numbered_reply(wire: Wire, what: str, *, ftp: bool = False) -> tuple[int, list[bytes]]:
    """A reply of RFC 5321 section 4.2 (``250-...`` lines, then ``250 ...``), or of RFC 959
    section 4.2 (``ftp``: ``220-`` opens, any lines, ``220 `` closes): its code and lines."""
    lines = [await wire.line()]
    match = _CODE.match(lines[0])
    if match is None:
        msg = f"expected {what}, the server sent: {shown(lines[0])}"
        raise StarttlsError(msg)
    code = match.group(1)
    if match.group(2) == b"-":
        while True:
            line = await wire.line()
            lines.append(line)
            last = _CODE.match(line)
            if ftp:
                if line.startswith(code + b" ") or line == code:
                    break
                continue
            if last is None or last.group(1) != code:
                msg = f"a broken multi-line reply to {what}: {shown(b'|'.join(lines))}"
                raise StarttlsError(msg)
            if last.group(2) != b"-":
                break
    return int(code), lines


def _joined(lines: list[bytes]) -> str:
    return shown(b" | ".join(lines))


async def smtp(wire: Wire, domain: str) -> None:
    """RFC 3207: the 220 greeting, ``EHLO``, STARTTLS among its 250 reply's keywords,
    ``STARTTLS`` and 220."""
    code, lines = await _numbered_reply(wire, "an SMTP greeting")
    if code != 220:
        msg = f"the server refused the session: {_joined(lines)}"
        raise StarttlsError(msg)
    await wire.send(f"EHLO {EHLO_NAME}\r\n".encode())
    code, lines = await _numbered_reply(wire, "the EHLO reply")
    if code != 250:
        msg = f"EHLO refused (no ESMTP, so no STARTTLS): {_joined(lines)}"
        raise StarttlsUnsupported(msg)
    keywords = {line[4:].split(b" ", 1)[0].upper() for line in lines[1:]}
    if b"STARTTLS" not in keywords:
        msg = f"STARTTLS is not among the EHLO keywords: {_joined(lines)}"
        raise StarttlsUnsupported(msg)
    await wire.send(b"STARTTLS\r\n")
    code, lines = await _numbered_reply(wire, "the STARTTLS reply")
    if code != 220:
        msg = f"STARTTLS refused: {_joined(lines)}"
        raise StarttlsUnsupported(msg)
    wire.go_ahead(b"\r\n".join(lines))


async def ftp(wire: Wire, domain: str) -> None:
    """RFC 4217: the 220 greeting (after any 120 "ready in n minutes"), ``AUTH TLS`` and 234."""
    code, lines = await _numbered_reply(wire, "an FTP greeting", ftp=True)
    if code == 120:
        code, lines = await _numbered_reply(wire, "an FTP greeting", ftp=True)
    if code != 220:
        msg = f"the server refused the session: {_joined(lines)}"
        raise StarttlsError(msg)
    await wire.send(b"AUTH TLS\r\n")
    code, lines = await _numbered_reply(wire, "the AUTH TLS reply", ftp=True)
    if code != 234:
        msg = f"AUTH TLS refused: {_joined(lines)}"
        raise StarttlsUnsupported(msg)
    wire.go_ahead(b"\r\n".join(lines))


# --- IMAP, POP3 ------------------------------------------------------------------------------

_IMAP_CAPABILITY = re.compile(rb"(?i)\[CAPABILITY ([^\]]*)\]")


async def imap(wire: Wire, domain: str) -> None:
    """RFC 3501 section 6.2.1 (and RFC 9051): the ``* OK`` greeting, the capabilities (from the
    greeting's response code, or ``CAPABILITY``), ``STARTTLS`` and its tagged OK."""
    greeting = await wire.line()
    upper = greeting.upper()
    if upper.startswith(b"* PREAUTH"):
        msg = f"the session is already authenticated (no STARTTLS then): {shown(greeting)}"
        raise StarttlsUnsupported(msg)
    if not upper.startswith(b"* OK"):
        msg = f"expected an IMAP greeting (* OK), the server sent: {shown(greeting)}"
        raise StarttlsError(msg)
    seen = [greeting]
    found = _IMAP_CAPABILITY.search(greeting)
    if found:
        capabilities = found.group(1).upper().split()
    else:
        await wire.send(b"P1 CAPABILITY\r\n")
        capabilities = []
        while True:
            line = await wire.line()
            seen.append(line)
            upper = line.upper()
            if upper.startswith(b"* CAPABILITY "):
                capabilities += upper.split()[2:]
            elif upper.startswith(b"P1 "):
                if not upper.startswith(b"P1 OK"):
                    msg = f"CAPABILITY failed: {shown(line)}"
                    raise StarttlsError(msg)
                break
            elif not line.startswith(b"* "):
                msg = f"an unexpected reply to CAPABILITY: {shown(line)}"
                raise StarttlsError(msg)
    if b"STARTTLS" not in capabilities:
        msg = f"STARTTLS is not among the capabilities: {_joined(seen[-3:])}"
        raise StarttlsUnsupported(msg)
    await wire.send(b"P2 STARTTLS\r\n")
    while True:
        line = await wire.line()
        upper = line.upper()
        if upper.startswith(b"P2 OK"):
            break
        if upper.startswith((b"P2 NO", b"P2 BAD")):
            msg = f"STARTTLS refused: {shown(line)}"
            raise StarttlsUnsupported(msg)
        if not line.startswith(b"* ") or upper.startswith(b"* BYE"):
            msg = f"an unexpected reply to STARTTLS: {shown(line)}"
            raise StarttlsError(msg)
    wire.go_ahead(line)


async def pop3(wire: Wire, domain: str) -> None:
    """RFC 2595 section 4: the ``+OK`` greeting, ``CAPA`` (STLS among its lines; a server
    without ``CAPA`` is asked anyway), ``STLS`` and ``+OK``."""
    greeting = await wire.line()
    if not greeting.startswith(b"+OK"):
        msg = f"expected a POP3 greeting (+OK), the server sent: {shown(greeting)}"
        raise StarttlsError(msg)
    await wire.send(b"CAPA\r\n")
    answer = await wire.line()
    if answer.startswith(b"+OK"):
        capabilities = []
        while (line := await wire.line()) != b".":
            capabilities.append(line)
        if not any(c.upper().split(b" ", 1)[0] == b"STLS" for c in capabilities):
            msg = f"STLS is not among the capabilities: {_joined([answer, *capabilities])}"
            raise StarttlsUnsupported(msg)
    elif not answer.startswith(b"-ERR"):
        msg = f"an unexpected reply to CAPA: {shown(answer)}"
        raise StarttlsError(msg)
    await wire.send(b"STLS\r\n")
    answer = await wire.line()
    if answer.startswith(b"-ERR"):
        msg = f"STLS refused: {shown(answer)}"
        raise StarttlsUnsupported(msg)
    if not answer.startswith(b"+OK"):
        msg = f"an unexpected reply to STLS: {shown(answer)}"
        raise StarttlsError(msg)
    wire.go_ahead(answer)


# --- XMPP ------------------------------------------------------------------------------------

_TLS_NS = "urn:ietf:params:xml:ns:xmpp-tls"
# A tag, its attribute values quoted (they may hold `>`).
_TAG = re.compile(rb"<([^\"'>]|\"[^\"]*\"|'[^']*')*>")
_NAME = re.compile(rb"</?\s*([^\s/>]+)")


def _xml_escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("'", "&apos;").replace("<", "&lt;")


async def _tag(wire: Wire) -> tuple[str, bytes]:
    """The next tag (text between tags skipped): its local name (``/name`` for an end tag,
    ``?xml`` for the declaration) and its bytes."""
    while True:
        start = wire.buffer.find(b"<")
        if start >= 0:
            del wire.buffer[:start]
            match = _TAG.match(wire.buffer)
            if match:
                tag = bytes(wire.buffer[: match.end()])
                del wire.buffer[: match.end()]
                name = _NAME.match(tag)
                qualified = name.group(1).decode("ascii", "replace") if name else ""
                if qualified.startswith("?"):  # <?xml ...?>
                    return qualified, tag
                local = qualified.rpartition(":")[2]  # stream:features is features
                return ("/" + local if tag.startswith(b"</") else local), tag
        else:
            wire.buffer.clear()
        await wire.fill()


def _xmpp(namespace: str) -> Callable[[Wire, str], Awaitable[None]]:
    async def negotiate(wire: Wire, domain: str) -> None:
        """RFC 6120 section 5: open the stream to ``domain``, read its features, send
        ``<starttls/>`` and read ``<proceed/>``."""
        await wire.send(
            f"<?xml version='1.0'?><stream:stream xmlns='{namespace}'"
            " xmlns:stream='http://etherx.jabber.org/streams'"
            f" to='{_xml_escaped(domain)}' version='1.0'>".encode()
        )
        seen: list[bytes] = []
        offered = False
        depth = 0  # inside <features>
        while True:
            name, tag = await _tag(wire)
            seen.append(tag)
            if name == "error" and depth == 0:
                rest = bytes(wire.buffer[:200])
                msg = f"the server closed the stream: {shown(b''.join(seen[-2:]) + rest)}"
                raise StarttlsError(msg)
            if name == "/stream":
                msg = f"the server closed the stream: {shown(b''.join(seen[-3:]))}"
                raise StarttlsError(msg)
            if name == "features":
                if tag.endswith(b"/>"):
                    break
                depth = 1
            elif name == "/features":
                break
            elif depth and name == "starttls" and _TLS_NS.encode() in tag:
                offered = True
            elif name in ("?xml", "stream", "/starttls", "required") or depth:
                continue
            else:
                msg = f"expected the stream's features, the server sent: {shown(tag)}"
                raise StarttlsError(msg)
        if not offered:
            msg = f"STARTTLS is not among the stream features: {shown(b''.join(seen[-6:]))}"
            raise StarttlsUnsupported(msg)
        await wire.send(f"<starttls xmlns='{_TLS_NS}'/>".encode())
        name, tag = await _tag(wire)
        if name == "failure":
            msg = f"STARTTLS refused: {shown(tag + bytes(wire.buffer[:100]))}"
            raise StarttlsUnsupported(msg)
        if name != "proceed":
            msg = f"expected <proceed/>, the server sent: {shown(tag)}"
            raise StarttlsError(msg)
        if not tag.endswith(b"/>"):  # <proceed ...></proceed>
            end, closing = await _tag(wire)
            if end != "/proceed":
                msg = f"a broken <proceed>: {shown(tag + closing)}"
                raise StarttlsError(msg)
            tag += closing
        wire.go_ahead(tag)

    return negotiate


# --- LDAP ------------------------------------------------------------------------------------

#: RFC 4511 section 4.14.1: LDAPMessage { messageID 1, ExtendedRequest [APPLICATION 23] {
#: requestName [0] "1.3.6.1.4.1.1466.20037" } }.
_LDAP_OID = b"1.3.6.1.4.1.1466.20037"
LDAP_STARTTLS_REQUEST = b"\x30\x1d\x02\x01\x01\x77\x18\x80\x16" + _LDAP_OID
_LDAP_RESULTS = {
    1: "operationsError",
    2: "protocolError",
    12: "unavailableCriticalExtension",
    13: "confidentialityRequired",
    51: "busy",
    52: "unavailable",
    53: "unwillingToPerform",
    80: "other",
}


async def _ber(wire: Wire, expected: int) -> tuple[int, bytes, bytes]:
    """One BER element of tag ``expected``, read by its length: (tag, contents, the element's
    bytes). Another tag is garbage, refused before its length is believed."""
    head = await wire.exactly(2)
    tag, first = head[0], head[1]
    if tag != expected:
        msg = f"expected the LDAP StartTLS response (a SEQUENCE), the server sent: {shown(head)}"
        raise StarttlsError(msg)
    if tag & 0x1F == 0x1F:
        msg = f"a BER tag of more than one byte, not LDAP: {shown(head)}"
        raise StarttlsError(msg)
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if not 1 <= count <= 4:
            msg = f"a BER length of {count} bytes, not LDAP: {shown(head)}"
            raise StarttlsError(msg)
        size = await wire.exactly(count)
        head += size
        length = int.from_bytes(size, "big")
    if length > MAX_PREAMBLE:
        msg = f"a BER element of {length} bytes, not an LDAP response"
        raise StarttlsError(msg)
    contents = await wire.exactly(length)
    return tag, contents, head + contents


def _elements(data: bytes) -> list[tuple[int, bytes]]:
    """The BER elements (tag, contents) one after another in ``data``."""
    out = []
    i = 0
    while i < len(data):
        if i + 2 > len(data):
            raise ValueError("truncated")
        tag, first = data[i], data[i + 1]
        i += 2
        if first < 0x80:
            length = first
        else:
            count = first & 0x7F
            length = int.from_bytes(data[i : i + count], "big")
            i += count
        if i + length > len(data):
            raise ValueError("truncated")
        out.append((tag, data[i : i + length]))
        i += length
    return out


async def ldap(wire: Wire, domain: str) -> None:
    """RFC 4511 section 4.14: the StartTLS extended request, and its extended response with
    resultCode 0 (success)."""
    await wire.send(LDAP_STARTTLS_REQUEST)
    tag, contents, element = await _ber(wire, 0x30)
    try:
        if tag != 0x30:
            raise ValueError("not an LDAPMessage")
        parts = _elements(contents)
        if len(parts) < 2 or parts[0][0] != 0x02:
            raise ValueError("no messageID")
        message_id = int.from_bytes(parts[0][1], "big", signed=True)
        op_tag, op = parts[1]
        if op_tag != 0x78:  # ExtendedResponse, [APPLICATION 24]
            raise ValueError(f"protocolOp 0x{op_tag:02x}, not an ExtendedResponse")
        fields = _elements(op)
        if len(fields) < 3 or fields[0][0] != 0x0A:
            raise ValueError("no resultCode")
        result = int.from_bytes(fields[0][1], "big")
        diagnostic = fields[2][1]
    except ValueError as exc:
        msg = f"expected the LDAP StartTLS response ({exc}): {shown(element)}"
        raise StarttlsError(msg) from None
    if message_id == 0:  # a Notice of Disconnection (RFC 4511 section 4.4.1)
        msg = f"the server disconnected (resultCode {result}): {shown(diagnostic)}"
        raise StarttlsError(msg)
    if message_id != 1:
        msg = f"a response to message {message_id}, not to the StartTLS request (1)"
        raise StarttlsError(msg)
    if result != 0:
        name = _LDAP_RESULTS.get(result, "")
        msg = f"StartTLS refused: resultCode {result} {name}: {shown(diagnostic)}".replace(
            "  ", " "
        )
        raise StarttlsUnsupported(msg)
    wire.go_ahead(element)


# --- PostgreSQL, MySQL -----------------------------------------------------------------------

#: The PostgreSQL protocol's SSLRequest: length 8, code 1234.5679 (80877103).
POSTGRES_SSL_REQUEST = struct.pack("!II", 8, 80877103)


async def postgres(wire: Wire, domain: str) -> None:
    """PostgreSQL's SSLRequest and its one-byte answer: ``S`` goes on to TLS, ``N`` does not
    (an ``E`` is an error message from a server too old to know the request)."""
    await wire.send(POSTGRES_SSL_REQUEST)
    answer = await wire.exactly(1)
    if answer == b"N":
        raise StarttlsUnsupported("the server answered the SSLRequest with N: no SSL")
    if answer == b"E":
        rest = bytes(wire.buffer)
        msg = f"the server answered the SSLRequest with an error: {shown(answer + rest)}"
        raise StarttlsUnsupported(msg)
    if answer != b"S":
        msg = f"expected S or N in answer to the SSLRequest, the server sent: {shown(answer)}"
        raise StarttlsError(msg)
    wire.go_ahead(answer)


_CLIENT_LONG_PASSWORD = 0x1
_CLIENT_PROTOCOL_41 = 0x200
_CLIENT_SSL = 0x800
_CLIENT_SECURE_CONNECTION = 0x8000
_MYSQL_CAPABILITIES = (
    _CLIENT_LONG_PASSWORD | _CLIENT_PROTOCOL_41 | _CLIENT_SSL | _CLIENT_SECURE_CONNECTION
)
_UTF8MB4_GENERAL_CI = 45


async def mysql(wire: Wire, domain: str) -> None:
    """The MySQL (and MariaDB) protocol: the server's Handshake v10 packet with CLIENT_SSL
    among its capabilities, then the client's SSLRequest packet, numbered after it."""
    header = await wire.exactly(4)
    length = int.from_bytes(header[:3], "little")
    sequence = header[3]
    if length > MAX_PREAMBLE or length < 1:
        msg = f"expected a MySQL handshake packet, the server sent: {shown(header)}"
        raise StarttlsError(msg)
    payload = await wire.exactly(length)
    if payload[0] == 0xFF:  # an ERR packet: "Host ... is not allowed to connect", "Too many"
        msg = f"the server refused the connection: {shown(payload[3:])}"
        raise StarttlsError(msg)
    if payload[0] != 10:
        msg = f"expected a MySQL handshake packet (v10), the server sent: {shown(header + payload)}"
        raise StarttlsError(msg)
    version_end = payload.find(b"\x00", 1)
    at = version_end + 1 + 4 + 8 + 1  # connection id, auth-plugin-data-part-1, filler
    if version_end < 0 or len(payload) < at + 2:
        msg = f"a truncated MySQL handshake packet: {shown(payload)}"
        raise StarttlsError(msg)
    capabilities = int.from_bytes(payload[at : at + 2], "little")
    if len(payload) >= at + 7:
        capabilities |= int.from_bytes(payload[at + 5 : at + 7], "little") << 16
    version = shown(payload[1:version_end], 60)
    if not capabilities & _CLIENT_SSL:
        msg = (
            f"the server ({version}) does not offer CLIENT_SSL (capabilities 0x{capabilities:08x})"
        )
        raise StarttlsUnsupported(msg)
    wire.go_ahead(header + payload)
    ours = _MYSQL_CAPABILITIES & (capabilities | _CLIENT_SSL)
    request = struct.pack("<IIB23x", ours, 1 << 24, _UTF8MB4_GENERAL_CI)
    await wire.send(len(request).to_bytes(3, "little") + bytes([(sequence + 1) & 0xFF]) + request)


#: The ALPN protocols offered after a protocol's preamble, as its own clients offer them:
#: ``postgresql`` as libpq 17 does (``h2`` means nothing to a database); a mail, chat or
#: directory client offers none, and neither does pinscan there.
ALPN: dict[str, tuple[str, ...]] = {"postgres": ("postgresql",)}

#: Each protocol of :data:`pinscan.records.STARTTLS` and its negotiator.
NEGOTIATORS: dict[str, Callable[[Wire, str], Awaitable[None]]] = {
    "smtp": smtp,
    "submission": smtp,
    "imap": imap,
    "pop3": pop3,
    "ftp": ftp,
    "xmpp": _xmpp("jabber:client"),
    "xmpp-server": _xmpp("jabber:server"),
    "ldap": ldap,
    "postgres": postgres,
    "mysql": mysql,
}


async def negotiate(protocol: str, wire: Wire, domain: str) -> None:
    """Speak ``protocol``'s preamble over ``wire`` (a connected non-blocking socket) up to the
    server's go-ahead; ``domain`` is the server's name (XMPP's ``to``). The next byte on the
    socket is then the server's first TLS byte. The caller bounds the time (a cancel scope);
    ``wire.received`` says how much arrived, whatever happened."""
    await NEGOTIATORS[protocol](wire, domain)
