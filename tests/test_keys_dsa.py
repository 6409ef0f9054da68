# SPDX-License-Identifier: Apache-2.0
"""DSA keys, deprecated by pyca/cryptography 51 but still found in old key stores, pin like any
other key, and without pyca's deprecation warning (the suite turns warnings into errors; a user
would see it on every `pinscan pin` of such a key)."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import cryptography_vectors
import pytest

import pinscan

VECTORS = Path(cryptography_vectors.__file__).parent / "asymmetric"


@pytest.mark.parametrize(
    "private",
    [
        "PKCS8/unenc-dsa-pkcs8.pem",
        "DER_Serialization/unenc-dsa-pkcs8.der",
        "Traditional_OpenSSL_Serialization/dsa.1024.pem",
        "DER_Serialization/dsa.2048.der",
    ],
)
def test_a_dsa_private_key_pins_as_openssl_derives_its_public_key(private: str) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:  # on CI `make test` has installed it: a skip would hide that it did not
        (pytest.fail if os.environ.get("CI") else pytest.skip)("openssl is not installed")
    path = VECTORS / private
    inform = "DER" if path.suffix == ".der" else "PEM"
    spki = subprocess.run(
        [openssl, "pkey", "-inform", inform, "-in", path, "-pubout", "-outform", "DER"],
        capture_output=True,
        check=True,
    ).stdout
    assert (
        pinscan.spki_pin(path.read_bytes())
        == base64.b64encode(hashlib.sha256(spki).digest()).decode()
    )


def test_a_dsa_public_key_pins_its_own_bytes() -> None:
    pem = (VECTORS / "PKCS8/unenc-dsa-pkcs8.pub.pem").read_bytes()
    der = base64.b64decode(b"".join(pem.splitlines()[1:-1]))
    assert pinscan.spki_pin(pem) == base64.b64encode(hashlib.sha256(der).digest()).decode()
