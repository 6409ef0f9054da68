# SPDX-License-Identifier: Apache-2.0
"""The target grammar: one text line, or one CSV or Parquet row, as its targets or a bad target.

No I/O here: the readers hand over decoded lines and cells. The grammar itself (hosts, IDNA, IP
literals, ports, TLS URLs, SNI, user information) is described in :mod:`pinscan.inventory`.
"""

from __future__ import annotations

import encodings.idna
import ipaddress
import re

from pinscan.records import STARTTLS, BadTarget, Target

#: The port of a target that names none.
DEFAULT_PORT = 443

# URL schemes whose connections start with the TLS handshake, and their default ports.
_URL_PORTS = {
    "https": 443,
    "wss": 443,
    "ldaps": 636,
    "smtps": 465,
    "ftps": 990,
    "imaps": 993,
    "pop3s": 995,
    "sips": 5061,
}
# URL schemes that speak STARTTLS (pinscan.records.STARTTLS), and other names for them.
_STARTTLS_SCHEMES = {**{name: name for name in STARTTLS}, "postgresql": "postgres"}

_COMMENT = re.compile(r"(?:^|\s)#")
# The user information of a URL (`https://user:password@`), up to the last `@` of its authority,
# or of a word without a scheme (`user:password@host`, as curl takes it): no host has an `@`.
_USERINFO = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://|(?<!\S))[^/?#\s]*@")
# PEP 383: undecodable bytes 0x80-0xff are decoded to lone surrogates U+DC80-U+DCFF.
_UNDECODABLE = re.compile("[\udc80-\udcff]")
_DOTS = re.compile("[.\u3002\uff0e\uff61]")  # the label separators of IDNA (RFC 3490 section 3.1)
_IPV4_SHAPE = re.compile(r"[0-9.]+")
_HOST_CHAR = re.compile(r"[^a-z0-9_.-]")
# RFC 1123 section 2.1, plus `_`: real inventories hold names such as `_dmarc` or `my_host`.
_LABEL_PATTERN = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_LABEL = re.compile(_LABEL_PATTERN)
# getaddrinfo reads a name that ends so as an IPv4 number (inet_aton: `127.1`, `0x7f.1`), and
# RFC 3696 section 2 rules out all-numeric top-level domains.
_NUMERIC = re.compile(r"[0-9]+|0x[0-9a-f]*")
# The label and length rules in one expression, for the common names that follow them; the others
# go through the rules one by one, to learn which is broken.
_NAME = re.compile(rf"(?=.{{1,253}}\Z){_LABEL_PATTERN}(?:\.{_LABEL_PATTERN})*")


class _Invalid(ValueError):
    """A value that cannot be part of a target; its message becomes ``BadTarget.error``."""


def quoted(text: str) -> str:
    """``text`` quoted for a message, cut short: a bad line may be 64 KiB of garbage."""
    return f"`{text}`" if len(text) <= 80 else f"`{text[:77]}...`"


