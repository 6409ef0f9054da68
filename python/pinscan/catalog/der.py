# SPDX-License-Identifier: Apache-2.0
"""The two things the catalog needs from a CA certificate that the Rust core's table has no
column for: its extended key usages, and whether a given key signed it.

Both are read from the certificate's own framing rather than through pyca/cryptography's
certificate parser, which refuses some CA certificates in the CCADB (an encoded default, an
invalid PrintableString, an empty name constraint) that are still valid TLS issuers today. pyca
only checks the signature, over the ``tbsCertificate`` bytes exactly as they appear.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

_SEQUENCE = 0x30
_INTEGER = 0x02
_OID = 0x06
_BOOLEAN = 0x01
_OCTET_STRING = 0x04
_BIT_STRING = 0x03
_EXTENSIONS = 0xA3  # [3] EXPLICIT in TBSCertificate

#: The short names of the extended key usages the catalog lists; any other is its dotted OID.
EKU_NAMES = {
    "1.3.6.1.5.5.7.3.1": "server_auth",
    "1.3.6.1.5.5.7.3.2": "client_auth",
    "1.3.6.1.5.5.7.3.3": "code_signing",
    "1.3.6.1.5.5.7.3.4": "email_protection",
    "1.3.6.1.5.5.7.3.8": "time_stamping",
    "1.3.6.1.5.5.7.3.9": "ocsp_signing",
    "2.5.29.37.0": "any",
}
_EKU_EXTENSION = "2.5.29.37"

_RSA_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "1.2.840.113549.1.1.4": hashes.MD5,
    "1.2.840.113549.1.1.5": hashes.SHA1,
    "1.3.14.3.2.29": hashes.SHA1,  # sha1WithRSASignature, OIW's older OID
    "1.2.840.113549.1.1.14": hashes.SHA224,
    "1.2.840.113549.1.1.11": hashes.SHA256,
    "1.2.840.113549.1.1.12": hashes.SHA384,
    "1.2.840.113549.1.1.13": hashes.SHA512,
}
_ECDSA_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "1.2.840.10045.4.1": hashes.SHA1,
    "1.2.840.10045.4.3.1": hashes.SHA224,
    "1.2.840.10045.4.3.2": hashes.SHA256,
    "1.2.840.10045.4.3.3": hashes.SHA384,
    "1.2.840.10045.4.3.4": hashes.SHA512,
}
_DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    "1.3.14.3.2.26": hashes.SHA1,
    "2.16.840.1.101.3.4.2.4": hashes.SHA224,
    "2.16.840.1.101.3.4.2.1": hashes.SHA256,
    "2.16.840.1.101.3.4.2.2": hashes.SHA384,
    "2.16.840.1.101.3.4.2.3": hashes.SHA512,
}
_RSA_PSS = "1.2.840.113549.1.1.10"
_MGF1 = "1.2.840.113549.1.1.8"
_ED25519 = "1.3.101.112"
_ED448 = "1.3.101.113"
_DSA = "1.2.840.10040.4.1"


class DerError(ValueError):
    """The certificate's framing is not what X.509 says."""


@dataclass(frozen=True)
class Signed:
    """A certificate as its signer saw it: the ``tbsCertificate`` bytes, how they were signed,
    and the signature."""

    tbs: bytes
    algorithm: str
    parameters: bytes
    signature: bytes


def _element(data: bytes, offset: int, end: int) -> tuple[int, int, int]:
    """(tag, start of content, end of element) of the DER element at ``offset``."""
    if offset + 2 > end:
        raise DerError("truncated element")
    tag, first = data[offset], data[offset + 1]
    if tag & 0x1F == 0x1F:
        raise DerError("multi-byte tag")
    start = offset + 2
    if first < 0x80:
        length = first
    elif 0x81 <= first <= 0x84:
        start += first - 0x80
        if start > end:
            raise DerError("truncated length")
        length = int.from_bytes(data[offset + 2 : start], "big")
    else:
        raise DerError("indefinite or oversized length")
    if start + length > end:
        raise DerError("element runs past its container")
    return tag, start, start + length


