# SPDX-License-Identifier: Apache-2.0
"""``pinscan.scanner.handshake``: the chain, version, cipher and ALPN of good servers, SNI, and the
exact status of every hostile server (in-process and real: nginx, ``openssl s_server``), without
an exception and within the timeouts.

Assertions are on statuses and captured bytes only, never on timing; the timeouts are small so
that a server that is never answered costs the suite well under a second.
"""

from __future__ import annotations

import asyncio
import errno
import ssl
from collections.abc import Callable
from contextlib import AbstractContextManager

import anyio
import pytest
from cryptography import x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pinscan.records import STATUSES, Handshake
from pinscan.scanner import handshake as hs
from pinscan.scanner import rustls
from pinscan.scanner.handshake import client_context, handshake, presented_chain
from pinscan.scanner.tls import OpenSSLSession

from fleet import pki, real, servers

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("each_engine")]

TIMEOUTS = {"connect_timeout": 0.5, "handshake_timeout": 1.0}
CONTEXT = client_context()


async def shake(
    server: servers.Server | real.SServer,
    sni: str | None = None,
    *,
    host: str = servers.LOOPBACK,
    **options: object,
) -> Handshake:
    """A handshake that also checks what every result must satisfy."""
    options = {**TIMEOUTS, "context": CONTEXT, **options}
    result = await handshake(getattr(server, "host", host), server.port, sni, **options)
    assert result.status in STATUSES
    assert (result.error is None) == (result.status == "ok"), result.error
    return result


# --- good servers ---------------------------------------------------------------------------


async def test_good_server_without_sni(good_server: servers.Server) -> None:
    result = await shake(good_server)
    assert result.status == "ok"
    assert result.chain == good_server.chain == pki.leaf("default.test").chain_der
    assert len(result.chain) == 2  # leaf first, then the intermediate; never the root
    assert result.tls_version == "TLSv1.3"
    assert result.cipher.startswith("TLS_")
    assert result.alpn == "h2"
    assert result.connect_ms is not None and result.handshake_ms is not None
    assert good_server.sni_seen == [None]


@pytest.mark.parametrize(
    ("sni", "expected"),
    [
        ("a.test", pki.leaf("a.test", key="rsa")),
        ("www.b.test", pki.leaf("b.test", "www.b.test")),
        ("unknown.test", pki.leaf("default.test")),
    ],
)
async def test_sni_selects_the_certificate(
    good_server: servers.Server, sni: str, expected: pki.Issued
) -> None:
    result = await shake(good_server, sni)
    assert result.status == "ok"
    assert result.chain == expected.chain_der
    assert good_server.sni_seen == [sni]


async def test_an_ip_is_never_sent_as_sni(good_server: servers.Server) -> None:
    result = await shake(good_server, "127.0.0.1")
    assert result.status == "ok"
    assert good_server.sni_seen == [None]


async def test_tls12_and_no_alpn() -> None:
    with servers.tls(pki.leaf("old.test"), version=ssl.TLSVersion.TLSv1_2, alpn=()) as server:
        result = await shake(server)
    assert (result.status, result.tls_version, result.alpn) == ("ok", "TLSv1.2", None)
    assert result.chain == server.chain
    assert "GCM" in result.cipher or "CHACHA" in result.cipher


async def test_alpn_offer_comes_from_the_context(good_server: servers.Server) -> None:
    offer = ("http/1.1",)
    result = await shake(
        good_server, context=client_context(alpn=offer), rustls_engine=rustls.engine(offer)
    )
    assert result.alpn == "http/1.1"
    result = await shake(
        good_server, context=client_context(alpn=()), rustls_engine=rustls.engine(())
    )
    assert (result.status, result.alpn) == ("ok", None)


async def test_default_context(good_server: servers.Server) -> None:
    result = await shake(good_server, context=None)
    assert result.status == "ok"


async def test_ipv6_loopback(ipv6_loopback: str) -> None:
    with servers.good(host=ipv6_loopback) as server:
        result = await shake(server, "b.test")
    assert result.status == "ok"
    assert result.chain == pki.leaf("b.test", "www.b.test").chain_der


@pytest.mark.parametrize("kind", ["deep", "big"])
async def test_huge_chain_is_captured_whole(kind: str, each_engine: str) -> None:
    with servers.huge_chain(kind) as server:
        result = await shake(server)
        if kind == "big" and each_engine == "rustls":
            # A Certificate message over 64 KB: rustls stops, auto goes on through OpenSSL.
            assert (result.status, result.engine) == ("tls_error", "rustls")
            assert "over the 64 KB rustls takes" in result.error
            result = await shake(server, engine="auto")
            assert result.engine == "openssl"
    assert result.status == "ok"
    assert result.chain == server.chain
    if kind == "deep":
        assert len(result.chain) == 51
    else:
        assert len(result.chain[0]) > 65536


