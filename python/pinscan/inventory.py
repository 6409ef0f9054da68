# SPDX-License-Identifier: Apache-2.0
"""Scan targets from an inventory: text lines, CSV or Parquet, from a file or stdin, read lazily.

A text line is ``target [sni]``, then an optional ``# comment``. ``target`` is ``host``,
``host:port``, ``ip``, ``ip:port``, ``[v6]``, ``[v6]:port``, a bare IPv6 address (always without a
port: ``2001:db8::1:443`` is one address), or a URL of a TLS scheme, ``https://host[:port][/path]``.
A target that names no port is scanned on 443, or on each of the ``ports`` given to
:func:`read_inventory` (``pinscan scan --port``); a URL's port is its scheme's. ``sni`` is the name
to send instead of the host's.

CSV and Parquet inventories have any sensible subset of the columns ``host``, ``port``, ``sni`` and
``ip`` (``host`` and ``ip`` together: connect to ``ip``, send ``host``), or a ``target`` column that
holds what a text line holds, with an optional ``sni``; other columns are ignored. A CSV file starts
with its header row and holds one record per line.

Targets are normalised so that equal targets have equal :attr:`~pinscan.records.Target.key`:
names lowercased, without the root's trailing dot, internationalised names in their ``xn--`` form
(Python's ``idna`` codec, IDNA 2003, which maps ``ß`` to ``ss``: write the ``xn--`` label to scan
an IDNA 2008 name), IPv6 addresses compressed. The SNI defaults to the name; an IP-literal target
sends none unless its line names one, and that must be a name (RFC 6066 section 3 forbids IP
literals in SNI). ``Target.ip`` is set only for a name given with a fixed address (``host`` and
``ip`` columns); an IP-literal target keeps its address in ``host``.

``Target.target`` is what the inventory says: a text line without its comment, a CSV record's line,
a Parquet row's known columns joined by commas; but user information
(``https://user:password@host``, or ``user:password@host`` without a scheme) is left out, there
and in bad lines, so that no password is stored or printed. ``Target.line`` is the 1-based line
number in the file (the row number for Parquet).

A line that cannot be a target becomes a :class:`~pinscan.records.BadTarget` with the reason (and
the whole line, comment included), and reading goes on; in strict mode the first one raises
:class:`~pinscan.errors.InventoryError` before any target is yielded. A target repeated on a later
line is skipped and counted.
"""

from __future__ import annotations

import csv
import encodings.idna
import hashlib
import ipaddress
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, cast

from pinscan.errors import ConfigError, InputError, InventoryError
from pinscan.records import BadTarget, Target

#: The port of a target that names none.
DEFAULT_PORT = 443

Format = Literal["text", "csv", "parquet"]
Source = str | os.PathLike[str] | IO[bytes]

