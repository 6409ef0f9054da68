# SPDX-License-Identifier: Apache-2.0
"""End to end: `pinscan.scan` and `pinscan scan` against a fleet of good and hostile endpoints,
real server software included, and a scan killed with SIGKILL and resumed."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.serialization import Encoding

import pinscan
from pinscan.cli import main
from pinscan.config import ScanConfig, Timeouts
from pinscan.scanner import handshake as handshake_module
from pinscan.scanner.verify import Verifier

from fleet import pki, servers

# Every scan test, on each TLS engine (issue 16).
pytestmark = pytest.mark.usefixtures("each_engine")

LOOPBACKS = ("127.0.0.1", "127.0.0.2")
QUICK = Timeouts(connect=2, handshake=2, deadline=4)


def fast(**changes: object) -> ScanConfig:
    """Quick settings for loopback; built at each call, so that a test's engine (the
    `each_engine` fixture's default) is the one its scans use."""
    return ScanConfig(concurrency=64, retries=0, timeouts=QUICK, **changes)


def by_target(ds: pinscan.ScanDataset) -> dict[str, dict]:
    return {row["target"]: row for row in ds.endpoints.collect().iter_rows(named=True)}


def test_a_mixed_fleet_gives_one_row_per_target(tmp_path: Path) -> None:
    with (
        servers.good() as good,
        servers.silent() as silent,
        servers.closed_port() as closed,
        servers.garbage("http") as garbage,
        servers.alert() as alert,
    ):
        lines = [
            f"127.0.0.1:{good.port} a.test",
            f"127.0.0.1:{silent.port}",
            f"127.0.0.1:{closed.port}",
            f"127.0.0.1:{garbage.port}",
            f"127.0.0.1:{alert.port}",
            "nosuchhost.invalid:443",
            "bad line with:too many:colons here",
            f"127.0.0.1:{good.port} a.test",  # a duplicate: scanned once
        ]
        ds = pinscan.scan(lines, tmp_path / "out", config=fast())

    rows = by_target(ds)
    eps = ds.endpoints.collect()
    assert eps.height == 7
    assert rows[f"127.0.0.1:{good.port} a.test"]["status"] == "ok"
    assert rows[f"127.0.0.1:{silent.port}"]["status"] == "handshake_timeout"
    assert rows[f"127.0.0.1:{closed.port}"]["status"] == "refused"
    assert rows[f"127.0.0.1:{garbage.port}"]["status"] == "not_tls"
    assert rows[f"127.0.0.1:{alert.port}"]["status"] == "tls_alert"
    assert rows["nosuchhost.invalid:443"]["status"] == "dns_error"
    bad = eps.filter(pl.col("status") == "bad_target")
    assert bad.height == 1 and bad["line"][0] == 7 and bad["error"][0]
    assert eps.filter(pl.col("status") != "ok")["error"].null_count() == 0

    ok = rows[f"127.0.0.1:{good.port} a.test"]
    leaf = pki.leaf("a.test", key="rsa")
    assert ok["leaf_sha256"] == pinscan.certificates([leaf.der])["cert_sha256"][0]
    assert ok["spki_sha256"] == pinscan.spki_pin(leaf.der)
    # The test CA is in no trust store: the chain does not verify, the name matches.
    assert ok["verified"] is False and ok["hostname_match"] is True
    assert ok["tls_version"] in {"TLSv1.2", "TLSv1.3"} and ok["cipher"]

    served = ds.served().filter(pl.col("target") == ok["target"]).collect()
    assert (
        served["cert_sha256"].to_list()
        == pinscan.certificates(leaf.chain_der)["cert_sha256"].to_list()
    )
    assert ds.meta["complete"] is True
    assert ds.meta["counts"]["statuses"]["ok"] == 1