async def test_hundreds_of_delayed_handshakes_at_once() -> None:
    results: list[Handshake] = []

    async def one(server: servers.Server) -> None:
        results.append(await shake(server, connect_timeout=5, handshake_timeout=10))

    with servers.delayed(0.2) as server:
        async with anyio.create_task_group() as tg:
            for _ in range(200):
                tg.start_soon(one, server)
    assert {r.status for r in results} == {"ok"}
    assert all(r.chain == server.chain for r in results)


def test_uvloop(good_server: servers.Server) -> None:
    pytest.importorskip("uvloop")
    result = anyio.run(shake, good_server, backend_options={"use_uvloop": True})
    assert result.status == "ok"
    assert result.chain == good_server.chain


# --- hostile servers ------------------------------------------------------------------------

HOSTILE: list[tuple[str, Callable[[], AbstractContextManager[servers.Server]], str, str]] = [
    ("silent", servers.silent, "handshake_timeout", "(0 bytes received)"),
    ("slow_drip", lambda: servers.slow_drip(0.05), "handshake_timeout", "within 1 s"),
    ("ssh", lambda: servers.garbage("ssh"), "not_tls", "SSH-2.0-OpenSSH"),
    ("http", lambda: servers.garbage("http"), "not_tls", "HTTP/1.1 400"),
    ("smtp", lambda: servers.garbage("smtp"), "not_tls", "220 mail.example"),
    ("reset", servers.reset, "reset", "connection reset by the server"),
    ("reset_at_once", lambda: servers.reset(after_hello=False), "reset", "reset"),
    ("handshake_failure", servers.alert, "tls_alert", "handshake_failure (alert 40"),
    ("protocol_version", lambda: servers.alert(70), "tls_alert", "protocol_version"),
    ("unrecognized_name", lambda: servers.alert(112), "tls_alert", "unrecognized_name"),
    ("closed_port", servers.closed_port, "refused", "Connection refused"),
    ("blackhole", servers.blackhole, "connect_timeout", "no complete TCP connection"),
]


@pytest.mark.parametrize(
    ("make", "status", "error"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE]
)
async def test_hostile_server(
    make: Callable[[], AbstractContextManager[servers.Server]], status: str, error: str
) -> None:
    with make() as server:
        result = await shake(server, "hostile.test")
    assert result.status == status, result.error
    assert error in result.error
    assert result.chain == []
    assert result.tls_version is None


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
async def test_client_cert_required_keeps_the_chain(version: ssl.TLSVersion) -> None:
    with servers.client_cert(version) as server:
        result = await shake(server)
    assert result.status == "client_cert_required", result.error
    alert = "handshake_failure" if version is ssl.TLSVersion.TLSv1_2 else "certificate_required"
    assert alert in result.error
    assert result.chain == server.chain


async def test_optional_client_cert_is_ok() -> None:
    # TLS 1.3: the server asks, then accepts the empty certificate: nothing refuses in the
    # grace period after the handshake.
    with servers.tls(
        pki.leaf("optional.test"), client_ca=pki.root(), verify_mode=ssl.CERT_OPTIONAL
    ) as server:
        result = await shake(server)
    assert (result.status, result.tls_version) == ("ok", "TLSv1.3")
    assert result.chain == server.chain


async def test_timeout_after_the_certificate_keeps_the_chain() -> None:
    with servers.stall_after_certificate() as server:
        result = await shake(server)
    assert result.status == "handshake_timeout"
    assert result.chain == server.chain


async def test_deadline_cuts_a_step_short_and_keeps_the_chain() -> None:
    with servers.stall_after_certificate() as server:
        deadline = anyio.current_time() + 0.3
        result = await shake(server, connect_timeout=5, handshake_timeout=5, stop_at=deadline)
    assert result.status == "deadline"
    assert "during the handshake" in result.error
    assert result.chain == server.chain


