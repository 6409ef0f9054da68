# SPDX-License-Identifier: Apache-2.0
"""Inventories: every text syntax, CSV and Parquet columns, bad lines with their numbers, repeats,
strict mode, stdin and pipes, bytes that are not UTF-8, and flat memory over a million lines."""

from __future__ import annotations

import doctest
import gc
import gzip
import hashlib
import io
import ipaddress
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinscan.errors import ConfigError, InputError, InventoryError, PinscanError
from pinscan.inventory import Inventory, InventoryStats, grammar, iterator, read_inventory, readers
from pinscan.records import BadTarget, Target


def read(data: bytes, **options: object) -> list[Target | BadTarget]:
    with read_inventory(io.BytesIO(data), **options) as inventory:  # type: ignore[arg-type]
        return list(inventory)


def one(line: str) -> Target | BadTarget:
    [item] = read(line.encode() + b"\n")
    return item


def target(line: str) -> Target:
    item = one(line)
    assert isinstance(item, Target), item
    return item


def error(line: str) -> str:
    item = one(line)
    assert isinstance(item, BadTarget), item
    return item.error


# --- text lines -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "host", "port", "sni"),
    [
        ("example.com", "example.com", 443, "example.com"),
        ("example.com:8443", "example.com", 8443, "example.com"),
        ("Example.COM.", "example.com", 443, "example.com"),
        ("WWW.Example.Com.:1", "www.example.com", 1, "www.example.com"),
        ("localhost", "localhost", 443, "localhost"),
        ("_dmarc.my_host.example", "_dmarc.my_host.example", 443, "_dmarc.my_host.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example", 443, "xn--bcher-kva.example"),
        ("bücher.example", "xn--bcher-kva.example", 443, "xn--bcher-kva.example"),
        ("BÜCHER.example:444", "xn--bcher-kva.example", 444, "xn--bcher-kva.example"),
        ("例え.テスト", "xn--r8jz45g.xn--zckzah", 443, "xn--r8jz45g.xn--zckzah"),
        ("10.0.0.1", "10.0.0.1", 443, None),
        ("10.0.0.1:65535", "10.0.0.1", 65535, None),
        ("[2001:db8::1]:8443", "2001:db8::1", 8443, None),
        ("[2001:DB8:0:0::1]", "2001:db8::1", 443, None),
        ("::1", "::1", 443, None),
        ("2001:db8::1", "2001:db8::1", 443, None),
        # Ambiguous, and read as the text says: one address, the default port.
        ("2001:db8::1:443", "2001:db8::1:443", 443, None),
        ("fe80::1%eth0", "fe80::1%eth0", 443, None),
        ("[fe80::1%eth0]:8443", "fe80::1%eth0", 8443, None),
        ("127.0.0.1:8443 api.example.com", "127.0.0.1", 8443, "api.example.com"),
        ("[::1]:8443 API.Example.com.", "::1", 8443, "api.example.com"),
        ("example.com other.example", "example.com", 443, "other.example"),
        ("example.com:8443\tother.example", "example.com", 8443, "other.example"),
        ("https://example.com", "example.com", 443, "example.com"),
        ("HTTPS://Example.com:8443/a/b?c=d#e", "example.com", 8443, "example.com"),
        ("https://example.com/#not-a-comment", "example.com", 443, "example.com"),
        ("https://user:secret@example.com:9443", "example.com", 9443, "example.com"),
        ("https://[2001:db8::1]:8443/", "2001:db8::1", 8443, None),
        ("https://10.0.0.1/ api.example.com", "10.0.0.1", 443, "api.example.com"),
        ("wss://example.com/socket", "example.com", 443, "example.com"),
        ("imaps://mail.example.com", "mail.example.com", 993, "mail.example.com"),
        ("ldaps://ldap.example.com", "ldap.example.com", 636, "ldap.example.com"),
    ],
)
def test_text_syntax(line: str, host: str, port: int, sni: str | None) -> None:
    t = target(line)
    assert (t.line, t.host, t.port, t.sni, t.ip) == (1, host, port, sni, None)
    assert t.target == line.replace("user:secret@", "")  # no password is kept


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("example.com:70000", "port 70000 is out of range (1-65535)"),
        ("example.com:0", "port 0 is out of range (1-65535)"),
        ("example.com:99999999999999999999", "is out of range"),
        ("example.com:", "empty port"),
        ("example.com:https", "port `https` is not a number"),
        ("example.com:+443", "port `+443` is not a number"),
        ("example.com:٤٤٣", "not a number"),  # Arabic-Indic digits, which `int` would take
        ("[::1]:0", "port 0 is out of range"),
        ("*.example.com", "is a wildcard"),
        ("a..example", "has an empty label"),
        (".example", "has an empty label"),
        ("-a.example", "starts or ends with `-`"),
        ("a-.example", "starts or ends with `-`"),
        ("a" * 64 + ".example", "label longer than 63 characters"),
        (".".join(["a" * 63] * 4), "longer than 253 characters"),
        ("exa mple.com:443 x y", "found 4 fields"),
        ("ex%ample.com", "invalid character '%'"),
        ("a#b.example", "invalid character '#'"),
        ("host\x00.example", "invalid character '\\x00'"),
        ("256.1.1.1", "not a valid IPv4 address (Octet 256"),
        ("010.0.0.1", "not a valid IPv4 address (Leading zeros"),
        ("127.1", "not a valid IPv4 address (Expected 4 octets"),
        ("0x7f.1", "cannot end in a numeric label"),
        ("example.123", "cannot end in a numeric label"),
        ("1.2.3.4 5.6.7.8", "SNI `5.6.7.8` is an IP address; RFC 6066"),
        ("example.com ::1", "SNI `::1` is an IP address"),
        ("example.com [::1]", "SNI `[::1]` is an IP address"),
        ("example.com *.example.com", "SNI `*.example.com` is a wildcard"),
        ("example.com other.example:443", "SNI `other.example:443` has an invalid character ':'"),
        ("example.com:443:1", "neither `host:port` nor an IPv6 address"),
        ("1:2:3", "neither `host:port` nor an IPv6 address"),
        ("[::1", "opens `[` without closing it"),
        ("[::1]443", "expected `:port` after `]`"),
        ("[example.com]:443", "`[example.com]` is not an IPv6 address"),
        ("http://example.com", "`http://` is not a TLS URL scheme"),
        ("gopher://example.com", "`gopher://` is not a TLS URL scheme"),
        ("https://", "URL without a host"),
        ("https:///path", "URL without a host"),
        ("https://example.com:0/", "port 0 is out of range"),
        ("xn--a.\udcff", "not valid UTF-8"),
    ],
)
def test_bad_lines_say_why(line: str, reason: str) -> None:
    data = line.encode("utf-8", "surrogateescape") + b"\n"
    [item] = read(data)
    assert isinstance(item, BadTarget), item
    assert reason in item.error
    assert item.line == 1