_FORMATS = ("text", "csv", "parquet")
_SUFFIXES: dict[str, Format] = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
# URL schemes whose connections start with the TLS handshake, and their default ports.
_URL_PORTS = {
    "https": 443,
    "wss": 443,
    "ldaps": 636,
    "smtps": 465,
    "ftps": 990,
    "imaps": 993,
    "pop3s": 995,
}
_COLUMNS = ("host", "port", "sni", "ip", "target")
# Signatures of files that are not text, to fail with a reason instead of a stream of bad lines.
_MAGIC = (
    (b"PAR1", "a Parquet file (name it `.parquet`, or give the format)"),
    (b"\x1f\x8b", "gzip-compressed (decompress it, or pipe it to `-`)"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed (decompress it, or pipe it to `-`)"),
    (b"BZh", "bzip2-compressed (decompress it, or pipe it to `-`)"),
    (b"\xfd7zXZ", "xz-compressed (decompress it, or pipe it to `-`)"),
    (b"PK\x03\x04", "a zip archive (export a spreadsheet as CSV)"),
)
# No inventory line is this long. Reading one whole could exhaust memory when a binary file is
# given by mistake, so such a line is reported and the rest of it skipped unread.
_MAX_LINE = 65536
_PARQUET_BATCH = 65536

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


@dataclass(slots=True)
class InventoryStats:
    """Counts for the scan summary, updated while the inventory is read."""

    #: Distinct targets yielded.
    targets: int = 0
    #: Targets skipped because an earlier line gave the same one.
    duplicates: int = 0
    #: Lines yielded as :class:`~pinscan.records.BadTarget`.
    bad: int = 0


class Inventory(Iterator[Target | BadTarget]):
    """The targets of one inventory, in file order, each distinct target once.

    Made by :func:`read_inventory`, which opens the source and checks its header (and, in strict
    mode, every line) before it returns. Iterating reads the source lazily; the file is closed when
    the iteration ends, on :meth:`close`, or when the ``with`` block exits. Not thread-safe: it
    may be read from a worker thread, but from one thread at a time.
    """

    def __init__(
        self,
        source: Source,
        *,
        format: Format | None = None,
        strict: bool = False,
        ports: tuple[int, ...] = (DEFAULT_PORT,),
    ) -> None:
        self.name = _source_name(source)
        self.format = _format(source, format)
        self.strict = strict
        self.ports = _ports(ports)
        self.stats = InventoryStats()
        #: Distinct targets, counted by strict mode's checking pass; ``None`` when not strict.
        self.total: int | None = None
        self._items = self._generate(source)
        # Runs the generator to its first `yield`: the source is opened and checked now, so that
        # errors come from this call and the open file belongs to the generator, which closes it.
        next(self._items)

    def __next__(self) -> Target | BadTarget:
        return cast("Target | BadTarget", next(self._items))

    def __iter__(self) -> Inventory:
        return self

    def __enter__(self) -> Inventory:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the source (idempotent); iterating afterwards yields nothing."""
        self._items.close()

    def _generate(self, source: Source) -> Iterator[Target | BadTarget | None]:
        try:
            spool = self.strict or self.format == "parquet"
            with _opened(source, seekable=spool) as file:
                if self.strict:
                    start = file.tell()
                    self.total = self._check(file)
                    file.seek(start)
                items = self._read(file)
                yield None
                seen = _KeySet()
                for item in items:
                    if isinstance(item, BadTarget):
                        self.stats.bad += 1
                        yield item
                    elif seen.add(item.key):
                        self.stats.targets += 1
                        yield item
                    else:
                        self.stats.duplicates += 1
        except OSError as exc:
            raise InputError(self.name, exc.strerror or str(exc)) from None

    def _read(self, file: IO[bytes]) -> Iterator[Target | BadTarget]:
        if self.format == "parquet":
            return _parquet_items(file, self.name, self.ports)
        _check_magic(file, self.name)
        if self.format == "csv":
            return _csv_items(file, self.name, self.ports)
        return _text_items(file, self.ports)

    def _check(self, file: IO[bytes]) -> int:
        """Strict mode's first pass: the number of distinct targets, or the first bad line."""
        seen = _KeySet()
        total = 0
        for item in self._read(file):
            if isinstance(item, BadTarget):
                raise InventoryError(self.name, item.line, f"{_q(item.target)}: {item.error}")
            total += seen.add(item.key)
        return total


def read_inventory(
    source: Source,
    *,
    format: Format | None = None,
    strict: bool = False,
    ports: tuple[int, ...] = (DEFAULT_PORT,),
) -> Inventory:
    """The targets of an inventory, read lazily, each distinct target once.

    Parameters
    ----------
    source
        A path, ``"-"`` for stdin, or a binary file object (which is left open). A Parquet
        inventory that cannot seek (a pipe) is first copied to a temporary file.
    format
        ``"text"``, ``"csv"`` or ``"parquet"``. By default the suffix decides (``.csv``,
        ``.parquet`` or ``.pq``, anything else is text); stdin is text.
    strict
        Read the whole inventory once before returning, and raise
        :class:`~pinscan.errors.InventoryError` for its first bad line: the scan can then fail
        before any connection. The inventory is then read a second time, as it is iterated; a
        source that cannot seek (stdin from a pipe) is first copied to a temporary file.
    ports
        The ports of a target that names none (``host``, ``[v6]``, a CSV row without ``port``):
        one target per port, in this order. A URL's port is its scheme's (``https://``: 443).

    Returns
    -------
    Inventory
        An iterator of :class:`~pinscan.records.Target` and, for lines that cannot be targets,
        :class:`~pinscan.records.BadTarget`, in file order. Its ``stats`` count targets, duplicates
        and bad lines as they are read; in strict mode ``total`` is the number of targets.

    Raises
    ------
    InputError
        The source cannot be opened or read, is not of its format, or a CSV or Parquet inventory
        has no usable columns.
    InventoryError
        In strict mode, the first bad line.

    Notes
    -----
    Memory stays flat whatever the inventory's size, but for the set of the targets seen, kept to
    skip repeats: 8-byte digests of the keys, about 7 bytes per distinct target plus 4 MB (70 MB
    for 10,000,000 targets). Two targets whose digests collide would be taken as one: the odds are
    about 3 in a million for 10,000,000 targets.

    Examples
    --------
    >>> import io
    >>> data = b"Example.COM.\\n10.0.0.1:8443 api.example.com  # pinned\\nexample.com\\nx:99999\\n"
    >>> inventory = read_inventory(io.BytesIO(data))
    >>> next(inventory)
    Target(line=1, target='Example.COM.', host='example.com', port=443, sni='example.com', ip=None)
    >>> target = next(inventory)
    >>> target.host, target.port, target.sni
    ('10.0.0.1', 8443, 'api.example.com')
    >>> next(inventory)  # line 3 repeats line 1
    BadTarget(line=4, target='x:99999', error='port 99999 is out of range (1-65535)')
    >>> inventory.stats
    InventoryStats(targets=2, duplicates=1, bad=1)
    """
    return Inventory(source, format=format, strict=strict, ports=ports)


def _ports(ports: Any) -> tuple[int, ...]:
    if (
        isinstance(ports, str | bytes)
        or not isinstance(ports, tuple | list)
        or not ports
        or not all(type(p) is int and 1 <= p <= 65535 for p in ports)
    ):
        msg = f"must be a non-empty tuple of port numbers (1-65535), not {ports!r}"
        raise ConfigError("ports", msg)
    return tuple(dict.fromkeys(ports))


class _KeySet:
    """The targets seen so far, as 64-bit BLAKE2b digests of their keys.

    A Python ``set`` of ints costs about 80 bytes an entry; this keeps 6 bytes: the digest's first
    2 bytes choose one of 65,536 buckets and the other 6 are appended to that bucket's bytearray,
    searched by ``bytearray.find`` (a C loop over ~150 entries per bucket at 10 million targets).
    """

    __slots__ = ("_buckets",)

    def __init__(self) -> None:
        self._buckets = [bytearray() for _ in range(1 << 16)]

    def add(self, key: str) -> bool:
        """Add ``key``; whether it was new."""
        digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
        bucket = self._buckets[int.from_bytes(digest[:2])]
        entry = digest[2:]
        found = bucket.find(entry)
        while found >= 0:
            if found % 6 == 0:
                return False
            # A match across two entries: look on.
            found = bucket.find(entry, found + 1)
        bucket += entry
        return True


class _Invalid(ValueError):
    """A value that cannot be part of a target; its message becomes ``BadTarget.error``."""


def _q(text: str) -> str:
    """``text`` quoted for a message, cut short: a bad line may be 64 KiB of garbage."""
    return f"`{text}`" if len(text) <= 80 else f"`{text[:77]}...`"


def _printable(text: str) -> str:
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
        msg = f"{role} {_q(text)} is a wildcard, not a name to connect to"
        raise _Invalid(msg)
    labels = []
    for label in _DOTS.split(name):
        if label.isascii():
            labels.append(label.lower())
            continue
        try:
            labels.append(encodings.idna.ToASCII(label).decode("ascii").lower())
        except UnicodeError as exc:
            msg = f"{role} {_q(text)} is not a valid internationalised name ({exc})"
            raise _Invalid(msg) from None
    name = ".".join(labels)
    bad = _HOST_CHAR.search(name)
    if bad:
        msg = f"{role} {_q(text)} has an invalid character {bad.group()!r}"
        raise _Invalid(msg)
    if len(name) > 253:
        msg = f"{role} {_q(text)} is longer than 253 characters"
        raise _Invalid(msg)
    for label in labels:
        if not label:
            msg = f"{role} {_q(text)} has an empty label"
            raise _Invalid(msg)
        if len(label) > 63:
            msg = f"{role} {_q(text)} has a label longer than 63 characters"
            raise _Invalid(msg)
        if not _LABEL.fullmatch(label):
            msg = f"{role} {_q(text)} has a label that starts or ends with `-`"
            raise _Invalid(msg)
    if _NUMERIC.fullmatch(labels[-1]):
        if _IPV4_SHAPE.fullmatch(name):
            try:
                ipaddress.IPv4Address(name)
            except ValueError as exc:
                msg = f"{role} {_q(text)} is not a valid IPv4 address ({exc})"
                raise _Invalid(msg) from None
        msg = (
            f"{role} {_q(text)} is not a valid IP address, and a name cannot end in a numeric"
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
        msg = f"SNI {_q(text)} is an IP address; RFC 6066 section 3 allows only host names"
        raise _Invalid(msg)
    return _hostname(text, "SNI")


def _port(text: str) -> int:
    if not text:
        msg = "empty port"
        raise _Invalid(msg)
    if not (text.isascii() and text.isdigit()):
        msg = f"port {_q(text)} is not a number"
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
            msg = f"{_q(text)} opens `[` without closing it"
            raise _Invalid(msg)
        try:
            address = str(ipaddress.IPv6Address(inner))
        except ValueError as exc:
            msg = f"`[{inner}]` is not an IPv6 address ({exc})"
            raise _Invalid(msg) from None
        if not rest:
            return address, True, None
        if not rest.startswith(":"):
            msg = f"expected `:port` after `]`, found {_q(rest)}"
            raise _Invalid(msg)
        return address, True, _port(rest[1:])
    if text.count(":") > 1:
        address = _address(text)
        if address is None:
            msg = f"{_q(text)} is neither `host:port` nor an IPv6 address (write `[v6]:port`)"
            raise _Invalid(msg)
        return address, True, None
    host_text, colon, port_text = text.partition(":")
    host, is_ip = _host(host_text)
    return host, is_ip, _port(port_text) if colon else None


def _url(text: str) -> tuple[str, bool, int]:
    scheme, _, rest = text.partition("://")
    default_port = _URL_PORTS.get(scheme.lower())
    if default_port is None:
        msg = f"{_q(scheme + '://')} is not a TLS URL scheme (use https://, or host:port)"
        raise _Invalid(msg)
    # The authority ends at the path, query or fragment; user information before `@` is dropped.
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0].rpartition("@")[2]
    if not authority:
        msg = "URL without a host"
        raise _Invalid(msg)
    host, is_ip, port = _authority(authority)
    return host, is_ip, default_port if port is None else port


def _target(line: int, shown: str, fields: list[str], ports: tuple[int, ...]) -> list[Target]:
    """The targets of the fields of a text line, ``target [sni]``: one, or one per port of
    ``ports`` when the target names no port (a URL's port is its scheme's)."""
    if len(fields) > 2:
        msg = f"expected `target [sni]`, found {len(fields)} fields"
        raise _Invalid(msg)
    value = fields[0]
    if "://" in value:
        host, is_ip, port = _url(value)
    else:
        host, is_ip, port = _authority(value)
    sni = _sni(fields[1]) if len(fields) == 2 else (None if is_ip else host)
    if port is not None or len(ports) == 1:  # the common case, without a loop
        return [Target(line=line, target=shown, host=host, port=port or ports[0], sni=sni)]
    return [Target(line=line, target=shown, host=host, port=p, sni=sni) for p in ports]


def without_userinfo(text: str) -> str:
    """``text`` with user information removed: ``https://user:pw@host/`` keeps ``https://host/``
    and ``user:pw@host`` keeps ``host``, so that no password reaches a dataset or a terminal."""
    return _USERINFO.sub(r"\1", text) if "@" in text else text


def _text_item(line: int, text: str, ports: tuple[int, ...]) -> list[Target] | BadTarget | None:
    """One text line as its targets (one per port of ``ports`` when it names none), a bad
    target, or ``None`` for a blank or comment line."""
    comment = _COMMENT.search(text) if "#" in text else None
    content = without_userinfo((text[: comment.start()] if comment else text).strip())
    if not content:
        return None
    try:
        if not content.isascii():
            _check_decoded(content, "line")
        return _target(line, content, content.split(), ports)
    except _Invalid as exc:
        shown = _printable(without_userinfo(text.strip()))
        return BadTarget(line=line, target=shown, error=str(exc))


def _row_item(
    line: int, shown: str, values: dict[str, str], ports: tuple[int, ...]
) -> list[Target] | BadTarget | None:
    """One CSV or Parquet row (its known columns) as its targets (see :func:`_text_item`), a bad
    target, or ``None`` when it is empty."""
    if not any(values.values()):
        # Spreadsheets export empty rows (`,,,`) after the data.
        return None
    # Undecodable bytes in the columns pinscan does not read do no harm, but are shown escaped.
    shown = _printable(without_userinfo(shown))
    try:
        for name, value in values.items():
            _check_decoded(value, f"`{name}`")
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
            return _target(line, shown, fields, ports)
        return _columns_target(line, shown, values, ports)
    except _Invalid as exc:
        return BadTarget(line=line, target=shown, error=str(exc))


def _columns_target(
    line: int, shown: str, values: dict[str, str], ports: tuple[int, ...]
) -> list[Target]:
    ip = None
    if values.get("ip"):
        ip = _address(values["ip"].removeprefix("[").removesuffix("]"))
        if ip is None:
            msg = f"`ip` {_q(values['ip'])} is not an IP address"
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
        Target(line=line, target=shown, host=host, port=port, sni=sni, ip=ip)
        for port in ((_port(values["port"]),) if values.get("port") else ports)
    ]


