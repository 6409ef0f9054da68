# SPDX-License-Identifier: Apache-2.0
"""Pin strings in the bytes apps ship, through the Rust core: what an OkHttp call, a .NET string
heap or a configuration in code leaves in a binary, checked against pins pinscan computes itself
from the test PKI's certificates."""

from __future__ import annotations

import base64
import os
import zlib

import pinscan
from pinscan import _core

from fleet import pki


def test_pins_of_real_keys_are_found_where_code_keeps_them() -> None:
    leaf, issuer = (
        pinscan.spki_pin(pki.leaf("a.test").der),
        pinscan.spki_pin(pki.intermediate().der),
    )
    # A DEX string table: MUTF-8 with a length prefix; a .NET #US heap: UTF-16LE.
    dex = b"\x2f" + f"sha256/{leaf}".encode() + b"\x00\x1bokhttp3/CertificatePinner\x00"
    dotnet = f"sha256/{issuer}".encode("utf-16-le")
    data = os.urandom(5000) + dex + os.urandom(3000) + dotnet + b"\x00\x00"
    found = _core.pin_strings(data)
    assert [(algorithm, pin, prefixed) for _, algorithm, pin, prefixed in found] == [
        ("sha256", leaf, True),
        ("sha256", issuer, True),
    ]
    assert data[found[0][0] : found[0][0] + 7] == b"sha256/"


def test_sha1_pins_and_bare_candidates() -> None:
    der = pki.root().der
    sha1 = pinscan.spki_pin(der, algorithm="sha1")
    bare = pinscan.spki_pin(der)
    text = f'pins: ["sha1/{sha1}"], kTSKPublicKeyHashes: @[@"{bare}"]'.encode()
    assert [(a, p) for _, a, p, _ in _core.pin_strings(text)] == [("sha1", sha1)]
    found = _core.pin_strings(text, bare=True)
    assert [(a, p, prefixed) for _, a, p, prefixed in found] == [
        ("sha1", sha1, True),
        ("sha256", bare, False),
    ]


def test_compressed_or_random_bytes_hold_no_pin() -> None:
    noise = os.urandom(1 << 20)
    assert _core.pin_strings(noise) == []
    # A base64 blob longer than a pin, and one a character short, are not pins.
    blob = base64.b64encode(zlib.compress(noise[:4096]))
    assert _core.pin_strings(b"sha256/" + blob) == []
    assert _core.pin_strings(b"sha256/" + base64.b64encode(os.urandom(31))) == []
