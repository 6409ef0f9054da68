# SPDX-License-Identifier: Apache-2.0
"""STARTTLS (``pinscan.scanner.starttls``): every protocol's preamble against faithful fakes
(:mod:`fleet.starttls`: in-process servers that speak it, then TLS with the test PKI) and,
where Debian has it cheaply, the real server (PostgreSQL, :func:`fleet.real.postgres`); a
server that does not offer TLS, one that pipelines bytes after its go-ahead (never passed on
to TLS), one that never greets (a timeout, not a hang), garbage; and the protocol's way through
the inventory (``smtp://host``, ``--starttls``), the configuration and the dataset.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import polars as pl
import pytest

import pinscan
from pinscan.config import ScanConfig
from pinscan.errors import ConfigError
from pinscan.inventory import read_inventory
from pinscan.records import STARTTLS, STATUSES, Handshake
from pinscan.scanner import rustls
from pinscan.scanner import starttls as preamble
from pinscan.scanner.handshake import client_context, handshake
from pinscan.scanner.tls import DEFAULT_ALPN

from cliresult import run
from fleet import pki, real, servers
from fleet import starttls as fakes

# Every scan test, on each TLS engine (issue 16).
pytestmark = pytest.mark.usefixtures("each_engine")

TIMEOUTS = {"connect_timeout": 0.5, "handshake_timeout": 1.0}
REAL = {"connect_timeout": 2.0, "handshake_timeout": 5.0}


async def shake(server: servers.Server, protocol: str, **options: object) -> Handshake:
    """A handshake after ``protocol``'s preamble, with the context a scan would use for it (no
    ``context``: the protocol's ALPN)."""
    options = {**TIMEOUTS, **options}
    result = await handshake(
        server.host, server.port, "mail.test", starttls=protocol, **options
    )  # fmt: skip
    assert result.status in STATUSES
    assert (result.error is None) == (result.status == "ok"), result.error
    return result


def test_every_protocol_has_a_negotiator_and_a_fake() -> None:
    assert set(preamble.NEGOTIATORS) == set(STARTTLS) == set(fakes.PROTOCOLS)


# --- each protocol, through to the chain ------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("protocol", list(STARTTLS))
async def test_each_protocol_reaches_tls(protocol: str) -> None:
    with fakes.starttls(protocol) as server:
        result = await shake(server, protocol)
    assert result.status == "ok", result.error
    assert result.chain == server.chain
    assert result.tls_version == "TLSv1.3"


@pytest.mark.anyio
@pytest.mark.parametrize("protocol", list(STARTTLS))
async def test_a_server_that_does_not_offer_tls(protocol: str) -> None:
    with fakes.starttls(protocol, offer=False) as server:
        result = await shake(server, protocol)
    assert result.status == "starttls_unsupported", result.error
    assert result.error.startswith(f"{protocol}: ")
    assert result.chain == []
    assert result.error.isprintable() and len(result.error) < 300


@pytest.mark.anyio
async def test_smtp_reads_multi_line_replies_and_says_ehlo() -> None:
    with fakes.starttls("smtp", offer=False) as server:
        result = await shake(server, "smtp")
    # The whole EHLO reply, every line, is what `error` shows (printable, truncated).
    assert "STARTTLS is not among the EHLO keywords: 250-mx.test | 250-PIPELINING" in result.error
    assert server.said == [b"EHLO pinscan.invalid\r\n"]  # STARTTLS not sent when not offered
    with fakes.starttls("smtp") as server:
        assert (await shake(server, "smtp")).status == "ok"
    assert server.said == [b"EHLO pinscan.invalid\r\n", b"STARTTLS\r\n"]


@pytest.mark.anyio
@pytest.mark.parametrize("protocol", ["xmpp", "xmpp-server"])
async def test_xmpp_opens_its_stream_to_the_domain(protocol: str) -> None:
    with fakes.starttls(protocol) as server:
        result = await handshake(
            server.host, server.port, "chat.test", starttls=protocol, **TIMEOUTS
        )  # fmt: skip
        assert result.status == "ok", result.error
    namespace = "jabber:client" if protocol == "xmpp" else "jabber:server"
    assert f"xmlns='{namespace}'".encode() in server.said[0]
    assert b"to='chat.test'" in server.said[0]
    assert server.said[1] == b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"


