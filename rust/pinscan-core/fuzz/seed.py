# SPDX-License-Identifier: Apache-2.0
"""Write the seed corpus for the fuzz targets: real DER from cryptography_vectors and certifi,
plus hand-made edge cases. One file per distinct input, named by its SHA-256.

Run with the project's venv (it needs the test extras): ``.venv/bin/python
rust/pinscan-core/fuzz/seed.py [OUT_DIR]``; OUT_DIR defaults to ``corpus/seed`` beside this file.
"""

from __future__ import annotations

import base64
import hashlib
import re
import sys
import warnings
from pathlib import Path

import certifi
import cryptography_vectors
from cryptography import x509

# Whole PEM blocks of any label: certificates, CSRs, public keys and CRLs all exercise the reader.
PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.DOTALL)
DER_SUFFIXES = {".der", ".crt", ".cer", ".crl"}
# Bigger inputs only slow every execution down; no certificate in the vectors needs more.
MAX_SEED = 16 * 1024


def pem_blocks(text: bytes) -> list[bytes]:
    out = []
    for match in PEM_BLOCK.finditer(text):
        # Strip RFC 1421 headers ("Proc-Type: ...") before the base64 body.
        body = match.group(2).split(b"\n\n")[-1]
        try:
            out.append(base64.b64decode(b"".join(body.split()), validate=True))
        except ValueError:
            continue
    return out


def real_inputs() -> list[bytes]:
    x509 = Path(cryptography_vectors.__file__).parent / "x509"
    found = []
    for path in sorted(x509.rglob("*")):
        if not path.is_file():
            continue
        if path.suffix == ".pem":
            found.extend(pem_blocks(path.read_bytes()))
        elif path.suffix in DER_SUFFIXES:
            found.append(path.read_bytes())
    found.extend(pem_blocks(Path(certifi.where()).read_bytes()))
    return found


def is_certificate(data: bytes) -> bool:
    # pyca raises InvalidVersion (not a ValueError) and warns on negative serials; neither matters.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            x509.load_der_x509_certificate(data)
        except Exception:
            return False
    return True


def header(data: bytes, at: int = 0) -> tuple[int, int, int]:
    """(tag, header length, content length) of the element at `at`."""
    first = data[at + 1]
    if first < 0x80:
        return data[at], 2, first
    n = first & 0x7F
    return data[at], 2 + n, int.from_bytes(data[at + 2 : at + 2 + n], "big")


def spki_span(cert: bytes) -> tuple[int, int]:
    """Start and end of the SPKI in a certificate, by framing as pinscan does it."""
    _, outer_len, _ = header(cert)
    _, tbs_len, _ = header(cert, outer_len)
    at = outer_len + tbs_len
    if cert[at] == 0xA0:  # [0] version
        _, h, n = header(cert, at)
        at += h + n
    for _ in range(5):  # serial, signature, issuer, validity, subject
        _, h, n = header(cert, at)
        at += h + n
    _, h, n = header(cert, at)
    return at, at + h + n


def long_form(tag: int, content: bytes, octets: int) -> bytes:
    """An element whose length takes `octets` bytes, minimal or not (DER refuses the latter)."""
    return bytes([tag, 0x80 | octets]) + len(content).to_bytes(octets, "big") + content


def edge_cases(cert: bytes) -> list[bytes]:
    """Damaged and odd variants of one real certificate, and bare framing corner cases."""
    start, end = spki_span(cert)
    _, outer_len, _ = header(cert)
    body = cert[outer_len:]
    return [
        b"",
        b"\x30",
        b"\x30\x00",
        b"\x30\x80\x00\x00",  # indefinite length
        b"\x30\x85\x00\x00\x00\x00\x01\x00",  # a five-octet length
        b"\x30\x84\xff\xff\xff\xff",  # announces 4 GiB
        b"\x1f\x81\x00\x00",  # high tag number
        b"\x30\x02\x30\x00" * 4,
        b"\x30\x02" * 200 + b"\x05\x00",  # deep nesting
        cert[: len(cert) // 2],  # truncated mid-TBS
        cert[:end],  # cut right after the key: the pin must survive
        cert[: start + 3],  # cut inside the key
        cert + b"\x00\x00",  # trailing garbage
        cert[start:end],  # a bare SPKI
        long_form(0x30, body, 4),  # non-minimal outer length
        long_form(0x30, body, 3),
        cert[:-1] + bytes([cert[-1] ^ 0xFF]),  # signature changed
    ]


def main(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    real = [d for d in real_inputs() if 0 < len(d) <= MAX_SEED]
    certs = [d for d in real if is_certificate(d)]
    # Edge cases from a spread of real certificates (the vectors are sorted by directory).
    extras = []
    for cert in certs[:: max(1, len(certs) // 8)]:
        try:
            extras.extend(edge_cases(cert))
        except IndexError:
            continue
    written = 0
    for data in real + extras:
        path = out / hashlib.sha256(data).hexdigest()
        if not path.exists():
            path.write_bytes(data)
            written += 1
    total = sum(1 for _ in out.iterdir())
    print(
        f"seed: {len(real)} real inputs, {len(extras)} edge cases; {written} new; {total} in {out}"
    )
    return 0


if __name__ == "__main__":
    default = Path(__file__).resolve().parent / "corpus" / "seed"
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else default))
