# SPDX-License-Identifier: Apache-2.0
"""Pins of certificates, public keys, CSRs and private keys, checked against independent sources."""

from __future__ import annotations

import base64
import datetime as dt
import doctest
import hashlib
import importlib
from dataclasses import dataclass
from pathlib import Path

import certifi
import cryptography_vectors
import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

import pinscan
import pinscan.certs.keys
from pinscan.certs.keys import read_items
from pinscan.certs.pem import PemBlock, read_pem
from pinscan.errors import InputError

Encoding = serialization.Encoding
PrivateFormat = serialization.PrivateFormat
PublicFormat = serialization.PublicFormat

VECTORS = Path(cryptography_vectors.__file__).parent
PASSWORD = b"correct horse"


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True)
class Material:
    """A key with a self-signed certificate and a CSR for it."""

    name: str
    key: CertificateIssuerPrivateKeyTypes
    cert: x509.Certificate
    csr: x509.CertificateSigningRequest

    @property
    def spki(self) -> bytes:
        """The SPKI as cryptography encodes it: right for these plain key types."""
        return self.key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def make_material(name: str, key: CertificateIssuerPrivateKeyTypes) -> Material:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"pinscan {name}")])
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, algorithm)
    )
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, algorithm)
    return Material(name, key, cert, csr)


KEYS = {
    "rsa2048": lambda: rsa.generate_private_key(65537, 2048),
    "p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "p384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
}


@pytest.fixture(scope="module", params=list(KEYS))
def material(request: pytest.FixtureRequest) -> Material:
    return make_material(request.param, KEYS[request.param]())


P256 = make_material("p256", ec.generate_private_key(ec.SECP256R1()))


def forms(m: Material) -> dict[str, tuple[bytes | str, bytes | None]]:
    """Every encoding of the certificate, CSR, public and private key, with its password."""
    key, public = m.key, m.key.public_key()
    encrypt = serialization.BestAvailableEncryption(PASSWORD)
    plain = serialization.NoEncryption()
    out: dict[str, tuple[bytes | str, bytes | None]] = {
        "cert pem": (m.cert.public_bytes(Encoding.PEM), None),
        "cert pem str": (m.cert.public_bytes(Encoding.PEM).decode("ascii"), None),
        "cert der": (m.cert.public_bytes(Encoding.DER), None),
        "public pem": (public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo), None),
        "public der": (public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo), None),
        "csr pem": (m.csr.public_bytes(Encoding.PEM), None),
        "csr pem new label": (
            m.csr.public_bytes(Encoding.PEM).replace(
                b"CERTIFICATE REQUEST", b"NEW CERTIFICATE REQUEST"
            ),
            None,
        ),
        "csr der": (m.csr.public_bytes(Encoding.DER), None),
        "pkcs8 pem": (key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, plain), None),
        "pkcs8 der": (key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, plain), None),
        "pkcs8 pem, password ignored": (
            key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, plain),
            PASSWORD,
        ),
        "encrypted pkcs8 pem": (
            key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, encrypt),
            PASSWORD,
        ),
        "encrypted pkcs8 der": (
            key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, encrypt),
            PASSWORD,
        ),
    }
    if not isinstance(key, ed25519.Ed25519PrivateKey):  # no traditional format for Ed25519
        traditional = PrivateFormat.TraditionalOpenSSL
        out["traditional pem"] = (key.private_bytes(Encoding.PEM, traditional, plain), None)
        out["traditional der"] = (key.private_bytes(Encoding.DER, traditional, plain), None)
        out["legacy encrypted pem"] = (
            key.private_bytes(Encoding.PEM, traditional, encrypt),
            PASSWORD.decode("ascii"),  # type: ignore[dict-item]
        )
    if isinstance(key, rsa.RSAPrivateKey):
        out["pkcs1 public pem"] = (public.public_bytes(Encoding.PEM, PublicFormat.PKCS1), None)
        out["pkcs1 public der"] = (public.public_bytes(Encoding.DER, PublicFormat.PKCS1), None)
    return out