@pytest.mark.anyio
async def test_mysql_ssl_request_is_packet_one_with_client_ssl() -> None:
    with fakes.starttls("mysql") as server:
        assert (await shake(server, "mysql")).status == "ok"
    header, payload = server.said[0][:4], server.said[0][4:]
    assert header == b"\x20\x00\x00\x01"  # 32 bytes, sequence 1 (after the greeting's 0)
    assert int.from_bytes(payload[:4], "little") & 0x800


@pytest.mark.anyio
async def test_ldap_and_postgres_requests_are_byte_exact() -> None:
    with fakes.starttls("ldap") as server:
        assert (await shake(server, "ldap")).status == "ok"
    assert server.said == [bytes.fromhex("301d02010177188016") + b"1.3.6.1.4.1.1466.20037"]
    with fakes.starttls("postgres") as server:
        assert (await shake(server, "postgres")).status == "ok"
    assert server.said == [bytes.fromhex("0000000804d2162f")]


# --- hostile servers ------------------------------------------------------------------------

INJECTED = {
    "smtp": b"250 injected\r\n",
    "imap": b"* injected\r\n",
    "pop3": b"+OK injected\r\n",
    "ftp": b"200 injected\r\n",
    "xmpp": b"<injected/>",
    "ldap": b"\x30\x00",
    "postgres": b"\x16\x03\x01",  # even a TLS record header: CVE-2021-23214
    "mysql": b"\x01\x00\x00\x01\x00",
}


@pytest.mark.anyio
@pytest.mark.parametrize("protocol", list(INJECTED))
async def test_bytes_after_the_go_ahead_never_reach_tls(protocol: str) -> None:
    with fakes.starttls(protocol, inject=INJECTED[protocol]) as server:
        result = await shake(server, protocol)
    assert result.status == "starttls_error", result.error
    assert "CVE-2011-0411" in result.error
    assert f"sent {len(INJECTED[protocol])} bytes after its go-ahead" in result.error
    assert result.chain == [] and server.sni_seen == []  # no ClientHello was sent


@pytest.mark.anyio
@pytest.mark.parametrize("protocol", ["smtp", "imap", "pop3", "ftp", "xmpp", "mysql"])
async def test_a_server_that_never_greets_is_a_timeout(protocol: str) -> None:
    with servers.silent() as server:
        result = await shake(server, protocol, handshake_timeout=0.3)
    assert result.status == "handshake_timeout"
    assert result.error == f"no {protocol} STARTTLS go-ahead within 0.3 s (0 bytes received)"


@pytest.mark.anyio
async def test_the_deadline_cuts_the_preamble_short() -> None:
    import anyio

    with servers.silent() as server:
        stop_at = anyio.current_time() + 0.2
        result = await shake(server, "smtp", stop_at=stop_at)
    assert result.status == "deadline"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("garbage", "protocol", "expected"),
    [
        ("ssh", "smtp", "expected an SMTP greeting, the server sent: SSH-2.0-OpenSSH"),
        ("ssh", "imap", "expected an IMAP greeting (* OK), the server sent: SSH-2.0"),
        ("ssh", "pop3", "expected a POP3 greeting (+OK), the server sent: SSH-2.0"),
        ("ssh", "ftp", "expected an FTP greeting, the server sent: SSH-2.0"),
        ("ssh", "mysql", "expected a MySQL handshake packet"),
        ("http", "postgres", "expected S or N in answer to the SSLRequest, the server sent: H"),
        ("http", "ldap", "expected the LDAP StartTLS response"),
        ("smtp", "imap", "expected an IMAP greeting (* OK), the server sent: 220 mail.example"),
    ],
)
async def test_garbage_is_a_starttls_error(garbage: str, protocol: str, expected: str) -> None:
    with servers.garbage(garbage) as server:
        result = await shake(server, protocol)
    assert result.status == "starttls_error", result.error
    assert expected in result.error


@pytest.mark.anyio
async def test_a_server_that_closes_before_tls_is_a_reset() -> None:
    with servers.reset(after_hello=False) as server:
        result = await shake(server, "smtp")
    assert result.status == "reset"


