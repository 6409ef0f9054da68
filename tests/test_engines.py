# SPDX-License-Identifier: Apache-2.0
"""The TLS engines (issue 16, docs/engines.md): rustls where it reaches, OpenSSL where it does not
(``auto``), each endpoint's engine recorded, and every way of choosing one. The servers are real:
``openssl s_server`` for the legacy ones, nginx, and in-process ones; loopback only."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

import pinscan
from pinscan.audit import ConfigError as AuditConfigError
from pinscan.audit import load_config
from pinscan.cli import main
from pinscan.config import ScanConfig
from pinscan.errors import ConfigError
from pinscan.scanner.handshake import handshake

from cliresult import run
from fleet import pki, real, servers

pytestmark = pytest.mark.anyio

TIMEOUTS = {"connect_timeout": 1.0, "handshake_timeout": 3.0}


def _s_server(tmp: pytest.TempPathFactory, issued: pki.Issued, *options: str) -> real.SServer:
    if real.find("openssl") is None:
        pytest.skip("openssl is not installed")
    return real.openssl_s_server(issued, tmp.mktemp("s_server"), *options)


@pytest.fixture(scope="module")
def cbc_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[real.SServer]:
    """TLS 1.2 with nothing but a CBC suite and RSA key exchange: no suite rustls speaks."""
    with _s_server(
        tmp_path_factory, pki.leaf("cbc.test", key="rsa"), "-tls1_2", "-cipher", "AES128-SHA"
    ) as server:
        yield server


@pytest.fixture(scope="module")
def p521(tmp_path_factory: pytest.TempPathFactory) -> Iterator[real.SServer]:
    """A P-521 leaf: a handshake signature rustls's ring provider cannot check."""
    with _s_server(tmp_path_factory, pki.leaf("p521.test", key="p521")) as server:
        yield server


@pytest.fixture(scope="module")
def tls1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[real.SServer]:
    """TLS 1.0 only, SHA-1 RSA certificate, security level 0."""
    with _s_server(
        tmp_path_factory, pki.legacy_leaf("legacy.test"), "-tls1", "-cipher", "DEFAULT@SECLEVEL=0"
    ) as server:
        yield server


async def shake(server: real.SServer | servers.Server, engine: str, sni: str | None = None):
    return await handshake(real.LOOPBACK, server.port, sni, engine=engine, **TIMEOUTS)


@pytest.mark.parametrize(
    ("name", "alert", "version", "cipher"),
    [
        ("tls1", "protocol_version", "TLSv1", None),
        ("cbc_only", "handshake_failure", "TLSv1.2", "AES128-SHA"),
        ("p521", "handshake_failure", "TLSv1.3", None),
    ],
)
async def test_auto_reaches_through_openssl_what_rustls_cannot(
    request: pytest.FixtureRequest, name: str, alert: str, version: str, cipher: str | None
) -> None:
    server = request.getfixturevalue(name)
    alone = await shake(server, "rustls")
    assert (alone.status, alone.engine) == ("tls_alert", "rustls"), alone.error
    assert alone.error.startswith(alert)
    result = await shake(server, "auto")
    assert (result.status, result.engine, result.tls_version) == ("ok", "openssl", version)
    assert result.chain == server.chain
    if cipher is not None:
        assert result.cipher == cipher


@pytest.mark.parametrize(
    ("key", "version"),
    [("ec", None), ("rsa", None), ("ed25519", None), ("ec", "TLSv1.2"), ("rsa", "TLSv1.2")],
)
async def test_auto_stays_on_rustls_where_it_reaches(key: str, version: str | None) -> None:
    issued = pki.leaf(f"{key}.engine.test", key=key)
    tls_version = ssl.TLSVersion.TLSv1_2 if version else None
    with servers.tls(issued, version=tls_version) as server:
        result = await shake(server, "auto", f"{key}.engine.test")
        openssl = await shake(server, "openssl", f"{key}.engine.test")
    assert (result.status, result.engine) == ("ok", "rustls"), result.error
    assert result.chain == server.chain == openssl.chain
    # The dataset reads the same from either engine: OpenSSL's names of version and suite.
    assert result.tls_version == openssl.tls_version == (version or "TLSv1.3")
    assert result.cipher in {c["name"] for c in ssl.create_default_context().get_ciphers()}
    assert result.alpn == openssl.alpn == "h2"