def test_private_pki_verifies_with_a_ca_bundle(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(pki.root().cert.public_bytes(Encoding.PEM))
    config = ScanConfig(retries=0, ca_bundle=bundle, timeouts=QUICK)
    with servers.good() as good:
        ds = pinscan.scan(
            [f"127.0.0.1:{good.port} b.test", f"127.0.0.1:{good.port} wrong.test"],
            tmp_path / "out",
            config=config,
        )
    rows = by_target(ds)
    right = rows[f"127.0.0.1:{good.port} b.test"]
    assert right["verified"] is True and right["trust_store"] == "ca_bundle"
    assert right["hostname_match"] is True
    # An unknown SNI gets the default certificate: a good chain, for another name.
    wrong = rows[f"127.0.0.1:{good.port} wrong.test"]
    assert wrong["verified"] is True and wrong["hostname_match"] is False
    verified = ds.chains.filter(pl.col("source") == "verified").collect()
    # The built chain ends in the root, which the server never sent.
    root_sha = pinscan.certificates([pki.root().der])["cert_sha256"][0]
    assert root_sha in verified["cert_sha256"].to_list()


def test_a_chain_is_verified_once_whatever_the_names_it_is_served_for(monkeypatch) -> None:
    verifier = Verifier.of_certificates([("ca_bundle", [pki.root().cert])])
    built = []
    verify_chain = Verifier.build
    monkeypatch.setattr(Verifier, "build", lambda self, c: built.append(c) or verify_chain(self, c))
    chain = pki.leaf("a.test", "*.w.test").chain_der
    names = ["a.test", "x.w.test", "wrong.test", "A.TEST.", "127.0.0.1", None]
    verdicts = {name: verifier.verify(chain, name) for name in names}
    assert len(built) == 1
    assert all(v.verified and v.trust_store == "ca_bundle" for v in verdicts.values())
    assert {n: v.hostname_match for n, v in verdicts.items()} == {
        "a.test": True,
        "x.w.test": True,
        "wrong.test": False,
        "A.TEST.": True,  # pyca refuses a trailing dot as a subject: the path is built anyway
        "127.0.0.1": False,
        None: None,
    }
    assert verdicts["a.test"].chain[-1] == pki.root().der
    untrusted = Verifier.of_certificates(
        [("ca_bundle", [pki.leaf("other.test", self_signed=True).cert])]
    )
    refused = untrusted.verify(chain, "a.test")
    assert refused.verify_error == "unknown_root"
    assert "(pyca: ca_bundle: validation failed" in refused.verify_detail
    junk = untrusted.verify([b"junk"], "a.test")
    assert (junk.verify_error, junk.hostname_match) == ("malformed", None)


def test_concurrency_bounds_the_handshakes_in_flight(tmp_path: Path, monkeypatch) -> None:
    in_flight, peak = 0, 0

    async def counted(*args, **kwargs):
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            return await handshake_module.handshake(*args, **kwargs)
        finally:
            in_flight -= 1

    monkeypatch.setattr("pinscan.scanner.engine.handshake", counted)
    config = ScanConfig(concurrency=3, retries=0, timeouts=QUICK)
    with servers.good() as good:
        lines = [f"127.0.0.1:{good.port} n{i}.test" for i in range(20)]
        ds = pinscan.scan(lines, tmp_path / "out", config=config)
    assert peak == 3
    assert ds.endpoints.collect()["status"].to_list() == ["ok"] * 20


def test_every_address_of_a_name_is_scanned(tmp_path: Path, monkeypatch) -> None:
    system = socket.getaddrinfo

    def two_addresses(host: str, port: int, *args, **kwargs):
        if host != "fleet.test":  # the test servers' own lookups
            return system(host, port, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in LOOPBACKS]

    monkeypatch.setattr(socket, "getaddrinfo", two_addresses)
    with servers.good() as good:  # on 127.0.0.1 only: 127.0.0.2 refuses
        ds = pinscan.scan([f"fleet.test:{good.port}"], tmp_path / "out", config=fast())
        one = pinscan.scan(
            [f"fleet.test:{good.port}"],
            tmp_path / "first",
            config=ScanConfig(first_address=True, timeouts=QUICK),
        )
    eps = ds.endpoints.collect().sort("ip")
    assert eps["ip"].to_list() == list(LOOPBACKS)
    assert eps["status"].to_list() == ["ok", "refused"]
    assert eps["endpoint_id"].n_unique() == 2 and eps["target_id"].n_unique() == 1
    assert one.endpoints.collect()["ip"].to_list() == ["127.0.0.1"]


def test_real_servers(tmp_path: Path, nginx, legacy_tls1, each_engine: str) -> None:
    lines = {f"127.0.0.1:{port}": key for key, port in nginx.ports.items()}
    for name in ("a.shared.test", "b.shared.test"):
        lines[f"127.0.0.1:{nginx.shared_port} {name}"] = name
    lines[f"127.0.0.1:{legacy_tls1.port}"] = "legacy"
    # rustls alone cannot reach the TLS 1.0 server (test_engines.py): auto scans this fleet,
    # the legacy server through OpenSSL; the openssl engine scans all of it.
    engine = "auto" if each_engine == "rustls" else each_engine
    ds = pinscan.scan(list(lines), tmp_path / "out", config=fast(engine=engine))
    rows = by_target(ds)
    assert len(rows) == len(lines)
    assert {r["status"] for r in rows.values()} == {"ok"}
    for target, key in lines.items():
        served_by = "openssl" if key == "legacy" or engine == "openssl" else "rustls"
        assert rows[target]["engine"] == served_by, target
        if key == "legacy":
            assert rows[target]["tls_version"] == "TLSv1"
            assert (
                rows[target]["leaf_sha256"]
                == pinscan.certificates(legacy_tls1.chain[:1])["cert_sha256"][0]
            )
            continue
        expected = pinscan.certificates([nginx.issued[key].der])["cert_sha256"][0]
        assert rows[target]["leaf_sha256"] == expected, target
    expired = rows[f"127.0.0.1:{nginx.ports['expired']}"]
    assert expired["days_to_expiry"] < 0


def test_cli_scan_jsonl_and_summary(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.txt"
    with servers.good() as good, servers.closed_port() as closed:
        inventory.write_text(f"# fleet\n127.0.0.1:{good.port} b.test\n127.0.0.1:{closed.port}\n")
        result = CliRunner().invoke(
            main,
            ["scan", str(inventory), "-o", str(tmp_path / "out"), "--jsonl", "--retries", "0"],
        )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert {r["status"] for r in rows} == {"ok", "refused"}
    ok = next(r for r in rows if r["status"] == "ok")
    assert ok["presented"][0]["spki_sha256"] == pinscan.spki_pin(
        pki.leaf("b.test", "www.b.test").der
    )
    assert "scanned 2 targets" in result.stderr


def test_cli_usage_and_input_errors_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(main, ["scan", str(tmp_path / "nope.txt"), "-o", str(tmp_path / "o")])
    assert missing.exit_code == 2
    assert "pinscan: " in missing.stderr and "Traceback" not in missing.stderr
    bad = tmp_path / "bad.txt"
    bad.write_text("good.test\nhost:99999\n")
    strict = runner.invoke(main, ["scan", str(bad), "-o", str(tmp_path / "o2"), "--strict"])
    assert strict.exit_code == 2
    assert "line 2" in strict.stderr
    assert not (tmp_path / "o2").exists(), "--strict fails before anything is written"
    both = runner.invoke(main, ["scan", str(bad), "-o", str(tmp_path / "o3"), "--history", "h"])
    assert both.exit_code == 2


def test_kill_9_then_resume_scans_every_target_exactly_once(tmp_path: Path) -> None:
    # Closed ports across 127/8: refused at once, paced by --rate so the kill lands mid-scan.
    n = 3000
    inventory = tmp_path / "inventory.txt"
    inventory.write_text("".join(f"127.0.{i // 250}.{i % 250 + 1}:9\n" for i in range(n)))
    out = tmp_path / "out"
    # One process: its parts are the dataset's as they are written (tests/test_processes.py
    # kills a scan of several).
    cmd = [sys.executable, "-m", "pinscan", "scan", str(inventory), "-o", str(out), "-q",
           "--processes", "1"]  # fmt: skip
    proc = subprocess.Popen(
        [*cmd, "--rate", "600", "--flush-rows", "100", "--retries", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    parts = out / "endpoints"
    for _ in range(300):  # bounded wait for a few committed parts
        if parts.is_dir() and len(list(parts.glob("part-*.parquet"))) >= 3:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    partial = pinscan.open(out)
    assert partial.meta["complete"] is False
    done_before = partial.endpoints.collect().height
    assert 0 < done_before < n

    resumed = subprocess.run(
        [*cmd, "--resume", "--flush-rows", "500", "--retries", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    ds = pinscan.open(out)
    eps = ds.endpoints.collect()
    assert eps.height == n
    assert eps["target"].n_unique() == n
    assert sorted(eps["line"]) == list(range(1, n + 1))
    assert set(eps["status"]) == {"refused"}
    assert ds.meta["complete"] is True
    assert ds.meta["counts"]["skipped_already_done"] == done_before
    assert not [p for p in out.rglob(".*") if p.is_file()], "no temporaries left"