def _lines(file: IO[bytes]) -> Iterator[tuple[int, str, bool]]:
    """Numbered lines, with undecodable bytes kept (PEP 383) for the parsers to report, and
    whether each is whole: of a line longer than ``_MAX_LINE`` only the start is kept."""
    number = 0
    while raw := file.readline(_MAX_LINE):
        number += 1
        whole = len(raw) < _MAX_LINE or raw.endswith(b"\n")
        rest = raw
        while rest and not rest.endswith(b"\n") and len(rest) == _MAX_LINE:
            rest = file.readline(_MAX_LINE)
        text = raw.decode("utf-8", "surrogateescape")
        # A byte order mark, as spreadsheets write before CSV headers.
        yield number, text.removeprefix("\ufeff") if number == 1 else text, whole


def _too_long(line: int, text: str) -> BadTarget:
    error = f"line is longer than {_MAX_LINE} bytes"
    return BadTarget(line=line, target=_printable(text[:80].strip()) + "...", error=error)


def _text_items(file: IO[bytes], ports: tuple[int, ...]) -> Iterator[Target | BadTarget]:
    for line, text, whole in _lines(file):
        item = _text_item(line, text, ports) if whole else _too_long(line, text)
        if isinstance(item, list):
            yield from item
        elif item is not None:
            yield item


