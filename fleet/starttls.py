# SPDX-License-Identifier: Apache-2.0
"""In-process STARTTLS servers on loopback: fakes of SMTP, IMAP, POP3, FTP, XMPP, LDAP,
PostgreSQL and MySQL that speak each protocol's preamble as real servers do (replies modelled
on Postfix, Dovecot, vsftpd, Prosody, OpenLDAP, PostgreSQL and MySQL 8), then hand the
connection to the fleet's TLS server (:func:`fleet.servers._tls_accept`) with the test PKI.

:func:`starttls` takes the variations the scanner must tell apart: the server does not offer
TLS (``offer=False``), pipelines bytes after its go-ahead (``inject``: CVE-2011-0411), or sends
a multi-line greeting. What the client sent before TLS is kept in ``Server.said``. Real server
software for some of these protocols is in :mod:`fleet.real` (PostgreSQL, Dovecot, slapd, Exim).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import struct
from collections.abc import Iterator

from fleet import pki
from fleet.servers import Server, _tls_accept, serve, server_context

TLS_NS = b"urn:ietf:params:xml:ns:xmpp-tls"
LDAP_STARTTLS_OID = b"1.3.6.1.4.1.1466.20037"


async def _line(reader: asyncio.StreamReader, server: Server) -> bytes:
    line = await reader.readline()
    if not line:
        raise ConnectionResetError
    server.said.append(line)
    return line.rstrip(b"\r\n")


async def _smtp(server: Server, reader, writer, offer: bool, inject: bytes) -> bool:
    writer.write(b"220-mx.test ESMTP Postfix (Debian/GNU)\r\n220 mx.test ready\r\n")
    while True:
        command = (await _line(reader, server)).upper()
        if command.startswith(b"EHLO"):
            keywords = [b"mx.test", b"PIPELINING", b"SIZE 10240000", b"ETRN"]
            keywords += [b"STARTTLS"] if offer else []
            keywords += [b"ENHANCEDSTATUSCODES", b"8BITMIME", b"DSN", b"CHUNKING"]
            lines = [b"250-" + k for k in keywords[:-1]] + [b"250 " + keywords[-1]]
            writer.write(b"\r\n".join(lines) + b"\r\n")
        elif command == b"STARTTLS" and offer:
            writer.write(b"220 2.0.0 Ready to start TLS\r\n" + inject)
            return True
        elif command == b"STARTTLS":
            writer.write(b"502 5.5.1 Error: command not implemented\r\n")
        elif command == b"QUIT":
            writer.write(b"221 2.0.0 Bye\r\n")
            return False
        else:
            writer.write(b"502 5.5.2 Error: command not recognized\r\n")


async def _imap(server: Server, reader, writer, offer: bool, inject: bytes) -> bool:
    capabilities = b"IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+"
    capabilities += b" STARTTLS LOGINDISABLED" if offer else b" AUTH=PLAIN"
    writer.write(b"* OK Dovecot (Debian) ready.\r\n")  # no capabilities: the client asks
    while True:
        tag, _, command = (await _line(reader, server)).partition(b" ")
        command = command.upper()
        if command == b"CAPABILITY":
            writer.write(b"* CAPABILITY " + capabilities + b"\r\n" + tag + b" OK done.\r\n")
        elif command == b"STARTTLS" and offer:
            writer.write(tag + b" OK Begin TLS negotiation now.\r\n" + inject)
            return True
        elif command == b"LOGOUT":
            writer.write(b"* BYE Logging out\r\n" + tag + b" OK Logout completed.\r\n")
            return False
        else:
            writer.write(tag + b" BAD Error in IMAP command: Unknown command.\r\n")


async def _pop3(server: Server, reader, writer, offer: bool, inject: bytes) -> bool:
    writer.write(b"+OK Dovecot (Debian) ready.\r\n")
    while True:
        command = (await _line(reader, server)).upper()
        if command == b"CAPA":
            lines = [b"+OK", b"CAPA", b"TOP", b"UIDL", b"RESP-CODES", b"PIPELINING"]
            lines += [b"STLS"] if offer else [b"USER"]
            writer.write(b"\r\n".join([*lines, b"."]) + b"\r\n")
        elif command == b"STLS" and offer:
            writer.write(b"+OK Begin TLS negotiation now.\r\n" + inject)
            return True
        elif command == b"QUIT":
            writer.write(b"+OK Logging out.\r\n")
            return False
        else:
            writer.write(b"-ERR Unknown command.\r\n")


async def _ftp(server: Server, reader, writer, offer: bool, inject: bytes) -> bool:
    writer.write(
        b"220-Welcome to the test FTP service.\r\n Lines of free text\r\n220 (vsFTPd 3.0.3)\r\n"
    )
    while True:
        command = (await _line(reader, server)).upper()
        if command == b"AUTH TLS" and offer:
            writer.write(b"234 Proceed with negotiation.\r\n" + inject)
            return True
        if command.startswith(b"AUTH"):
            writer.write(b"530 Please login with USER and PASS.\r\n")
        elif command == b"QUIT":
            writer.write(b"221 Goodbye.\r\n")
            return False
        else:
            writer.write(b"500 Unknown command.\r\n")


def _xmpp(namespace: bytes):
    async def handle(server: Server, reader, writer, offer: bool, inject: bytes) -> bool:
        opening = await reader.readuntil(b"version='1.0'>")
        server.said.append(opening)
        to = re.search(rb"to='([^']*)'", opening)
        domain = to.group(1) if to else b""
        features = b"<starttls xmlns='" + TLS_NS + b"'><required/></starttls>" if offer else b""
        features += (
            b"<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism>"
            b"</mechanisms>"
        )
        writer.write(
            b"<?xml version='1.0'?><stream:stream xmlns='" + namespace + b"' "
            b"xmlns:stream='http://etherx.jabber.org/streams' id='a1b2' from='" + domain + b"' "
            b"version='1.0' xml:lang='en'><stream:features>" + features + b"</stream:features>"
        )
        request = await reader.readuntil(b"/>")
        server.said.append(request)
        if b"<starttls" in request and offer:
            writer.write(b"<proceed xmlns='" + TLS_NS + b"'/>" + inject)
            return True
        writer.write(b"<failure xmlns='" + TLS_NS + b"'/></stream:stream>")
        return False

    return handle


def _ber(tag: int, contents: bytes) -> bytes:
    length = len(contents)
    if length < 0x80:
        return bytes([tag, length]) + contents
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + contents


async def _ldap(server: Server, reader, writer, offer: bool, inject: bytes) -> bool:
    head = await reader.readexactly(2)
    request = head + await reader.readexactly(head[1])
    server.said.append(request)
    ok = offer and LDAP_STARTTLS_OID in request
    result, message = (0, b"") if ok else (2, b"unsupported extended operation")
    response = _ber(0x0A, bytes([result])) + _ber(0x04, b"") + _ber(0x04, message)
    if ok:
        response += _ber(0x8A, LDAP_STARTTLS_OID)  # responseName, as OpenLDAP sends it
    writer.write(_ber(0x30, _ber(0x02, b"\x01") + _ber(0x78, response)) + inject)
    return ok


async def _postgres(server: Server, reader, writer, offer: bool, inject: bytes) -> bool:
    request = await reader.readexactly(8)
    server.said.append(request)
    if request != struct.pack("!II", 8, 80877103):
        return False
    writer.write((b"S" if offer else b"N") + inject)
    return offer


async def _mysql(server: Server, reader, writer, offer: bool, inject: bytes) -> bool:
    capabilities = 0xDFFFF7FF | (0x800 if offer else 0)  # CLIENT_SSL is 0x800
    payload = (
        b"\x0a8.0.36\x00" + struct.pack("<I", 42) + b"abcdefgh\x00"
        + struct.pack("<H", capabilities & 0xFFFF) + b"\xff" + struct.pack("<H", 2)
        + struct.pack("<H", capabilities >> 16) + b"\x15" + b"\x00" * 10
        + b"ijklmnopqrst\x00" + b"caching_sha2_password\x00"
    )  # fmt: skip
    writer.write(len(payload).to_bytes(3, "little") + b"\x00" + payload + inject)
    if not offer:
        with contextlib.suppress(asyncio.IncompleteReadError):
            server.said.append(await reader.read(65536))
        return False
    header = await reader.readexactly(4)
    length, sequence = int.from_bytes(header[:3], "little"), header[3]
    request = await reader.readexactly(length)
    server.said.append(header + request)
    client_caps = struct.unpack("<I", request[:4])[0]
    # The SSL request answers the greeting (sequence 0): it is packet 1, and asks for SSL.
    return length == 32 and sequence == 1 and bool(client_caps & 0x800)


PROTOCOLS = {
    "smtp": _smtp,
    "submission": _smtp,
    "imap": _imap,
    "pop3": _pop3,
    "ftp": _ftp,
    "xmpp": _xmpp(b"jabber:client"),
    "xmpp-server": _xmpp(b"jabber:server"),
    "ldap": _ldap,
    "postgres": _postgres,
    "mysql": _mysql,
}


@contextlib.contextmanager
def starttls(
    protocol: str,
    issued: pki.Issued | None = None,
    *,
    offer: bool = True,
    inject: bytes = b"",
    alpn: tuple[str, ...] = (),
) -> Iterator[Server]:
    """A ``protocol`` server (a name of :data:`PROTOCOLS`) presenting ``issued`` (by default a
    leaf for ``mail.test``) after its go-ahead; ``offer=False``: it does not offer TLS;
    ``inject``: bytes it sends right after its go-ahead, in the same write; ``alpn``: the
    protocols it selects from when the client offers any."""
    issued = issued or pki.leaf("mail.test")
    context = server_context(issued, alpn=alpn)

    async def handle(server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        if await PROTOCOLS[protocol](server, reader, writer, offer, inject):
            await _tls_accept(server, reader, writer, context)
        else:
            await writer.drain()
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while await reader.read(65536):
                    pass

    with serve(f"starttls_{protocol}", handle) as server:
        server.chain = issued.chain_der
        yield server