@pytest.mark.anyio
async def test_an_endless_reply_is_cut_at_64_kib() -> None:
    async def endless(server, reader, writer):
        writer.write(b"220-" + b"x" * 1000 + b"\r\n")
        for _ in range(100):
            writer.write(b"220-" + b"x" * 1000 + b"\r\n")
            await writer.drain()

    with servers.serve("endless", endless) as server:
        result = await shake(server, "smtp")
    assert result.status == "starttls_error"
    assert "more than 65536 bytes before TLS" in result.error


def test_shown_is_printable_and_short() -> None:
    text = preamble.shown(b"220 \x00\xff\r\n" + b"y" * 500)
    assert text.isprintable() and len(text) == 200 and text.endswith("...")
    assert text.startswith("220 \\x00\\xff\\r\\n")


# --- inventory, configuration, dataset --------------------------------------------------------


def targets(text: str, **options: object) -> list:
    return list(read_inventory(io.BytesIO(text.encode()), **options))


def test_urls_name_their_protocol_and_default_port() -> None:
    found = targets(
        "smtp://mx.example.com\nsubmission://mx.example.com\nimap://h\npop3://h:1110\nftp://h\n"
        "xmpp://h\nxmpp-server://h\nldap://h\npostgresql://db.test\nmysql://h\n"
        "smtps://h\nimaps://h\npop3s://h\nldaps://h\nftps://h\nsips://h\nhttps://h\n"
    )
    assert [(t.host, t.port, t.starttls) for t in found] == [
        ("mx.example.com", 25, "smtp"), ("mx.example.com", 587, "submission"),
        ("h", 143, "imap"), ("h", 1110, "pop3"), ("h", 21, "ftp"), ("h", 5222, "xmpp"),
        ("h", 5269, "xmpp-server"), ("h", 389, "ldap"), ("db.test", 5432, "postgres"),
        ("h", 3306, "mysql"), ("h", 465, None), ("h", 993, None), ("h", 995, None),
        ("h", 636, None), ("h", 990, None), ("h", 5061, None), ("h", 443, None),
    ]  # fmt: skip
    # A STARTTLS target is another target than TLS on the same port; a TLS one keeps its id.
    plain, smtp = targets("h:25\nsmtp://h:25\n")
    assert plain.target_id != smtp.target_id
    assert plain.key == "h\x1f25\x1fh\x1f"


def test_starttls_for_every_line_without_a_scheme() -> None:
    found = targets("mx.test\nmx2.test:2525\nhttps://web.test\nimap://h\n", starttls="smtp")
    assert [(t.port, t.starttls) for t in found] == [
        (25, "smtp"), (2525, "smtp"), (443, None), (143, "imap")
    ]  # fmt: skip
    assert [t.port for t in targets("h\n", starttls="smtp", ports=(587,))] == [587]
    with pytest.raises(ConfigError, match="starttls"):
        targets("h\n", starttls="smtps")


def test_scan_config_checks_starttls() -> None:
    assert ScanConfig(starttls="ldap").starttls == "ldap"
    with pytest.raises(ConfigError, match=r"ScanConfig\.starttls: must be None or one of smtp"):
        ScanConfig(starttls="SMTP")


def test_a_scan_records_the_protocol(tmp_path: Path) -> None:
    with (
        fakes.starttls("smtp") as smtp,
        fakes.starttls("imap", offer=False) as imap,
        servers.good() as tls,
    ):
        ds = pinscan.scan(
            [f"smtp://127.0.0.1:{smtp.port} mail.test", f"imap://127.0.0.1:{imap.port}",
             f"127.0.0.1:{tls.port}"],
            tmp_path / "scan",
        )  # fmt: skip
    rows = ds.endpoints.select("port", "starttls", "status", "error").collect().sort("port")
    by_port = {r["port"]: r for r in rows.iter_rows(named=True)}
    assert by_port[smtp.port]["starttls"] == "smtp" and by_port[smtp.port]["status"] == "ok"
    assert by_port[imap.port]["status"] == "starttls_unsupported"
    assert by_port[imap.port]["error"].startswith("imap: STARTTLS is not among the capabilities")
    assert by_port[tls.port]["starttls"] is None and by_port[tls.port]["status"] == "ok"
    assert ds.endpoints.collect_schema()["starttls"] == pl.String