def _csv_items(
    file: IO[bytes], source: str, ports: tuple[int, ...]
) -> Iterator[Target | BadTarget]:
    """Reads the header now (errors are the caller's) and returns the rows' iterator."""
    lines = _lines(file)
    for line, text, whole in lines:
        if not whole:
            raise InputError(source, f"line {line}: header longer than {_MAX_LINE} bytes")
        if text.strip():
            try:
                header = next(csv.reader([text.rstrip("\r\n")], strict=True))
            except csv.Error as exc:
                raise InputError(source, f"line {line}: not a CSV header ({exc})") from None
            return _csv_rows(lines, _columns(header, source), ports)
    return iter(())


def _csv_rows(
    lines: Iterator[tuple[int, str, bool]], columns: dict[str, int], ports: tuple[int, ...]
) -> Iterator[Target | BadTarget]:
    # One record per line, parsed on its own: a stray quote spoils its line only, and line
    # numbers are the file's.
    for line, text, whole in lines:
        if not whole:
            yield _too_long(line, text)
            continue
        shown = text.strip()
        if not shown:
            continue
        try:
            # Strict, and without the line end, so that a stray quote is an error, not a field
            # that runs to the end of the line.
            row = next(csv.reader([text.rstrip("\r\n")], strict=True))
        except csv.Error as exc:
            yield BadTarget(line=line, target=_printable(shown), error=f"not a CSV record ({exc})")
            continue
        values = {name: row[i].strip() if i < len(row) else "" for name, i in columns.items()}
        item = _row_item(line, shown, values, ports)
        if isinstance(item, list):
            yield from item
        elif item is not None:
            yield item