def test_blank_lines_comments_and_line_numbers() -> None:
    data = textwrap.dedent(
        """\
        # inventory of the web fleet

        web1.example.com   # the old one
        \t
           # indented comment
        web2.example.com:8443 # no space needed before the port
        web3.example.com#not-a-comment
        10.0.0.1:443 web4.example.com\t# pinned
        """
    ).encode()
    items = read(data)
    assert [(i.line, i.target) for i in items] == [
        (3, "web1.example.com"),
        (6, "web2.example.com:8443"),
        (7, "web3.example.com#not-a-comment"),
        (8, "10.0.0.1:443 web4.example.com"),
    ]
    assert [type(i) for i in items] == [Target, Target, BadTarget, Target]
    assert items[3] == Target(
        8, "10.0.0.1:443 web4.example.com", "10.0.0.1", 443, "web4.example.com"
    )


def test_bad_target_keeps_the_whole_line_and_reading_goes_on() -> None:
    items = read(b"good.example\n  bad.example:70000  # why\ngood2.example\n")
    assert items[1] == BadTarget(
        2, "bad.example:70000  # why", "port 70000 is out of range (1-65535)"
    )
    assert [i.line for i in items] == [1, 2, 3]


def test_crlf_line_ends_and_byte_order_mark() -> None:
    items = read(b"\xef\xbb\xbfa.example\r\nb.example:8443\r\n\r\n")
    assert [(i.host, i.port) for i in items if isinstance(i, Target)] == [
        ("a.example", 443),
        ("b.example", 8443),
    ]


def test_bytes_that_are_not_utf8_spoil_their_line_only() -> None:
    data = (
        b"caf\xe9.example\nok.example  # caf\xe9 in a comment is harmless\n\xff\xfe\nnext.example\n"
    )
    items = read(data)
    assert [type(i) for i in items] == [BadTarget, Target, BadTarget, Target]
    assert items[0] == BadTarget(1, "caf\\xe9.example", "line is not valid UTF-8 (byte 0xe9)")
    assert items[2].line == 3 and "byte 0xff" in items[2].error
    # The escaped text can be stored: Arrow strings must be valid UTF-8.
    assert all(i.target.encode() for i in items)