def test_every_form_gives_the_same_pin(material: Material) -> None:
    expected = b64(hashlib.sha256(material.spki).digest())
    all_forms = forms(material)
    pins = {name: pinscan.spki_pin(data, password=pw) for name, (data, pw) in all_forms.items()}
    assert pins == dict.fromkeys(all_forms, expected)
    ders = {name: pinscan.spki_der(data, password=pw) for name, (data, pw) in all_forms.items()}
    assert ders == dict.fromkeys(all_forms, material.spki)


def test_the_pin_is_the_certificates_column(material: Material) -> None:
    der = material.cert.public_bytes(Encoding.DER)
    row = pinscan.certificates([der], sha1=True).row(0, named=True)
    assert pinscan.spki_pin(der) == row["spki_sha256"]
    assert pinscan.spki_pin(der, algorithm="sha1") == row["spki_sha1"]


def test_sha1_pins_against_hashlib(material: Material) -> None:
    expected = b64(hashlib.sha1(material.spki).digest())
    for name, (data, pw) in forms(material).items():
        assert pinscan.spki_pin(data, password=pw, algorithm="sha1") == expected, name


def test_unknown_algorithm_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="`algorithm` must be"):
        pinscan.spki_pin(P256.cert.public_bytes(Encoding.DER), algorithm="md5")  # type: ignore[arg-type]


def vector_der(path: Path) -> bytes:
    data = path.read_bytes()
    return read_pem(data, str(path))[0].der if path.suffix == ".pem" else data


CUSTOM = sorted(
    path
    for path in (VECTORS / "x509" / "custom").iterdir()
    if "pss" in path.name or "named_curve" in path.name
)


def test_the_vectors_are_there() -> None:
    names = {path.name for path in CUSTOM}
    assert {"rsa_pss.pem", "rsa_pss_cert.pem", "ec_no_named_curve.pem"} <= names


@pytest.mark.parametrize("path", CUSTOM, ids=lambda p: p.name)
def test_rsa_pss_and_explicit_curve_certificates_pin_the_raw_spki(path: Path) -> None:
    der = vector_der(path)
    raw = asn1_x509.Certificate.load(der)["tbs_certificate"]["subject_public_key_info"].dump()
    assert pinscan.spki_der(path.read_bytes()) == raw
    assert pinscan.spki_pin(path.read_bytes()) == b64(hashlib.sha256(raw).digest())
    assert pinscan.spki_pin(der) == pinscan.certificates([der])["spki_sha256"][0]


@pytest.mark.parametrize("name", ["rsa_pss.pem", "rsa_pss_cert.pem", "ec_no_named_curve.pem"])
def test_reencoding_would_change_these_pins(name: str) -> None:
    path = VECTORS / "x509" / "custom" / name
    reencoded = (
        x509.load_der_x509_certificate(vector_der(path))
        .public_key()
        .public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    )
    assert pinscan.spki_der(path.read_bytes()) != reencoded


def test_explicit_curve_public_key_is_returned_as_is() -> None:
    data = (VECTORS / "asymmetric" / "EC" / "secp256r1-pub-explicit-seed.pem").read_bytes()
    der = read_pem(data, "x")[0].der
    assert pinscan.spki_der(data) == der
    reencoded = serialization.load_der_public_key(der).public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo
    )
    assert reencoded != der


