# SPDX-License-Identifier: Apache-2.0
"""The CA catalog shipped in the package: its pins against other readers of the vendored data,
a fresh build against the shipped file, issuer links against pyca/cryptography, Let's Encrypt's
families as its certificates page states them, and a private PKI linked like a public one."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import re
import ssl
import subprocess
import sys
import tarfile
import warnings
from pathlib import Path

import cryptography_vectors
import polars as pl
import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.utils import CryptographyDeprecationWarning

import pinscan
from pinscan.catalog import der, derive
from pinscan.catalog.graph import METADATA_KEY, SHIPPED, Catalog, parse_query
from pinscan.errors import InputError

from fleet import pki

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "data" / "ca-sources.tar.xz"
BUILD = ROOT / "scripts" / "build_ca_catalog.py"
#: Inside the validity of Let's Encrypt's 2024 intermediates (until 2027-03-12) and after Gen Y
#: began (2025-09): the state its certificates page of 2026-07-08 describes.
SUMMER_2026 = dt.datetime(2026, 8, 1, tzinfo=dt.UTC)
AFTER_2024_GENERATION = dt.datetime(2027, 6, 1, tzinfo=dt.UTC)
FAMILIES = {
    "Let's Encrypt": {"Let's Encrypt"},
    "Google Trust Services": {"Google Trust Services", "Google Trust Services LLC"},
    "Amazon": {"Amazon"},
    "DigiCert": {"DigiCert Inc", "DigiCert, Inc."},
    "Sectigo": {"Sectigo Limited"},
}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The vendored sources, extracted."""
    directory = tmp_path_factory.mktemp("ca-sources")
    with tarfile.open(SOURCES) as archive:
        archive.extractall(directory, filter="data")
    return directory / "data"


@pytest.fixture(scope="module")
def ders(data: Path) -> dict[str, bytes]:
    """Every certificate of the sources by SHA-256, read without pinscan (csv, ssl's PEM)."""
    csv.field_size_limit(1 << 24)
    found = {}
    for path in sorted((data / "ccadb").glob("AllCertificatePEMsCSVFormat_*.csv")):
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                pem = row["X.509 Certificate (PEM)"].encode()
                found[row["SHA-256 Fingerprint"].lower()] = _pem_der(pem)
    for path in [*(data / "letsencrypt").rglob("*.pem"), *(data / "trust-stores").rglob("*.pem")]:
        for block in re.findall(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----",
                                path.read_bytes(), re.DOTALL):  # fmt: skip
            der_bytes = _pem_der(block)
            found[hashlib.sha256(der_bytes).hexdigest()] = der_bytes
    return found


def _pem_der(pem: bytes) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem.decode("ascii"))


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.shipped()


def _pin(catalog: Catalog, name: str) -> str:
    found = catalog.lookup(name)
    assert found.height == 1, found["subject"].to_list()
    return found["spki_sha256"][0]


def _names(frame: pl.DataFrame) -> set[str]:
    return set(frame["name"].to_list())


# The pins ----------------------------------------------------------------------------------


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_intermediate_pins_equal_those_another_der_reader_computes(
    family: str, ders: dict[str, bytes], catalog: Catalog
) -> None:
    """sha256 of the SPKI bytes as asn1crypto finds them in each certificate (not re-encoded)."""
    expected = {}
    for fingerprint, certificate in ders.items():
        parsed = asn1_x509.Certificate.load(certificate)
        tbs = parsed["tbs_certificate"]
        organizations = tbs["subject"].native.get("organization_name")
        if isinstance(organizations, list):  # several O attributes
            organizations = organizations[0]
        if organizations not in FAMILIES[family] or tbs["subject"] == tbs["issuer"]:
            continue
        spki = tbs["subject_public_key_info"].dump()
        assert spki in certificate  # the bytes as they appear
        expected[fingerprint] = (hashlib.sha256(spki).digest(), hashlib.sha1(spki).digest())
    rows = catalog.certificates.filter(pl.col("cert_sha256").is_in(list(expected)))
    shipped = {
        fp: (_b64decode(pin), _b64decode(sha1))
        for fp, pin, sha1 in rows.select("cert_sha256", "spki_sha256", "spki_sha1").rows()
    }
    assert len(expected) >= 10
    assert shipped == expected