def test_an_over_long_line_is_reported_without_being_kept() -> None:
    long_line = b"a" * (3 * 65536 + 17)
    items = read(b"first.example\n" + long_line + b"\nlast.example\n")
    assert [i.line for i in items] == [1, 2, 3]
    assert isinstance(items[1], BadTarget)
    assert items[1].error == "line is longer than 65536 bytes"
    assert len(items[1].target) < 100
    assert isinstance(items[2], Target) and items[2].host == "last.example"


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (gzip.compress(b"example.com\n"), "gzip-compressed"),
        (b"PAR1\x15\x04", "a Parquet file"),
        (b"PK\x03\x04rest", "a zip archive"),
    ],
)
def test_binary_input_is_refused_with_its_kind(data: bytes, what: str) -> None:
    with pytest.raises(InputError, match=f"not a text inventory: {what}"):
        read_inventory(io.BytesIO(data))


# --- repeats --------------------------------------------------------------------------------


def test_repeats_are_yielded_once_and_counted() -> None:
    data = b"""example.com
Example.COM.
example.com:443
https://example.com/path
example.com other.example
example.com:8443
[2001:db8::1]:443
2001:DB8:0::1
bad:0
bad:0
"""
    with read_inventory(io.BytesIO(data)) as inventory:
        items = list(inventory)
    assert [i.line for i in items] == [1, 5, 6, 7, 9, 10]
    # A different SNI or port is a different target; bad lines are all reported.
    assert [i.sni for i in items[:3]] == ["example.com", "other.example", "example.com"]
    assert inventory.stats == InventoryStats(targets=4, duplicates=4, bad=2)


def test_stats_are_live_while_reading() -> None:
    inventory = read_inventory(io.BytesIO(b"a.example\na.example\nb.example\n"))
    assert inventory.stats == InventoryStats()
    next(inventory)
    assert inventory.stats.targets == 1
    next(inventory)
    assert inventory.stats == InventoryStats(targets=2, duplicates=1)
    assert list(inventory) == []


def test_key_set_tells_new_from_seen() -> None:
    seen = iterator._KeySet()
    keys = [f"h{i}.example\x1f443\x1fh{i}.example\x1f" for i in range(20000)]
    assert all(seen.add(key) for key in keys)
    assert not any(seen.add(key) for key in keys)


def test_key_set_ignores_a_digest_found_across_two_entries() -> None:
    seen = iterator._KeySet()
    digest = hashlib.blake2b(b"new.example", digest_size=8).digest()
    bucket = seen._buckets[int.from_bytes(digest[:2])]
    # Two stored entries whose bytes hold the new entry at offset 3, straddling them.
    bucket += b"\x00\x00\x00" + digest[2:] + b"\x00\x00\x00"
    assert seen.add("new.example")
    assert not seen.add("new.example")
    assert len(bucket) == 18


# --- sources --------------------------------------------------------------------------------


def test_path_str_and_pathlike(tmp_path: Path) -> None:
    path = tmp_path / "fleet.txt"
    path.write_bytes(b"a.example\n")
    for source in (path, str(path)):
        with read_inventory(source) as inventory:
            assert [t.host for t in inventory] == ["a.example"]
            assert inventory.name == str(path)


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(b"a.example\nb.example:8443 c.example\n"))
    monkeypatch.setattr(sys, "stdin", stdin)
    with read_inventory("-") as inventory:
        assert inventory.name == "<stdin>" and inventory.format == "text"
        assert [(t.host, t.port, t.sni) for t in inventory] == [
            ("a.example", 443, "a.example"),
            ("b.example", 8443, "c.example"),
        ]
    assert not stdin.closed


def test_file_objects_are_read_and_left_open(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"host\na.example\n")
    with open(path, "rb") as file:
        with read_inventory(file) as inventory:
            # The name of an open file decides its format, as a path's would.
            assert inventory.format == "csv"
            assert [t.host for t in inventory] == ["a.example"]
        assert not file.closed


def test_text_mode_file_objects_are_refused() -> None:
    with pytest.raises(InputError, match="open it in binary mode"):
        read_inventory(io.StringIO("a.example\n"))  # type: ignore[arg-type]