def test_rsa_pss_private_key_keeps_its_algorithm() -> None:
    pss = VECTORS / "asymmetric" / "PKCS8"
    public = (pss / "rsa_pss_2048_pub.der").read_bytes()
    private = (pss / "rsa_pss_2048.pem").read_bytes()
    assert pinscan.spki_der(private) == public
    assert pinscan.spki_der(read_pem(private, "x")[0].der) == public

    with_params = (pss / "rsa_pss_2048_hash_mask_salt.pem").read_bytes()
    info = asn1_keys.PrivateKeyInfo.load(read_pem(with_params, "x")[0].der)
    spki = asn1_keys.PublicKeyInfo.load(pinscan.spki_der(with_params))
    assert spki["algorithm"].dump() == info["private_key_algorithm"].dump()
    assert spki["algorithm"]["parameters"]["salt_length"].native == 32
    rsa_key = serialization.load_pem_private_key(with_params, None).public_key()
    assert (
        spki["public_key"].dump()
        == asn1_keys.PublicKeyInfo.load(
            rsa_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        )["public_key"].dump()
    )


def encrypted(m: Material, fmt: PrivateFormat = PrivateFormat.PKCS8) -> bytes:
    return m.key.private_bytes(Encoding.PEM, fmt, serialization.BestAvailableEncryption(PASSWORD))


@pytest.mark.parametrize("fmt", [PrivateFormat.PKCS8, PrivateFormat.TraditionalOpenSSL])
def test_encrypted_key_without_password_asks_for_one(fmt: PrivateFormat) -> None:
    with pytest.raises(InputError, match=r"line 1: the private key is encrypted.*`password=`"):
        pinscan.spki_pin(encrypted(P256, fmt))


def test_encrypted_der_without_password_asks_for_one() -> None:
    der = P256.key.private_bytes(
        Encoding.DER, PrivateFormat.PKCS8, serialization.BestAvailableEncryption(PASSWORD)
    )
    with pytest.raises(InputError, match=r"^<data>: the private key is encrypted"):
        pinscan.spki_der(der)


@pytest.mark.parametrize("fmt", [PrivateFormat.PKCS8, PrivateFormat.TraditionalOpenSSL])
def test_wrong_password_says_so(fmt: PrivateFormat) -> None:
    with pytest.raises(InputError, match="wrong password"):
        pinscan.spki_pin(encrypted(P256, fmt), password="not it")


def test_a_key_that_decrypts_to_garbage_may_be_a_wrong_password() -> None:
    # Legacy PEM encryption (RFC 1423): key = EVP_BytesToKey(MD5, password, salt = IV[:8]). A
    # valid CBC padding over garbage is what 1 wrong password in 256 decrypts to.
    iv = bytes(range(16))
    key = hashlib.md5(PASSWORD + iv[:8]).digest()
    padder = padding.PKCS7(128).padder()
    plain = padder.update(b"\x30\x03not a key") + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    body = encryptor.update(plain) + encryptor.finalize()
    headers = (("Proc-Type", "4,ENCRYPTED"), ("DEK-Info", f"AES-128-CBC,{iv.hex().upper()}"))
    data = PemBlock("EC PRIVATE KEY", body, 1, headers).encode()
    with pytest.raises(InputError, match="wrong password for the encrypted private key, or it is"):
        pinscan.spki_der(data, password=PASSWORD)


def test_several_blocks_is_an_error_naming_the_count() -> None:
    cert = P256.cert.public_bytes(Encoding.PEM)
    key = P256.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(InputError, match="3 certificates, keys or CSRs found, not one"):
        pinscan.spki_pin(cert + key + cert)


