# SPDX-License-Identifier: Apache-2.0
"""A safe pin-set for a domain, from what its endpoints really serve.

The rule that keeps apps alive: at least two pins, at least one of them a key that is in no
current chain (a spare key or CSR kept offline), so that losing or rotating any served key
leaves a pin that still matches. The served pins chosen are the issuing CA keys, which survive
leaf renewals; without a spare key the suggestion falls back to the root and says loudly why
that is weaker.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pinscan.dataset import ScanDataset
from pinscan.errors import InputError
from pinscan.keys import spki_pin
from pinscan.policy.evaluate import instant
from pinscan.policy.model import Pin, SuggestedPin, Suggestion, normalize_host

#: How long a suggested pin-set stays enforced when no expiration is given: long enough to ship
#: an update, short enough that an app nobody updates stops pinning rather than bricking.
DEFAULT_LIFETIME = dt.timedelta(days=365)


@dataclass(frozen=True)
class BackupKey:
    """A spare key (certificate, public key, CSR or private key) and where it came from."""

    data: bytes
    source: str
    password: bytes | None = None

    @classmethod
    def read(cls, path: str | Path, password: bytes | None = None) -> BackupKey:
        try:
            return cls(Path(path).read_bytes(), str(path), password)
        except OSError as exc:
            raise InputError(str(path), exc.strerror or str(exc)) from exc


def suggest(
    dataset: ScanDataset,
    domain: str,
    *,
    backup_keys: Sequence[BackupKey] = (),
    include_subdomains: bool | None = None,
    expires: dt.date | None = None,
    as_of: dt.datetime | dt.date | None = None,
    leaf_only: bool = False,
) -> tuple[Suggestion, list[str]]:
    """A pin-set for ``domain`` and the warnings to print loudly with it.

    Covers the endpoints named ``domain`` and, when ``include_subdomains`` (by default: when the
    scan has any), the names below it. Raises :class:`InputError` when no such endpoint served a
    chain, or when two distinct pins cannot be found. ``leaf_only`` is for clients that check
    the leaf alone (curl): the served pins are then the leaf keys.
    """
    domain = normalize_host(domain)
    moment = instant(as_of)
    name = pl.coalesce("sni", "host").str.strip_chars_end(".").str.to_lowercase()
    endpoints = dataset.endpoints.select("endpoint_id", name=name).filter(
        (pl.col("name") == domain) | pl.col("name").str.ends_with(f".{domain}")
    )
    chains = _chains(dataset, endpoints).collect()
    if chains.is_empty():
        raise InputError(
            str(dataset.path), f"no endpoint named {domain} or below it served a certificate"
        )
    below = chains.filter(pl.col("name") != domain).height > 0
    if include_subdomains is None:
        include_subdomains = below
    if not include_subdomains:
        chains = chains.filter(pl.col("name") == domain)
        if chains.is_empty():
            raise InputError(str(dataset.path), f"no endpoint named exactly {domain} served a key")
    endpoints_n = chains["endpoint_id"].n_unique()

    warnings: list[str] = []
    pins: list[SuggestedPin] = []
    seen: set[str] = set()

    def add(pin: str, role: str, comment: str) -> None:
        if pin not in seen:
            seen.add(pin)
            pins.append(SuggestedPin(Pin.sha256(pin), role, comment))

    if leaf_only:
        for r in _keys_at(chains, pl.col("position") == 0).iter_rows(named=True):
            add(r["spki_sha256"], "leaf", f"leaf key of {r['subject']}{_count(r)}")
    else:
        for r in _keys_at(chains, pl.col("position") == 1).iter_rows(named=True):
            add(r["spki_sha256"], "intermediate", f"issuing CA key of {r['subject']}{_count(r)}")
    spares = 0
    for key in backup_keys:
        try:
            pin = spki_pin(key.data, password=key.password)
        except InputError as exc:
            raise InputError(key.source, exc.message) from None
        if pin in set(chains["spki_sha256"]):
            warnings.append(
                f"{key.source} is already served by the fleet: it is not a backup; "
                "generate a key that is kept offline"
            )
        elif pin not in seen:
            spares += 1
        add(pin, "backup", f"spare key from {Path(key.source).name}, not deployed")
    if not spares and leaf_only:
        warnings.append(
            "NO BACKUP KEY: this client checks the leaf alone and every pin is a current leaf "
            "key: a renewal with a new key, or a lost key, breaks it. Make a spare key, keep it "
            "offline, and pass --backup-key."
        )
    elif not spares:
        roots = _keys_at(chains, pl.col("position") == pl.col("position").max().over("endpoint_id"))
        for r in roots.iter_rows(named=True):
            add(r["spki_sha256"], "root", f"root CA key of {r['subject']}{_count(r)}")
        warnings.append(
            "NO BACKUP KEY: every pin below is in a current chain. The root CA key was added "
            "as the second pin: it survives a lost leaf key and a new intermediate of the same "
            "CA, but a move to another CA, or the CA losing trust, bricks the client. Make a "
            "spare key (openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
            "-out spare.key), keep it offline, and pass --backup-key spare.key."
        )
    if len(pins) < 2:
        for r in _keys_at(chains, pl.col("position") == 0).iter_rows(named=True):
            add(r["spki_sha256"], "leaf", f"leaf key of {r['subject']}{_count(r)}")
        warnings.append(
            "the chain has no CA above the leaf: the leaf key is pinned, so renewing the "
            "certificate with a new key breaks the client unless a backup pin is shipped"
        )
    if len(pins) < 2:
        raise InputError(
            str(dataset.path),
            f"cannot find two distinct pins for {domain}: pass --backup-key with a spare key",
        )
    chose = "verified" if chains["source"].eq("verified").all() else "presented"
    if chose == "presented":
        warnings.append(
            "some chains did not verify against the scan's trust stores: pins come from the "
            "presented chains; scan with --ca-bundle for private PKI"
        )
    until = expires or (moment + DEFAULT_LIFETIME).date()
    header = (
        f"Pin-set for {domain}{' and its subdomains' if include_subdomains else ''}, "
        f"suggested by pinscan from scan {dataset.meta.get('scan_id')} "
        f"({endpoints_n} endpoints) on {moment:%Y-%m-%d}.",
        f"Expires {until:%Y-%m-%d}: after that the client stops pinning rather than failing. "
        "Ship new pins before then.",
        *(f"WARNING: {w}" for w in warnings),
    )
    names = tuple(sorted(set(chains["name"])))
    suggestion = Suggestion(domain, include_subdomains, tuple(pins), until, header, names=names)
    return suggestion, warnings


def _chains(dataset: ScanDataset, endpoints: pl.LazyFrame) -> pl.LazyFrame:
    """Each endpoint's verified chain, or its presented one when it did not verify."""
    chains = dataset.chains.select("endpoint_id", "source", "position", "cert_sha256").join(
        endpoints, on="endpoint_id"
    )
    verified = chains.filter(pl.col("source") == "verified")
    presented = chains.filter(pl.col("source") == "presented").join(
        verified.select("endpoint_id").unique(), on="endpoint_id", how="anti"
    )
    certs = dataset.certificates.select("cert_sha256", "spki_sha256", "subject").unique(
        "cert_sha256"
    )
    return (
        pl.concat([verified, presented])
        .with_columns(pl.col("source").cast(pl.String))
        .join(certs, on="cert_sha256")
    )


def _keys_at(chains: pl.DataFrame, where: pl.Expr) -> pl.DataFrame:
    """Distinct keys at the positions ``where`` selects, most served first."""
    return (
        chains.filter(where)
        .group_by("spki_sha256")
        .agg(pl.col("subject").first(), endpoints=pl.col("endpoint_id").n_unique())
        .sort("endpoints", "spki_sha256", descending=[True, False])
    )


def _count(row: dict) -> str:
    n = row["endpoints"]
    return f" ({n} endpoint{'s' if n != 1 else ''})"


__all__ = ["DEFAULT_LIFETIME", "BackupKey", "suggest"]
