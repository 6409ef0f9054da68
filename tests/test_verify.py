# SPDX-License-Identifier: Apache-2.0
"""Why a chain does not verify, in a TLS engineer's words: each kind of `VERIFY_ERRORS` on a chain
a real server serves, scanned the way users scan; the verification child names them alike."""

from __future__ import annotations

import datetime as dt
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import dsa
from cryptography.hazmat.primitives.serialization import Encoding

import pinscan
from pinscan.cli import main
from pinscan.config import ScanConfig, Timeouts
from pinscan.records import VERIFY_ERRORS
from pinscan.scanner.verify import Verifier
from pinscan.scanner.verify_pool import VerifyProcess

from fleet import pki, real, servers

CONFIG = ScanConfig(retries=0, timeouts=Timeouts(connect=2, handshake=2, deadline=4))

# name served -> (its chain, the kind, words of the detail that name the certificate at fault)
BROKEN = {
    "expired.test": (pki.leaf("expired.test", expired=True), "expired", 'leaf "CN=expired.test'),
    "future.test": (pki.future_leaf("future.test"), "not_yet_valid", "is not valid before"),
    "self.test": (pki.leaf("self.test", self_signed=True), "self_signed", "is self-signed"),
    "incomplete.test": (
        pki.leaf_only(pki.leaf("incomplete.test")),
        "incomplete_chain",
        "did not send the leaf's issuer \"CN=Pinscan Test Intermediate",
    ),
    "unknown.test": (
        pki.unknown_root_leaf("unknown.test"),
        "unknown_root",
        '"CN=Pinscan Other Root,O=Pinscan Test Fleet", was not sent and no trust store has it',
    ),
    "forged.test": (pki.forged_leaf("forged.test"), "bad_signature", "does not verify with"),
    "nonca.test": (
        pki.non_ca_issued_leaf("nonca.test"),
        "invalid_chain",
        'intermediate "CN=Pinscan Not A CA,O=Pinscan Test Fleet" issues the certificate below it '
        "but is not a CA",
    ),
    "cnonly.test": (pki.cn_only_leaf("cnonly.test"), "no_san", "no DNS name or IP"),
}
cn_only = BROKEN["cnonly.test"][0]


@pytest.fixture(scope="module")
def weak_issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[real.SServer]:
    """``openssl s_server`` at security level 0 (Python's own server refuses to load it):
    a leaf signed by a 1024-bit RSA intermediate."""
    if real.find("openssl") is None:
        if os.environ.get("CI"):
            pytest.fail("openssl is not installed")
        pytest.skip("openssl is not installed")
    issued = pki.weak_issuer_leaf("weak.test")
    directory = tmp_path_factory.mktemp("weak")
    with real.openssl_s_server(issued, directory, "-cipher", "DEFAULT@SECLEVEL=0") as server:
        yield server


def bundle(tmp_path: Path) -> Path:
    path = tmp_path / "root.pem"
    path.write_bytes(pki.root().cert.public_bytes(Encoding.PEM))
    return path


def test_each_kind_of_broken_chain_is_named(tmp_path: Path, weak_issuer) -> None:
    config = ScanConfig(retries=0, timeouts=CONFIG.timeouts, ca_bundle=bundle(tmp_path))
    # The CN-only leaf has no name to be chosen by: it is the server's default.
    chains = sorted((issued for issued, _, _ in BROKEN.values()), key=lambda i: i is not cn_only)
    with servers.tls(*chains) as server:
        lines = [f"127.0.0.1:{server.port} {name}" for name in BROKEN]
        lines.append(f"127.0.0.1:{weak_issuer.port} weak.test")
        lines.append(f"127.0.0.1:{server.port} expired.test")  # served twice: built once
        ds = pinscan.scan(lines, tmp_path / "out", config=config)
    rows = {
        r["sni"]: r
        for r in ds.endpoints.select("sni", "status", "verified", "verify_error", "verify_detail")
        .collect()
        .iter_rows(named=True)
    }
    expected = {name: kind for name, (_, kind, _) in BROKEN.items()}
    expected["weak.test"] = "unsupported_algorithm"
    assert {name: r["verify_error"] for name, r in rows.items()} == expected
    assert all(r["status"] == "ok" and r["verified"] is False for r in rows.values())
    assert set(expected.values()) <= set(VERIFY_ERRORS)
    for name, (_, _, words) in BROKEN.items():
        assert words in rows[name]["verify_detail"], rows[name]["verify_detail"]
    weak = rows["weak.test"]["verify_detail"]
    assert weak.startswith('the leaf "CN=weak.test,O=Pinscan Test Fleet": signed with a 1024-bit')
    # pyca's own message stays, after pinscan's sentence, for every store tried (stores that
    # failed alike named together, in the scan's order); no Python repr leads the detail.
    for name, r in rows.items():
        if name != "cnonly.test":  # pyca never ran: no name to build the path for
            assert "(pyca: mozilla, android, apple, microsoft, java" in r["verify_detail"]
            assert "ca_bundle: validation failed" in r["verify_detail"]
        assert not r["verify_detail"].startswith("<")