def test_blocks_without_keys_do_not_count() -> None:
    # `openssl ecparam -genkey` writes the curve's parameters before the key.
    params = PemBlock("EC PARAMETERS", bytes.fromhex("06082a8648ce3d030107"), 1).encode()
    key = P256.key.private_bytes(
        Encoding.PEM, PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    assert pinscan.spki_der(params + key) == P256.spki


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "no certificate, key or CSR found: the input is empty"),
        (b"hello, world\n", "no certificate, key or CSR found: neither PEM nor DER"),
        ("hello", "a str must be PEM text"),
        (
            PemBlock("X509 CRL", b"\x30\x00", 1).encode(),
            r"no certificate, key or CSR found \(skipped: X509 CRL\)",
        ),
        (
            PemBlock("CERTIFICATE", P256.csr.public_bytes(Encoding.DER), 1).encode(),
            "line 1: a CERTIFICATE block holds a csr",
        ),
        (
            PemBlock("PUBLIC KEY", P256.cert.public_bytes(Encoding.DER), 1).encode(),
            "line 1: a PUBLIC KEY block holds a certificate",
        ),
        (
            PemBlock("CERTIFICATE", P256.cert.public_bytes(Encoding.DER) + b"\x00", 1).encode(),
            "line 1: CERTIFICATE: 1 unexpected trailing bytes",
        ),
        (P256.cert.public_bytes(Encoding.DER)[:-20], "not a DER certificate, CSR or key"),
        (b"\x30\x03\x02\x01\x00", "not a readable DER key"),
        (
            (VECTORS / "asymmetric" / "EC" / "explicit_parameters_private_key.pem").read_bytes(),
            "line 1: EC PRIVATE KEY: ECDSA keys with explicit parameters",
        ),
        (
            (VECTORS / "asymmetric" / "PKCS8" / "wrong-pem-delimiter-rsa.pem").read_bytes(),
            "line 1: RSA PRIVATE KEY: ASN.1 parsing error",
        ),
        (b"-----BEGIN PUBLIC KEY-----\nAQID\n", "line 1: BEGIN PUBLIC KEY has no matching END"),
    ],
)
def test_errors_are_input_errors_with_a_reason(data: bytes | str, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        pinscan.spki_der(data)
    assert info.value.source == "<data>"


FUZZ_BASES = [
    P256.cert.public_bytes(Encoding.DER),
    P256.csr.public_bytes(Encoding.DER),
    P256.spki,
    P256.key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, serialization.NoEncryption()),
    P256.key.private_bytes(
        Encoding.DER, PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ),
    encrypted(P256),
]


@given(st.sampled_from(FUZZ_BASES), st.integers(min_value=0), st.integers(0, 255), st.booleans())
def test_damaged_input_never_escapes_as_anything_but_input_error(
    base: bytes, where: int, value: int, truncate: bool
) -> None:
    where %= len(base)
    data = base[:where] if truncate else base[:where] + bytes([value]) + base[where + 1 :]
    try:
        spki = pinscan.spki_der(data, password=PASSWORD)
    except InputError:
        return
    assert asn1_keys.PublicKeyInfo.load(spki).dump() == spki


def write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def test_read_certificates_of_certifi() -> None:
    data = Path(certifi.where()).read_bytes()
    expected = [b.der for b in read_pem(data, "cacert.pem")]
    assert len(expected) > 100
    assert pinscan.read_certificates(certifi.where()) == expected
    assert pinscan.read_certificates(Path(certifi.where())) == expected
    assert pinscan.read_certificates(data) == expected


def test_read_certificates_skips_other_blocks_and_reads_der(tmp_path: Path) -> None:
    cert = P256.cert.public_bytes(Encoding.DER)
    key = P256.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, serialization.NoEncryption())
    # OpenSSL's trusted certificate: the certificate, then X509_CERT_AUX trusting serverAuth.
    aux = bytes.fromhex("300c300a06082b06010505070301")
    bundle = key + PemBlock("TRUSTED CERTIFICATE", cert + aux, 1).encode() + key
    assert pinscan.read_certificates(write(tmp_path / "b.pem", bundle)) == [cert]
    assert pinscan.read_certificates(write(tmp_path / "c.der", cert)) == [cert]
    # A malformed DER certificate is returned for `pinscan.certificates` to report.
    broken = write(tmp_path / "broken.der", cert[:-5])
    assert pinscan.read_certificates(broken) == [cert[:-5]]
    row = pinscan.certificates(pinscan.read_certificates(broken)).row(0, named=True)
    assert row["error"] is not None
    assert row["spki_sha256"] == pinscan.spki_pin(cert)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n", "no certificate found$"),
        (b"plain text", "neither PEM nor DER"),
        (P256.csr.public_bytes(Encoding.DER), "a csr, not a certificate"),
    ],
)
def test_read_certificates_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = write(tmp_path / "f", content)
    with pytest.raises(InputError, match=message) as info:
        pinscan.read_certificates(path)
    assert info.value.source == path