def _parquet_items(
    file: IO[bytes], source: str, ports: tuple[int, ...]
) -> Iterator[Target | BadTarget]:
    """Reads the schema now (errors are the caller's) and returns the rows' iterator."""
    # Imported here: only Parquet inventories need pyarrow, and it takes a while to import.
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(file)
    except pa.ArrowException as exc:
        raise InputError(source, f"not a Parquet file ({exc})") from None
    names = parquet.schema_arrow.names
    columns = _columns(names, source)
    selected = {name: names[i] for name, i in columns.items()}
    return _parquet_rows(parquet, selected, source, ports)


def _parquet_rows(
    parquet: Any, columns: dict[str, str], source: str, ports: tuple[int, ...]
) -> Iterator[Target | BadTarget]:
    import pyarrow as pa

    names = list(columns.values())
    line = 0
    try:
        for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH, columns=names):
            cells = [batch.column(name).to_pylist() for name in names]
            for row in zip(*cells, strict=True):
                line += 1
                values = {name: _cell(value) for name, value in zip(columns, row, strict=True)}
                item = _row_item(line, ",".join(values.values()), values, ports)
                if isinstance(item, list):
                    yield from item
                elif item is not None:
                    yield item
    except pa.ArrowException as exc:
        raise InputError(source, f"row {line + 1}: cannot read the Parquet file ({exc})") from None


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape").strip()
    if isinstance(value, float) and value.is_integer():
        # Ports become floats in columns written from pandas with missing values.
        return str(int(value))
    return str(value).strip()