def test_the_cli_takes_starttls_for_every_target(tmp_path: Path) -> None:
    with fakes.starttls("pop3") as server:
        result = run(
            "scan", f"127.0.0.1:{server.port}", "--starttls", "pop3", "--format", "json", "-q"
        )
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)["results"]
    assert row["status"] == "ok"
    bad = run("scan", "127.0.0.1", "--starttls", "gopher")
    assert bad.exit_code == 2 and "gopher" in bad.output


def test_older_datasets_still_read(tmp_path: Path) -> None:
    """A dataset written before STARTTLS: no ``starttls`` column, and the status enum without
    the STARTTLS statuses. It reads, with null ``starttls``, beside a new scan in a history."""
    with servers.good() as tls:
        ds = pinscan.scan([f"127.0.0.1:{tls.port}"], tmp_path / "scan")
    [part] = (tmp_path / "scan" / "endpoints").glob("part-*.parquet")
    old_statuses = [s for s in STATUSES if not s.startswith("starttls")]
    frame = pl.read_parquet(part).drop("starttls")
    frame = frame.with_columns(pl.col("status").cast(pl.String).cast(pl.Enum(old_statuses)))
    frame.write_parquet(part)  # no checksum: as written before pinscan wrote them
    reopened = pinscan.open(tmp_path / "scan")
    rows = reopened.endpoints.collect()
    assert rows["starttls"].to_list() == [None]
    assert rows["status"].to_list() == ["ok"]
    assert rows.schema["status"] == pl.Enum(list(STATUSES))
    assert ds.meta["scan_id"] == reopened.meta["scan_id"]


# --- real servers ---------------------------------------------------------------------------


@pytest.mark.skipif(real.postgres_bin() is None, reason="PostgreSQL is not installed")
@pytest.mark.anyio
async def test_real_postgresql(tmp_path: Path) -> None:
    issued = pki.leaf("db.test")
    with real.postgres(issued, tmp_path / "pg") as server:
        result = await handshake(
            real.LOOPBACK, server.port, "db.test", starttls="postgres", **REAL
        )  # fmt: skip
        assert result.status == "ok", result.error
        assert result.chain == issued.chain_der
        with real.postgres(issued, tmp_path / "pg-nossl", ssl=False) as plain:
            result = await handshake(
                real.LOOPBACK, plain.port, "db.test", starttls="postgres", **REAL
            )  # fmt: skip
    assert result.status == "starttls_unsupported"
    assert result.error == "postgres: the server answered the SSLRequest with N: no SSL"


@pytest.mark.skipif(real.find("dovecot") is None, reason="Dovecot is not installed")
@pytest.mark.anyio
async def test_real_dovecot_imap_and_pop3() -> None:
    issued = pki.leaf("mail.test")
    options = REAL
    with real.dovecot(issued) as server:
        for name, protocol in [
            ("imap", "imap"),
            ("pop3", "pop3"),
            ("imaps", None),
            ("pop3s", None),
        ]:
            result = await handshake(
                real.LOOPBACK, server.ports[name], "mail.test", starttls=protocol, **options
            )
            assert result.status == "ok", (name, result.error)
            assert result.chain == issued.chain_der
    with real.dovecot(issued, ssl=False) as server:
        imap = await handshake(
            real.LOOPBACK, server.ports["imap"], "mail.test", starttls="imap", **options
        )
        pop3 = await handshake(
            real.LOOPBACK, server.ports["pop3"], "mail.test", starttls="pop3", **options
        )
    assert imap.status == pop3.status == "starttls_unsupported"
    assert imap.error.startswith("imap: STARTTLS is not among the capabilities: * OK [CAPABILITY")
    assert pop3.error.startswith("pop3: STLS is not among the capabilities: +OK")