def test_read_certificates_of_a_missing_file_or_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file or directory"):
        pinscan.read_certificates(tmp_path / "missing.pem")
    with pytest.raises(InputError, match="is a directory"):
        pinscan.read_certificates(tmp_path)


def test_read_items_of_a_mixed_file() -> None:
    rsa_m = make_material("rsa", rsa.generate_private_key(65537, 2048))
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(P256.cert.subject)
        .last_update(dt.datetime(2025, 1, 1))
        .next_update(dt.datetime(2025, 2, 1))
        .sign(P256.key, hashes.SHA256())
    )
    parts = [
        b"# a bundle\n",
        P256.cert.public_bytes(Encoding.PEM),
        crl.public_bytes(Encoding.PEM),
        rsa_m.csr.public_bytes(Encoding.PEM),
        b"junk: between blocks\n",
        encrypted(rsa_m, PrivateFormat.TraditionalOpenSSL),
        P256.key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo),
    ]
    data = b"".join(parts)
    lines = data.splitlines()
    items = read_items(data, "mixed.pem", password=PASSWORD)
    assert [item.kind for item in items] == [
        "certificate",
        "csr",
        "private_key",
        "public_key",
    ]
    assert [item.spki for item in items] == [P256.spki, rsa_m.spki, rsa_m.spki, P256.spki]
    assert items[0].der == P256.cert.public_bytes(Encoding.DER)
    assert items[1].der == rsa_m.csr.public_bytes(Encoding.DER)
    for item in items:
        path, line = item.source.split(":")
        assert path == "mixed.pem"
        assert lines[int(line) - 1].startswith(b"-----BEGIN ")
    assert [lines[int(i.source.split(":")[1]) - 1] for i in items][2] == (
        b"-----BEGIN RSA PRIVATE KEY-----"
    )


def test_read_items_of_der_files() -> None:
    der = P256.key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, serialization.NoEncryption())
    [item] = read_items(der, "key.der")
    assert (item.source, item.kind, item.der, item.spki) == (
        "key.der",
        "private_key",
        der,
        P256.spki,
    )


def test_read_items_keeps_a_certificate_with_broken_framing() -> None:
    damaged = P256.cert.public_bytes(Encoding.DER) + b"\x00"
    for data, source in [
        (PemBlock("CERTIFICATE", damaged, 1).encode(), "x.pem:1"),
        (damaged, "x.pem"),
    ]:
        [item] = read_items(data, "x.pem")
        assert (item.source, item.kind, item.der, item.spki) == (
            source,
            "certificate",
            damaged,
            None,
        )
        with pytest.raises(InputError, match="trailing"):
            pinscan.spki_der(data)


def test_read_items_errors_name_the_block() -> None:
    cert = P256.cert.public_bytes(Encoding.PEM)
    line = cert.count(b"\n") + 1
    with pytest.raises(InputError, match=rf"^k\.pem: line {line}: wrong password"):
        read_items(cert + encrypted(P256), "k.pem", password="nope")
    with pytest.raises(InputError, match=r"^k\.pem: no certificate, key or CSR found \(skipped"):
        read_items(PemBlock("X509 CRL", b"", 1).encode(), "k.pem")


def test_csr_subject() -> None:
    csr = P256.csr.public_bytes(Encoding.DER)
    assert pinscan.certs.keys.csr_subject(csr) == "CN=pinscan p256"
    assert pinscan.certs.keys.csr_subject(b"\x30\x00") is None


@pytest.mark.parametrize("module", ["pinscan.certs.keys", "pinscan.certs.table"])
def test_docstring_examples(module: str) -> None:
    results = doctest.testmod(importlib.import_module(module))
    assert results.attempted > 0 and results.failed == 0
