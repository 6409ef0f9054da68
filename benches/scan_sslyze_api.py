# SPDX-License-Identifier: Apache-2.0
"""sslyze's Python API with only ``ScanCommand.CERTIFICATE_INFO``, for ``bench_scan.py``.

    benches/out/.venv-sslyze/bin/python -m benches.scan_sslyze_api INVENTORY --servers N

Runs in sslyze's own virtual environment (sslyze pins an older pyca/cryptography than pinscan),
so it imports nothing from pinscan. ``--servers`` is sslyze's ``concurrent_server_scans_limit``
(10 by default, which the CLI uses); connections per server stay at sslyze's 5. Prints one JSON
line: ``{"targets", "ok", "failed", "seconds"}``, where ok means a certificate chain came back.
"""

from __future__ import annotations

import argparse
import json
import time

from sslyze import (
    ScanCommand,
    ScanCommandAttemptStatusEnum,
    Scanner,
    ServerNetworkLocation,
    ServerScanRequest,
    ServerScanStatusEnum,
)


def main(path: str, servers: int) -> dict:
    requests = []
    with open(path) as f:
        for line in f:
            address = line.split()[0] if line.strip() else ""
            if address:
                ip, _, port = address.rpartition(":")
                location = ServerNetworkLocation(hostname=ip, port=int(port), ip_address=ip)
                requests.append(
                    ServerScanRequest(
                        server_location=location, scan_commands={ScanCommand.CERTIFICATE_INFO}
                    )
                )
    started = time.perf_counter()
    scanner = Scanner(concurrent_server_scans_limit=servers)
    scanner.queue_scans(requests)
    ok = failed = 0
    for result in scanner.get_results():
        certinfo = result.scan_result.certificate_info if result.scan_result else None
        done = (
            result.scan_status == ServerScanStatusEnum.COMPLETED
            and certinfo is not None
            and certinfo.status == ScanCommandAttemptStatusEnum.COMPLETED
        )
        ok += done
        failed += not done
    return {
        "targets": len(requests),
        "ok": ok,
        "failed": failed,
        "seconds": time.perf_counter() - started,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inventory")
    parser.add_argument("--servers", type=int, default=10)
    args = parser.parse_args()
    print(json.dumps(main(args.inventory, args.servers)))
