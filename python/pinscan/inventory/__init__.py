# SPDX-License-Identifier: Apache-2.0
"""Scan targets from an inventory: text lines, CSV or Parquet, from a file or stdin, read lazily.

A text line is ``target [sni]``, then an optional ``# comment``. ``target`` is ``host``,
``host:port``, ``ip``, ``ip:port``, ``[v6]``, ``[v6]:port``, a bare IPv6 address (always without a
port: ``2001:db8::1:443`` is one address), or a URL of a TLS scheme, ``https://host[:port][/path]``,
or of a STARTTLS one, ``smtp://mx.example.com`` (:data:`pinscan.records.STARTTLS`; ``starttls``
of :func:`read_inventory` gives the protocol of the lines that are no URL). A target that names
no port is scanned on 443 (``starttls``'s port), or on each of the ``ports`` given to
:func:`read_inventory` (``pinscan scan --port``); a URL's port is its scheme's. ``sni`` is the
name to send instead of the host's.

CSV and Parquet inventories have any sensible subset of the columns ``host``, ``port``, ``sni`` and
``ip`` (``host`` and ``ip`` together: connect to ``ip``, send ``host``), or a ``target`` column that
holds what a text line holds, with an optional ``sni``; other columns are ignored. An optional
``starttls`` column names a row's STARTTLS protocol (``smtp``, ``imap``...: see
:data:`pinscan.records.STARTTLS`) as a URL's scheme would, its default port included. A CSV file
starts with its header row and holds one record per line.

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

The package: :mod:`~pinscan.inventory.grammar` turns one line or row into targets (no I/O),
:mod:`~pinscan.inventory.readers` opens sources and reads text, CSV and Parquet, and
:mod:`~pinscan.inventory.iterator` holds :class:`Inventory`: repeats, stats and strict mode.
"""

from pinscan.inventory.grammar import DEFAULT_PORT, without_userinfo
from pinscan.inventory.iterator import Inventory, InventoryStats, read_inventory
from pinscan.inventory.readers import Format, Source

__all__ = [
    "DEFAULT_PORT",
    "Format",
    "Inventory",
    "InventoryStats",
    "Source",
    "read_inventory",
    "without_userinfo",
]
