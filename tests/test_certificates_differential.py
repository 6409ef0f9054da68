# SPDX-License-Identifier: Apache-2.0
"""pinscan.certificates against independent parsers over every certificate in
cryptography_vectors and certifi.

Pins are checked against asn1crypto's raw SPKI slice (not pyca's `public_key()`, which re-encodes
RSA-PSS and explicit-curve keys); the other columns against pyca/cryptography wherever pyca can
read the certificate.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import ipaddress
import warnings
from collections.abc import Iterator

import polars as pl
import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.utils import CryptographyDeprecationWarning

import pinscan

from corpora import all_certificates


@pytest.fixture(scope="module")
def corpus() -> tuple[list[str], list[bytes], pl.DataFrame]:
    items = all_certificates()
    names = [n for n, _ in items]
    ders = [d for _, d in items]
    return names, ders, pinscan.certificates(ders)


def raw_spki(der: bytes) -> bytes | None:
    """The SPKI bytes as asn1crypto frames them, or None when asn1crypto cannot."""
    try:
        cert = asn1_x509.Certificate.load(der, strict=True)
        info = cert["tbs_certificate"]["subject_public_key_info"]
        info["algorithm"]["algorithm"].dotted  # noqa: B018 - forces the parse down to the key
        spki = info.dump()
    except (ValueError, TypeError, OverflowError, KeyError):
        return None  # KeyError: asn1crypto knows no such key algorithm
    assert spki in der, "asn1crypto re-encoded the SPKI; the differential would be meaningless"
    return spki


@contextlib.contextmanager
def dsa_allowed() -> Iterator[None]:
    """pyca/cryptography 51 deprecates DSA and warns on every DSA key it reads (and on
    ``dsa.DSAPublicKey`` itself); the corpus holds DSA certificates on purpose."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", "DSA is deprecated", category=CryptographyDeprecationWarning
        )
        yield


def pyca(der: bytes) -> x509.Certificate | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return x509.load_der_x509_certificate(der)
        except (ValueError, x509.InvalidVersion):
            return None


def test_corpus_is_substantial(corpus):
    _, ders, df = corpus
    assert len(ders) > 600
    assert df.height == len(ders)
    assert df["error"].null_count() > 600


def test_fingerprint_is_sha256_of_every_input(corpus):
    _, ders, df = corpus
    assert df["cert_sha256"].to_list() == [hashlib.sha256(d).hexdigest() for d in ders]


def test_pin_is_sha256_of_the_raw_spki(corpus):
    names, ders, df = corpus
    compared = 0
    for name, der, pin in zip(names, ders, df["spki_sha256"], strict=True):
        spki = raw_spki(der)
        if spki is None:
            continue
        compared += 1
        assert pin == base64.b64encode(hashlib.sha256(spki).digest()).decode(), name
    assert compared > 600


def test_reencoding_keys_would_have_given_wrong_pins(corpus):
    # The reason pins hash the raw slice: pyca re-encodes some keys, which changes their pin.
    names, ders, df = corpus
    differs = []
    for name, der, pin in zip(names, ders, df["spki_sha256"], strict=True):
        cert, spki = pyca(der), raw_spki(der)
        if cert is None or spki is None:
            continue
        try:
            with dsa_allowed():
                reencoded = cert.public_key().public_bytes(
                    Encoding.DER, PublicFormat.SubjectPublicKeyInfo
                )
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
        if reencoded != spki:
            differs.append(name)
            assert pin == base64.b64encode(hashlib.sha256(spki).digest()).decode()
    assert differs, "the corpus should hold keys whose re-encoding differs (RSA-PSS, explicit EC)"


