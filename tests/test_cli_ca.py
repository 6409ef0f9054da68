# SPDX-License-Identifier: Apache-2.0
"""`pinscan ca` end to end: a CA's family by name, pin or fingerprint, as text and JSON; a
private PKI given with --ca-catalog; the CAs in the chains of a scan of the local fleet; and
queries that match nothing refused with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

import pinscan
from pinscan.catalog.graph import Catalog

from cliresult import refused, run
from fleet import pki, servers

#: Inside the validity of Let's Encrypt's 2024 intermediates, after its Gen Y ones began.
AS_OF = ["--as-of", "2026-08-01"]


@pytest.fixture(scope="module")
def r10() -> dict:
    (row,) = Catalog.shipped().lookup("R10").iter_rows(named=True)
    return row


def _family(result) -> dict:
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["matches"] == 1
    (family,) = document["cas"]
    return family


def test_a_name_prints_the_family(r10: dict) -> None:
    result = run("ca", "R10", *AS_OF)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith(f"R10  sha256/{r10['spki_sha256']}\n")
    assert "Let's Encrypt R10: retired" in out
    assert "Internet Security Research Group" in out
    # Siblings with their status and validity, parents, roots and the stores that trust them.
    siblings = out.split("siblings on 2026-08-01")[1].split("roots")[0]
    for name, status in (
        ("R11", "retired"),
        ("YR1", "active"),
        ("YR2", "active"),
        ("YR3", "backup"),
    ):
        (line,) = [line for line in siblings.splitlines() if f" {name} " in line]
        assert status in line and "sha256/" in line
    assert "this CA" in siblings and "2027-03-12" in siblings
    assert "ISRG Root X1" in out.split("parents")[1]
    (root_line,) = [line for line in out.split("roots")[-1].splitlines() if "ISRG Root X1" in line]
    assert "android, apple, java, microsoft, mozilla" in root_line


@pytest.mark.parametrize("form", ["pin", "bare pin", "fingerprint", "fingerprint with colons"])
def test_a_pin_or_a_fingerprint_finds_the_same_ca(form: str, r10: dict) -> None:
    fingerprint = r10["certificates"][0]
    query = {
        "pin": f"sha256/{r10['spki_sha256']}",
        "bare pin": r10["spki_sha256"],
        "fingerprint": fingerprint,
        "fingerprint with colons": ":".join(
            fingerprint[i : i + 2] for i in range(0, 64, 2)
        ).upper(),
    }[form]
    family = _family(run("ca", query, "--format", "json", *AS_OF))
    assert family["ca"]["spki_sha256"] == r10["spki_sha256"]


def test_json_output() -> None:
    result = run("ca", "E5", "--format", "json", *AS_OF)
    family = _family(result)
    document = json.loads(result.stdout)
    assert document["query"] == "E5" and document["as_of"].startswith("2026-08-01T00:00:00")
    ca = family["ca"]
    assert (ca["name"], ca["le_status"], ca["key_type"], ca["is_root"]) == (
        "E5",
        "retired",
        "ec",
        False,
    )
    siblings = {s["name"]: s for s in family["siblings"]}
    assert {"E5", "E6", "YE1", "YE2", "YE3"} <= set(siblings)
    assert not {name for name in siblings if name.startswith(("R", "YR"))}  # ECDSA only
    assert siblings["E5"]["is_self"] and siblings["YE1"]["le_status"] == "active"
    assert siblings["YE1"]["valid_until"].startswith("2028-09-02")
    assert {p["name"] for p in family["parents"]} == {"ISRG Root X1", "ISRG Root X2"}
    assert {r["name"] for r in family["roots"] if r["valid"]} == {"ISRG Root X1", "ISRG Root X2"}


def test_a_root_lists_what_it_signs() -> None:
    result = run("ca", "ISRG Root X2", "--limit", "0", *AS_OF)
    assert result.exit_code == 0, result.output
    signs = result.stdout.split("CAs it signs, valid on 2026-08-01")[1].split("roots")[0]
    assert all(f" {name} " in signs for name in ("E5", "E9", "Root YE"))
    assert "root (self-signed)" in result.stdout


def test_a_name_matching_many_shows_the_first(r10: dict) -> None:
    result = run("ca", "let's encrypt", "--limit", "2", "--format", "json", *AS_OF)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["matches"] > 20 and len(document["cas"]) == 2
    text = run("ca", "let's encrypt", "--limit", "2", *AS_OF)
    assert f"... {document['matches'] - 2} more CAs match" in text.stdout


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("No Such CA Anywhere", "no CA in the catalog matches the name 'No Such CA Anywhere'"),
        ("sha256/" + "A" * 43 + "=", "no CA in the catalog has the pin"),
        ("ab" * 32, "no certificate in the catalog has the fingerprint"),
    ],
)
def test_a_query_that_matches_nothing_exits_2(query: str, says: str) -> None:
    line = refused(run("ca", query), "--ca-catalog")
    assert line.startswith(f"pinscan: ca: {says}")


def test_an_empty_query_is_a_usage_error() -> None:
    result = run("ca", " ")
    assert result.exit_code == 2 and "an empty query names no CA" in result.stderr


def _bundle(path: Path, *issued: pki.Issued) -> Path:
    path.write_bytes(b"".join(i.cert.public_bytes(Encoding.PEM) for i in issued))
    return path


def test_a_private_pki_from_ca_catalog(tmp_path: Path) -> None:
    bundle = _bundle(
        tmp_path / "pki.pem", pki.root(), pki.intermediate(), pki.second_intermediate()
    )
    family = _family(
        run("ca", "Pinscan Test Intermediate", "--ca-catalog", str(bundle), "--format", "json")
    )
    assert family["ca"]["owner"] == "Pinscan Test Fleet" and family["ca"]["sources"] == ["local"]
    siblings = {s["name"] for s in family["siblings"]}
    assert siblings == {"Pinscan Test Intermediate", "Pinscan Test Intermediate 2"}
    assert [r["name"] for r in family["roots"]] == ["Pinscan Test Root"]
    assert family["roots"][0]["trusted_by"] == []
    # Without it, the shipped catalog knows nothing of it.
    refused(run("ca", "Pinscan Test Intermediate"), "Pinscan Test Intermediate")


def test_a_ca_catalog_file_that_is_not_pem_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    refused(run("ca", "R10", "--ca-catalog", str(junk)), junk, "no certificate found")
    leaf = _bundle(tmp_path / "leaf.pem", pki.leaf("leaf.test"))
    refused(run("ca", "R10", "--ca-catalog", str(leaf)), leaf, "no CA certificate")


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scan of the in-process good server, verified against the fleet's root."""
    tmp = tmp_path_factory.mktemp("ca-scan")
    bundle = _bundle(tmp / "root.pem", pki.root())
    out = tmp / "out"
    with servers.good() as good:
        targets = [f"127.0.0.1:{good.port} {name}" for name in ("a.test", "b.test", "c.test")]
        inventory = tmp / "inventory.txt"
        inventory.write_text("\n".join(targets) + "\n")
        result = run("scan", str(inventory), "-o", str(out), "--ca-bundle", str(bundle), "-q",
                     "--retries", "0", "--deadline", "4")  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def test_a_scan_lists_the_cas_in_its_chains(scanned: Path, tmp_path: Path) -> None:
    result = run("ca", str(scanned), "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["scan"] == str(scanned) and document["scan_id"]
    issuers = {row["name"]: row for row in document["issuers"]}
    intermediate, root = issuers["Pinscan Test Intermediate"], issuers["Pinscan Test Root"]
    endpoints = pinscan.open(scanned).endpoints.collect().height
    assert intermediate["endpoints"] == root["endpoints"] == endpoints == 3
    assert (intermediate["role"], root["role"]) == ("intermediate", "root")
    assert not intermediate["in_catalog"] and intermediate["owner"] is None
    assert intermediate["spki_sha256"] == pinscan.spki_pin(pki.intermediate().der)
    # With the fleet's PKI as a catalog, the same CAs are known, and owned.
    bundle = _bundle(tmp_path / "pki.pem", pki.root(), pki.intermediate())
    known = json.loads(
        run("ca", str(scanned), "--ca-catalog", str(bundle), "--format", "json").stdout
    )
    rows = {row["name"]: row for row in known["issuers"]}
    assert rows["Pinscan Test Intermediate"]["in_catalog"]
    assert rows["Pinscan Test Intermediate"]["owner"] == "Pinscan Test Fleet"


def test_a_scan_as_a_table(scanned: Path) -> None:
    result = run("ca", str(scanned))
    assert result.exit_code == 0, result.output
    assert f"CAs in the chains of {scanned}" in result.stdout
    (line,) = [line for line in result.stdout.splitlines() if "Pinscan Test Intermediate" in line]
    assert (
        "not in the catalog" in line
        and f"sha256/{pinscan.spki_pin(pki.intermediate().der)}" in line
    )
    assert line.split("│")[1].strip() == "3"


def test_a_directory_that_is_not_a_scan_is_refused(tmp_path: Path) -> None:
    refused(run("ca", str(tmp_path)), tmp_path)
