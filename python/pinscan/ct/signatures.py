# SPDX-License-Identifier: Apache-2.0
"""Log signatures: RFC 6962 ``DigitallySigned`` tree head signatures (ECDSA P-256 or RSA with
SHA-256) and the C2SP signed-note form static-ct-api logs wrap them in.

Both protocols sign the same ``TreeHeadSignature``, so one verifier serves both; a signature that
does not verify raises :class:`SignatureError` and nothing the log said is used.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from pinscan.errors import PinscanError, SignatureError

_SHA256, _RSA, _ECDSA = 4, 1, 3
#: C2SP signed-note signature type of an RFC 6962 log key (static-ct-api, "Checkpoints").
NOTE_RFC6962_TYPE = 0x05
_NOTE_DASH = "\u2014 "


@dataclass(frozen=True)
class LogKey:
    """A log's public key as the log list gives it: DER SubjectPublicKeyInfo; the log ID is its
    SHA-256 (RFC 6962 3.2)."""

    der: bytes

    @property
    def log_id(self) -> bytes:
        return hashlib.sha256(self.der).digest()

    @classmethod
    def from_base64(cls, text: str) -> LogKey:
        try:
            der = base64.b64decode(text, validate=True)
            serialization.load_der_public_key(der)
        except (binascii.Error, ValueError) as exc:
            raise PinscanError(f"log key is not a base64 DER public key: {exc}") from exc
        return cls(der)

    def verify(self, signed: bytes, digitally_signed: bytes) -> None:
        """Checks a TLS ``DigitallySigned`` (hash byte, signature byte, u16 length, signature)
        over ``signed``; only SHA-256 with ECDSA or RSA PKCS#1 v1.5 is allowed in CT."""
        if len(digitally_signed) < 4:
            raise SignatureError("signature is truncated")
        hash_alg, sig_alg, length = struct.unpack(">BBH", digitally_signed[:4])
        sig = digitally_signed[4:]
        if hash_alg != _SHA256 or length != len(sig):
            raise SignatureError("signature is not a SHA-256 DigitallySigned of the right length")
        key = serialization.load_der_public_key(self.der)
        try:
            if sig_alg == _ECDSA and isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(sig, signed, ec.ECDSA(hashes.SHA256()))
            elif sig_alg == _RSA and isinstance(key, rsa.RSAPublicKey):
                key.verify(sig, signed, padding.PKCS1v15(), hashes.SHA256())
            else:
                raise SignatureError(f"signature algorithm {sig_alg} does not match the log key")
        except InvalidSignature:
            raise SignatureError("tree head signature does not verify with the log key") from None


@dataclass(frozen=True)
class TreeHead:
    """A verified signed tree head: size, root, and the log's timestamp (ms since the epoch)."""

    size: int
    root: bytes
    timestamp: int


def tree_head_input(timestamp: int, size: int, root: bytes) -> bytes:
    """The ``TreeHeadSignature`` struct (v1, tree_hash) that RFC 6962 3.5 signs."""
    return struct.pack(">BBQQ", 0, 1, timestamp, size) + root


def verify_sth(key: LogKey, size: int, timestamp: int, root: bytes, signature: bytes) -> TreeHead:
    if len(root) != 32:
        raise SignatureError(f"root hash has {len(root)} bytes, not 32")
    key.verify(tree_head_input(timestamp, size, root), signature)
    return TreeHead(size, root, timestamp)


def note_key_id(name: str, key: LogKey) -> bytes:
    """``SHA-256(name || 0x0A || 0x05 || LogID)[:4]``: how a note names an RFC 6962 log key."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([NOTE_RFC6962_TYPE]) + key.log_id).digest()[
        :4
    ]


def verify_checkpoint(text: str, key: LogKey, origin: str | None) -> TreeHead:
    """Verifies a static-ct-api checkpoint (a C2SP signed note) and returns its tree head.

    The signature line must carry the origin as key name and the log's key ID; other signature
    lines (witnesses) are ignored, as the spec requires. ``origin``, when known (the submission
    prefix without scheme), must match the note's first line: the signature does not cover it.
    """
    body, sep, signatures = text.rpartition("\n\n")
    if not sep or not body:
        raise SignatureError("checkpoint is not a signed note (no blank line before signatures)")
    lines = body.split("\n")
    if len(lines) != 3:
        raise SignatureError("checkpoint must have exactly origin, size and root lines")
    note_origin, size_text, root_text = lines
    if origin is not None and note_origin != origin:
        raise SignatureError(f"checkpoint origin {note_origin!r} is not {origin!r}")
    try:
        size = int(size_text)
        root = base64.b64decode(root_text, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise SignatureError(f"checkpoint size or root is malformed: {exc}") from exc
    if size < 0 or str(size) != size_text:
        raise SignatureError(f"checkpoint size {size_text!r} is not a decimal number")
    want_id = note_key_id(note_origin, key)
    for line in signatures.split("\n"):
        if not line:
            continue
        if not line.startswith(_NOTE_DASH):
            raise SignatureError("checkpoint signature line does not start with an em dash")
        name, _, blob_text = line[len(_NOTE_DASH) :].rpartition(" ")
        try:
            blob = base64.b64decode(blob_text, validate=True)
        except binascii.Error as exc:
            raise SignatureError(f"checkpoint signature is not base64: {exc}") from exc
        if name != note_origin or blob[:4] != want_id:
            continue
        if len(blob) < 12:
            raise SignatureError("checkpoint signature is truncated")
        (timestamp,) = struct.unpack(">Q", blob[4:12])
        return verify_sth(key, size, timestamp, root, blob[12:])
    raise SignatureError("checkpoint carries no signature by the log's key")