def expected_fields(cert: x509.Certificate) -> dict[str, object]:
    """The columns pinscan computes, as pyca/cryptography reads them; a key is absent where pyca
    cannot read that field."""
    out: dict[str, object] = {}
    for field, read in [
        ("subject", lambda: cert.subject.rfc4514_string()),
        ("issuer", lambda: cert.issuer.rfc4514_string()),
        ("serial", lambda: format(cert.serial_number, "x")),
        ("not_before", lambda: cert.not_valid_before_utc),
        ("not_after", lambda: cert.not_valid_after_utc),
    ]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # negative serials
            with contextlib.suppress(ValueError):
                out[field] = read()
    try:
        with dsa_allowed():
            key = cert.public_key()
            if isinstance(key, rsa.RSAPublicKey | dsa.DSAPublicKey | ec.EllipticCurvePublicKey):
                out["key_bits"] = key.key_size
        if isinstance(key, ec.EllipticCurvePublicKey):
            out["curve"] = key.curve.name
    except (ValueError, TypeError, UnsupportedAlgorithm):
        pass
    try:
        exts = cert.extensions
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType):
        return out  # pyca refuses the extensions block: nothing to compare against
    for ext_class, read in [
        (x509.BasicConstraints, lambda v: {"is_ca": v.ca, "path_len": v.path_length}),
        (
            x509.SubjectAlternativeName,
            lambda v: {
                "dns_names": v.get_values_for_type(x509.DNSName),
                "ip_addresses": [str(ip) for ip in v.get_values_for_type(x509.IPAddress)],
            },
        ),
        (x509.SubjectKeyIdentifier, lambda v: {"ski": v.digest.hex()}),
        (
            x509.AuthorityKeyIdentifier,
            lambda v: {"aki": v.key_identifier.hex() if v.key_identifier else None},
        ),
        (
            x509.PrecertificateSignedCertificateTimestamps,
            lambda v: {"sct_count": len(v)},
        ),
    ]:
        try:
            out.update(read(exts.get_extension_for_class(ext_class).value))
        except x509.ExtensionNotFound:
            defaults = {
                x509.BasicConstraints: {"is_ca": False, "path_len": None},
                x509.SubjectAlternativeName: {"dns_names": [], "ip_addresses": []},
                x509.SubjectKeyIdentifier: {"ski": None},
                x509.AuthorityKeyIdentifier: {"aki": None},
                x509.PrecertificateSignedCertificateTimestamps: {"sct_count": 0},
            }
            out.update(defaults[ext_class])
        except (ValueError, TypeError):
            pass  # pyca refuses this extension: nothing to compare against
    return out


# Certificates of the corpus with malformed policy notices, which pyca only warns about so far.
@pytest.mark.filterwarnings(
    "ignore:Invalid ASN.1:cryptography.utils.CryptographyDeprecationWarning"
)
def test_fields_agree_with_pyca(corpus):
    names, ders, df = corpus
    rows = df.to_dicts()
    mismatches = []
    compared = 0
    for name, der, row in zip(names, ders, rows, strict=True):
        cert = pyca(der)
        if cert is None:
            continue
        for field, want in expected_fields(cert).items():
            got = row[field]
            if field == "ip_addresses" and got is not None:
                got = [str(ipaddress.ip_address(ip)) for ip in got]
            compared += 1
            if got != want:
                mismatches.append((name, field, got, want))
    assert compared > 8000
    # OpenSSL names explicit parameters that equal a named curve after that curve; pinscan says
    # "explicit", since such a key pins differently from the named-curve key (see above).
    assert mismatches == [("custom/ec_no_named_curve.pem#0", "curve", "explicit", "secp256r1")]


def test_row_errors_name_the_field(corpus):
    names, _, df = corpus
    errors = dict(zip(names, df["error"], strict=True))
    assert errors["badasn1time.pem#0"].startswith("validity: ")
    assert "version: unknown version 7" in errors["custom/invalid_version.pem#0"]
    assert "duplicate extension 2.5.29.19" in errors["custom/two_basic_constraints.pem#0"]
    assert errors["custom/invalid-sct-length.der"] == "embedded_scts: malformed SCT list"
    # A broken field never costs the pin.
    pins = dict(zip(names, df["spki_sha256"], strict=True))
    for name in ["badasn1time.pem#0", "custom/invalid_version.pem#0", "utf8-dnsname.pem#0"]:
        assert pins[name] is not None, name