def test_unopenable_sources_raise_input_error_at_once(tmp_path: Path) -> None:
    with pytest.raises(InputError) as missing:
        read_inventory(tmp_path / "missing.txt")
    assert missing.value.source == str(tmp_path / "missing.txt")
    assert "No such file" in missing.value.message
    with pytest.raises(InputError, match="Is a directory"):
        read_inventory(tmp_path)
    with pytest.raises(InputError, match="not a Parquet file"):
        read_inventory(io.BytesIO(b"host\na.example\n"), format="parquet")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.txt"
    path.write_bytes(b"a.example\n")
    path.chmod(0)
    with pytest.raises(InputError, match="Permission denied"):
        read_inventory(path)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.txt", "text"),
        ("a", "text"),
        ("a.csv", "csv"),
        ("A.CSV", "csv"),
        ("a.parquet", "parquet"),
        ("a.pq", "parquet"),
        ("a.csv.txt", "text"),
    ],
)
def test_format_from_suffix(tmp_path: Path, name: str, expected: str) -> None:
    path = tmp_path / name
    if expected == "parquet":
        pl.DataFrame({"host": ["a.example"]}).write_parquet(path)
    else:
        path.write_bytes(b"host\n")
    with read_inventory(path) as inventory:
        assert inventory.format == expected


def test_explicit_format_wins_and_unknown_formats_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "fleet.csv"
    path.write_bytes(b"a.example:8443\n")
    assert [t.port for t in read_inventory(path, format="text")] == [8443]
    with pytest.raises(ValueError, match="`format` must be one of text, csv, parquet"):
        read_inventory(path, format="json")  # type: ignore[arg-type]