async def test_a_server_that_is_broken_is_not_tried_twice() -> None:
    # A server that answers garbage is not_tls on rustls, and auto does not retry it.
    connections = []

    async def handle(server, reader, writer) -> None:
        connections.append(await reader.read(5))
        writer.write(servers.GARBAGE["http"])
        await writer.drain()

    with servers.serve("garbage_counted", handle, host=servers.LOOPBACK) as server:
        result = await shake(server, "auto")
    assert (result.status, result.engine) == ("not_tls", "rustls")
    assert result.error.startswith("not TLS: the server sent b'HTTP/1.1 400")
    assert len(connections) == 1 and connections[0].startswith(b"\x16\x03")


async def test_the_nginx_fleet_on_rustls(nginx: real.Nginx) -> None:
    for key in ("rsa", "ecdsa", "expired", "self_signed"):
        result = await handshake(real.LOOPBACK, nginx.ports[key], None, engine="rustls", **TIMEOUTS)
        assert (result.status, result.engine, result.tls_version) == ("ok", "rustls", "TLSv1.3")
        assert result.chain == nginx.issued[key].chain_der


def test_the_dataset_and_the_summary_say_which_engine(tls1: real.SServer, tmp_path: Path) -> None:
    with servers.good() as good:
        inventory = tmp_path / "hosts.txt"
        inventory.write_text(f"127.0.0.1:{good.port} a.test\n127.0.0.1:{tls1.port} legacy.test\n")
        out = tmp_path / "scan"
        dataset = pinscan.scan(inventory, out=out, config=ScanConfig(engine="auto"))
        cli = run("scan", str(inventory), "--format", "json", "--quiet", "--engine", "openssl")
    rows = pl.read_parquet(out / "endpoints").sort("port")
    by_port = dict(zip(rows["port"].to_list(), rows["engine"].to_list(), strict=True))
    assert by_port == {good.port: "rustls", tls1.port: "openssl"}
    assert dataset.meta["counts"]["engines"] == {"rustls": 1, "openssl": 1}
    assert cli.exit_code == 0, cli.output
    printed = json.loads(cli.stdout)
    assert [e["engine"] for e in printed["results"]] == ["openssl", "openssl"]
    assert printed["engines"] == {"openssl": 2}


def test_the_engine_is_checked_where_it_is_set(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"ScanConfig.engine.*auto, rustls, openssl"):
        ScanConfig(engine="gnutls")
    # click's own refusal of a choice, as for every other option: exit 2, no traceback.
    for cli in (
        run("scan", "127.0.0.1:9", "--engine", "gnutls"),
        CliRunner().invoke(main, ["scan", "127.0.0.1:9"], env={"PINSCAN_ENGINE": "gnutls"}),
    ):
        assert cli.exit_code == 2 and "Traceback" not in cli.output
        assert "'gnutls' is not one of 'auto', 'rustls', 'openssl'" in cli.stderr
    audit = tmp_path / "audit.toml"
    (tmp_path / "hosts.txt").write_text("127.0.0.1:9\n")
    top = 'inventory = "hosts.txt"\nhistory = "h"\n[scan]\n'
    audit.write_text(top + 'engine = "openssl"\n')
    assert load_config(audit).scan.engine == "openssl"
    audit.write_text(top + 'engine = "gnutls"\n')
    with pytest.raises(AuditConfigError, match=r"scan\.engine"):
        load_config(audit)
