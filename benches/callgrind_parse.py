# SPDX-License-Identifier: Apache-2.0
"""A fixed amount of parsing for ``valgrind --tool=callgrind``, whose instruction counts do not
depend on what else the machine is doing: N certificates of certifi's bundle (repeated) through
``pinscan.certificates`` on one thread. Instructions per certificate are the count at N minus the
count at 0, over N.

    valgrind --tool=callgrind python -m benches.callgrind_parse 20000
    valgrind --tool=callgrind python -m benches.callgrind_parse 0
"""

from __future__ import annotations

import sys

import certifi
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

import pinscan


def main() -> None:
    n = int(sys.argv[1])
    with open(certifi.where(), "rb") as f:
        bundle = x509.load_pem_x509_certificates(f.read())
    ders = [c.public_bytes(Encoding.DER) for c in bundle]
    batch = (ders * (n // len(ders) + 1))[:n]
    if n:
        pinscan.certificates(batch, threads=1)


if __name__ == "__main__":
    main()