def _columns(header: list[str], source: str) -> dict[str, int]:
    """The known columns of a header, by name, with their positions."""
    columns: dict[str, int] = {}
    for index, name in enumerate(header):
        key = name.strip().lower()
        if key in _COLUMNS:
            if key in columns:
                raise InputError(source, f"column `{key}` appears twice")
            columns[key] = index
    if "target" in columns and columns.keys() & {"host", "ip", "port"}:
        msg = "a `target` column cannot be combined with `host`, `ip` or `port`"
        raise InputError(source, msg)
    if not columns.keys() & {"host", "ip", "target"}:
        found = ", ".join(_q(_printable(name)) for name in header[:10])
        msg = (
            f"no `host`, `ip` or `target` column (the header has {found or 'nothing'})"
            "\n\nHint: the first row names the columns, as in `host,port,sni,ip`."
        )
        raise InputError(source, msg)
    return columns


def _check_magic(file: IO[bytes], source: str) -> None:
    if file.seekable():
        start = file.tell()
        head = file.read(8)
        file.seek(start)
    else:
        peek = getattr(file, "peek", None)
        head = peek(8)[:8] if peek else b""
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise InputError(source, f"not a text inventory: {what}")


@contextmanager
def _opened(source: Source, *, seekable: bool) -> Iterator[IO[bytes]]:
    """The source as a binary file, which can seek if ``seekable``; only paths are closed."""
    if isinstance(source, str | os.PathLike) and source != "-":
        with open(source, "rb") as file:
            yield file
        return
    stream = sys.stdin.buffer if source == "-" else cast(IO[bytes], source)
    if isinstance(stream.read(0), str):
        msg = "a text-mode file object: open it in binary mode"
        raise InputError(_source_name(source), msg)
    if seekable and not stream.seekable():
        # A pipe: copied to an anonymous file on disk, not memory, to be read twice or seeked.
        with tempfile.TemporaryFile() as spool:
            shutil.copyfileobj(stream, spool)
            spool.seek(0)
            yield spool
    else:
        yield stream


def _source_name(source: Source) -> str:
    if source == "-":
        return "<stdin>"
    if isinstance(source, str | os.PathLike):
        return os.fsdecode(source)
    name = getattr(source, "name", None)
    return name if isinstance(name, str) else f"<{type(source).__name__}>"


def _format(source: Source, format: Format | None) -> Format:
    if format is not None:
        if format not in _FORMATS:
            msg = f"`format` must be one of {', '.join(_FORMATS)}, not {format!r}"
            raise ValueError(msg)
        return format
    # "-" and stdin's "<stdin>" have no suffix: text.
    name = source if isinstance(source, str | os.PathLike) else getattr(source, "name", "")
    if not isinstance(name, str | os.PathLike):
        return "text"
    return _SUFFIXES.get(Path(name).suffix.lower(), "text")