async def test_cancellation_from_outside_propagates() -> None:
    with servers.silent() as server, anyio.move_on_after(0.2) as scope:
        await shake(server, connect_timeout=5, handshake_timeout=5)
    assert scope.cancelled_caught


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=300),
        # TLS-looking records: a plausible header and random content.
        st.builds(
            lambda t, v, body: bytes([t, 3, v]) + len(body).to_bytes(2, "big") + body,
            st.sampled_from([20, 21, 22, 23]),
            st.integers(0, 4),
            st.binary(max_size=200),
        ),
    )
)
def test_any_answer_becomes_a_status(payload: bytes) -> None:
    async def answer(
        server: servers.Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await reader.read(65536)
        writer.write(payload)
        await writer.drain()

    with servers.serve("payload", answer) as server:
        result = anyio.run(lambda: shake(server, connect_timeout=0.5, handshake_timeout=0.3))
    assert result.status != "ok"


# --- real servers ---------------------------------------------------------------------------


async def test_nginx_serves_each_site_its_certificate(nginx: real.Nginx) -> None:
    for key, port in nginx.ports.items():
        result = await handshake(servers.LOOPBACK, port, None, **TIMEOUTS, context=CONTEXT)
        assert result.status == "ok", (key, result.error)
        assert result.chain == nginx.issued[key].chain_der, key
        assert result.tls_version == "TLSv1.3"


async def test_nginx_rsa_and_ecdsa_under_tls12(nginx: real.Nginx) -> None:
    # An OpenSSL context capped at TLS 1.2 (rustls's TLS 1.2: test_tls12_and_no_alpn).
    tls12 = client_context()
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    for key, algorithm in [("rsa", "RSA"), ("ecdsa", "ECDSA")]:
        result = await handshake(
            servers.LOOPBACK, nginx.ports[key], None, **TIMEOUTS, context=tls12, engine="openssl"
        )
        assert (result.status, result.tls_version) == ("ok", "TLSv1.2")
        assert f"-{algorithm}-" in result.cipher


@pytest.mark.parametrize(
    ("sni", "site"),
    [
        ("a.shared.test", "a.shared.test"),
        ("b.shared.test", "b.shared.test"),
        (None, "shared.default.test"),
        ("nowhere.test", "shared.default.test"),
    ],
)
async def test_nginx_selects_by_sni(nginx: real.Nginx, sni: str | None, site: str) -> None:
    result = await handshake(servers.LOOPBACK, nginx.shared_port, sni, **TIMEOUTS, context=CONTEXT)
    assert result.status == "ok"
    assert result.chain == nginx.issued[site].chain_der


async def test_openssl_tls1_legacy_endpoint(legacy_tls1: real.SServer, each_engine: str) -> None:
    result = await shake(legacy_tls1)
    if each_engine == "rustls":
        # No TLS 1.0 in rustls: the server refuses its offer, and auto goes on through OpenSSL.
        assert (result.status, result.engine) == ("tls_alert", "rustls")
        assert "protocol_version" in result.error
        result = await shake(legacy_tls1, engine="auto")
    assert (result.status, result.tls_version, result.engine) == ("ok", "TLSv1", "openssl")
    assert result.chain == legacy_tls1.chain
    leaf = x509.load_der_x509_certificate(result.chain[0])
    assert leaf.signature_hash_algorithm.name == "sha1"


async def test_openssl_client_cert_required(openssl_client_cert: real.SServer) -> None:
    result = await shake(openssl_client_cert)
    assert result.status == "client_cert_required", result.error
    assert result.chain == openssl_client_cert.chain


# --- the parts ------------------------------------------------------------------------------


def test_client_context_accepts_everything() -> None:
    context = client_context()
    assert context.minimum_version is ssl.TLSVersion.TLSv1
    assert context.maximum_version is ssl.TLSVersion.TLSv1_3
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_NONE, False)
    assert context.options & ssl.OP_NO_TICKET
    assert context.security_level == 0
    assert any(c["protocol"] == "TLSv1.0" for c in context.get_ciphers())


def test_presented_chain_before_any_handshake() -> None:
    sslobj = CONTEXT.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="x.test")
    assert presented_chain(sslobj) == []


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (errno.ENETUNREACH, "unreachable"),
        (errno.EHOSTUNREACH, "unreachable"),
        (errno.ECONNREFUSED, "refused"),
        (errno.ECONNRESET, "reset"),
        (errno.ETIMEDOUT, "connect_timeout"),
        (errno.EADDRNOTAVAIL, "error"),
    ],
)
def test_connect_errors_map_to_statuses(code: int, status: str) -> None:
    # Unreachable networks cannot be produced on loopback: the table is checked directly.
    conn = hs._Connection(None, OpenSSLSession(CONTEXT, None))
    got, error = hs._classify(OSError(code, "x"), "connect", 1.0, False, conn)
    assert got == status
    assert error


@pytest.mark.parametrize("sni", ["", ".leading.dot", "a" * 64 + ".test"])
async def test_unsendable_sni_is_a_bad_target(good_server: servers.Server, sni: str) -> None:
    result = await shake(good_server, sni)
    assert result.status == "bad_target"
    assert good_server.sni_seen == []


async def test_ip_must_be_a_literal() -> None:
    with pytest.raises(ValueError, match="IP address literal"):
        await handshake("localhost", 443, None, **TIMEOUTS)
