# SPDX-License-Identifier: Apache-2.0
"""The chains a scenario would serve, made from today's path and the CA catalog.

Each distinct path above the leaf (the CA keys of today's judged chain, with the store that
judges it) is planned once: a fleet of a million endpoints has a handful of such paths. A
variant says what happens to the leaf key (``same``, ``new``, or the spare key ``backup:<i>``)
and which CA keys stand above it; ``above`` is ``None`` when the chain cannot be built in the
store at all. Signatures are not needed to judge pins, so nothing is signed.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from pinscan.catalog.graph import Catalog
from pinscan.errors import ConfigError
from pinscan.records import TRUST_STORES
from pinscan.rotation.scenarios import Selection

SAME = "same"
NEW = "new"
#: Let's Encrypt marks intermediates it no longer issues from as ``retired`` on its certificates
#: page; the catalog holds that page as of this date, so before it a retired one still counts.
_LE_STATUS_SOURCE = "letsencrypt"


@dataclass(frozen=True)
class Variant:
    """One scenario for one path: the leaf, the CA keys above it (``None``: the chain does not
    build), and what a reader needs to see (``chain``: names, leaf first; ``detail``)."""

    scenario: str
    kind: str
    leaf: str
    above: tuple[str, ...] | None
    chain: str
    detail: str


@dataclass(frozen=True)
class Spare:
    """A spare key: where it came from and its pins (bare base64): SHA-256, SHA-1, and the one
    TrustKit computes (``None`` when it cannot hash the key, ``trustkit_problem`` says why)."""

    source: str
    pin: str
    sha1: str
    trustkit: str | None
    trustkit_problem: str | None


class Planner:
    """Makes the variants of each path, for one catalog, moment and selection.

    ``fleet`` counts the endpoints behind each issuing key the fleet uses: the families it
    already uses are the default switch targets, each reached through its most used
    intermediate. ``names`` names keys the catalog lacks (a private CA, from the scan).
    """

    def __init__(
        self,
        catalog: Catalog,
        moment: dt.datetime,
        selection: Selection,
        *,
        fleet: Counter[str],
        switch_to: Sequence[str] = (),
        spares: Sequence[Spare] = (),
        names: dict[str, str] | None = None,
    ) -> None:
        self.catalog = catalog
        self.moment = moment
        self.selection = selection
        self.spares = list(spares)
        self._names = dict(names or {})
        self._labels: dict[str, str] = {}
        le = catalog.meta.get("sources", {}).get(_LE_STATUS_SOURCE, {})
        snapshot = le.get("certificates_md_lastmod")
        self._le_snapshot = (
            dt.datetime.fromisoformat(snapshot).replace(tzinfo=dt.UTC) if snapshot else None
        )
        # Default switch targets: each family the fleet uses, through its most used intermediate.
        self._fleet_family: dict[str, str] = {}
        for pin, _ in fleet.most_common():
            family = self.family(pin)
            if family is not None:
                self._fleet_family.setdefault(family, pin)
        self._asked = [self._resolve(name) for name in switch_to] if self._switching else []

    @property
    def _switching(self) -> bool:
        return self.selection.wants("switch")

    # Names ------------------------------------------------------------------------------------

    def family(self, pin: str) -> str | None:
        row = self.catalog.ca(pin)
        return row["owner"] if row else None

    def name(self, pin: str) -> str:
        """A key's display name, unique among the names this planner gave out."""
        if pin in self._labels:
            return self._labels[pin]
        row = self.catalog.ca(pin)
        base = (row["name"] if row else None) or self._names.get(pin) or f"sha256/{pin[:12]}…"
        label = base
        if label in self._labels.values():
            label = f"{base} [{pin[:8]}]"
        self._labels[pin] = label
        return label

    def chain(self, leaf: str, above: Sequence[str] | None) -> str:
        first = {SAME: "same leaf key", NEW: "new leaf key"}.get(leaf)
        if first is None:
            first = f"spare key {self.spares[int(leaf.split(':')[1])].source}"
        if above is None:
            return f"{first} > (no path to a trusted root)"
        return " > ".join([first, *(self.name(pin) for pin in above)])

    # Variants ---------------------------------------------------------------------------------

    def variants(self, above: tuple[str, ...], store: str | None) -> list[Variant]:
        """Every selected scenario for today's CA keys ``above`` the leaf (issuer first, as far
        as the path goes) judged by ``store``."""
        return list(self._variants(above, store))

    @cache  # noqa: B019 - one planner per analysis; paths repeat across a fleet
    def _variants(self, above: tuple[str, ...], store: str | None) -> tuple[Variant, ...]:
        out: list[Variant] = []
        wants = self.selection.wants

        def add(name: str, kind: str, leaf: str, keys: Sequence[str] | None, detail: str) -> None:
            if self.selection.matches(name, kind):
                keys = None if keys is None else tuple(keys)
                out.append(Variant(name, kind, leaf, keys, self.chain(leaf, keys), detail))

        if wants("renew_same_key"):
            add(
                "renew_same_key",
                "renew_same_key",
                SAME,
                above,
                "a new leaf certificate for the same key, from the same CA",
            )
        if wants("renew_new_key"):
            add(
                "renew_new_key",
                "renew_new_key",
                NEW,
                above,
                "a new leaf key (certbot's default), from the same CA",
            )
        trusted = _trusted_in(store)
        issuer = above[0] if above else None
        if wants("sibling") and issuer is not None:
            for sibling in self._siblings(issuer):
                keys = self._under(sibling, above, trusted)
                add(
                    f"sibling:{self.name(sibling)}",
                    "sibling",
                    NEW,
                    keys,
                    f"a new leaf key issued by {self.name(sibling)}, "
                    f"a sibling of {self.name(issuer)}",
                )
        if self._switching:
            own = self.family(issuer) if issuer else None
            targets = [(f, (pin,)) for f, pin in self._fleet_family.items() if f != own]
            targets += [(f, pins) for f, pins in self._asked if f != own]
            seen: set[str] = set()
            for family, candidates in targets:
                if family in seen:
                    continue
                seen.add(family)
                # The first candidate the store can build a path from: a family's intermediates
                # do not all chain to roots every platform holds.
                pin, keys = candidates[0], None
                for candidate in candidates:
                    found = self.catalog.path(candidate, self.moment, to=trusted)
                    if found:
                        pin, keys = candidate, found
                        break
                add(
                    f"switch:{family}",
                    "switch",
                    NEW,
                    keys,
                    f"a new leaf key issued by {self.name(pin)} of {family}",
                )
        if wants("backup_key"):
            for index, spare in enumerate(self.spares):
                name = "backup_key" if len(self.spares) == 1 else f"backup_key:{spare.source}"
                add(
                    name,
                    "backup_key",
                    f"backup:{index}",
                    above,
                    f"the leaf re-keyed to the spare key in {spare.source}",
                )
        if wants("root_removed") and above:
            add(
                "root_removed",
                "root_removed",
                SAME,
                self._without_root(above, trusted),
                f"{self.name(above[-1])} distrusted in the {store or 'judging'} store",
            )
        return tuple(out)

    def _siblings(self, issuer: str) -> list[str]:
        """The CAs a renewal may come from instead of ``issuer``: :meth:`Catalog.siblings`, but
        for Let's Encrypt only those it may issue from at this moment: active and backup ones,
        and, before the date of the page the catalog holds, those it has retired since (it
        issued from them until then). Those its page calls expired it left long before."""
        frame = self.catalog.siblings(issuer, self.moment)
        keep = []
        for row in frame.iter_rows(named=True):
            if row["is_self"]:
                continue
            status = row["le_status"]
            if status == "expired" or (
                status == "retired"
                and (self._le_snapshot is None or self.moment >= self._le_snapshot)
            ):
                continue
            keep.append(row["spki_sha256"])
        return keep

    def _under(
        self, ca: str, above: tuple[str, ...], trusted: Callable[[dict[str, Any]], bool]
    ) -> tuple[str, ...] | None:
        """The keys from ``ca`` up: today's path above the issuer when ``ca`` hangs from the
        same key (a sibling keeps the served cross-signs), else the catalog's shortest path."""
        row = self.catalog.ca(ca)
        if len(above) >= 2 and row is not None and above[1] in (row["parents"] or ()):
            return (ca, *above[1:])
        found = self.catalog.path(ca, self.moment, to=trusted)
        return tuple(found) if found else None

    def _without_root(
        self, above: tuple[str, ...], trusted: Callable[[dict[str, Any]], bool]
    ) -> tuple[str, ...] | None:
        """Today's path with its root distrusted: the longest part of it that still reaches
        another trusted root through a certificate the catalog knows (a cross-sign)."""
        root = above[-1]
        for keep in range(len(above) - 1, 0, -1):
            found = self.catalog.path(above[keep - 1], self.moment, to=trusted, avoid=[root])
            if found:
                return (*above[: keep - 1], *found)
        return None

    def _resolve(self, query: str) -> tuple[str, tuple[str, ...]]:
        """A ``--switch-to`` name's family and candidates, the intermediate the fleet uses of
        that family first."""
        family, candidates = switch_target(self.catalog, query, self.moment)
        used = tuple(
            pin for pin in (self._fleet_family.get(o) for o in self._owners(family)) if pin
        )
        return family, used + tuple(c for c in candidates if c not in used)

    def _owners(self, family: str) -> list[str]:
        wanted = family.casefold()
        return [f for f in self._fleet_family if wanted in f.casefold()]


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def switch_target(catalog: Catalog, query: str, moment: dt.datetime) -> tuple[str, tuple[str, ...]]:
    """What ``--switch-to QUERY`` names: a family (every owner whose name holds the query, as
    a family may be spelled several ways among its roots: "DigiCert Inc", "DigiCert, Inc."), or
    one issuing CA; with its intermediates that may issue TLS certificates at ``moment``,
    likeliest first. :class:`~pinscan.errors.ConfigError` (``switch_to``) when the catalog
    knows neither: callers check this before a scan, not after."""
    wanted = query.strip().casefold()
    owners = set(catalog.cas["owner"].drop_nulls().unique().to_list())
    exact = [o for o in owners if o.casefold() == wanted]
    close = exact or sorted(o for o in owners if wanted and wanted in o.casefold())
    if close:
        candidates = tuple(p for o in close for p in _issuing(catalog, o, moment))
        if candidates:
            return (close[0] if len(close) == 1 else query.strip()), candidates
    try:
        cas = catalog.lookup(query)
    except ValueError:
        cas = None
    if cas is not None:
        for row in cas.iter_rows(named=True):
            if (
                not row["is_root"]
                and row["can_issue_tls"]
                and row["not_before"] is not None
                and row["not_before"] <= moment < row["not_after"]
            ):
                return row["owner"] or row["name"], (row["spki_sha256"],)
    reason = f"{query!r} is no CA family or issuing CA the catalog knows, valid at this moment"
    raise ConfigError("switch_to", reason)


