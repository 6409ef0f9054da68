# SPDX-License-Identifier: Apache-2.0
"""Fixtures shared by the test suite, by subject.

- async tests: ``@pytest.mark.anyio`` runs them on asyncio (:func:`anyio_backend`);
- the fleet: in-process servers (function scope, fresh state per test) and real server
  software, nginx and ``openssl s_server`` (session scope: they take a moment to start).
  Real servers are skipped when their program is missing, except on CI (``CI`` set), where
  ``make test`` has installed them and a skip would hide a broken install step.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from pinscan.config import ScanConfig
from pinscan.scanner.handshake import handshake

from fleet import pki, real, servers

# --- async tests ----------------------------------------------------------------------------


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- TLS engines -----------------------------------------------------------------------------


@pytest.fixture(params=["rustls", "openssl"])
def each_engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test once per TLS engine, made the default everywhere a scan starts: of
    :func:`~pinscan.scanner.handshake.handshake`, of :class:`~pinscan.config.ScanConfig` and, for
    the CLI, ``PINSCAN_ENGINE`` (child processes included). Modules of scan tests use it for all
    their tests (``pytestmark``), as issue 16 wants every scan test passed on both engines."""
    engine = request.param
    monkeypatch.setitem(handshake.__kwdefaults__, "engine", engine)
    names = [f.name for f in dataclasses.fields(ScanConfig)]
    defaults = list(ScanConfig.__init__.__defaults__)
    # Every field of ScanConfig has a default, so the defaults line up with the fields.
    assert len(defaults) == len(names)
    defaults[names.index("engine")] = engine
    monkeypatch.setattr(ScanConfig.__init__, "__defaults__", tuple(defaults))
    monkeypatch.setenv("PINSCAN_ENGINE", engine)
    return engine


# --- fleet: in-process servers --------------------------------------------------------------


@pytest.fixture
def good_server() -> Iterator[servers.Server]:
    """TLS 1.2/1.3 with ALPN; the certificate depends on the SNI (see :func:`servers.good`)."""
    with servers.good() as server:
        yield server


@pytest.fixture
def ipv6_loopback() -> str:
    """``::1``, or a skip where the machine has no IPv6 loopback."""
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback: {exc}")
    return "::1"


# --- fleet: real server software ------------------------------------------------------------


def _require(program: str, package: str) -> None:
    if real.find(program) is None:
        reason = f"{program} is not installed (Debian package {package}; `make test` installs it)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[real.Nginx]:
    """nginx with 29 sites on a port each (RSA, ECDSA, expired, self-signed, wrongly named
    and 24 more) and three more on one port, chosen by SNI (the first is the default)."""
    _require("nginx", "nginx-light")
    sites = [
        real.Site("rsa", pki.leaf("rsa.nginx.test", key="rsa")),
        real.Site("ecdsa", pki.leaf("ecdsa.nginx.test")),
        real.Site("expired", pki.leaf("expired.nginx.test", expired=True)),
        real.Site("self_signed", pki.leaf("self-signed.nginx.test", self_signed=True)),
        real.Site("wrong_name", pki.leaf("elsewhere.example")),
        *(real.Site(f"site{i:02}", pki.leaf(f"site{i:02}.nginx.test")) for i in range(24)),
    ]
    shared = [
        real.Site(name, pki.leaf(name, **options), names=(name,))
        for name, options in [
            ("shared.default.test", {}),
            ("a.shared.test", {}),
            ("b.shared.test", {"key": "rsa"}),
        ]
    ]
    with real.nginx(sites, tmp_path_factory.mktemp("nginx"), shared=shared) as running:
        yield running


def _s_server(directory: Path, issued: pki.Issued, *options: str) -> Iterator[real.SServer]:
    _require("openssl", "openssl")
    with real.openssl_s_server(issued, directory, *options) as server:
        yield server


@pytest.fixture(scope="session")
def legacy_tls1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[real.SServer]:
    """``openssl s_server``, TLS 1.0 only, SHA-1 signed RSA certificate, security level 0."""
    yield from _s_server(
        tmp_path_factory.mktemp("legacy"),
        pki.legacy_leaf("legacy.test"),
        "-tls1",
        "-cipher",
        "DEFAULT@SECLEVEL=0",
    )


@pytest.fixture(scope="session", params=[ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def openssl_client_cert(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[real.SServer]:
    """``openssl s_server -Verify 1``: a client certificate required, TLS 1.2 and TLS 1.3."""
    flag = "-tls1_2" if request.param is ssl.TLSVersion.TLSv1_2 else "-tls1_3"
    yield from _s_server(
        tmp_path_factory.mktemp("mtls"), pki.leaf("mtls.openssl.test"), flag, "-Verify", "1"
    )