def _children(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    offset = start
    while offset < end:
        tag, content, offset = _element(data, offset, end)
        yield tag, content, offset


def _expect(data: bytes, offset: int, end: int, tag: int) -> tuple[int, int]:
    found, start, stop = _element(data, offset, end)
    if found != tag:
        raise DerError(f"tag 0x{found:02x} where 0x{tag:02x} was expected")
    return start, stop


def oid(content: bytes) -> str:
    """The dotted form of an OBJECT IDENTIFIER's content octets."""
    if not content or content[-1] & 0x80:
        raise DerError("malformed OBJECT IDENTIFIER")
    arcs: list[int] = []
    value = 0
    for byte in content:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(map(str, [first, arcs[0] - 40 * first, *arcs[1:]]))


def _algorithm(data: bytes, start: int, end: int) -> tuple[str, bytes]:
    """An AlgorithmIdentifier's OID and its parameters' DER (empty when absent)."""
    oid_start, oid_end = _expect(data, start, end, _OID)
    return oid(data[oid_start:oid_end]), data[oid_end:end]


def _parts(der: bytes) -> tuple[tuple[int, int, int], ...]:
    """The three elements of a Certificate: (tag, content start, end) each."""
    outer_start, outer_end = _expect(der, 0, len(der), _SEQUENCE)
    if outer_end != len(der):
        raise DerError("data after the certificate")
    parts = tuple(_children(der, outer_start, outer_end))
    if [tag for tag, _, _ in parts] != [_SEQUENCE, _SEQUENCE, _BIT_STRING]:
        raise DerError("not a Certificate (tbsCertificate, signatureAlgorithm, signature)")
    return parts


def signed(der: bytes) -> Signed:
    """What was signed in a DER certificate, and how. Raises :class:`DerError` when its framing
    is not a certificate's."""
    (_, _, tbs_end), (_, alg_start, alg_end), (_, sig_start, sig_end) = _parts(der)
    if sig_start == sig_end or der[sig_start] != 0:
        raise DerError("signature BIT STRING with unused bits")
    algorithm, parameters = _algorithm(der, alg_start, alg_end)
    # The tbsCertificate element whole, header included: the outer header ends where it starts.
    tbs_offset = _element(der, 0, len(der))[1]
    return Signed(der[tbs_offset:tbs_end], algorithm, parameters, der[sig_start + 1 : sig_end])


def eku(der: bytes) -> tuple[str, ...] | None:
    """The extended key usages of a DER certificate (short names from :data:`EKU_NAMES`, else
    dotted OIDs), or ``None`` when it has no EKU extension. Raises :class:`DerError` when its
    framing or its extensions are malformed."""
    (_, tbs_start, tbs_end), _, _ = _parts(der)
    return _eku(der, tbs_start, tbs_end)


def _eku(der: bytes, start: int, end: int) -> tuple[str, ...] | None:
    """The extended key usages in a tbsCertificate's extensions, ``None`` without the extension."""
    for tag, content, stop in _children(der, start, end):
        if tag != _EXTENSIONS:
            continue
        list_start, list_end = _expect(der, content, stop, _SEQUENCE)
        for _, ext_start, ext_end in _children(der, list_start, list_end):
            fields = list(_children(der, ext_start, ext_end))
            if not fields or fields[0][0] != _OID:
                raise DerError("extension without an OID")
            if oid(der[fields[0][1] : fields[0][2]]) != _EKU_EXTENSION:
                continue
            value = fields[-1]
            if value[0] != _OCTET_STRING or (len(fields) == 3 and fields[1][0] != _BOOLEAN):
                raise DerError("malformed extendedKeyUsage extension")
            usages_start, usages_end = _expect(der, value[1], value[2], _SEQUENCE)
            found = []
            for usage_tag, usage_start, usage_end in _children(der, usages_start, usages_end):
                if usage_tag != _OID:
                    raise DerError("extendedKeyUsage holds a non-OID")
                dotted = oid(der[usage_start:usage_end])
                found.append(EKU_NAMES.get(dotted, dotted))
            return tuple(found)
    return None


def signed_by(certificate: Signed, spki: bytes) -> bool:
    """Whether the key ``spki`` (SubjectPublicKeyInfo DER) made the certificate's signature.
    ``False`` too when the algorithm is one pyca/cryptography cannot check (DSA, MD2, GOST)."""
    key = _public_key(spki)
    if key is None:
        return False
    try:
        _verify(key, certificate)
    except (InvalidSignature, UnsupportedAlgorithm, DerError, ValueError, TypeError):
        return False
    return True


@functools.lru_cache(maxsize=4096)
def _public_key(spki: bytes) -> PublicKeyTypes | None:
    """The key of an SPKI; ``None`` for one pyca cannot load, and for DSA, whose signatures are
    not checked (loading one makes pyca 51 warn that DSA is deprecated)."""
    try:
        start, end = _expect(spki, 0, len(spki), _SEQUENCE)
        algorithm_start, algorithm_end = _expect(spki, start, end, _SEQUENCE)
        if _algorithm(spki, algorithm_start, algorithm_end)[0] == _DSA:
            return None
        return serialization.load_der_public_key(spki)
    except (ValueError, UnsupportedAlgorithm):
        return None


def _verify(key: PublicKeyTypes, certificate: Signed) -> None:
    """Raises unless ``key`` signed ``certificate`` (``TypeError`` when the key does not fit the
    algorithm)."""
    algorithm, tbs, signature = certificate.algorithm, certificate.tbs, certificate.signature
    if algorithm in _RSA_HASHES and isinstance(key, rsa.RSAPublicKey):
        key.verify(signature, tbs, padding.PKCS1v15(), _RSA_HASHES[algorithm]())
    elif algorithm == _RSA_PSS and isinstance(key, rsa.RSAPublicKey):
        digest, mgf_digest, salt = _pss(certificate.parameters)
        key.verify(signature, tbs, padding.PSS(padding.MGF1(mgf_digest), salt), digest)
    elif algorithm in _ECDSA_HASHES and isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, tbs, ec.ECDSA(_ECDSA_HASHES[algorithm]()))
    elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        if algorithm != (_ED25519 if isinstance(key, ed25519.Ed25519PublicKey) else _ED448):
            raise TypeError(algorithm)
        key.verify(signature, tbs)
    else:
        raise TypeError(algorithm)


