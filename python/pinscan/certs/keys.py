# SPDX-License-Identifier: Apache-2.0
"""Pins of local files: certificates, public keys, CSRs and private keys, PEM or DER.

A pin hashes the SubjectPublicKeyInfo exactly as encoded, so certificates, CSRs and public keys
give theirs through ``_core.locate_spki``, which returns the very bytes in the object; re-encoding
would change the pin of RSA-PSS and explicit-curve keys. Only a private key, which holds no SPKI,
has its public key derived and encoded by pyca/cryptography.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from cryptography.utils import CryptographyDeprecationWarning

from pinscan import _core
from pinscan.certs.pem import PemBlock, is_pem, read_pem
from pinscan.certs.table import certificates
from pinscan.errors import InputError

Kind = Literal["certificate", "csr", "public_key", "private_key"]

# PEM labels by what they hold (RFC 7468 and OpenSSL's pem.h). "TRUSTED CERTIFICATE" is
# OpenSSL's certificate followed by its trust settings, as in Fedora's ca-bundle.trust.crt.
_LABELS: dict[str, Kind] = {
    "CERTIFICATE": "certificate",
    "X509 CERTIFICATE": "certificate",
    "TRUSTED CERTIFICATE": "certificate",
    "CERTIFICATE REQUEST": "csr",
    "NEW CERTIFICATE REQUEST": "csr",
    "PUBLIC KEY": "public_key",
    "RSA PUBLIC KEY": "public_key",
    "PRIVATE KEY": "private_key",
    "ENCRYPTED PRIVATE KEY": "private_key",
    "RSA PRIVATE KEY": "private_key",
    "EC PRIVATE KEY": "private_key",
    "DSA PRIVATE KEY": "private_key",
}

_SEQUENCE = 0x30
_INTEGER = 0x02
_BIT_STRING = 0x03
# id-RSASSA-PSS (RFC 4055), as the DER of its OBJECT IDENTIFIER.
_RSA_PSS_OID = bytes.fromhex("06092a864886f70d01010a")


@dataclass(frozen=True)
class Item:
    """One keyed object found in a file by :func:`read_items`.

    ``source`` is ``path:LINE`` for a PEM block (the line of its BEGIN) and ``path`` for a DER
    file. ``der`` is the object (for an encrypted private key, as stored). ``spki`` is its
    SubjectPublicKeyInfo DER; it is ``None`` only for a certificate whose framing is too broken
    to find the key strictly, which :func:`pinscan.certificates` still reads what it can of.
    """

    source: str
    kind: Kind
    der: bytes
    spki: bytes | None


def spki_der(data: bytes | str, *, password: bytes | str | None = None) -> bytes:
    """The SubjectPublicKeyInfo DER of one certificate, public key, CSR or private key.

    Parameters
    ----------
    data
        One object, PEM (``bytes`` or ``str``) or DER: a certificate, a public key
        (SubjectPublicKeyInfo or PKCS#1 ``RSA PUBLIC KEY``), a PKCS#10 CSR, or a private key
        (PKCS#8, encrypted or not, or OpenSSL's traditional RSA/EC/DSA PEM, legacy encrypted or
        not). Text around a PEM block is ignored.
    password
        The password of an encrypted private key; ignored for anything else.

    Returns
    -------
    bytes
        The SPKI as encoded in the certificate, CSR or public key. A private key's public key is
        encoded by pyca/cryptography (named curves; ``rsaEncryption``, except that an RSA-PSS key
        in unencrypted PKCS#8 keeps its ``id-RSASSA-PSS`` algorithm), so pin the certificate
        itself when it carries explicit curve parameters.

    Raises
    ------
    InputError
        ``data`` is none of these, is damaged, holds several objects (see :func:`read_items`), or
        is an encrypted key with no or the wrong ``password``.

    See Also
    --------
    spki_pin : The pin of this SPKI.
    """
    source = "<data>"
    if isinstance(data, str):
        data = data.encode("utf-8")
        if not is_pem(data):
            msg = "a str must be PEM text\n\nHint: to read a file, pass its bytes"
            raise InputError(source, msg)
    if not _is_der(data) and is_pem(data):
        blocks = read_pem(data, source)
        keyed = [b for b in blocks if b.label in _LABELS]
        if not keyed:
            raise _nothing_found(source, blocks)
        if len(keyed) > 1:
            msg = f"{len(keyed)} certificates, keys or CSRs found, not one"
            msg += "\n\nHint: `pinscan.certs.keys.read_items` reads them all"
            raise InputError(source, msg)
        item = _from_block(keyed[0], source, _password(password), strict=True)
    else:
        item = _from_der(data, source, _password(password), strict=True)
    assert item.spki is not None  # strict=True raises rather than return no key
    return item.spki


def spki_pin(
    data: bytes | str,
    *,
    password: bytes | str | None = None,
    algorithm: Literal["sha256", "sha1"] = "sha256",
) -> str:
    """The SPKI pin of a certificate, public key, CSR or private key: bare base64 of its hash.

    Parameters
    ----------
    data
        One object, PEM or DER, as for :func:`spki_der`.
    password
        The password of an encrypted private key.
    algorithm
        ``"sha256"`` (HPKP, Android, OkHttp ``sha256/``, curl ``sha256//``) or ``"sha1"`` (the
        legacy OkHttp ``sha1/`` pin).

    Returns
    -------
    str
        ``base64(hash(SubjectPublicKeyInfo DER))``, without a ``sha256/`` prefix.

    Raises
    ------
    InputError
        As :func:`spki_der` does.

    Examples
    --------
    The Ed25519 public key of RFC 8410 section 10.1:

    >>> import pinscan
    >>> key = '''-----BEGIN PUBLIC KEY-----
    ... MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=
    ... -----END PUBLIC KEY-----'''
    >>> pinscan.spki_pin(key)
    'oekVYFTgT6yJmunydRMs3Ael28TqLCrTof/G4NJTaB8='
    >>> pinscan.spki_pin(key, algorithm="sha1")
    'OgSWd2GlUtt+nhjG26S9Sq4RmQg='
    """
    if algorithm not in ("sha256", "sha1"):
        msg = f"`algorithm` must be 'sha256' or 'sha1', not {algorithm!r}"
        raise ValueError(msg)
    digest = hashlib.new(algorithm, spki_der(data, password=password)).digest()
    return base64.b64encode(digest).decode("ascii")


def read_path(path: str | os.PathLike[str]) -> bytes:
    """The bytes of a file.

    Raises
    ------
    InputError
        The file cannot be read; the message is the system's, such as ``"no such file or
        directory"`` or ``"is a directory"``.
    """
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        msg = reason[:1].lower() + reason[1:]
        raise InputError(os.fspath(path), msg) from None


def read_certificates(source: str | os.PathLike[str] | bytes) -> list[bytes]:
    """Every certificate in a PEM bundle or DER file, as DER, in order.

    Parameters
    ----------
    source
        A path, or the file's bytes. Blocks other than certificates (keys, CRLs) are skipped. A
        DER file is one certificate, returned whole even when malformed, so that
        :func:`pinscan.certificates` reports what is wrong with it.

    Returns
    -------
    list[bytes]
        The DER certificates.

    Raises
    ------
    InputError
        The file cannot be read, its PEM is malformed, or it holds no certificate.

    Examples
    --------
    >>> import certifi, pinscan
    >>> ders = pinscan.read_certificates(certifi.where())
    >>> len(ders) > 100 and all(der[:1] == b"0" for der in ders)
    True
    """
    if isinstance(source, bytes):
        data, name = source, "<bytes>"
    else:
        data, name = read_path(source), os.fspath(source)
    if _is_der(data) or not is_pem(data):
        if data[:1] != bytes([_SEQUENCE]):
            msg = "no certificate found: neither PEM nor DER"
            raise InputError(name, msg)
        try:
            kind, _ = _core.locate_spki(data)
        except ValueError:
            kind = "certificate"  # malformed: `pinscan.certificates` says how
        if kind != "certificate":
            msg = f"a {kind.replace('_', ' ')}, not a certificate"
            raise InputError(name, msg)
        return [data]
    ders = [
        _certificate_der(block.der, block.label)
        for block in read_pem(data, name)
        if _LABELS.get(block.label) == "certificate"
    ]
    if not ders:
        msg = "no certificate found"
        raise InputError(name, msg)
    return ders


def read_items(data: bytes, source: str, *, password: bytes | str | None = None) -> list[Item]:
    """Every certificate, public key, CSR and private key in a file's bytes, in order.

    Parameters
    ----------
    data
        A PEM file of any number of blocks, or one DER object.
    source
        The file's name, for :attr:`Item.source` and error messages.
    password
        The password of the encrypted private keys; unencrypted ones ignore it.

    Returns
    -------
    list[Item]
        One per keyed object. PEM blocks that carry no key (``X509 CRL``, ``EC PARAMETERS``, ...)
        are skipped. A certificate is kept even if its framing is broken (``spki`` is then
        ``None``), so that :func:`pinscan.certificates` says what is wrong with it.

    Raises
    ------
    InputError
        The PEM is malformed, a block does not hold what its label says, a key cannot be read or
        decrypted, or nothing at all is found (``"no certificate, key or CSR found"``).
    """
    secret = _password(password)
    if _is_der(data) or not is_pem(data):
        return [_from_der(data, source, secret, strict=False)]
    blocks = read_pem(data, source)
    items = [_from_block(b, source, secret, strict=False) for b in blocks if b.label in _LABELS]
    if not items:
        raise _nothing_found(source, blocks)
    return items


def csr_subject(der: bytes) -> str | None:
    """The RFC 4514 subject of a DER CSR, as pyca/cryptography writes it.

    Returns ``None`` when cryptography cannot read the CSR: its pin may still be known, since
    :func:`read_items` finds a CSR's key by its framing alone.
    """
    try:
        return x509.load_der_x509_csr(der).subject.rfc4514_string()
    except ValueError:
        return None


def _nothing_found(source: str, blocks: list[PemBlock]) -> InputError:
    msg = "no certificate, key or CSR found"
    if blocks:
        skipped = ", ".join(sorted({b.label for b in blocks}))
        msg += f" (skipped: {skipped})"
    return InputError(source, msg)


def _password(password: bytes | str | None) -> bytes | None:
    return password.encode("utf-8") if isinstance(password, str) else password


def _from_block(block: PemBlock, source: str, password: bytes | None, *, strict: bool) -> Item:
    """The item of one PEM block whose label is in ``_LABELS``."""
    where = f"{source}:{block.line}"
    kind = _LABELS[block.label]
    try:
        if kind == "private_key":
            key = _load_private_key(block.encode(), password, serialization.load_pem_private_key)
            spki = _private_key_spki(key, block.der if block.label == "PRIVATE KEY" else None)
            return Item(where, kind, block.der, spki)
        if block.label == "RSA PUBLIC KEY":
            public = serialization.load_pem_public_key(block.encode())
            return Item(where, kind, block.der, _public_spki(public))
        der = _certificate_der(block.der, block.label) if kind == "certificate" else block.der
        try:
            found, spki = _core.locate_spki(der)
        except ValueError as exc:
            if kind == "certificate" and not strict:
                return Item(where, kind, der, None)
            msg = f"{block.label}: {exc}"
            raise _BlockError(msg) from None
        if found != kind:
            msg = f"a {block.label} block holds a {found.replace('_', ' ')}"
            raise _BlockError(msg)
        return Item(where, kind, der, spki)
    except _BlockError as exc:
        raise InputError(source, f"line {block.line}: {exc}") from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        msg = f"line {block.line}: {block.label}: {_reason(exc)}"
        raise InputError(source, msg) from None


def _from_der(data: bytes, source: str, password: bytes | None, *, strict: bool) -> Item:
    """The item of a whole DER file: what ``_core.locate_spki`` finds, else a key."""
    if not data:
        msg = "no certificate, key or CSR found: the input is empty"
        raise InputError(source, msg)
    try:
        kind, spki = _core.locate_spki(data)
        return Item(source, kind, data, spki)
    except ValueError as exc:
        reason = str(exc).removeprefix("not a certificate, CSR or public key: ")
    outer = _header(data, 0)
    if outer is None or outer[0] != _SEQUENCE:
        msg = "no certificate, key or CSR found: neither PEM nor DER"
        raise InputError(source, msg)
    try:
        key = _load_private_key(data, password, serialization.load_der_private_key)
        return Item(source, "private_key", data, _private_key_spki(key, data))
    except _BlockError as exc:
        raise InputError(source, str(exc)) from None
    except UnsupportedAlgorithm as exc:
        msg = f"unsupported private key: {_reason(exc)}"
        raise InputError(source, msg) from None
    except ValueError as exc:
        key_reason = _reason(exc)  # not a private key; maybe a PKCS#1 public key
    try:
        public = serialization.load_der_public_key(data)
        return Item(source, "public_key", data, _public_spki(public))
    except (ValueError, UnsupportedAlgorithm):
        pass
    # The core pins certificates by their framing alone, so one whose trailing parts are broken
    # still has a pin; keep it for `pinscan.certificates` to report.
    if not strict and certificates([data])["spki_sha256"][0] is not None:
        return Item(source, "certificate", data, None)
    # Keys (PKCS#8, PKCS#1, RFC 5915) start with an INTEGER; certificates, CSRs and SPKIs do not.
    if data[outer[1] : outer[1] + 1] == bytes([_INTEGER]):
        msg = f"no certificate, key or CSR found: not a readable DER key: {key_reason}"
    else:
        msg = f"no certificate, key or CSR found: not a DER certificate, CSR or key: {reason}"
    raise InputError(source, msg)


class _BlockError(Exception):
    """A reason an object is unusable, for the caller to give its source and line."""


@contextlib.contextmanager
def _dsa_allowed() -> Iterator[None]:
    """pyca/cryptography 51 warns that DSA is deprecated whenever it loads a DSA key. Pinning an
    old DSA key is what the user asked for, and a warning about pyca's plans is not theirs to act
    on, so that one warning (and only it) is not shown."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", "DSA is deprecated", category=CryptographyDeprecationWarning
        )
        yield


@_dsa_allowed()
def _load_private_key(
    data: bytes,
    password: bytes | None,
    load: Callable[[bytes, bytes | None], PrivateKeyTypes],
) -> PrivateKeyTypes:
    """``load(data, password)``, with the password used only when the key is encrypted.

    A ``ValueError`` means ``data`` is not an unencrypted private key; every failure of an
    encrypted one is a ``_BlockError``.
    """
    try:
        return load(data, None)
    except TypeError:
        # cryptography's "Password was not given but private key is encrypted": only now is the
        # password used, so that one password serves a whole run of mixed keys.
        pass
    if password is None:
        msg = "the private key is encrypted: a password is needed (`password=`, or `--password`)"
        raise _BlockError(msg)
    try:
        return load(data, password)
    except (ValueError, UnsupportedAlgorithm) as exc:
        detail = str(exc)
        if "password" in detail.lower():
            msg = "wrong password for the encrypted private key"
        elif detail.startswith("Could not deserialize"):
            # Nothing authenticates the ciphertext: about 1 wrong password in 256 gets past the
            # CBC padding check and decrypts to garbage.
            msg = f"wrong password for the encrypted private key, or it is damaged: {_reason(exc)}"
        else:
            msg = f"cannot decrypt the private key: {_reason(exc)}"
        raise _BlockError(msg) from None


@_dsa_allowed()
def _private_key_spki(key: PrivateKeyTypes, pkcs8: bytes | None) -> bytes:
    """The SPKI of a private key's public key.

    cryptography reads an RSA-PSS key as a plain RSA key and would encode it as ``rsaEncryption``,
    which is not the key's pin: when the unencrypted PKCS#8 is at hand, its own
    ``id-RSASSA-PSS`` AlgorithmIdentifier (parameters included) is kept, as OpenSSL does.
    """
    public = key.public_key()
    algorithm = _pkcs8_algorithm(pkcs8) if pkcs8 is not None else None
    if algorithm is not None and algorithm[2:].startswith(_RSA_PSS_OID):
        pkcs1 = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
        return _tlv(_SEQUENCE, algorithm + _tlv(_BIT_STRING, b"\x00" + pkcs1))
    return _public_spki(public)


@_dsa_allowed()
def _public_spki(public: PublicKeyTypes) -> bytes:
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _reason(exc: Exception) -> str:
    """cryptography's message, without the list of possible causes it puts before the detail."""
    text = str(exc)
    _, found, detail = text.partition("Details: ")
    return detail if found else text


def _certificate_der(der: bytes, label: str) -> bytes:
    """The certificate of a certificate block: a TRUSTED CERTIFICATE has trust settings after it."""
    if label == "TRUSTED CERTIFICATE":
        header = _header(der, 0)
        if header is not None:
            return der[: header[2]]
    return der


def _is_der(data: bytes) -> bool:
    """Whether ``data`` is exactly one DER SEQUENCE, which no PEM text is."""
    header = _header(data, 0)
    return header is not None and header[0] == _SEQUENCE and header[2] == len(data)


def _pkcs8_algorithm(der: bytes) -> bytes | None:
    """The AlgorithmIdentifier DER of a PKCS#8 PrivateKeyInfo (RFC 5958), if ``der`` is one."""
    outer = _header(der, 0)
    if outer is None or outer[0] != _SEQUENCE:
        return None
    version = _header(der, outer[1])
    if version is None or version[0] != _INTEGER:
        return None
    algorithm = _header(der, version[2])
    if algorithm is None or algorithm[0] != _SEQUENCE:
        return None
    return der[version[2] : algorithm[2]] if algorithm[2] <= len(der) else None


def _header(data: bytes, offset: int) -> tuple[int, int, int] | None:
    """(tag, start of content, end) of the DER element at ``offset``; ``None`` if it has no header.

    ``end`` may lie past the data when it is truncated. Only the single-byte tags and definite
    lengths of the structures read here are handled.
    """
    if len(data) < offset + 2:
        return None
    tag, first = data[offset], data[offset + 1]
    start = offset + 2
    if first < 0x80:
        length = first
    elif 0x81 <= first <= 0x84:
        start += first - 0x80
        if len(data) < start:
            return None
        length = int.from_bytes(data[offset + 2 : start], "big")
    else:
        return None
    return tag, start, start + length


def _tlv(tag: int, content: bytes) -> bytes:
    """One DER element."""
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content
