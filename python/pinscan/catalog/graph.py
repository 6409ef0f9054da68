# SPDX-License-Identifier: Apache-2.0
"""The CA catalog as a graph over keys: which CA a pin is, who issued it, what else its issuer
can issue from, and which roots (and stores) stand behind it.

The shipped catalog (``ca_catalog.parquet``, next to this module) is read on first use and kept
for the process; ``import pinscan`` does not read it. A private PKI's certificates join it with
:meth:`Catalog.with_pems`, derived and linked the same way.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import hashlib
import json
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from pinscan.catalog import derive
from pinscan.certs.keys import read_certificates
from pinscan.errors import InputError

#: The catalog file inside the package; ``make catalog`` rebuilds it.
SHIPPED = Path(__file__).with_name("ca_catalog.parquet")
#: The Parquet key-value metadata entry holding the build's JSON (sources, stores, date).
METADATA_KEY = "pinscan.ca_catalog"

_LIST = pl.List(pl.String)
_TIME = pl.Datetime("us", "UTC")

#: The columns of :attr:`Catalog.cas`: one row per CA key.
CA_SCHEMA = pl.Schema(
    {
        "spki_sha256": pl.String,
        "spki_sha1": pl.String,
        # Of the key's newest certificate.
        "name": pl.String,
        "organization": pl.String,
        "subject": pl.String,
        "owner": pl.String,
        "key_type": pl.String,
        "key_bits": pl.UInt32,
        "curve": pl.String,
        # The key has a self-signed certificate.
        "is_root": pl.Boolean,
        # Some certificate of the key lets it issue TLS server certificates.
        "can_issue_tls": pl.Boolean,
        # The span of its certificates (revoked ones left out).
        "not_before": _TIME,
        "not_after": _TIME,
        "le_name": pl.String,
        "le_status": derive.SCHEMA["le_status"],
        "trusted_by": _LIST,
        "distrusted_by": _LIST,
        # The keys that signed its certificates (itself left out), and its roots.
        "parents": _LIST,
        "roots": _LIST,
        "certificates": _LIST,
        "sources": _LIST,
    }
)

#: The statuses of Let's Encrypt intermediates it may issue from next ("backup: we may begin
#: issuing from them at any time, without warning", its certificates page says).
LE_ISSUING = ("active", "backup")

#: The columns of :meth:`Catalog.issuers`.
_ISSUER_COLUMNS = [
    "spki_sha256", "name", "owner", "role", "endpoints", "in_catalog", "le_status", "subject",
    "trusted_by",
]  # fmt: skip

_PIN = re.compile(r"^(?:sha256/)?([A-Za-z0-9+/]{43}=)$")
_FINGERPRINT = re.compile(r"^(?:[0-9A-Fa-f]{2}[:\s]?){31}[0-9A-Fa-f]{2}$")


@dataclass(frozen=True)
class _Link:
    """One certificate that is not self-signed: ``child``'s key, signed by ``parent``'s."""

    child: str
    parent: str
    cert_sha256: str
    not_before: dt.datetime | None
    not_after: dt.datetime | None
    can_issue_tls: bool
    revoked: bool

    def valid(self, at: dt.datetime) -> bool:
        return (
            not self.revoked
            and self.not_before is not None
            and self.not_after is not None
            and self.not_before <= at <= self.not_after
        )


class Catalog:
    """CA certificates (:attr:`certificates`, one row per certificate, in
    :data:`pinscan.catalog.derive.SCHEMA`) seen as CAs: one per key (:attr:`cas`), linked to the
    keys that signed them. Every method takes a pin with or without its ``sha256/`` prefix.

    A method that asks what is valid takes ``at`` (an aware datetime; naive is UTC), now by
    default. Results are polars DataFrames in :data:`CA_SCHEMA` plus the columns each names.
    """

    def __init__(self, certificates: pl.DataFrame, meta: Mapping[str, Any] | None = None) -> None:
        if certificates.schema != derive.SCHEMA:
            msg = "not the CA catalog's columns (see pinscan.catalog.derive.SCHEMA)"
            raise ValueError(msg)
        self.certificates = certificates
        #: The build's metadata: format, sources and their commits, stores, date built; and
        #: ``local``, the PEM files :meth:`with_pems` added.
        self.meta: dict[str, Any] = dict(meta or {})
        self.cas = _cas(certificates)
        self._by_pin = {row["spki_sha256"]: row for row in self.cas.iter_rows(named=True)}
        self._up: dict[str, list[_Link]] = defaultdict(list)
        self._down: dict[str, list[_Link]] = defaultdict(list)
        links = certificates.filter(~pl.col("self_signed")).drop_nulls("issuer_spki_sha256")
        for row in links.iter_rows(named=True):
            link = _Link(
                child=row["spki_sha256"],
                parent=row["issuer_spki_sha256"],
                cert_sha256=row["cert_sha256"],
                not_before=row["not_before"],
                not_after=row["not_after"],
                can_issue_tls=bool(row["can_issue_tls"]),
                revoked=row["revoked"],
            )
            self._up[link.child].append(link)
            self._down[link.parent].append(link)

    @classmethod
    def shipped(cls) -> Catalog:
        """The catalog shipped in the package, read once per process."""
        return _shipped()

    def with_pems(self, paths: Iterable[str | os.PathLike[str]]) -> Catalog:
        """This catalog and the CA certificates of PEM bundles (or DER files): a private PKI.

        Their rows are derived as the shipped ones were (EKU, issuer links confirmed by
        signature, roots, owner), their ``sources`` is ``["local"]``. A certificate already in
        the catalog keeps its row, but still serves to check signatures: a new intermediate of a
        public CA links to its issuer when the bundle holds the issuer's certificate too.

        Raises
        ------
        InputError
            A file cannot be read, or holds no CA certificate.
        """
        files = [(os.fspath(path), read_certificates(path)) for path in paths]
        rows = derive.certificate_rows([der for _, found in files for der in found], "local")
        kept = set(rows["cert_sha256"].to_list())
        for name, found in files:
            if not kept & {hashlib.sha256(der).hexdigest() for der in found}:
                msg = f"no CA certificate among its {len(found)} certificates"
                raise InputError(name, msg)
        names = [name for name, _ in files]
        new = rows.join(self.certificates.select("cert_sha256"), "cert_sha256", how="anti")
        meta = {**self.meta, "local": [*self.meta.get("local", []), *names]}
        if new.is_empty():
            return Catalog(self.certificates, meta)
        return Catalog(derive.finish(pl.concat([self.certificates, new])), meta)

    # One CA ---------------------------------------------------------------------------------

    def ca(self, pin: str) -> dict[str, Any] | None:
        """The CA (key) of a pin, as a row of :attr:`cas`; ``None`` when the catalog lacks it."""
        return self._by_pin.get(_bare(pin))

    def lookup(self, query: str) -> pl.DataFrame:
        """The CAs a query names, as rows of :attr:`cas`.

        ``query`` is a pin (``sha256/...`` or bare base64), a certificate's SHA-256 fingerprint
        (hex, colons allowed), or a name: the CAs whose common name or Let's Encrypt name is the
        query (case-insensitive), else those whose subject, owner or Let's Encrypt name contains
        it. Raises ``ValueError`` for an empty query.
        """
        text = query.strip()
        if not text:
            msg = "an empty query names no CA"
            raise ValueError(msg)
        kind, value = parse_query(text)
        if kind == "pin":
            return self.cas.filter(pl.col("spki_sha256") == value)
        if kind == "fingerprint":
            pins = self.certificates.filter(pl.col("cert_sha256") == value)["spki_sha256"]
            return self.cas.filter(pl.col("spki_sha256").is_in(pins.to_list()))
        lowered = value.casefold()
        exact = self.cas.filter(
            (pl.col("name").str.to_lowercase() == lowered)
            | (pl.col("le_name").str.to_lowercase() == lowered)
        )
        if not exact.is_empty():
            return _ordered(exact)
        contains = [
            pl.col(column).str.to_lowercase().str.contains(lowered, literal=True)
            for column in ("subject", "owner", "le_name")
        ]
        return _ordered(self.cas.filter(pl.any_horizontal(contains).fill_null(False)))

    # Its relatives ----------------------------------------------------------------------------

    def parents(self, pin: str, at: dt.datetime | None = None) -> pl.DataFrame:
        """The issuing keys of a CA: every key that signed one of its certificates, with the
        span of those certificates (``valid_from``, ``valid_until``) and ``valid``: one of them
        is valid at ``at`` and not revoked. Empty for a CA only self-signed."""
        moment = _moment(at)
        spans: dict[str, list[_Link]] = defaultdict(list)
        for link in self._up.get(_bare(pin), ()):
            spans[link.parent].append(link)
        extra = [
            {
                "spki_sha256": parent,
                "valid_from": min(_times(links, "not_before"), default=None),
                "valid_until": max(_times(links, "not_after"), default=None),
                "valid": any(link.valid(moment) for link in links),
            }
            for parent, links in spans.items()
        ]
        frame = self._rows(extra, {"valid_from": _TIME, "valid_until": _TIME, "valid": pl.Boolean})
        return frame.sort("valid", "name", descending=[True, False])

    def children(self, pin: str, at: dt.datetime | None = None) -> pl.DataFrame:
        """The CAs a key signed, as :meth:`parents` gives them (``valid``, ``valid_until``...)."""
        moment = _moment(at)
        spans: dict[str, list[_Link]] = defaultdict(list)
        for link in self._down.get(_bare(pin), ()):
            spans[link.child].append(link)
        extra = [
            {
                "spki_sha256": child,
                "valid_from": min(_times(links, "not_before"), default=None),
                "valid_until": max(_times(links, "not_after"), default=None),
                "valid": any(link.valid(moment) for link in links),
            }
            for child, links in spans.items()
        ]
        frame = self._rows(extra, {"valid_from": _TIME, "valid_until": _TIME, "valid": pl.Boolean})
        return frame.sort("valid", "name", descending=[True, False])

    def siblings(
        self, pin: str, at: dt.datetime | None = None, *, same_organization: bool = True
    ) -> pl.DataFrame:
        """The CAs a certificate like this CA's could come from next, itself included
        (``is_self``): the CAs under the same issuing keys that are valid at ``at``, not revoked,
        may issue TLS server certificates and are not roots. ``same_organization`` keeps those
        whose subject O is this CA's (a CA issues you from its own intermediates, not from the
        ones it runs for another company). For Let's Encrypt, also every intermediate it may
        pick from (:data:`LE_ISSUING`), and only of this CA's key type, as it picks by the
        subscriber's key type. ``valid_until`` is the end of the latest qualifying certificate.

        A root's only sibling is itself; an unknown pin has none.
        """
        me = self.ca(pin)
        if me is None:
            return self._rows([], {"valid_until": _TIME, "is_self": pl.Boolean})
        moment = _moment(at)
        until: dict[str, dt.datetime] = {}
        if not me["is_root"]:
            issuing = {
                link.parent for link in self._up.get(me["spki_sha256"], ()) if not link.revoked
            }
            for parent in issuing:
                for link in self._down.get(parent, ()):
                    if self._may_issue(link, moment):
                        _latest(until, link)
            if same_organization and me["organization"]:
                mine = me["organization"].casefold()
                until = {
                    key: end
                    for key, end in until.items()
                    if (self._by_pin[key]["organization"] or "").casefold() == mine
                }
            if me["le_status"] is not None:
                for key, row in self._by_pin.items():
                    if row["le_status"] in LE_ISSUING:
                        for link in self._up.get(key, ()):
                            if self._may_issue(link, moment):
                                _latest(until, link)
                until = {
                    key: end
                    for key, end in until.items()
                    if self._by_pin[key]["key_type"] == me["key_type"]
                }
        own = [link for link in self._up.get(me["spki_sha256"], ()) if link.valid(moment)]
        until.setdefault(
            me["spki_sha256"],
            max(_times(own, "not_after"), default=me["not_after"]),
        )
        extra = [
            {"spki_sha256": key, "valid_until": end, "is_self": key == me["spki_sha256"]}
            for key, end in until.items()
        ]
        frame = self._rows(extra, {"valid_until": _TIME, "is_self": pl.Boolean})
        return frame.sort("is_self", "le_status", "name", descending=[True, False, False])

    def roots(self, pin: str, at: dt.datetime | None = None) -> pl.DataFrame:
        """The roots of a CA: the self-signed keys reachable by following issuers (cross-signs
        included, revoked certificates not), with ``hops`` (0 for a root itself) and ``valid``:
        reachable through certificates all valid at ``at``. ``trusted_by`` names the stores."""
        start = _bare(pin)
        if start not in self._by_pin:
            return self._rows([], {"hops": pl.Int32, "valid": pl.Boolean})
        moment = _moment(at)
        hops = self._reach(start, lambda link: not link.revoked)
        valid = self._reach(start, lambda link: link.valid(moment))
        extra = [
            {"spki_sha256": key, "hops": distance, "valid": key in valid}
            for key, distance in hops.items()
            if self._by_pin.get(key, {}).get("is_root")
        ]
        frame = self._rows(extra, {"hops": pl.Int32, "valid": pl.Boolean})
        return frame.sort("valid", "hops", "name", descending=[True, False, False])

    def path(
        self,
        pin: str,
        at: dt.datetime | None = None,
        *,
        to: Callable[[dict[str, Any]], bool] | None = None,
        avoid: Iterable[str] = (),
    ) -> list[str] | None:
        """The shortest chain of keys from ``pin`` up to a root, ``pin`` first, through
        certificates valid at ``at`` and not revoked: the path a client builds from a CA's
        certificate to its anchors. ``to`` accepts a root (a row of :attr:`cas`, e.g. trusted by
        one store); ``avoid`` keys are never used (a distrusted root). ``None`` when there is no
        such path or the catalog lacks ``pin``."""
        start = _bare(pin)
        if start not in self._by_pin:
            return None
        moment = _moment(at)
        barred = {_bare(key) for key in avoid}
        accept = to or (lambda row: True)
        below: dict[str, str | None] = {start: None}
        level = [start]
        while level:
            for key in level:
                row = self._by_pin[key]
                if row["is_root"] and key not in barred and accept(row):
                    chain = [key]
                    while (child := below[chain[-1]]) is not None:
                        chain.append(child)
                    return chain[::-1]
            above = []
            for key in level:
                for link in self._up.get(key, ()):
                    parent = link.parent
                    if parent not in below and parent not in barred and link.valid(moment):
                        below[parent] = key
                        above.append(parent)
            level = above
        return None

    # The whole catalog --------------------------------------------------------------------------

    def families(self) -> pl.DataFrame:
        """One row per owner: ``cas`` (keys), ``roots`` (root keys), ``intermediates`` (keys
        that may issue TLS server certificates and are not roots) and ``trusted_by`` (the
        stores that trust one of its roots)."""
        return (
            self.cas.group_by("owner")
            .agg(
                cas=pl.len(),
                roots=pl.col("is_root").sum(),
                intermediates=(~pl.col("is_root") & pl.col("can_issue_tls")).sum(),
                trusted_by=pl.col("trusted_by").explode().drop_nulls().unique().sort(),
            )
            .sort("owner", nulls_last=True)
        )

    def issuers(self, served: pl.DataFrame) -> pl.DataFrame:
        """The CAs a fleet's chains hold: from rows of ``(endpoint_id, position, spki_sha256,
        subject)`` (``ScanDataset.served()``, presented and verified chains alike), one row per
        key seen above the leaf (position > 0), with ``endpoints`` (distinct endpoints whose
        chains hold it), ``role`` (``root`` or ``intermediate``) and ``in_catalog``. Keys the
        catalog lacks keep the subject the fleet served."""
        above = served.filter((pl.col("position") > 0) & pl.col("spki_sha256").is_not_null())
        counts = above.group_by("spki_sha256").agg(
            endpoints=pl.col("endpoint_id").n_unique(),
            served_subject=pl.col("subject").drop_nulls().first(),
            served_root=(pl.col("subject") == pl.col("issuer")).any(),
        )
        known = counts.join(self.cas, on="spki_sha256", how="left")
        return (
            known.with_columns(
                in_catalog=pl.col("name").is_not_null(),
                subject=pl.coalesce("subject", "served_subject"),
                name=pl.coalesce(
                    "name",
                    pl.col("served_subject").map_elements(
                        derive.display_name, return_dtype=pl.String
                    ),
                ),
                role=pl.when(pl.coalesce("is_root", "served_root"))
                .then(pl.lit("root"))
                .otherwise(pl.lit("intermediate")),
            )
            .select(_ISSUER_COLUMNS)
            .sort("endpoints", "name", descending=[True, False])
        )

    # Helpers ----------------------------------------------------------------------------------

    def _may_issue(self, link: _Link, moment: dt.datetime) -> bool:
        """A certificate that lets its key issue TLS server certificates at ``moment``, for a
        key that is not a root (roots do not issue to subscribers)."""
        return link.valid(moment) and link.can_issue_tls and not self._by_pin[link.child]["is_root"]

    def _reach(self, start: str, follow: Callable[[_Link], bool]) -> dict[str, int]:
        """Each key reachable upwards from ``start`` through links ``follow`` accepts, with its
        distance."""
        distance = {start: 0}
        level = [start]
        while level:
            above = []
            for key in level:
                for link in self._up.get(key, ()):
                    if link.parent not in distance and follow(link):
                        distance[link.parent] = distance[key] + 1
                        above.append(link.parent)
            level = above
        return distance

    def _rows(self, extra: list[dict[str, Any]], schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
        """Rows of :attr:`cas` for the keys in ``extra``, with its other columns."""
        frame = pl.DataFrame(extra, schema={"spki_sha256": pl.String, **schema})
        return frame.join(self.cas, on="spki_sha256", how="inner").select(
            *CA_SCHEMA.names(), *schema
        )

    def __repr__(self) -> str:
        local = f", {len(self.meta['local'])} local files" if self.meta.get("local") else ""
        return f"<Catalog {self.certificates.height} certificates, {self.cas.height} CAs{local}>"


def parse_query(text: str) -> tuple[str, str]:
    """What a query is: ``("pin", base64)``, ``("fingerprint", lowercase hex)`` or
    ``("name", text)``."""
    pin = _PIN.match(text)
    if pin:
        try:
            if len(base64.b64decode(pin.group(1), validate=True)) == 32:
                return "pin", pin.group(1)
        except binascii.Error:
            pass
    if _FINGERPRINT.match(text):
        return "fingerprint", re.sub(r"[:\s]", "", text).lower()
    return "name", text


def ca_catalog() -> pl.DataFrame:
    """The CA catalog shipped in the package: one row per CA certificate (CCADB 2012-2026, Let's
    Encrypt's hierarchy, every certificate of the Android, Apple, Java, Microsoft and Mozilla root
    stores), with its pin, issuer link, roots, owner, Let's Encrypt status and the stores that
    trust it. Read on first use, then kept; docs/ca-catalog.md describes the columns.

    Examples
    --------
    >>> import pinscan
    >>> catalog = pinscan.ca_catalog()
    >>> catalog.filter(catalog["le_name"] == "Let's Encrypt R10")["le_status"].to_list()
    ['retired']
    """
    return Catalog.shipped().certificates


@functools.cache
def _shipped() -> Catalog:
    try:
        frame = pl.read_parquet(SHIPPED)
        # pyarrow's footer reader: polars' read_parquet_metadata is marked experimental.
        footer = pq.read_metadata(SHIPPED).metadata or {}
        meta = json.loads(footer[METADATA_KEY.encode()])
    except FileNotFoundError:
        msg = "missing from this installation: reinstall pinscan (or `make catalog`)"
        raise InputError(str(SHIPPED), msg) from None
    return Catalog(frame, meta)


def _cas(certificates: pl.DataFrame) -> pl.DataFrame:
    """One row per key, in :data:`CA_SCHEMA`."""
    newest = certificates.sort(
        "spki_sha256", "not_before", "cert_sha256", descending=[False, True, False], nulls_last=True
    )
    live = pl.col("revoked").not_()
    return (
        newest.group_by("spki_sha256", maintain_order=True)
        .agg(
            pl.col(
                "spki_sha1",
                "name",
                "organization",
                "subject",
                "owner",
                "key_type",
                "key_bits",
                "curve",
            ).first(),
            is_root=pl.col("self_signed").any(),
            can_issue_tls=pl.col("can_issue_tls").any(),
            not_before=pl.col("not_before").filter(live).min(),
            not_after=pl.col("not_after").filter(live).max(),
            le_name=pl.col("le_name").drop_nulls().first(),
            le_status=pl.col("le_status").drop_nulls().first(),
            trusted_by=pl.col("trusted_by").explode().drop_nulls().unique().sort(),
            distrusted_by=pl.col("distrusted_by").explode().drop_nulls().unique().sort(),
            parents=pl.col("issuer_spki_sha256")
            .filter(pl.col("issuer_spki_sha256") != pl.col("spki_sha256"))
            .drop_nulls()
            .unique()
            .sort(),
            roots=pl.col("root_spki_sha256").first(),
            certificates=pl.col("cert_sha256").sort(),
            sources=pl.col("sources").explode().drop_nulls().unique().sort(),
        )
        .select(CA_SCHEMA.names())
        .cast(dict(CA_SCHEMA))
    )


def _ordered(frame: pl.DataFrame) -> pl.DataFrame:
    """Matches as people want them: CAs still valid first, then by name."""
    return frame.sort(
        pl.col("not_after").is_null(), pl.col("not_after"), "name", descending=[False, True, False]
    )


def _bare(pin: str) -> str:
    return pin.removeprefix("sha256/")


def _moment(at: dt.datetime | None) -> dt.datetime:
    if at is None:
        return dt.datetime.now(dt.UTC)
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


def _times(links: Iterable[_Link], field: str) -> list[dt.datetime]:
    return [value for link in links if (value := getattr(link, field)) is not None]


def _latest(until: dict[str, dt.datetime], link: _Link) -> None:
    """Record ``link``'s end of validity for its key, keeping the latest."""
    assert link.not_after is not None  # valid links have one
    if link.child not in until or until[link.child] < link.not_after:
        until[link.child] = link.not_after


__all__ = ["CA_SCHEMA", "LE_ISSUING", "METADATA_KEY", "SHIPPED", "Catalog", "ca_catalog"]
