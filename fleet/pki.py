# SPDX-License-Identifier: Apache-2.0
"""A private PKI for the test fleet: a root, two intermediates and leaves with SANs (ECDSA or RSA),
expired, self-signed and wrongly named leaves, a chain of 50+ intermediates and a 64 KiB+ leaf.

Everything is made with pyca/cryptography and cached for the process: key generation (RSA above
all) is the slow part of the fleet. :meth:`Issued.write` puts PEM files where nginx and
``openssl s_server`` can read them.
"""

from __future__ import annotations

import datetime as dt
import functools
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID, ObjectIdentifier

Encoding = serialization.Encoding
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

#: An unregistered OID under the "example" arc, for the padding extension of :func:`big_leaf`.
_PADDING_OID = ObjectIdentifier("1.3.6.1.4.1.32473.1.1")
_NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclass(frozen=True)
class Issued:
    """A certificate with its key, and the chain a server presents for it (leaf first, no root)."""

    key: PrivateKey
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...]

    @property
    def chain_der(self) -> list[bytes]:
        return [c.public_bytes(Encoding.DER) for c in self.chain]

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(Encoding.DER)

    def write(self, directory: Path, name: str) -> tuple[Path, Path]:
        """Write ``name.crt`` (the presented chain, leaf first) and ``name.key``."""
        directory.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
        cert_path.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in self.chain))
        key_path.write_bytes(
            self.key.private_bytes(
                Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cert_path, key_path


def _key(kind: str) -> PrivateKey:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "p521":  # what rustls's ring provider cannot check a signature of
        return ec.generate_private_key(ec.SECP521R1())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Pinscan Test Fleet"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _issue(
    subject: str,
    key: PrivateKey,
    issuer: Issued | None,
    *,
    ca: bool,
    names: tuple[str, ...] = (),
    not_before: dt.datetime = _NOW - dt.timedelta(days=1),
    not_after: dt.datetime = _NOW + dt.timedelta(days=90),
    padding: int = 0,
) -> Issued:
    """Sign a certificate for ``key``; ``issuer=None`` makes it self-signed."""
    signer = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.cert.subject if issuer else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    # What a public CA issues (CA/Browser Forum profile), so that path builders accept it.
    builder = builder.add_extension(
        x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=not ca and isinstance(key, rsa.RSAPrivateKey),
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=ca,
            crl_sign=ca,
            encipher_only=False,
            decipher_only=False,
        ),
        critical=True,
    )
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
    if padding:
        builder = builder.add_extension(
            # extnValue: one OCTET STRING (long-form length) of filler.
            x509.UnrecognizedExtension(
                _PADDING_OID, b"\x04\x83" + padding.to_bytes(3, "big") + b"P" * padding
            ),
            critical=False,
        )
    cert = builder.sign(signer, hashes.SHA256())
    # A root is never presented: the chain above a certificate stops below the self-signed one.
    above = issuer.chain if issuer and issuer.cert.issuer != issuer.cert.subject else ()
    return Issued(key, cert, (cert, *above))


@functools.cache
def root() -> Issued:
    """The fleet's trust anchor. Servers never present it."""
    return _issue("Pinscan Test Root", _key("ec"), None, ca=True)


@functools.cache
def intermediate() -> Issued:
    return _issue("Pinscan Test Intermediate", _key("ec"), root(), ca=True)


@functools.cache
def second_intermediate() -> Issued:
    """Another issuing CA under :func:`root`: with :func:`intermediate`, the two siblings a
    private PKI's next certificate may come from. No server of the fleet uses it."""
    return _issue("Pinscan Test Intermediate 2", _key("ec"), root(), ca=True)


@functools.cache
def leaf(*names: str, key: str = "ec", expired: bool = False, self_signed: bool = False) -> Issued:
    """A server certificate for DNS ``names`` (the first is also the CN), issued by
    :func:`intermediate` unless ``self_signed``; ``expired`` ended yesterday."""
    dates = {}
    if expired:
        dates = {
            "not_before": _NOW - dt.timedelta(days=90),
            "not_after": _NOW - dt.timedelta(days=1),
        }
    issuer = None if self_signed else intermediate()
    return _issue(names[0], _key(key), issuer, ca=False, names=names, **dates)


