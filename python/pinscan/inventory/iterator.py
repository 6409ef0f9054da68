# SPDX-License-Identifier: Apache-2.0
"""The :class:`Inventory` iterator: one pass over a source, each distinct target once, with its
stats, and strict mode's checking pass."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import IO, Any, cast

from pinscan.errors import ConfigError, InputError, InventoryError
from pinscan.inventory.grammar import DEFAULT_PORT, quoted
from pinscan.inventory.readers import Format, Source, format_of, opened, read_items, source_name
from pinscan.records import STARTTLS, BadTarget, Target


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
        ports: tuple[int, ...] | None = None,
        starttls: str | None = None,
    ) -> None:
        self.name = source_name(source)
        self.format = format_of(source, format)
        self.strict = strict
        self.starttls = _starttls(starttls)
        if ports is None:
            ports = (STARTTLS[self.starttls] if self.starttls else DEFAULT_PORT,)
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
            with opened(source, seekable=spool) as file:
                if self.strict:
                    start = file.tell()
                    self.total = self._check(file)
                    file.seek(start)
                items = read_items(file, self.format, self.name, self.ports, self.starttls)
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

    def _check(self, file: IO[bytes]) -> int:
        """Strict mode's first pass: the number of distinct targets, or the first bad line."""
        seen = _KeySet()
        total = 0
        for item in read_items(file, self.format, self.name, self.ports, self.starttls):
            if isinstance(item, BadTarget):
                raise InventoryError(self.name, item.line, f"{quoted(item.target)}: {item.error}")
            total += seen.add(item.key)
        return total


def read_inventory(
    source: Source,
    *,
    format: Format | None = None,
    strict: bool = False,
    ports: tuple[int, ...] | None = None,
    starttls: str | None = None,
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
        one target per port, in this order; by default 443, or ``starttls``'s port. A URL's
        port is its scheme's (``https://``: 443, ``smtp://``: 25).
    starttls
        The protocol spoken before TLS (a name of :data:`pinscan.records.STARTTLS`: ``smtp``,
        ``imap``...) on every line that does not name its own with a URL scheme
        (``smtp://host``, ``https://host``); ``None``: TLS from the first byte.

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
    >>> next(inventory)  # doctest: +NORMALIZE_WHITESPACE
    Target(line=1, target='Example.COM.', host='example.com', port=443, sni='example.com',
           ip=None, starttls=None)
    >>> target = next(inventory)
    >>> target.host, target.port, target.sni
    ('10.0.0.1', 8443, 'api.example.com')
    >>> next(inventory)  # line 3 repeats line 1
    BadTarget(line=4, target='x:99999', error='port 99999 is out of range (1-65535)')
    >>> inventory.stats
    InventoryStats(targets=2, duplicates=1, bad=1)
    """
    return Inventory(source, format=format, strict=strict, ports=ports, starttls=starttls)


def _starttls(protocol: Any) -> str | None:
    if protocol is not None and protocol not in STARTTLS:
        msg = f"must be None or one of {', '.join(STARTTLS)}, not {protocol!r}"
        raise ConfigError("starttls", msg)
    return protocol


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