def _pss(parameters: bytes) -> tuple[hashes.HashAlgorithm, hashes.HashAlgorithm, int]:
    """The hash, MGF1's hash and the salt length of RSASSA-PSS-params (RFC 4055); absent fields
    take their defaults: SHA-1, MGF1 with SHA-1, 20."""
    digest: hashes.HashAlgorithm = hashes.SHA1()
    mgf_digest: hashes.HashAlgorithm = hashes.SHA1()
    salt = 20
    if not parameters:
        return digest, mgf_digest, salt
    start, end = _expect(parameters, 0, len(parameters), _SEQUENCE)
    for tag, content, stop in _children(parameters, start, end):
        if tag == 0xA0:  # [0] hashAlgorithm
            digest = _digest(parameters, content, stop)
        elif tag == 0xA1:  # [1] maskGenAlgorithm: MGF1 with a hash AlgorithmIdentifier
            alg_start, alg_end = _expect(parameters, content, stop, _SEQUENCE)
            name, inner = _algorithm(parameters, alg_start, alg_end)
            if name != _MGF1:
                raise UnsupportedAlgorithm(name)
            mgf_digest = _digest(inner, 0, len(inner))
        elif tag == 0xA2:  # [2] saltLength
            value_start, value_end = _expect(parameters, content, stop, _INTEGER)
            salt = int.from_bytes(parameters[value_start:value_end], "big")
    return digest, mgf_digest, salt


def _digest(data: bytes, start: int, end: int) -> hashes.HashAlgorithm:
    """The hash named by the AlgorithmIdentifier at ``start``."""
    alg_start, alg_end = _expect(data, start, end, _SEQUENCE)
    name, _ = _algorithm(data, alg_start, alg_end)
    if name not in _DIGESTS:
        raise UnsupportedAlgorithm(name)
    return _DIGESTS[name]()