def test_alpn_after_starttls_is_the_protocol_s_own(tmp_path: Path) -> None:
    """No ``h2`` to a mail server, ``postgresql`` to a database: servers that would select
    any of those say which one they were offered."""
    alpn = ("h2", "http/1.1", "postgresql")
    with (
        fakes.starttls("smtp", alpn=alpn) as smtp,
        fakes.starttls("postgres", alpn=alpn) as postgres,
    ):
        ds = pinscan.scan(
            [f"smtp://127.0.0.1:{smtp.port}", f"postgres://127.0.0.1:{postgres.port}"],
            tmp_path / "scan",
        )
    rows = ds.endpoints.select("starttls", "status", "alpn").collect().sort("starttls")
    assert rows.rows() == [("postgres", "ok", "postgresql"), ("smtp", "ok", None)]


def test_a_starttls_column_in_csv(tmp_path: Path) -> None:
    csv = tmp_path / "inventory.csv"
    csv.write_text(
        "host,port,starttls\nmx.test,,smtp\nmx.test,2525,SMTP\ndb.test,,postgresql\nweb.test,,\n"
        "bad.test,,gopher\n"
    )
    found = list(read_inventory(csv, starttls="imap"))
    assert [(t.host, t.port, t.starttls) for t in found[:4]] == [
        ("mx.test", 25, "smtp"), ("mx.test", 2525, "smtp"), ("db.test", 5432, "postgres"),
        ("web.test", 143, "imap"),
    ]  # fmt: skip
    assert found[4].error.startswith("`starttls` `gopher` is none of smtp, submission")
    both = tmp_path / "both.csv"
    both.write_text("target,starttls\nsmtp://mx.test,imap\n")
    [bad] = read_inventory(both)
    assert bad.error == "both the `target` URL and the `starttls` column name a protocol"


def test_starttls_reaches_parquet_rows(tmp_path: Path) -> None:
    path = tmp_path / "inventory.parquet"
    pl.DataFrame({"host": ["mx.test", "db.test"], "starttls": [None, "postgres"]}).write_parquet(
        path
    )
    found = list(read_inventory(path, starttls="smtp"))
    assert [(t.port, t.starttls) for t in found] == [(25, "smtp"), (5432, "postgres")]


def test_audit_scan_table_takes_starttls(tmp_path: Path) -> None:
    from pinscan.audit.config import load_config
    from pinscan.errors import AuditConfigError

    (tmp_path / "inventory.txt").write_text("mx.test\n")
    config = tmp_path / "audit.toml"
    config.write_text('inventory = "inventory.txt"\nhistory = "h"\n[scan]\nstarttls = "smtp"\n')
    assert load_config(config).scan.starttls == "smtp"
    config.write_text('inventory = "inventory.txt"\nhistory = "h"\n[scan]\nstarttls = "smtps"\n')
    with pytest.raises(AuditConfigError, match=r"scan\.starttls.*must be one of smtp"):
        load_config(config)


def test_a_dask_split_keeps_the_protocol(tmp_path: Path) -> None:
    from pinscan.dataset.shards import Shard
    from pinscan.scanner import shards

    inventory = read_inventory(io.BytesIO(b"smtp://mx.test\nweb.test\n"))
    shards.split(inventory, tmp_path, 1)
    items = list(shards.read_split(tmp_path, Shard(0, 1), "inventory"))
    assert [(t.host, t.port, t.starttls) for t in items] == [
        ("mx.test", 25, "smtp"), ("web.test", 443, None)
    ]  # fmt: skip


def test_a_history_of_scans_before_and_after_starttls(tmp_path: Path) -> None:
    history = tmp_path / "history"
    with servers.good() as tls, fakes.starttls("smtp", offer=False) as smtp:
        pinscan.scan([f"127.0.0.1:{tls.port}"], history=history)
        pinscan.scan([f"127.0.0.1:{tls.port}", f"smtp://127.0.0.1:{smtp.port}"], history=history)
    parts = sorted(history.rglob("part-*.parquet"), key=lambda p: p.stat().st_mtime)
    old_part = next(p for p in parts if "endpoints" in p.parts)  # the first scan's
    old_statuses = [s for s in STATUSES if not s.startswith("starttls")]
    frame = pl.read_parquet(old_part).drop("starttls")
    frame.with_columns(pl.col("status").cast(pl.String).cast(pl.Enum(old_statuses))).write_parquet(
        old_part
    )
    rows = pinscan.open(history, scans="all").endpoints.select("status", "starttls").collect()
    assert sorted(rows.rows(), key=str) == sorted(
        [("ok", None), ("ok", None), ("starttls_unsupported", "smtp")], key=str
    )