def _b64decode(pin: str) -> bytes:
    import base64

    return base64.b64decode(pin)


def test_pins_agree_with_the_ccadbs_own_ski_to_spki_table(data: Path, catalog: Catalog) -> None:
    with (data / "ccadb" / "ski_spkisha256.csv").open(newline="") as handle:
        listed = {
            _b64decode(row["Subject Key Identifier"]).hex(): row["SHA-256(Subject Public Key Info)"]
            for row in csv.DictReader(handle)
        }
    keyed = catalog.certificates.filter(pl.col("ski").is_in(list(listed)))
    disagree = [
        (ski, pin) for ski, pin in keyed.select("ski", "spki_sha256").unique().rows()
        if listed[ski] != pin
    ]  # fmt: skip
    # One SKI a few CAs reused for several keys is the only disagreement allowed.
    reused = catalog.certificates.group_by("ski").agg(pl.col("spki_sha256").n_unique() > 1)
    reused_skis = set(reused.filter(pl.col("spki_sha256"))["ski"].to_list())
    assert keyed.height > 5000
    assert [ski for ski, _ in disagree if ski not in reused_skis] == []


# The build -----------------------------------------------------------------------------------


def test_a_fresh_build_from_the_vendored_sources_is_the_shipped_file(tmp_path: Path) -> None:
    out = tmp_path / "ca_catalog.parquet"
    done = subprocess.run(
        [sys.executable, str(BUILD), str(SOURCES), "-o", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert pl.read_parquet(out).equals(pl.read_parquet(SHIPPED))
    fresh, shipped = (json.loads(pl.read_parquet_metadata(p)[METADATA_KEY]) for p in (out, SHIPPED))
    for meta in (fresh, shipped):
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", meta.pop("built"))
        assert meta.pop("builder")["script"] == "scripts/build_ca_catalog.py"
    assert fresh == shipped
    assert shipped["sources"]["ccadb"]["commit"] == "64b3f6ebd3480bf4de561ec16ee9002462a9c531"
    assert shipped["stores"]["android"]["version"] == "17.0.0_r1"


def test_the_build_refuses_sources_it_cannot_read(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "README.md").write_text("no sources here\n")
    done = subprocess.run(
        [sys.executable, str(BUILD), str(tmp_path), "-o", str(tmp_path / "out.parquet")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("build_ca_catalog: README.md: no section for ccadb/")
    assert not (tmp_path / "out.parquet").exists()


def test_the_shipped_file_fits_the_wheel_budget() -> None:
    assert SHIPPED.stat().st_size < 3_000_000


def test_linking_the_shipped_rows_again_gives_them_back(catalog: Catalog) -> None:
    """Roots and owners are a function of the rows' links, as with_pems recomputes them."""
    assert derive.finish(catalog.certificates).equals(catalog.certificates)


# Issuer links and EKUs -------------------------------------------------------------------------


def test_issuer_links_are_what_pyca_verifies(ders: dict[str, bytes], catalog: Catalog) -> None:
    """Every link the catalog has, pyca confirms (the names, the signature) where it parses both
    certificates; and the catalog links certificates pyca refuses to parse."""
    rows = catalog.certificates.filter(~pl.col("self_signed")).drop_nulls("issuer_spki_sha256")
    by_pin = dict(catalog.certificates.group_by("spki_sha256").agg("cert_sha256").rows())
    checked = unparsed = unsupported = 0
    with warnings.catch_warnings():
        # pyca's complaints about the old certificates it still reads (negative serials,
        # attributes over their length bounds) are not what this test is about.
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        for fingerprint, parent in rows.select("cert_sha256", "issuer_spki_sha256").rows():
            try:
                child = x509.load_der_x509_certificate(ders[fingerprint])
                parents = [x509.load_der_x509_certificate(ders[fp]) for fp in by_pin[parent]]
            except ValueError:
                unparsed += 1
                continue
            verdicts = {_issued_by(child, p) for p in parents}
            if True not in verdicts and None in verdicts:
                unsupported += 1  # an algorithm pyca does not check (MD2, DSA)
                continue
            assert True in verdicts, fingerprint
            checked += 1
    assert checked > 7000 and unparsed > 10 and unsupported < 10


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool | None:
    """Whether pyca says ``parent`` issued ``child``: the names equal as pyca compares them (the
    string types may differ, as RFC 5280 allows) and the signature verifies with the parameters
    pyca reads; ``None`` when pyca cannot check the algorithm."""
    if child.issuer != parent.subject:
        return False
    key = parent.public_key()
    try:
        parameters = child.signature_algorithm_parameters
        if isinstance(key, rsa.RSAPublicKey):
            assert isinstance(parameters, padding.PKCS1v15 | padding.PSS)
            key.verify(child.signature, child.tbs_certificate_bytes, parameters,
                       child.signature_hash_algorithm)  # fmt: skip
        elif isinstance(key, ec.EllipticCurvePublicKey):
            assert isinstance(parameters, ec.ECDSA)
            key.verify(child.signature, child.tbs_certificate_bytes, parameters)
        else:
            return None
    except (UnsupportedAlgorithm, ValueError):
        return None
    except InvalidSignature:
        return False
    return True


def test_tls_capability_follows_the_eku_pyca_reads(
    ders: dict[str, bytes], catalog: Catalog
) -> None:
    server_auth = x509.ExtendedKeyUsageOID.SERVER_AUTH
    any_usage = x509.ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE
    compared = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        for fingerprint, capable in catalog.certificates.select(
            "cert_sha256", "can_issue_tls"
        ).rows():
            try:
                cert = x509.load_der_x509_certificate(ders[fingerprint])
                usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
                expected = server_auth in usage or any_usage in usage
            except x509.ExtensionNotFound:
                expected = True
            except ValueError:
                continue
            assert capable is expected, fingerprint
            compared += 1
    assert compared > 8000
    restricted = catalog.certificates.filter(~pl.col("can_issue_tls"))
    assert restricted.height > 500  # code signing, S/MIME, client-only CAs
    assert restricted.filter(pl.col("eku").list.contains("server_auth")).is_empty()


# Let's Encrypt -------------------------------------------------------------------------------


def _le_page(data: Path) -> dict[str, tuple[str, str]]:
    """certificates.md read plainly: Let's Encrypt name -> (section, key type)."""
    page = (data / "letsencrypt" / "certificates.md").read_text()
    sections = re.split(r"^(# .+|<summary>.+</summary>)$", page, flags=re.MULTILINE)
    found = {}
    for heading, body in zip(sections[1::2], sections[2::2], strict=True):
        section = heading.removeprefix("# ").removeprefix("<summary>").removesuffix("</summary>")
        for name, key in re.findall(
            r"\*\*(.+?)\*\*\n  \* Subject: .+\n  \* Key type: `(\w+)", body
        ):
            found[name] = (section, key)
    return found


def test_le_statuses_are_the_pages(data: Path, catalog: Catalog) -> None:
    page = _le_page(data)
    statuses = {"Subordinate (Intermediate) CAs": "active", "Backup": "backup",
                "Retired": "retired", "Expired": "expired", "Root CAs": "root"}  # fmt: skip
    cas = catalog.cas.drop_nulls("le_name")
    assert dict(cas.select("le_name", "le_status").rows()) == {
        name: statuses[section]
        for name, (section, _) in page.items()
        # Authority X1/X3 (and X2/X4) are one key each: the catalog names it once.
        if name not in ("Let's Encrypt Authority X1", "Let's Encrypt Authority X2")
    }
    assert {n for n, (s, _) in page.items() if s.startswith("Subordinate")} == {
        "Let's Encrypt YE1", "Let's Encrypt YE2", "Let's Encrypt YR1", "Let's Encrypt YR2",
    }  # fmt: skip


@pytest.mark.parametrize("name", ["R10", "R12", "E5", "E7", "YR1", "YE2", "YR3"])
def test_le_siblings_are_its_valid_intermediates_and_the_active_set_of_its_key_type(
    name: str, data: Path, catalog: Catalog
) -> None:
    page = _le_page(data)
    key_type = "RSA" if name.startswith(("R", "YR")) else "ECDSA"
    issuing = {
        n.removeprefix("Let's Encrypt ")
        for n, (section, key) in page.items()
        if key == key_type and section in ("Subordinate (Intermediate) CAs", "Backup")
    }
    siblings = catalog.siblings(_pin(catalog, name), SUMMER_2026)
    names = _names(siblings)
    assert name in names and issuing <= names
    assert siblings.filter("is_self")["name"].to_list() == [name]
    assert set(siblings["key_type"].to_list()) == {key_type.lower().replace("ecdsa", "ec")}
    generation = (
        {f"R1{i}" for i in range(5)} if key_type == "RSA" else {f"E{i}" for i in range(5, 10)}
    )
    if name in generation:
        assert generation <= names  # the same issuing key, valid until 2027-03-12
    else:
        assert names == issuing  # Gen Y: its own root's intermediates only


def test_r10_siblings_include_r11_and_the_active_set(catalog: Catalog) -> None:
    siblings = catalog.siblings("sha256/" + _pin(catalog, "R10"), SUMMER_2026)
    status = dict(siblings.select("name", "le_status").rows())
    assert status["R11"] == "retired"
    assert {n for n, s in status.items() if s == "active"} == {"YR1", "YR2"}
    assert {n for n, s in status.items() if s == "backup"} == {"YR3"}


def test_once_the_2024_intermediates_expire_only_gen_y_is_left(catalog: Catalog) -> None:
    siblings = catalog.siblings(_pin(catalog, "R10"), AFTER_2024_GENERATION)
    assert _names(siblings) == {"R10", "YR1", "YR2", "YR3"}


def test_le_roots_and_the_stores_behind_them(catalog: Catalog) -> None:
    roots = catalog.roots(_pin(catalog, "R10"), SUMMER_2026)
    valid = roots.filter("valid")
    assert valid["name"].to_list() == ["ISRG Root X1"]
    assert valid["trusted_by"].to_list() == [list(derive.STORES)]
    assert roots.filter(~pl.col("valid"))["name"].to_list() == ["DST Root CA X3"]  # expired 2024
    gen_y = catalog.roots(_pin(catalog, "YE1"), SUMMER_2026)
    assert dict(gen_y.select("name", "hops").rows()) == {
        "Root YE": 1, "ISRG Root X2": 2, "ISRG Root X1": 3, "DST Root CA X3": 4,
    }  # fmt: skip
    assert gen_y.filter(pl.col("name") == "Root YE")["trusted_by"].to_list() == [[]]
    # The revoked cross-signs LE lists do not count: Root YR is reached through the reissued one.
    cross = catalog.parents(_pin(catalog, "Root YR"), SUMMER_2026)
    assert cross["name"].to_list() == ["ISRG Root X1"] and cross["valid"].to_list() == [True]


def test_one_family_for_lets_encrypt(catalog: Catalog) -> None:
    owners = catalog.cas.drop_nulls("le_name")["owner"].unique().to_list()
    assert owners == ["Internet Security Research Group"]  # Gen Y's roots say O=ISRG


# Other public CAs ------------------------------------------------------------------------------


def test_siblings_of_public_intermediates(catalog: Catalog) -> None:
    gts = catalog.siblings(_pin(catalog, "WR2"), SUMMER_2026)
    assert {"WR1", "WR2", "WR3", "WR4"} <= _names(gts)
    assert set(gts["owner"].to_list()) == {"Google Trust Services LLC"}
    digicert = catalog.siblings(
        _pin(catalog, "DigiCert Global G2 TLS RSA SHA256 2020 CA1"), SUMMER_2026
    )
    # Under DigiCert Global Root G2 are CAs DigiCert runs for others (Microsoft's, Wells
    # Fargo's): not where a DigiCert customer's next certificate comes from.
    assert set(digicert["organization"].to_list()) == {"DigiCert Inc"}
    assert "RapidSSL TLS RSA CA G1" in _names(digicert)
    everyone = catalog.siblings(
        _pin(catalog, "DigiCert Global G2 TLS RSA SHA256 2020 CA1"),
        SUMMER_2026,
        same_organization=False,
    )
    assert len(set(everyone["organization"].to_list())) > 1
    assert everyone.filter(pl.col("is_root")).is_empty()
    assert everyone["can_issue_tls"].all()


def test_owners_are_one_spelling_per_organization(catalog: Catalog) -> None:
    owners = catalog.families()["owner"].drop_nulls().to_list()
    keys = [derive.family_key(owner) for owner in owners]
    assert len(keys) == len(set(keys))
    assert "DigiCert Inc" in owners and "DigiCert, Inc." not in owners


def test_lookups_by_pin_fingerprint_and_name_find_one_ca(catalog: Catalog) -> None:
    pin = _pin(catalog, "R10")
    fingerprint = catalog.ca(pin)["certificates"][0]
    colons = ":".join(fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()
    for query in (pin, f"sha256/{pin}", fingerprint, colons, "r10", "Let's Encrypt R10"):
        assert catalog.lookup(query)["spki_sha256"].to_list() == [pin], query
    # A part of a name: every CA whose subject or owner holds it, valid ones first.
    digicert = catalog.lookup("digicert global g")
    assert digicert.height > 3 and digicert["not_after"].is_sorted(descending=True)
    assert catalog.lookup("no such CA anywhere").is_empty()
    assert catalog.lookup("sha256/" + "A" * 43 + "=").is_empty()
    with pytest.raises(ValueError, match="empty query"):
        catalog.lookup("  ")


def test_what_a_query_is() -> None:
    assert parse_query("sha256/" + "A" * 43 + "=") == ("pin", "A" * 43 + "=")
    assert parse_query("ab" * 32) == ("fingerprint", "ab" * 32)
    assert parse_query("AB:" * 31 + "AB") == ("fingerprint", "ab" * 32)
    assert parse_query("R10") == ("name", "R10")
    assert parse_query("A" * 44) == ("name", "A" * 44)  # not base64 of 32 bytes


def test_a_frame_that_is_not_the_catalog_is_refused(catalog: Catalog) -> None:
    with pytest.raises(ValueError, match="not the CA catalog's columns"):
        Catalog(catalog.certificates.drop("owner"))


# A private PKI ---------------------------------------------------------------------------------


def _bundle(path: Path, *issued: pki.Issued) -> Path:
    path.write_bytes(b"".join(i.cert.public_bytes(serialization.Encoding.PEM) for i in issued))
    return path


def test_a_private_pki_is_linked_like_a_public_one(tmp_path: Path, catalog: Catalog) -> None:
    leaf = pki.leaf("private.test")  # not a CA: left out
    bundle = _bundle(
        tmp_path / "pki.pem", pki.root(), pki.intermediate(), pki.second_intermediate(), leaf
    )
    private = catalog.with_pems([bundle])
    assert private.certificates.height == catalog.certificates.height + 3
    assert private.meta["local"] == [str(bundle)]
    first = pinscan.spki_pin(pki.intermediate().der)
    second = pinscan.spki_pin(pki.second_intermediate().der)
    root = pinscan.spki_pin(pki.root().der)
    siblings = private.siblings(first)
    assert dict(siblings.select("spki_sha256", "is_self").rows()) == {first: True, second: False}
    assert private.parents(second)["spki_sha256"].to_list() == [root]
    roots = private.roots(first)
    assert roots.select("spki_sha256", "hops", "valid").rows() == [(root, 1, True)]
    assert roots["trusted_by"].to_list() == [[]]
    ca = private.ca(first)
    assert ca is not None and ca["owner"] == "Pinscan Test Fleet" and ca["sources"] == ["local"]
    assert "Pinscan Test Fleet" in private.families()["owner"].to_list()
    # The public rows are untouched.
    public = private.certificates.join(catalog.certificates.select("cert_sha256"), "cert_sha256")
    assert public.sort("cert_sha256").equals(catalog.certificates.sort("cert_sha256"))


def test_public_certificates_in_a_bundle_keep_their_rows(
    tmp_path: Path, data: Path, catalog: Catalog
) -> None:
    bundle = data / "letsencrypt" / "2024" / "r10.pem"
    assert catalog.with_pems([bundle]).certificates.equals(catalog.certificates)


def test_a_bundle_without_a_ca_is_an_input_error(tmp_path: Path, catalog: Catalog) -> None:
    bundle = _bundle(tmp_path / "leaf.pem", pki.leaf("private.test"))
    with pytest.raises(InputError, match=r"leaf\.pem: no CA certificate among its 1 certificates"):
        catalog.with_pems([bundle])
    with pytest.raises(InputError, match="no certificate found"):
        catalog.with_pems([_write(tmp_path / "empty.pem", b"nothing\n")])


def test_a_dsa_ca_is_a_row_without_a_checked_signature(catalog: Catalog) -> None:
    """pyca checks no DSA signature, and warns when it loads a DSA key (the suite makes that an
    error): the CA is kept, unlinked, and nothing warns."""
    vectors = Path(cryptography_vectors.__file__).parent / "x509" / "custom"
    added = catalog.with_pems([vectors / "dsa_selfsigned_ca.pem"])
    (row,) = added.certificates.filter(pl.col("sources") == ["local"]).iter_rows(named=True)
    assert row["key_type"] == "dsa" and not row["self_signed"]
    assert row["issuer_spki_sha256"] is None and row["root_spki_sha256"] == []


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# The framing reader ------------------------------------------------------------------------------


def test_eku_and_signatures_from_the_framing() -> None:
    root, intermediate, leaf = pki.root(), pki.intermediate(), pki.leaf("framing.test")
    assert der.eku(root.der) is None
    assert der.eku(leaf.der) == ("server_auth",)
    signed = der.signed(intermediate.der)
    assert signed.tbs == intermediate.cert.tbs_certificate_bytes
    assert der.signed_by(signed, _spki(root.cert))
    assert not der.signed_by(signed, _spki(intermediate.cert))
    assert not der.signed_by(signed, b"\x30\x00")  # not a key
    with pytest.raises(der.DerError):
        der.signed(intermediate.der[:-1])
    with pytest.raises(der.DerError):
        der.eku(b"\x30\x03\x02\x01\x00")


def _spki(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize("salt", [32, padding.PSS.DIGEST_LENGTH])
def test_rsa_pss_signatures_are_checked_with_their_parameters(salt: int) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "PSS CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA384(), rsa_padding=padding.PSS(padding.MGF1(hashes.SHA384()), salt))
    )  # fmt: skip
    signed = der.signed(cert.public_bytes(serialization.Encoding.DER))
    assert signed.algorithm == "1.2.840.113549.1.1.10"
    assert der.signed_by(signed, _spki(cert))
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    assert not der.signed_by(signed, other.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ))  # fmt: skip


# Loading ---------------------------------------------------------------------------------------


def test_importing_pinscan_reads_no_catalog() -> None:
    code = (
        "import sys, pinscan\n"
        "assert 'pinscan.catalog.graph' not in sys.modules and 'polars' not in sys.modules\n"
        "from pinscan.catalog import graph\n"
        "assert graph._shipped.cache_info().currsize == 0\n"
        "first = pinscan.ca_catalog()\n"
        "assert graph._shipped.cache_info().currsize == 1\n"
        "assert pinscan.ca_catalog() is first and pinscan.Catalog.shipped().certificates is first\n"
        "print(first.height)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == pl.read_parquet(SHIPPED).height