@functools.cache
def legacy_leaf(name: str) -> Issued:
    """RSA 2048 signed with SHA-1, self-signed: what a TLS 1.0 appliance still serves.

    Signed by the ``openssl`` command, since pyca/cryptography no longer signs with SHA-1.
    """
    key = _key("rsa")
    with tempfile.TemporaryDirectory(prefix="pinscan-pki-") as tmp:
        key_path = Path(tmp) / "legacy.key"
        key_path.write_bytes(
            key.private_bytes(
                Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        request = ["openssl", "req", "-new", "-x509", "-sha1", "-days", "30", "-outform", "DER"]
        der = subprocess.run(
            [
                *request,
                "-key",
                key_path,
                "-subj",
                f"/CN={name}",
                "-addext",
                f"subjectAltName=DNS:{name}",
            ],
            check=True,
            capture_output=True,
        ).stdout
    cert = x509.load_der_x509_certificate(der)
    return Issued(key, cert, (cert,))


@functools.cache
def long_chain(depth: int = 50) -> Issued:
    """A leaf under ``depth`` intermediates, each signed by the one above."""
    issuer = root()
    for level in range(depth):
        issuer = _issue(f"Pinscan Test Intermediate {level}", _key("ec"), issuer, ca=True)
    return _issue("long-chain.test", _key("ec"), issuer, ca=False, names=("long-chain.test",))


@functools.cache
def big_leaf(size: int = 70_000) -> Issued:
    """A leaf larger than 64 KiB, padded by a non-critical extension of ``size`` bytes."""
    return _issue(
        "big-leaf.test",
        _key("ec"),
        intermediate(),
        ca=False,
        names=("big-leaf.test",),
        padding=size,
    )


# --- Chains that do not verify, each for one reason (`pinscan.records.VERIFY_ERRORS`) ----------


@functools.cache
def other_root() -> Issued:
    """A root that is in no trust store the tests give: what a private CA is to a scan that
    was not given its bundle."""
    return _issue("Pinscan Other Root", _key("ec"), None, ca=True)


@functools.cache
def platform_root() -> Issued:
    """A second private root: the root only one platform's trust store holds, in tests that
    give a store of their own under a platform's name (``--trust-store android=FILE``)."""
    return _issue("Pinscan Platform Root", _key("ec"), None, ca=True)


@functools.cache
def cross_signed() -> tuple[Issued, Issued]:
    """One intermediate (one key, one name) certified twice: by :func:`root` and by
    :func:`platform_root`, as a CA cross-signs its intermediate under two roots."""
    key = _key("ec")
    name = "Pinscan Cross-Signed Intermediate"
    return _issue(name, key, root(), ca=True), _issue(name, key, platform_root(), ca=True)


@functools.cache
def cross_signed_leaf(name: str) -> Issued:
    """A leaf under :func:`cross_signed`, served with both certificates of its issuer: a store
    holding :func:`root` builds the path through the first to it, a store holding only
    :func:`platform_root` through the second to that one."""
    by_root, by_platform = cross_signed()
    leaf = _issue(name, _key("ec"), by_root, ca=False, names=(name,))
    return Issued(leaf.key, leaf.cert, (leaf.cert, by_root.cert, by_platform.cert))


@functools.cache
def unknown_root_leaf(name: str) -> Issued:
    """A leaf under an intermediate of :func:`other_root` (sent), the root not sent."""
    issuer = _issue("Pinscan Other Intermediate", _key("ec"), other_root(), ca=True)
    return _issue(name, _key("ec"), issuer, ca=False, names=(name,))


def leaf_only(issued: Issued) -> Issued:
    """The same certificate served without its intermediates: an incomplete chain."""
    return Issued(issued.key, issued.cert, issued.chain[:1])


@functools.cache
def future_leaf(name: str) -> Issued:
    """A leaf of :func:`intermediate` that is valid from tomorrow."""
    start = _NOW + dt.timedelta(days=1)
    return _issue(
        name, _key("ec"), intermediate(), ca=False, names=(name,),
        not_before=start, not_after=start + dt.timedelta(days=90),
    )  # fmt: skip


@functools.cache
def forged_leaf(name: str) -> Issued:
    """A leaf naming :func:`intermediate` as its issuer (name and key identifier) but signed by
    another key: its signature does not verify."""
    real = _issue(name, _key("ec"), intermediate(), ca=False, names=(name,))
    builder = (
        x509.CertificateBuilder()
        .subject_name(real.cert.subject)
        .issuer_name(real.cert.issuer)
        .public_key(real.key.public_key())
        .serial_number(real.cert.serial_number)
        .not_valid_before(real.cert.not_valid_before_utc)
        .not_valid_after(real.cert.not_valid_after_utc)
    )
    for extension in real.cert.extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    forged = builder.sign(_key("ec"), hashes.SHA256())
    return Issued(real.key, forged, (forged, *real.chain[1:]))


@functools.cache
def weak_issuer_leaf(name: str) -> Issued:
    """A leaf signed by an intermediate with a 1024-bit RSA key, which the Web PKI refuses."""
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    issuer = _issue("Pinscan Weak Intermediate", weak, root(), ca=True)
    return _issue(name, _key("ec"), issuer, ca=False, names=(name,))


@functools.cache
def non_ca_issued_leaf(name: str) -> Issued:
    """A leaf signed by a certificate of the root that is not a CA (basicConstraints cA false)."""
    issuer = _issue("Pinscan Not A CA", _key("ec"), root(), ca=False)
    return _issue(name, _key("ec"), issuer, ca=False, names=(name,))


@functools.cache
def cn_only_leaf(name: str) -> Issued:
    """A leaf of :func:`intermediate` with its name in the CN alone, no subjectAltName."""
    return _issue(name, _key("ec"), intermediate(), ca=False)