def test_closing_early_or_never_iterating_leaks_no_file(tmp_path: Path) -> None:
    path = tmp_path / "fleet.txt"
    path.write_bytes(b"a.example\nb.example\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        half = read_inventory(path)
        next(half)
        unused = read_inventory(path)
        strict = read_inventory(io.BufferedReader(_Pipe(b"a.example\n")), strict=True)
        del half, unused, strict
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    closed = read_inventory(path)
    closed.close()
    closed.close()
    assert list(closed) == []


# --- strict mode ----------------------------------------------------------------------------


class _Pipe(io.RawIOBase):
    """A readable stream that cannot seek, as stdin is when it is a pipe."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        return self._data.readinto(buffer)


def test_strict_raises_for_the_first_bad_line_before_yielding(tmp_path: Path) -> None:
    path = tmp_path / "fleet.txt"
    path.write_bytes(b"a.example\n# fine\nb.example:70000\nc.example:0\n")
    with pytest.raises(InventoryError) as raised:
        read_inventory(path, strict=True)
    exc = raised.value
    assert isinstance(exc, InputError) and isinstance(exc, PinscanError)
    assert (exc.source, exc.line) == (str(path), 3)
    assert str(exc) == (f"{path}: line 3: `b.example:70000`: port 70000 is out of range (1-65535)")


def test_strict_on_a_good_inventory_counts_then_yields(tmp_path: Path) -> None:
    path = tmp_path / "fleet.txt"
    path.write_bytes(b"a.example\nb.example\na.example\n")
    with read_inventory(path, strict=True) as inventory:
        assert inventory.total == 2
        assert [t.line for t in inventory] == [1, 2]
        assert inventory.stats == InventoryStats(targets=2, duplicates=1)
    assert read_inventory(path).total is None


def test_strict_reads_a_pipe_twice_through_a_temporary_file() -> None:
    data = b"a.example\nb.example\n" * 1000 + b"c.example\n"
    with read_inventory(io.BufferedReader(_Pipe(data)), strict=True) as inventory:
        assert inventory.total == 3
        assert [t.host for t in inventory] == ["a.example", "b.example", "c.example"]
    with pytest.raises(InventoryError, match="line 2: "):
        read_inventory(io.BufferedReader(_Pipe(b"a.example\n*.b.example\n")), strict=True)


def test_strict_starts_a_seekable_stream_where_it_was() -> None:
    stream = io.BytesIO(b"not a target: skipped by the caller\na.example\n")
    stream.readline()
    with read_inventory(stream, strict=True) as inventory:
        assert [t.host for t in inventory] == ["a.example"]


# --- CSV ------------------------------------------------------------------------------------


def csv_items(text: str) -> list[Target | BadTarget]:
    return read(textwrap.dedent(text).encode(), format="csv")


def test_csv_columns() -> None:
    items = csv_items(
        """\
        Host , PORT,sni,ip,owner
        a.example,,,,team-a
        b.example,8443,,,team-b
        c.example,,other.example,,
        d.example,,,10.0.0.4,
        e.example,8443,front.example,2001:DB8::5,
        ,,,10.0.0.6,
        ,9443,api.example,10.0.0.7,
        10.0.0.8,,,10.0.0.8,
        "f.example","443",,,"quoted, with a comma"
        """
    )
    assert [(t.line, t.host, t.port, t.sni, t.ip) for t in items] == [
        (2, "a.example", 443, "a.example", None),
        (3, "b.example", 8443, "b.example", None),
        (4, "c.example", 443, "other.example", None),
        (5, "d.example", 443, "d.example", "10.0.0.4"),
        (6, "e.example", 8443, "front.example", "2001:db8::5"),
        (7, "10.0.0.6", 443, None, None),
        (8, "10.0.0.7", 9443, "api.example", None),
        (9, "10.0.0.8", 443, None, None),
        (10, "f.example", 443, "f.example", None),
    ]
    # The target is the record as written.
    assert items[0].target == "a.example,,,,team-a"


def test_csv_ip_only_and_host_only_headers() -> None:
    assert [(t.host, t.sni) for t in csv_items("ip\n10.0.0.1\n[::1]\n")] == [
        ("10.0.0.1", None),
        ("::1", None),
    ]
    assert [i.error for i in csv_items("host\na.example:8443\n")] == [
        "host `a.example:8443` has an invalid character ':'"
    ]


def test_csv_target_column_takes_text_lines() -> None:
    items = csv_items(
        """\
        target,sni,comment
        a.example:8443,,
        10.0.0.1:443 api.example,,
        10.0.0.2,front.example,
        https://b.example/x,,
        10.0.0.3 api.example,other.example,
        ,front.example,
        ,,just a comment
        """
    )
    assert [(i.line, getattr(i, "host", None), getattr(i, "sni", None)) for i in items] == [
        (2, "a.example", "a.example"),
        (3, "10.0.0.1", "api.example"),
        (4, "10.0.0.2", "front.example"),
        (5, "b.example", "b.example"),
        (6, None, None),
        (7, None, None),
    ]
    assert items[4].error == "both the `target` value and the `sni` column name an SNI"
    assert items[5].error == "empty `target`"


def test_csv_bad_rows_keep_their_file_line_numbers() -> None:
    items = csv_items(
        """\
        host,port,ip

        a.example,70000,
        ,,
        b.example,,300.1.1.1
        "c.example,443,
        10.0.0.1,,10.0.0.2
        ,443,
        d.example,,
        """
    )
    assert [(i.line, type(i).__name__) for i in items] == [
        (3, "BadTarget"),
        (5, "BadTarget"),
        (6, "BadTarget"),
        (7, "BadTarget"),
        (8, "BadTarget"),
        (9, "Target"),
    ]
    errors = [i.error for i in items[:5]]
    assert errors[0] == "port 70000 is out of range (1-65535)"
    assert errors[1] == "`ip` `300.1.1.1` is not an IP address"
    assert errors[2].startswith("not a CSV record (")
    assert errors[3] == "`host` 10.0.0.1 and `ip` 10.0.0.2 are different addresses"
    assert errors[4] == "no `host` or `ip`"
    assert items[2].target == '"c.example,443,'


def test_csv_bytes_that_are_not_utf8() -> None:
    data = b"host,owner\ncaf\xe9.example,x\nok.example,Ren\xe9e\n"
    items = read(data, format="csv")
    assert items[0] == BadTarget(2, "caf\\xe9.example,x", "`host` is not valid UTF-8 (byte 0xe9)")
    # In a column pinscan does not read, it does no harm.
    assert isinstance(items[1], Target) and items[1].target == "ok.example,Ren\\xe9e"


def test_csv_from_a_spreadsheet_with_bom_and_crlf() -> None:
    items = read(b"\xef\xbb\xbfhost,port\r\na.example,8443\r\n,\r\n", format="csv")
    assert [(t.host, t.port) for t in items] == [("a.example", 8443)]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            b"10.0.0.1,443\n",
            "no `host`, `ip` or `target` column (the header has `10.0.0.1`, `443`)",
        ),
        (b"name,addr\n", "Hint: the first row names the columns"),
        (b"host,HOST\n", "column `host` appears twice"),
        (b"target,host\n", "a `target` column cannot be combined with `host`, `ip` or `port`"),
        (b'"host\n', "line 1: not a CSV header"),
    ],
)
def test_csv_headers_that_cannot_work(header: bytes, message: str) -> None:
    with pytest.raises(InputError, match=r"^<BytesIO>: ") as raised:
        read_inventory(io.BytesIO(header + b"a.example\n"), format="csv")
    assert message in raised.value.message


def test_csv_empty_file_has_no_targets() -> None:
    assert read(b"", format="csv") == []
    assert read(b"\n\n", format="csv") == []
    assert read(b"host,port\n", format="csv") == []


def test_csv_written_by_polars(tmp_path: Path) -> None:
    path = tmp_path / "fleet.csv"
    pl.DataFrame(
        {
            "host": ["a.example", "b.example", None, "bücher.example"],
            "port": [443, None, 8443, 444],
            "ip": [None, "10.0.0.2", "10.0.0.3", None],
        }
    ).write_csv(path)
    with read_inventory(path) as inventory:
        assert [(t.line, t.host, t.port, t.sni, t.ip) for t in inventory] == [
            (2, "a.example", 443, "a.example", None),
            (3, "b.example", 443, "b.example", "10.0.0.2"),
            (4, "10.0.0.3", 8443, None, None),
            (5, "xn--bcher-kva.example", 444, "xn--bcher-kva.example", None),
        ]


# --- Parquet --------------------------------------------------------------------------------


def test_parquet_columns_and_row_numbers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Small batches, so that row numbers run on across batch boundaries.
    monkeypatch.setattr(readers, "_PARQUET_BATCH", 2)
    path = tmp_path / "fleet.parquet"
    pl.DataFrame(
        {
            "owner": ["x", "y", "z", "w", "v", "u"],
            "Host": ["a.example", "B.example.", None, "a.example", "c.example", None],
            "port": [None, 8443, 443, 443, 70000, None],
            "sni": [None, None, "front.example", None, None, None],
            "ip": [None, "10.0.0.2", "10.0.0.3", None, None, None],
        }
    ).write_parquet(path)
    with read_inventory(path) as inventory:
        items = list(inventory)
    assert [(i.line, type(i).__name__) for i in items] == [
        (1, "Target"),
        (2, "Target"),
        (3, "Target"),
        (5, "BadTarget"),
    ]
    assert items[0] == Target(1, "a.example,,,", "a.example", 443, "a.example")
    assert items[1] == Target(
        2, "B.example.,8443,,10.0.0.2", "b.example", 8443, "b.example", "10.0.0.2"
    )
    assert items[2] == Target(3, ",443,front.example,10.0.0.3", "10.0.0.3", 443, "front.example")
    assert items[3] == BadTarget(5, "c.example,70000,,", "port 70000 is out of range (1-65535)")
    # Row 4 repeats row 1; row 6 is empty.
    assert inventory.stats == InventoryStats(targets=3, duplicates=1, bad=1)


def test_parquet_target_column_and_float_ports(tmp_path: Path) -> None:
    path = tmp_path / "fleet.pq"
    pl.DataFrame({"target": ["a.example:8443", "10.0.0.1 api.example"]}).write_parquet(path)
    assert [(t.host, t.port, t.sni) for t in read_inventory(path)] == [
        ("a.example", 8443, "a.example"),
        ("10.0.0.1", 443, "api.example"),
    ]
    # pandas writes an integer column with missing values as floats.
    path = tmp_path / "floats.parquet"
    pl.DataFrame({"host": ["a.example", "b.example"], "port": [8443.0, 1.5]}).write_parquet(path)
    items = list(read_inventory(path))
    assert items[0].port == 8443
    assert items[1].error == "port `1.5` is not a number"


def test_parquet_binary_column_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "fleet.parquet"
    pl.DataFrame({"host": [b"a.example", b"caf\xe9.example"]}).write_parquet(path)
    items = list(read_inventory(path))
    assert isinstance(items[0], Target) and items[0].host == "a.example"
    assert items[1] == BadTarget(2, "caf\\xe9.example", "`host` is not valid UTF-8 (byte 0xe9)")


def test_parquet_from_a_pipe_and_from_bytes(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    pl.DataFrame({"ip": ["10.0.0.1", "::1"], "port": [1, 2]}).write_parquet(buffer)
    data = buffer.getvalue()
    for source in (io.BytesIO(data), io.BufferedReader(_Pipe(data))):
        with read_inventory(source, format="parquet") as inventory:
            assert [(t.host, t.port) for t in inventory] == [("10.0.0.1", 1), ("::1", 2)]


def test_parquet_without_usable_columns(tmp_path: Path) -> None:
    path = tmp_path / "fleet.parquet"
    pl.DataFrame({"name": ["a.example"]}).write_parquet(path)
    with pytest.raises(InputError, match="no `host`, `ip` or `target` column"):
        read_inventory(path)
    path.write_bytes(b"a.example\n")
    with pytest.raises(InputError, match="not a Parquet file"):
        read_inventory(path)


def test_parquet_strict(tmp_path: Path) -> None:
    path = tmp_path / "fleet.parquet"
    pl.DataFrame({"host": ["a.example", "b.example", "*.c.example"]}).write_parquet(path)
    with pytest.raises(InventoryError, match=r"line 3: `\*.c.example`: host .* is a wildcard"):
        read_inventory(path, strict=True)


# --- ports and passwords --------------------------------------------------------------------


def test_ports_give_a_portless_target_one_target_per_port(tmp_path: Path) -> None:
    data = b"a.test\na.test:8443\nhttps://b.test\n[::1]\nldaps://c.test\n10.0.0.1:25 s.test\n"
    with read_inventory(io.BytesIO(data), ports=(443, 8443)) as inventory:
        got = [(t.line, t.host, t.port) for t in inventory]
    assert got == [
        (1, "a.test", 443),
        (1, "a.test", 8443),  # line 2 names this one again: a repeat
        (3, "b.test", 443),  # a URL's port is its scheme's
        (4, "::1", 443),
        (4, "::1", 8443),
        (5, "c.test", 636),
        (6, "10.0.0.1", 25),
    ]
    assert inventory.stats == InventoryStats(targets=7, duplicates=1, bad=0)
    assert read_inventory(io.BytesIO(data), ports=(1, 2), strict=True).total == 8
    csv = b"host,port\na.test,\nb.test,25\n"
    got = [(t.host, t.port) for t in read(csv, format="csv", ports=(80, 8080))]
    assert got == [("a.test", 80), ("a.test", 8080), ("b.test", 25)]
    path = tmp_path / "fleet.parquet"
    pl.DataFrame({"target": ["a.test", "b.test:9"]}).write_parquet(path)
    assert [(t.host, t.port) for t in read_inventory(path, ports=(7,))] == [
        ("a.test", 7),
        ("b.test", 9),
    ]


@pytest.mark.parametrize("ports", [(), (0,), (65536,), ("443",), (True,), 443, "443"])
def test_ports_out_of_range_are_refused(ports: object) -> None:
    with pytest.raises(ConfigError, match=r"^ports: must be a non-empty tuple of port numbers"):
        read_inventory(io.BytesIO(b"a.test\n"), ports=ports)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ("https://user:pw@example.com", "https://example.com"),
        ("HTTPS://user@example.com:8443/a@b", "HTTPS://example.com:8443/a@b"),
        ("wss://a:b@c:d@example.com/ x.test", "wss://example.com/ x.test"),
        ("https://user:pw@example.com  # a comment", "https://example.com"),
        # Without a scheme, as curl reads it: no host has an `@`.
        ("user:pw@example.com", "example.com"),
        ("user:p@ss@example.com:8443", "example.com:8443"),
        ("127.0.0.1:8443 u:pw@example.com", "127.0.0.1:8443 example.com"),
    ],
)
def test_a_password_in_a_url_is_not_kept(line: str, shown: str) -> None:
    t = target(line)
    assert t.target == shown and "example.com" in (t.host, t.sni)


def test_a_password_in_a_bad_line_or_a_csv_row_is_not_kept() -> None:
    [bad] = read(b"gopher://user:secret@example.com/  # file server\n")
    assert bad == BadTarget(
        1,
        "gopher://example.com/  # file server",
        "`gopher://` is not a TLS URL scheme (use https://, a STARTTLS scheme such as smtp://, or"
        " host:port)",
    )
    [row] = read(b"target,owner\nhttps://u:secret@example.com,ops\n", format="csv")
    assert isinstance(row, Target) and row.target == "https://example.com,ops"


# --- properties -----------------------------------------------------------------------------

# Every example opens an inventory, and so allocates the 65,536 buckets of its key set: fast, but
# on a loaded machine past Hypothesis's 200 ms deadline, a timing assert that fails at random.
untimed = settings(deadline=None)


@untimed
@given(st.binary(max_size=300))
def test_any_bytes_give_targets_or_bad_targets(data: bytes) -> None:
    for format in ("text", "csv"):
        try:
            # `other` is a column pinscan does not read: what lands there must not matter.
            header = b"host,port,other,sni,ip\n"
            items = read(header + data if format == "csv" else data, format=format)
        except InputError as exc:
            # Only a text inventory that starts like a binary file is refused.
            assert format == "text" and "not a text inventory" in exc.message
            continue
        lines = [item.line for item in items]
        assert lines == sorted(set(lines))
        assert all(1 <= line <= data.count(b"\n") + 2 for line in lines)
        for item in items:
            assert isinstance(item, Target | BadTarget)
            item.target.encode()  # no lone surrogates: storable as UTF-8


@untimed
@given(st.text(max_size=80))
def test_any_text_line_gives_one_target_bad_target_or_nothing(line: str) -> None:
    items = read(line.encode("utf-8", "surrogatepass"))
    assert len(items) <= line.count("\n") + line.count("\r") + 1
    for item in items:
        if isinstance(item, Target):
            assert 1 <= item.port <= 65535
            assert item.host == item.host.lower() and item.host.isascii()


LABEL = st.from_regex(r"[a-z0-9_]([a-z0-9_-]{0,20}[a-z0-9_])?", fullmatch=True)
NAME = (
    st.lists(LABEL, min_size=1, max_size=5)
    .map(".".join)
    .filter(lambda name: not grammar._NUMERIC.fullmatch(name.rpartition(".")[2]))
)


@untimed
@given(NAME, st.integers(1, 65535), st.booleans(), st.booleans())
def test_round_trip_of_names(name: str, port: int, upper: bool, dot: bool) -> None:
    written = (name.upper() if upper else name) + ("." if dot else "")
    t = target(f"{written}:{port}")
    assert (t.host, t.port, t.sni) == (name, port, name)
    assert t.key == target(f"{name}:{port}").key
    if port == 443:
        assert t.key == target(name).key


@untimed
@given(st.ip_addresses(), st.integers(1, 65535), NAME)
def test_round_trip_of_addresses(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int, sni: str
) -> None:
    written = f"[{address}]" if address.version == 6 else str(address)
    t = target(f"{written}:{port}")
    assert (t.host, t.port, t.sni) == (str(address), port, None)
    assert target(f"{written}:{port} {sni}").sni == sni


@untimed
@given(st.text(alphabet="aZ09-_.*x:", max_size=30))
def test_the_fast_name_check_agrees_with_the_rules(text: str) -> None:
    def outcome(check: object) -> str:
        try:
            return check(text, "host")  # type: ignore[operator]
        except ValueError as exc:
            return f"error: {exc}"

    fast = outcome(grammar._hostname)
    slow = outcome(grammar._checked_hostname)
    assert fast == slow


# --- memory ---------------------------------------------------------------------------------

_MEASURE = """
import resource, sys
from pinscan.inventory import read_inventory

before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with read_inventory(sys.argv[1]) as inventory:
    for _ in inventory:
        pass
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(inventory.stats.targets, inventory.stats.duplicates, (after - before) // 1024)
"""


def test_a_million_lines_are_streamed_in_flat_memory(tmp_path: Path) -> None:
    # 1,000,000 lines, 26 MB: held whole as strings they would take well over 100 MB, and the
    # targets several hundred. Only the set of seen targets grows: about 7 MB here.
    path = tmp_path / "million.txt"
    with open(path, "w") as file:
        for i in range(1_000_000):
            j = i % 990_000  # the last 10,000 lines repeat the first ones
            file.write(f"h{j}.example.com:{1 + j % 60_000}\n")
    # Peak RSS in a child process (Linux reports KiB): tracemalloc would be exact, but it makes
    # reading a million lines five times slower.
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=110,
    )
    targets, duplicates, growth_mib = map(int, result.stdout.split())
    assert (targets, duplicates) == (990_000, 10_000)
    assert growth_mib < 40, f"peak RSS grew by {growth_mib} MiB"


def test_docstring_examples() -> None:
    result = doctest.testmod(iterator)
    assert result.attempted > 0 and result.failed == 0


def test_inventory_is_an_iterator() -> None:
    inventory = read_inventory(io.BytesIO(b"a.example\n"))
    assert isinstance(inventory, Inventory)
    assert iter(inventory) is inventory
