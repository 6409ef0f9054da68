# SPDX-License-Identifier: Apache-2.0
"""A scan to profile from outside, with a sampling profiler that also sees inside OpenSSL:

    pip install py-spy   # not a dependency of pinscan
    py-spy record --native -r 200 -f raw -o scan.txt -- \
        .venv/bin/python -m benches.scan_profile_target

nginx (one worker) serves 300 sites, one ECDSA P-256 certificate each; the scan covers each site
once without SNI and ten times with a distinct one (3,300 targets), three times over. Each scan's
wall time is printed; the profile is py-spy's.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pinscan

from fleet import pki, real

SITES, NAMES_PER_SITE, ROUNDS = 300, 10, 3


def main() -> None:
    sites = [real.Site(f"s{i}", pki.leaf(f"s{i}.test")) for i in range(SITES)]
    with tempfile.TemporaryDirectory(prefix="pinscan-profile-") as tmp:
        root = Path(tmp)
        with real.nginx(sites, root / "nginx", workers=1) as nginx:
            ports = list(nginx.ports.values())
            lines = [f"127.0.0.1:{port}" for port in ports]
            lines += [
                f"127.0.0.1:{port} n{i}.test" for i, port in enumerate(ports * NAMES_PER_SITE)
            ]
            inventory = root / "inventory.txt"
            inventory.write_text("\n".join(lines) + "\n")
            for r in range(ROUNDS):
                started = time.perf_counter()
                pinscan.scan(inventory, root / f"out{r}")
                seconds = time.perf_counter() - started
                print(f"scan {r + 1}: {len(lines)} targets in {seconds:.2f} s", flush=True)


if __name__ == "__main__":
    main()