def _issuing(catalog: Catalog, family: str, moment: dt.datetime) -> tuple[str, ...]:
    """A family's intermediates that may issue TLS certificates at ``moment``: Let's Encrypt's
    active ones first, then the family's own, newest first."""
    cas = catalog.cas
    rows = cas.filter(
        (cas["owner"] == family)
        & ~cas["is_root"]
        & cas["can_issue_tls"]
        & (cas["not_before"] <= moment)
        & (cas["not_after"] > moment)
    )
    # The family's own intermediates before those it signed for other companies.
    own = family.casefold().split()[0]
    ranked = sorted(
        rows.iter_rows(named=True),
        key=lambda r: (
            r["le_status"] != "active",
            not (r["organization"] or "").casefold().startswith(own),
            -(r["not_before"] or _EPOCH).timestamp(),
        ),
    )
    return tuple(row["spki_sha256"] for row in ranked)


def _trusted_in(store: str | None) -> Callable[[dict[str, Any]], bool]:
    """Which roots a store's clients trust: its own, for the stores pinscan ships; for the
    machine's store and the scan's private anchors, any root the catalog knows (a private PKI
    given with ``--ca-catalog`` included)."""
    if store in TRUST_STORES:
        return lambda row: store in (row["trusted_by"] or ())
    return lambda row: True


__all__ = ["NEW", "SAME", "Planner", "Spare", "Variant", "switch_target"]
