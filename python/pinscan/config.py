# SPDX-License-Identifier: Apache-2.0
"""Scan settings as frozen dataclasses. Only the CLI reads flags and ``PINSCAN_*`` variables; it
builds these and hands them down, and each layer reads only its own fields."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds. ``deadline`` bounds DNS, connect and handshake of one target together, enforced by
    cancellation, so that no target can hang a scan whatever the server does."""

    connect: float = 5.0
    handshake: float = 10.0
    deadline: float = 30.0


@dataclass(frozen=True, slots=True)
class ScanConfig:
    concurrency: int = 500
    #: New connections per second across the whole scan; ``None`` for no limit.
    rate: float | None = None
    #: Connections open at once to one address, so a fleet behind one load balancer is not flooded.
    per_address: int = 16
    #: Extra attempts after a transient failure (timeouts, resets, refused during a restart).
    retries: int = 1
    timeouts: Timeouts = field(default_factory=Timeouts)
    #: Scan only the first address a name resolves to, instead of every address.
    first_address: bool = False
    #: Extra trust anchors (private PKI), a store of their own after Mozilla's roots.
    ca_bundle: Path | None = None
    system_store: bool = False
    #: Child processes that build chains' paths while the scan goes on; ``None``: one when the
    #: machine has two cores or more, else none (``0``: verify in the scanning process).
    verify_processes: int | None = None
    #: ALPN protocols offered in the ClientHello.
    alpn: tuple[str, ...] = ("h2", "http/1.1")
    #: Flush a part file after this many endpoints or seconds, whichever comes first.
    flush_rows: int = 5000
    flush_seconds: float = 10.0
