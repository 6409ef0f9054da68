# SPDX-License-Identifier: Apache-2.0
"""What verification concludes, as plain values: a chain's verdict whatever name it is served
for (`ChainVerdict`, what a verification child sends back), an endpoint's (`Verdict`), and the
stores a verifier holds (`StoreSpec`, what a child is sent). No cryptography here: a scan passes
these around without loading the path builder."""

from __future__ import annotations

from dataclasses import dataclass

#: One store's answer for a chain: its name, whether it verifies the chain, and the path it builds
#: (leaf first, ending at its anchor; empty when it does not verify).
StorePath = tuple[str, bool, tuple[bytes, ...]]


@dataclass(frozen=True, slots=True)
class Verdict:
    verified: bool
    verify_error: str | None
    trust_store: str | None
    hostname_match: bool | None
    days_to_expiry: int | None
    chain: tuple[bytes, ...]
    verify_detail: str | None = None
    #: Each store of the verifier, in order: (name, whether it verifies the chain, its path).
    store_paths: tuple[StorePath, ...] = ()


@dataclass(frozen=True, slots=True)
class StoreSpec:
    """A verifier's trust stores, in order: each a name and the DER of its roots, or ``None``
    for the store pinscan ships under that name (read from the installed file where paths are
    built). What a verification child is sent, so that it loads exactly the stores of the scan,
    whatever a user's bundle file does meanwhile."""

    stores: tuple[tuple[str, tuple[bytes, ...] | None], ...]


@dataclass(frozen=True, slots=True)
class ChainVerdict:
    """What a chain gives whatever name it is served for; ``names`` is None when unparsable.
    ``error`` is a kind of `VERIFY_ERRORS`, ``detail`` says which certificate and why."""

    verified: bool
    error: str | None
    trust_store: str | None = None
    names: list[str] | None = None
    days: int | None = None
    path: tuple[bytes, ...] = ()
    detail: str | None = None
    #: Each store's answer, in the verifier's order (empty when no path was built: malformed,
    #: no certificate, no usable name).
    stores: tuple[StorePath, ...] = ()


__all__ = ["ChainVerdict", "StorePath", "StoreSpec", "Verdict"]