def printable(text: str) -> str:
    """``text`` with its undecodable bytes escaped (``\\xff``), so that Parquet can store it."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _check_decoded(text: str, what: str) -> None:
    bad = _UNDECODABLE.search(text)
    if bad:
        msg = f"{what} is not valid UTF-8 (byte 0x{ord(bad.group()) - 0xDC00:02x})"
        raise _Invalid(msg)


def _address(text: str) -> str | None:
    """The normalised IP address that ``text`` is, or ``None`` when it is not one."""
    # The shape test spares names the cost of two failed `ipaddress` parses.
    if ":" in text or _IPV4_SHAPE.fullmatch(text):
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            return None
    return None


def _hostname(text: str, role: str) -> str:
    """``text`` as a normalised DNS name: lowercase, ASCII, no trailing dot."""
    name = text.removesuffix(".").lower()
    if (
        name.isascii()
        and _NAME.fullmatch(name)
        and not _NUMERIC.fullmatch(name, name.rfind(".") + 1)
    ):
        return name
    return _checked_hostname(text, role)


def _checked_hostname(text: str, role: str) -> str:
    """:func:`_hostname`, rule by rule, with internationalised names and the reason of failures."""
    name = text.removesuffix(".")
    if not name:
        msg = f"empty {role}"
        raise _Invalid(msg)
    if "*" in name:
        msg = f"{role} {quoted(text)} is a wildcard, not a name to connect to"
        raise _Invalid(msg)
    labels = []
    for label in _DOTS.split(name):
        if label.isascii():
            labels.append(label.lower())
            continue
        try:
            labels.append(encodings.idna.ToASCII(label).decode("ascii").lower())
        except UnicodeError as exc:
            msg = f"{role} {quoted(text)} is not a valid internationalised name ({exc})"
            raise _Invalid(msg) from None
    name = ".".join(labels)
    bad = _HOST_CHAR.search(name)
    if bad:
        msg = f"{role} {quoted(text)} has an invalid character {bad.group()!r}"
        raise _Invalid(msg)
    if len(name) > 253:
        msg = f"{role} {quoted(text)} is longer than 253 characters"
        raise _Invalid(msg)
    for label in labels:
        if not label:
            msg = f"{role} {quoted(text)} has an empty label"
            raise _Invalid(msg)
        if len(label) > 63:
            msg = f"{role} {quoted(text)} has a label longer than 63 characters"
            raise _Invalid(msg)
        if not _LABEL.fullmatch(label):
            msg = f"{role} {quoted(text)} has a label that starts or ends with `-`"
            raise _Invalid(msg)
    if _NUMERIC.fullmatch(labels[-1]):
        if _IPV4_SHAPE.fullmatch(name):
            try:
                ipaddress.IPv4Address(name)
            except ValueError as exc:
                msg = f"{role} {quoted(text)} is not a valid IPv4 address ({exc})"
                raise _Invalid(msg) from None
        msg = (
            f"{role} {quoted(text)} is not a valid IP address, and a name cannot end in a numeric"
            " label (resolvers would read it as an IPv4 address)"
        )
        raise _Invalid(msg)
    return name


def _host(text: str) -> tuple[str, bool]:
    """The normalised host, and whether it is an IP literal."""
    address = _address(text)
    if address is not None:
        return address, True
    return _hostname(text, "host"), False


def _sni(text: str) -> str:
    if _address(text.removeprefix("[").removesuffix("]")) is not None:
        msg = f"SNI {quoted(text)} is an IP address; RFC 6066 section 3 allows only host names"
        raise _Invalid(msg)
    return _hostname(text, "SNI")


def _protocol(text: str) -> str:
    """A ``starttls`` cell: a name of :data:`~pinscan.records.STARTTLS` (or ``postgresql``)."""
    protocol = _STARTTLS_SCHEMES.get(text.lower())
    if protocol is None:
        msg = f"`starttls` {quoted(text)} is none of {', '.join(STARTTLS)}"
        raise _Invalid(msg)
    return protocol


def _port(text: str) -> int:
    if not text:
        msg = "empty port"
        raise _Invalid(msg)
    if not (text.isascii() and text.isdigit()):
        msg = f"port {quoted(text)} is not a number"
        raise _Invalid(msg)
    if len(text) > 5 or not 1 <= int(text) <= 65535:
        msg = f"port {text} is out of range (1-65535)"
        raise _Invalid(msg)
    return int(text)


def _authority(text: str) -> tuple[str, bool, int | None]:
    """``host[:port]``, ``[v6][:port]`` or a bare IPv6 address: (host, is IP, port or ``None``
    when it names none)."""
    if text.startswith("["):
        inner, bracket, rest = text[1:].partition("]")
        if not bracket:
            msg = f"{quoted(text)} opens `[` without closing it"
            raise _Invalid(msg)
        try:
            address = str(ipaddress.IPv6Address(inner))
        except ValueError as exc:
            msg = f"`[{inner}]` is not an IPv6 address ({exc})"
            raise _Invalid(msg) from None
        if not rest:
            return address, True, None
        if not rest.startswith(":"):
            msg = f"expected `:port` after `]`, found {quoted(rest)}"
            raise _Invalid(msg)
        return address, True, _port(rest[1:])
    if text.count(":") > 1:
        address = _address(text)
        if address is None:
            msg = f"{quoted(text)} is neither `host:port` nor an IPv6 address (write `[v6]:port`)"
            raise _Invalid(msg)
        return address, True, None
    host_text, colon, port_text = text.partition(":")
    host, is_ip = _host(host_text)
    return host, is_ip, _port(port_text) if colon else None


def _url(text: str) -> tuple[str, bool, int, str | None]:
    """A URL's host, whether it is an IP literal, its port, and its STARTTLS protocol."""
    scheme, _, rest = text.partition("://")
    protocol = _STARTTLS_SCHEMES.get(scheme.lower())
    default_port = STARTTLS[protocol] if protocol else _URL_PORTS.get(scheme.lower())
    if default_port is None:
        msg = (
            f"{quoted(scheme + '://')} is not a TLS URL scheme (use https://, a STARTTLS"
            f" scheme such as smtp://, or host:port)"
        )
        raise _Invalid(msg)
    # The authority ends at the path, query or fragment; user information before `@` is dropped.
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0].rpartition("@")[2]
    if not authority:
        msg = "URL without a host"
        raise _Invalid(msg)
    host, is_ip, port = _authority(authority)
    return host, is_ip, default_port if port is None else port, protocol