@pytest.mark.skipif(real.find("slapd") is None, reason="slapd is not installed")
@pytest.mark.anyio
async def test_real_slapd() -> None:
    issued = pki.leaf("ldap.test")
    with real.slapd(issued) as server:
        result = await handshake(real.LOOPBACK, server.port, "ldap.test", starttls="ldap", **REAL)
        assert result.status == "ok", result.error
        assert result.chain == issued.chain_der
    with real.slapd(issued, tls=False) as server:
        result = await handshake(real.LOOPBACK, server.port, "ldap.test", starttls="ldap", **REAL)
    assert result.status == "starttls_unsupported"
    assert result.error == (
        "ldap: StartTLS refused: resultCode 2 protocolError: unsupported extended operation"
    )


@pytest.mark.skipif(
    real.find("exim4") is None or os.geteuid() != 0, reason="Exim is not installed, or not root"
)
@pytest.mark.anyio
async def test_real_exim() -> None:
    """Exim 4.96 refuses a ClientHello that offers ALPN other than ``smtp`` (ALPACA), so the
    scan offers none after STARTTLS: the default context, with ``h2``, is refused."""
    issued = pki.leaf("mx.test")
    with real.exim(issued) as server:
        result = await handshake(real.LOOPBACK, server.port, "mx.test", starttls="smtp", **REAL)
        assert result.status == "ok", result.error
        assert result.chain == issued.chain_der
        with_h2 = await handshake(
            real.LOOPBACK, server.port, "mx.test", starttls="smtp", context=client_context(),
            rustls_engine=rustls.engine(DEFAULT_ALPN), **REAL,
        )  # fmt: skip
        assert with_h2.status == "tls_alert"
        assert with_h2.error.startswith("no_application_protocol")
    with real.exim(issued, tls=False) as server:
        result = await handshake(real.LOOPBACK, server.port, "mx.test", starttls="smtp", **REAL)
    assert result.status == "starttls_unsupported"
    assert result.error.startswith("smtp: STARTTLS is not among the EHLO keywords: 250-mx.test")


# --- replies split anywhere: one byte per segment ---------------------------------------------

DRIBBLED = {
    "smtp": [
        (b"", b"220-mx.test ESMTP\r\n220 ready\r\n"),
        (b"\r\n", b"250-mx.test\r\n250-STARTTLS\r\n250 SIZE 100\r\n"),
        (b"STARTTLS\r\n", b"220 go ahead\r\n"),
    ],
    "xmpp": [
        (
            b"'1.0'>",
            b"<?xml version='1.0'?>\n<stream:stream xmlns='jabber:client' id='a>b' "
            b"xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>\n"
            b'<stream:features><starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"/>'
            b"</stream:features>",
        ),
        (b"/>", b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'></proceed>"),
    ],
    "ldap": [  # a long-form length, and a diagnostic message
        (
            b"20037",
            bytes.fromhex("308180020101787b0a0100040004") + b"\x74" + b"d" * 116,
        ),
    ],
    "imap": [
        (b"", b"* OK [CAPABILITY IMAP4rev1 STARTTLS] hi\r\n"),
        (b"STARTTLS\r\n", b"P2 OK go\r\n"),
    ],
}


@pytest.mark.anyio
@pytest.mark.parametrize("protocol", list(DRIBBLED))
async def test_replies_split_into_single_bytes(protocol: str) -> None:
    import socket

    import anyio

    client, server = socket.socketpair()
    client.setblocking(False)
    server.setblocking(False)
    said = b""

    async def serve() -> None:
        nonlocal said
        for expected, reply in DRIBBLED[protocol]:
            while not said.endswith(expected):
                await anyio.wait_readable(server)
                said += server.recv(4096)
            for i in range(len(reply)):
                server.send(reply[i : i + 1])
                await anyio.sleep(0)

    with client, server:
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve)
            with anyio.fail_after(5):
                await preamble.negotiate(protocol, preamble.Wire(client), "chat.test")
    assert said  # the client spoke
