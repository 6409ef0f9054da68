# SPDX-License-Identifier: Apache-2.0
"""TrustKit (iOS)'s SPKI hash: :func:`trustkit_spki`.

TrustKit rebuilds the SPKI from the raw key and a hard-coded header instead of hashing the
certificate's bytes, so its pin can differ from the real one, or not exist at all.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pinscan.certs.keys import spki_der
from pinscan.errors import InputError

# TSKSPKIHashCache.m: the header it prepends to SecKeyCopyExternalRepresentation's bytes.
_RSA_HEADERS = {
    2048: bytes.fromhex("30820122300d06092a864886f70d01010105000382010f00"),
    3072: bytes.fromhex("308201a2300d06092a864886f70d01010105000382018f00"),
    4096: bytes.fromhex("30820222300d06092a864886f70d01010105000382020f00"),
}
_EC_HEADERS = {
    "secp256r1": bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200"),
    "secp384r1": bytes.fromhex("3076301006072a8648ce3d020106052b81040022036200"),
}
_OID_RSA = bytes.fromhex("2a864886f70d010101")
_OID_RSA_PSS = bytes.fromhex("2a864886f70d01010a")
_OID_EC = bytes.fromhex("2a8648ce3d0201")
_OID_NAMES = {
    bytes.fromhex("2b6570"): "Ed25519",
    bytes.fromhex("2b6571"): "Ed448",
    bytes.fromhex("2a8648ce380401"): "DSA",
    _OID_RSA_PSS: "RSASSA-PSS",
}
_SUPPORTED = "TrustKit hashes only RSA 2048/3072/4096 and EC P-256/P-384 keys"
_BLOCKS = "it cannot hash this key and blocks the connection, even with TSKEnforcePinning off"


def _der(data: bytes, pos: int, tag: int) -> tuple[int, int]:
    """The content span of the DER element of ``tag`` at ``pos``."""
    if pos + 2 > len(data) or data[pos] != tag:
        raise ValueError("unexpected DER")
    length, pos = data[pos + 1], pos + 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise ValueError("truncated DER")
    return pos, pos + length


def spki_parts(spki: bytes) -> tuple[bytes, bytes, bytes]:
    """(algorithm OID, its parameters as DER, the key bit string's bytes) of a SPKI."""
    start, _ = _der(spki, 0, 0x30)
    alg_start, alg_end = _der(spki, start, 0x30)
    oid_start, oid_end = _der(spki, alg_start, 0x06)
    bits_start, bits_end = _der(spki, alg_end, 0x03)
    return spki[oid_start:oid_end], spki[oid_end:alg_end], spki[bits_start + 1 : bits_end]


def trustkit_spki(cert_der: bytes) -> tuple[str | None, str | None]:
    """The pin TrustKit (iOS) computes for this certificate's key, and why it is a problem.

    TrustKit hashes a fixed ASN.1 header plus ``SecKeyCopyExternalRepresentation`` (PKCS#1 for
    RSA, the uncompressed point for EC), not the certificate's SPKI bytes. Returns
    ``(pin, None)`` when that equals the real SPKI pin, ``(pin, reason)`` when it differs (a pin
    computed the standard way never matches), and ``(None, reason)`` when TrustKit cannot hash
    the key at all: it then blocks every connection whose chain holds the certificate.
    """
    try:
        spki = spki_der(cert_der)
        oid, params, key_bits = spki_parts(spki)
    except (InputError, ValueError) as exc:
        return None, f"pinscan cannot read this certificate's key ({exc})"
    real = hashlib.sha256(spki).digest()
    if oid == _OID_RSA:
        try:
            key = serialization.load_der_public_key(spki)
        except (ValueError, TypeError) as exc:
            return None, f"Apple cannot read this RSA key ({exc}): {_BLOCKS}"
        if not isinstance(key, rsa.RSAPublicKey):
            return None, f"Apple cannot read this RSA key: {_BLOCKS}"
        bits = key.public_numbers().n.bit_length()
        if bits not in _RSA_HEADERS:
            since = " (RSA-3072 only since TrustKit's June 2024 change)" if bits == 3072 else ""
            return None, f"RSA-{bits} key: {_SUPPORTED}{since}; {_BLOCKS}"
        external = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
        computed = hashlib.sha256(_RSA_HEADERS[bits] + external).digest()
        exponent = key.public_numbers().e
        why = (
            f"RSA-{bits} key with public exponent {exponent}: TrustKit's fixed header assumes "
            "the length of e=65537"
            if exponent != 65537
            else "the certificate's SPKI is not the canonical rsaEncryption encoding TrustKit "
            "rebuilds (e.g. no NULL parameters)"
        )
    elif oid == _OID_EC:
        curve_oid = _der(params, 0, 0x06) if params[:1] == b"\x06" else None
        if curve_oid is None:
            return (
                None,
                f"EC key with explicit curve parameters: Apple reads named curves only; {_BLOCKS}",
            )
        try:
            key = serialization.load_der_public_key(spki)
        except (ValueError, TypeError) as exc:
            return None, f"Apple cannot read this EC key ({exc}): {_BLOCKS}"
        if not isinstance(key, ec.EllipticCurvePublicKey):
            return None, f"Apple cannot read this EC key: {_BLOCKS}"
        if key.curve.name not in _EC_HEADERS:
            return None, f"EC key on {key.curve.name}: {_SUPPORTED}; {_BLOCKS}"
        external = key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        computed = hashlib.sha256(_EC_HEADERS[key.curve.name] + external).digest()
        why = (
            "the certificate holds a compressed EC point; TrustKit hashes the uncompressed one"
            if key_bits[:1] in (b"\x02", b"\x03")
            else "the certificate's SPKI is not the canonical encoding TrustKit rebuilds"
        )
    else:
        name = _OID_NAMES.get(oid, f"algorithm {oid.hex()}")
        extra = (
            ": Apple's SecCertificateCopyKey returns no key for it" if oid == _OID_RSA_PSS else ""
        )
        return None, f"{name} key{extra}; {_SUPPORTED}, so {_BLOCKS}"
    pin = base64.b64encode(computed).decode()
    if computed == real:
        return pin, None
    return pin, (
        f"{why}: TrustKit computes {pin}, the real SPKI pin is {base64.b64encode(real).decode()}"
    )


__all__ = ["spki_parts", "trustkit_spki"]