def _target(
    line: int,
    shown: str,
    fields: list[str],
    ports: tuple[int, ...],
    starttls: str | None = None,
) -> list[Target]:
    """The targets of the fields of a text line, ``target [sni]``: one, or one per port of
    ``ports`` when the target names no port (a URL's port is its scheme's). ``starttls`` is
    the protocol of a target that is no URL; a URL's is its scheme's."""
    if len(fields) > 2:
        msg = f"expected `target [sni]`, found {len(fields)} fields"
        raise _Invalid(msg)
    value = fields[0]
    if "://" in value:
        host, is_ip, port, starttls = _url(value)
    else:
        host, is_ip, port = _authority(value)
    sni = _sni(fields[1]) if len(fields) == 2 else (None if is_ip else host)
    if port is not None or len(ports) == 1:  # the common case, without a loop
        port = port or ports[0]
        return [Target(line=line, target=shown, host=host, port=port, sni=sni, starttls=starttls)]
    return [
        Target(line=line, target=shown, host=host, port=p, sni=sni, starttls=starttls)
        for p in ports
    ]


def without_userinfo(text: str) -> str:
    """``text`` with user information removed: ``https://user:pw@host/`` keeps ``https://host/``
    and ``user:pw@host`` keeps ``host``, so that no password reaches a dataset or a terminal."""
    return _USERINFO.sub(r"\1", text) if "@" in text else text


def text_item(
    line: int, text: str, ports: tuple[int, ...], starttls: str | None = None
) -> list[Target] | BadTarget | None:
    """One text line as its targets (one per port of ``ports`` when it names none; speaking
    ``starttls`` unless it is a URL), a bad target, or ``None`` for a blank or comment line."""
    comment = _COMMENT.search(text) if "#" in text else None
    content = without_userinfo((text[: comment.start()] if comment else text).strip())
    if not content:
        return None
    try:
        if not content.isascii():
            _check_decoded(content, "line")
        return _target(line, content, content.split(), ports, starttls)
    except _Invalid as exc:
        shown = printable(without_userinfo(text.strip()))
        return BadTarget(line=line, target=shown, error=str(exc))


def row_item(
    line: int,
    shown: str,
    values: dict[str, str],
    ports: tuple[int, ...],
    starttls: str | None = None,
) -> list[Target] | BadTarget | None:
    """One CSV or Parquet row (its known columns) as its targets (see :func:`text_item`), a bad
    target, or ``None`` when it is empty."""
    if not any(values.values()):
        # Spreadsheets export empty rows (`,,,`) after the data.
        return None
    # Undecodable bytes in the columns pinscan does not read do no harm, but are shown escaped.
    shown = printable(without_userinfo(shown))
    try:
        for name, value in values.items():
            _check_decoded(value, f"`{name}`")
        if values.get("starttls"):  # the row's protocol, as a URL's scheme: its port by default
            starttls = _protocol(values["starttls"])
            ports = (STARTTLS[starttls],)
            if "://" in values.get("target", ""):
                msg = "both the `target` URL and the `starttls` column name a protocol"
                raise _Invalid(msg)
        if "target" in values:
            fields = values["target"].split()
            if not fields:
                msg = "empty `target`"
                raise _Invalid(msg)
            if values.get("sni"):
                if len(fields) > 1:
                    msg = "both the `target` value and the `sni` column name an SNI"
                    raise _Invalid(msg)
                fields.append(values["sni"])
            return _target(line, shown, fields, ports, starttls)
        return _columns_target(line, shown, values, ports, starttls)
    except _Invalid as exc:
        return BadTarget(line=line, target=shown, error=str(exc))


def _columns_target(
    line: int, shown: str, values: dict[str, str], ports: tuple[int, ...], starttls: str | None
) -> list[Target]:
    ip = None
    if values.get("ip"):
        ip = _address(values["ip"].removeprefix("[").removesuffix("]"))
        if ip is None:
            msg = f"`ip` {quoted(values['ip'])} is not an IP address"
            raise _Invalid(msg)
    if values.get("host"):
        host, is_ip = _host(values["host"])
        if is_ip:
            if ip not in (None, host):
                msg = f"`host` {host} and `ip` {ip} are different addresses"
                raise _Invalid(msg)
            ip = None
    elif ip is not None:
        host, is_ip, ip = ip, True, None
    else:
        msg = "no `host` or `ip`"
        raise _Invalid(msg)
    sni = _sni(values["sni"]) if values.get("sni") else (None if is_ip else host)
    return [
        Target(line=line, target=shown, host=host, port=port, sni=sni, ip=ip, starttls=starttls)
        for port in ((_port(values["port"]),) if values.get("port") else ports)
    ]