def test_the_verification_child_names_them_alike(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    chains = [tuple(issued.chain_der) for issued, _, _ in BROKEN.values()]
    here = Verifier.for_scan(ca_bundle=bundle(tmp_path), now=now)
    child = VerifyProcess()
    child.load(here.spec, now)
    try:
        found = child.build(chains)
    finally:
        child.close()
    assert found == [here.build(chain) for chain in chains]
    assert [f.error for f in found] == [kind for _, kind, _ in BROKEN.values()]


def test_real_nginx_expired_self_signed_and_a_name_mismatch(tmp_path: Path, nginx) -> None:
    lines = [f"127.0.0.1:{nginx.ports[key]}" for key in ("expired", "self_signed", "wrong_name")]
    config = ScanConfig(retries=0, timeouts=CONFIG.timeouts, ca_bundle=bundle(tmp_path))
    ds = pinscan.scan(lines, tmp_path / "out", config=config)
    rows = {
        r["port"]: r
        for r in ds.endpoints.select("port", "verified", "verify_error", "hostname_match")
        .collect()
        .iter_rows(named=True)
    }
    assert rows[nginx.ports["expired"]]["verify_error"] == "expired"
    assert rows[nginx.ports["self_signed"]]["verify_error"] == "self_signed"
    # A good chain for another name: verified, and the name mismatch is its own column.
    wrong = rows[nginx.ports["wrong_name"]]
    assert (wrong["verified"], wrong["verify_error"]) == (True, None)
    # No SNI was sent, so the name judged is the IP, which the certificate does not cover.
    assert wrong["hostname_match"] is False


def test_a_dataset_written_before_verify_detail_still_opens(tmp_path: Path) -> None:
    # Parts as pinscan wrote them before verify_detail (endpoints) and error_kind (certificates).
    with servers.tls(pki.leaf_only(pki.leaf("old.test"))) as server:
        ds = pinscan.scan([f"127.0.0.1:{server.port} old.test"], tmp_path / "out", config=CONFIG)
    (part,) = (tmp_path / "out" / "endpoints").glob("*.parquet")
    old = (
        pl.read_parquet(part)
        .drop("verify_detail")
        .with_columns(verify_error=pl.lit("mozilla: validation failed: candidates exhausted"))
    )
    old.write_parquet(part)
    (certs,) = (tmp_path / "out" / "certificates").glob("*.parquet")
    pl.read_parquet(certs).drop("error_kind").write_parquet(certs)
    again = pinscan.open(ds.path, verify=True)
    row = again.endpoints.collect().row(0, named=True)
    assert row["verify_error"] == "mozilla: validation failed: candidates exhausted"
    assert row["verify_detail"] is None
    assert again.certificates.select("error", "error_kind").collect().rows() == [(None, None)]
    # The command line checks every part: a missing later column is no damage to it either.
    result = CliRunner().invoke(main, ["report", str(ds.path), "--format", "json"])
    assert result.exit_code == 0, result.output


def test_a_dsa_issuer_is_an_unsupported_algorithm_and_no_warning_escapes() -> None:
    # pytest turns warnings into errors here: pyca's DSA deprecation must not reach the scan.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        key = dsa.generate_private_key(2048)
        issuer = pki._issue("Pinscan DSA Intermediate", key, pki.root(), ca=True)
        leaf = pki._issue("dsa.test", pki._key("ec"), issuer, ca=False, names=("dsa.test",))
    verdict = Verifier.of_certificates([("ca_bundle", [pki.root().cert])]).verify(
        leaf.chain_der, "dsa.test"
    )
    assert verdict.verify_error == "unsupported_algorithm"
    assert verdict.verify_detail.startswith(
        'the leaf "CN=dsa.test,O=Pinscan Test Fleet": signed with a key of type DSA'
    )


def test_a_scans_verifier_parses_the_roots_only_to_build_a_path_itself() -> None:
    """A scan's own verifier names the stores pinscan ships (the child reads them) and reads no
    root until it builds a path: a scan whose chains a child builds never parses one."""
    verifier = Verifier.for_scan()
    assert not verifier.path_builder_loaded
    assert verifier.spec.stores == tuple((name, None) for name in pinscan.records.TRUST_STORES)
    found = verifier.build(pki.leaf("lazy.test").chain_der)
    assert verifier.path_builder_loaded
    assert (found.verified, found.error) == (False, "unknown_root")  # a test root: in no store
    child = Verifier.from_spec(verifier.spec)  # a child loads at once, so it fails at once
    assert child.path_builder_loaded
    assert child.build(pki.leaf("lazy.test").chain_der) == found
