# SPDX-License-Identifier: Apache-2.0
"""Certificate chains beyond OpenSSL's default 100 KiB on the handshake's OpenSSL path:
:func:`pinscan.scanner.tls.client_context` raises the limit to 4 MiB, chains up to it are
captured byte-exact from an in-process server and ``openssl s_server``, a longer one is a
``tls_error`` that says so, and where the limit cannot be raised OpenSSL's default stays and the
error says that instead.

The chains are a leaf under intermediates padded by a large extension (:func:`fleet.pki._issue`),
made in milliseconds and cached for the session. Assertions are on statuses and bytes only.
"""

from __future__ import annotations

import functools
import os
import ssl
from collections.abc import Iterator

import pytest

from pinscan.records import Handshake
from pinscan.scanner import tls
from pinscan.scanner.handshake import client_context, handshake

from fleet import pki, real, servers

pytestmark = pytest.mark.anyio

MiB = 2**20
#: Generous: a 4 MB handshake takes some 70 ms on loopback.
TIMEOUTS = {"connect_timeout": 5.0, "handshake_timeout": 30.0}
TOO_LONG = "the server's certificate chain exceeds the 4 MiB pinscan accepts"


@functools.cache
def padded_chain(name: str, total: int, intermediates: int) -> pki.Issued:
    """A leaf for ``name`` under ``intermediates`` CAs, all padded so that the chain's DER comes
    to about ``total`` bytes."""
    padding = total // (intermediates + 1)
    issuer = pki.root()
    for level in range(intermediates):
        subject = f"Pinscan Padded CA {level} for {name}"
        issuer = pki._issue(subject, pki._key("ec"), issuer, ca=True, padding=padding)
    return pki._issue(name, pki._key("ec"), issuer, ca=False, names=(name,), padding=padding)


def long_chain() -> pki.Issued:
    """1.26 MB: 24 intermediates and the leaf, 50 KB each."""
    return padded_chain("long-chain.test", 1_260_000, 24)


async def shake(port: int, context: ssl.SSLContext | None = None) -> Handshake:
    return await handshake(
        servers.LOOPBACK, port, None, **TIMEOUTS, context=context or client_context()
    )


@pytest.fixture(scope="module", params=["TLSv1.2", "TLSv1.3"])
def long_chain_s_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[real.SServer, str]]:
    """``openssl s_server`` presenting :func:`long_chain`, and the one TLS version it speaks."""
    if real.find("openssl") is None:
        reason = "openssl is not installed (Debian package openssl; `make test` installs it)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    directory = tmp_path_factory.mktemp("long-chain")
    flag = "-" + request.param.lower().replace("v", "").replace(".", "_")  # -tls1_2
    with real.openssl_s_server(long_chain(), directory, flag) as server:
        yield server, request.param


def test_client_context_accepts_4_mib() -> None:
    context = client_context()
    assert tls.chain_limit(context) == tls.MAX_CHAIN_BYTES == 4 * MiB
    # What OpenSSL itself holds, read back the way it was set.
    ctrl, pointer = tls._ssl_ctx_ctrl(), tls._ssl_ctx(context)
    assert ctrl(pointer, tls._CTRL_GET_MAX_CERT_LIST, 0, None) == 4 * MiB
    # A context made elsewhere keeps OpenSSL's default.
    plain = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    assert tls.chain_limit(plain) == tls.OPENSSL_CHAIN_BYTES == 102_400
    assert ctrl(tls._ssl_ctx(plain), tls._CTRL_GET_MAX_CERT_LIST, 0, None) == 102_400


@pytest.mark.parametrize("version", ["TLSv1.2", "TLSv1.3"])
async def test_long_chain_from_an_in_process_server(version: str) -> None:
    issued = long_chain()
    pinned = ssl.TLSVersion[version.replace(".", "_")]
    with servers.tls(issued, version=pinned, kind="long_chain") as server:
        result = await shake(server.port)
    assert (result.status, result.error, result.tls_version) == ("ok", None, version)
    assert result.chain == issued.chain_der
    assert len(result.chain) == 25
    assert sum(map(len, result.chain)) >= 1_200_000


async def test_long_chain_from_openssl_s_server(
    long_chain_s_server: tuple[real.SServer, str],
) -> None:
    server, version = long_chain_s_server
    result = await shake(server.port)
    assert (result.status, result.error, result.tls_version) == ("ok", None, version)
    assert result.chain == server.chain == long_chain().chain_der
    assert sum(map(len, result.chain)) >= 1_200_000


async def test_chain_just_under_the_limit_is_captured() -> None:
    # TLS 1.3 frames each certificate in 5 bytes (length, extensions) and the list in 4 more.
    issued = padded_chain("under-the-limit.test", tls.MAX_CHAIN_BYTES - 64 * 1024, 3)
    assert sum(map(len, issued.chain_der)) + 5 * 4 + 4 < tls.MAX_CHAIN_BYTES
    with servers.tls(issued, kind="long_chain") as server:
        result = await shake(server.port)
    assert result.status == "ok", result.error
    assert result.chain == issued.chain_der


async def test_chain_above_the_limit_is_a_tls_error_that_says_so() -> None:
    issued = padded_chain("above-the-limit.test", tls.MAX_CHAIN_BYTES + 64 * 1024, 3)
    with servers.tls(issued, kind="long_chain") as server:
        result = await shake(server.port)
    assert result.status == "tls_error"
    assert result.error == f"{TOO_LONG} (OpenSSL: excessive message size)"
    assert result.chain == []  # OpenSSL refuses the message before it parses any of it


async def test_where_the_limit_cannot_be_raised_openssl_default_stays(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As on a Python whose _ssl offers no SSL_CTX_ctrl: a 220 KB chain, the issue's, fails.
    monkeypatch.setattr(tls, "_ssl_ctx_ctrl", lambda: None)
    context = client_context()
    assert tls.chain_limit(context) == tls.OPENSSL_CHAIN_BYTES
    issued = padded_chain("default-limit.test", 220_000, 3)
    with servers.tls(issued, kind="long_chain") as server:
        result = await shake(server.port, context)
    assert result.status == "tls_error"
    assert result.error == (
        "the server's certificate chain exceeds the 100 KiB OpenSSL accepts by default"
        " (pinscan cannot raise it on this Python) (OpenSSL: excessive message size)"
    )
    monkeypatch.undo()
    with servers.tls(issued, kind="long_chain") as server:
        result = await shake(server.port)
    assert result.status == "ok"
    assert result.chain == issued.chain_der


def test_the_guard_writes_nothing_it_cannot_vouch_for(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not tls._raise_chain_limit(object())
    assert tls._ssl_ctx(object()) is None
    # A library other than the one _ssl reports.
    monkeypatch.setattr(ssl, "OPENSSL_VERSION_NUMBER", ssl.OPENSSL_VERSION_NUMBER + 1)
    assert tls._ssl_ctx_ctrl.__wrapped__() is None
    monkeypatch.undo()
    # A pointer that does not read back OpenSSL's default is left alone: here a context whose
    # limit something else already set.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctrl, pointer = tls._ssl_ctx_ctrl(), tls._ssl_ctx(context)
    ctrl(pointer, tls._CTRL_SET_MAX_CERT_LIST, 200_000, None)
    assert not tls._raise_chain_limit(context)
    assert ctrl(pointer, tls._CTRL_GET_MAX_CERT_LIST, 0, None) == 200_000
    # Another Python: no layout to rely on.
    monkeypatch.setattr(tls.sys.implementation, "name", "pypy")
    assert tls._ssl_ctx(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)) is None
