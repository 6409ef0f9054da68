# SPDX-License-Identifier: Apache-2.0
"""Real certificate corpora from PyPI (cryptography_vectors, certifi), loaded independently of
pinscan's own readers so that tests do not check pinscan against itself."""

from __future__ import annotations

import base64
import functools
import re
from pathlib import Path

import certifi
import pytest

_PEM = re.compile(rb"-----BEGIN (?:X509 |TRUSTED )?CERTIFICATE-----(.+?)-----END", re.S)
_DER_SUFFIXES = {".der", ".crt", ".cer"}
# Vectors that are not certificates (CRLs, OCSP, PKCS#12, S/MIME, CSRs).
_NOT_CERTIFICATES = {"crls", "pkcs12", "smime", "certpairs", "ocsp", "requests"}


def vectors_dir() -> Path:
    vectors = pytest.importorskip("cryptography_vectors")
    return Path(vectors.__file__).parent / "x509"


def _pem_certificates(data: bytes) -> list[bytes]:
    return [base64.b64decode(b"".join(m.group(1).split())) for m in _PEM.finditer(data)]


@functools.cache
def vector_certificates() -> tuple[tuple[str, bytes], ...]:
    """Every certificate in cryptography_vectors' x509 tree, as (name, DER)."""
    root = vectors_dir()
    out: list[tuple[str, bytes]] = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not path.is_file() or _NOT_CERTIFICATES & set(rel.parts) or path.name.startswith("crl_"):
            continue
        data = path.read_bytes()
        if path.suffix == ".pem":
            out.extend((f"{rel}#{i}", der) for i, der in enumerate(_pem_certificates(data)))
        elif path.suffix in _DER_SUFFIXES:
            out.append((str(rel), data))
    return tuple(out)


@functools.cache
def certifi_certificates() -> tuple[tuple[str, bytes], ...]:
    data = Path(certifi.where()).read_bytes()
    return tuple((f"certifi#{i}", der) for i, der in enumerate(_pem_certificates(data)))


def all_certificates() -> tuple[tuple[str, bytes], ...]:
    return vector_certificates() + certifi_certificates()
