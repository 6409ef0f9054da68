# SPDX-License-Identifier: Apache-2.0
"""What changed between two scans of a fleet, per endpoint: polars joins, no loop over endpoints.

**The same endpoint.** An endpoint is a (target, address) pair, and its ``endpoint_id`` is the
same in every scan for the same inventory target and address, so endpoints are first matched by
``endpoint_id``. What is left on each side is then paired *within its target*: when a name's
addresses change between scans (a move, DNS round robin, a CDN), or it stops resolving, the old
and the new rows of that target are the same service seen at another address, not one endpoint
vanishing and another appearing. Those rows are paired in order of (leaf key, address), so that
unchanged keys line up with each other; such a pair reports ``address_changed`` (when both rows
have an address: a name that stopped resolving is a ``new_failure``) plus whatever else changed.
Only rows left over after that are ``appeared`` or ``vanished``.

The comparison runs in two steps: one lazy pass over both scans finds the pairs that differ at
all (comparing digests, statuses and flags only), then the few rows that changed are described.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable

import polars as pl

from pinscan.dataset import ScanDataset, select
from pinscan.errors import DatasetError
from pinscan.policy.evaluate import evaluate
from pinscan.policy.model import Policy
from pinscan.records import VERIFY_ERRORS

#: Every kind of change, in the order tables list them.
CHANGES = (
    "key_rotated",
    "renewed",
    "issuer_changed",
    "chain_changed",
    "new_failure",
    "recovered",
    "status_changed",
    "verification_changed",
    "verdict_changed",
    "address_changed",
    "appeared",
    "vanished",
)
CHANGE = pl.Enum(list(CHANGES))
#: What a scheduled job acts on by default: keys that changed, endpoints that stopped working.
DEFAULT_FAIL_ON = ("key_rotated", "new_failure")

DIFF_SCHEMA = pl.Schema(
    {
        "endpoint_id": pl.String,
        "target": pl.String,
        "ip": pl.String,
        "port": pl.Int32,
        "change": CHANGE,
        "old": pl.String,
        "new": pl.String,
        "detail": pl.String,
    }
)

# Compared in the first pass; the rest is read only for endpoints that changed.
_COMPARED = (
    "endpoint_id",
    "target_id",
    "target",
    "ip",
    "port",
    "status",
    "verified",
    "leaf_sha256",
    "spki_sha256",
    "issuer",
    "intermediates",
)

Scan = ScanDataset | str | os.PathLike[str]


def diff(
    old: Scan,
    new: Scan,
    policies: Policy | Iterable[Policy] | None = None,
    *,
    as_of: dt.datetime | dt.date | None = None,
) -> pl.DataFrame:
    """One row per (endpoint, change) from ``old`` to ``new``; see :data:`CHANGES`.

    ``old`` and ``new`` are datasets, or what :func:`pinscan.dataset.select` takes (``"out"``,
    ``"history@-2"``). ``old`` and ``new`` hold the change's before and after as text (a key's
    pin, a certificate's SHA-256, an issuer, a status, a verdict), ``detail`` says it for people.
    With ``policies``, both scans are judged by :func:`pinscan.evaluate` (at ``as_of``, now by
    default) and each (endpoint, policy) whose verdict differs is a ``verdict_changed`` row.

    Examples
    --------
    >>> changes = pinscan.diff("history@-2", "history")  # doctest: +SKIP
    >>> changes.filter(pl.col("change") == "key_rotated")  # doctest: +SKIP
    >>> pinscan.diff_summary(changes)  # doctest: +SKIP
    """
    before, after = _dataset(old), _dataset(new)
    pairs = _pairs(_side(before), _side(after))
    flags = _flags()
    changed = pairs.filter(pl.any_horizontal(*flags.values())).with_columns(**flags).collect()
    frames = [_describe(changed, before, after)]
    if policies is not None:
        policies = [policies] if isinstance(policies, Policy) else list(policies)
        if policies:
            frames.append(_verdicts(pairs, before, after, policies, as_of))
    out = pl.concat(frames, how="vertical")
    return out.sort("change", "target", "ip", "endpoint_id", "detail", nulls_last=True)


def summary(changes: pl.DataFrame) -> pl.DataFrame:
    """Changes counted per kind, every kind listed (zero included), in :data:`CHANGES` order."""
    counts = changes.group_by("change").len("count")
    every = pl.DataFrame({"change": list(CHANGES)}, schema={"change": CHANGE})
    return (
        every.join(counts, on="change", how="left")
        .with_columns(pl.col("count").fill_null(0).cast(pl.Int64))
        .sort("change")
    )


def _dataset(scan: Scan) -> ScanDataset:
    ds = scan if isinstance(scan, ScanDataset) else select(scan)
    if ds.scans.height != 1:
        msg = f"holds {ds.scans.height} scans; diff compares one scan with another"
        raise DatasetError(str(ds.path), msg)
    return ds


def _side(ds: ScanDataset) -> pl.LazyFrame:
    """Per endpoint, what the first pass compares: statuses, the leaf and its key, the leaf's
    issuer, and the intermediates presented (as one order-sensitive hash: joining their
    fingerprints into strings costs ten times as much, and only the changed ones are shown)."""
    leaves = ds.certificates.select(leaf_sha256="cert_sha256", issuer="issuer")
    intermediates = (
        ds.chains.filter((pl.col("source") == "presented") & (pl.col("position") > 0))
        .group_by("endpoint_id")
        .agg(intermediates=pl.struct("position", "cert_sha256").hash().sum())
    )
    return (
        ds.endpoints.select(*(c for c in _COMPARED if c not in ("issuer", "intermediates")))
        .join(leaves, on="leaf_sha256", how="left")
        .join(intermediates, on="endpoint_id", how="left")
        .with_columns(status=pl.col("status").cast(pl.String))
    )


def _pairs(old: pl.LazyFrame, new: pl.LazyFrame) -> pl.LazyFrame:
    """Old and new rows side by side (``<column>_old``, ``<column>_new``): matched by
    ``endpoint_id``, then the rest paired within their target; a side is all null for an
    endpoint that appeared or vanished."""
    o = old.rename({c: f"{c}_old" for c in _COMPARED})
    n = new.rename({c: f"{c}_new" for c in _COMPARED})
    same = o.join(n, left_on="endpoint_id_old", right_on="endpoint_id_new", how="inner")
    same = same.with_columns(endpoint_id_new=pl.col("endpoint_id_old"))
    rest_o = o.join(n, left_on="endpoint_id_old", right_on="endpoint_id_new", how="anti")
    rest_n = n.join(o, left_on="endpoint_id_new", right_on="endpoint_id_old", how="anti")

    def ranked(frame: pl.LazyFrame, side: str) -> pl.LazyFrame:
        order = [f"spki_sha256_{side}", f"ip_{side}"]
        rank = pl.int_range(pl.len()).over(f"target_id_{side}", order_by=order)
        return frame.with_columns(_rank=rank)

    moved = ranked(rest_o, "old").join(
        ranked(rest_n, "new"),
        left_on=["target_id_old", "_rank"],
        right_on=["target_id_new", "_rank"],
        how="full",
        coalesce=False,
    )
    columns = [f"{c}_{side}" for side in ("old", "new") for c in _COMPARED]
    return pl.concat([same.select(columns), moved.select(columns)], how="vertical")


def _flags() -> dict[str, pl.Expr]:
    """Which kinds of change each pair shows (the pairs' own change flags, by kind)."""

    def col(name: str, side: str) -> pl.Expr:
        return pl.col(f"{name}_{side}")

    old, new = col("endpoint_id", "old").is_not_null(), col("endpoint_id", "new").is_not_null()
    both = old & new

    def differs(name: str) -> pl.Expr:
        both_set = col(name, "old").is_not_null() & col(name, "new").is_not_null()
        return both & both_set & (col(name, "old") != col(name, "new"))

    issuer = differs("issuer")
    was_ok, is_ok = col("status", "old") == "ok", col("status", "new") == "ok"
    status = both & (col("status", "old") != col("status", "new"))
    leaves = both & col("leaf_sha256", "old").is_not_null()
    leaves = leaves & col("leaf_sha256", "new").is_not_null()
    return {
        "key_rotated": differs("spki_sha256"),
        "renewed": both
        & (col("spki_sha256", "old") == col("spki_sha256", "new"))
        & (col("leaf_sha256", "old") != col("leaf_sha256", "new")),
        "issuer_changed": issuer,
        "chain_changed": leaves
        & ~issuer
        & col("intermediates", "old").ne_missing(col("intermediates", "new")),
        "new_failure": status & was_ok,
        "recovered": status & is_ok,
        "status_changed": status & ~was_ok & ~is_ok,
        "verification_changed": differs("verified"),
        "address_changed": differs("ip"),
        "appeared": ~old,
        "vanished": ~new,
    }


def _describe(changed: pl.DataFrame, before: ScanDataset, after: ScanDataset) -> pl.DataFrame:
    """The change rows of the pairs that differ: values and text, read for these endpoints only."""
    changed = changed.with_columns(
        endpoint_id=pl.coalesce("endpoint_id_new", "endpoint_id_old"),
        target=pl.coalesce("target_new", "target_old"),
        ip=pl.coalesce("ip_new", "ip_old"),
        port=pl.coalesce("port_new", "port_old"),
    )
    for ds, side in ((before, "old"), (after, "new")):
        changed = changed.join(_details(changed, ds, side), on="endpoint_id", how="left")

    def v(name: str, side: str) -> pl.Expr:
        return pl.col(f"{name}_{side}")

    def day(side: str) -> pl.Expr:
        return v("not_after", side).dt.strftime("%Y-%m-%d").fill_null("?")

    def verified(side: str) -> pl.Expr:
        return pl.when(v("verified", side)).then(pl.lit("verified")).otherwise(pl.lit("unverified"))

    def said(side: str) -> pl.Expr:
        return pl.coalesce(v("error", side), pl.lit("no error text"))

    text = pl.concat_str
    kinds: dict[str, tuple[pl.Expr, pl.Expr, pl.Expr]] = {
        "key_rotated": (
            v("spki_sha256", "old"),
            v("spki_sha256", "new"),
            text(pl.lit("new key in a new certificate, valid until "), day("new")),
        ),
        "renewed": (
            v("leaf_sha256", "old"),
            v("leaf_sha256", "new"),
            text(
                pl.lit("new certificate, same key; valid until "),
                day("old"),
                pl.lit(" -> "),
                day("new"),
            ),
        ),
        "issuer_changed": (
            v("issuer", "old"),
            v("issuer", "new"),
            text(pl.lit("leaf now issued by "), v("issuer", "new")),
        ),
        "chain_changed": (
            v("chain", "old").fill_null(""),
            v("chain", "new").fill_null(""),
            text(
                pl.lit("intermediates sent: ["),
                v("names", "old").fill_null(""),
                pl.lit("] -> ["),
                v("names", "new").fill_null(""),
                pl.lit("]"),
            ),
        ),
        "new_failure": (
            v("status", "old"),
            v("status", "new"),
            said("new"),
        ),
        "recovered": (
            v("status", "old"),
            v("status", "new"),
            text(pl.lit("failing before: "), said("old")),
        ),
        "status_changed": (v("status", "old"), v("status", "new"), said("new")),
        "verification_changed": (
            verified("old"),
            verified("new"),
            pl.when(v("verified", "new"))
            .then(
                text(
                    pl.lit("chain now verifies ("),
                    v("trust_store", "new").fill_null("?"),
                    pl.lit(")"),
                )
            )
            .otherwise(
                text(
                    pl.lit("chain no longer verifies: "),
                    v("verify_error", "new").replace(VERIFY_ERRORS).fill_null("?"),
                )
            ),
        ),
        "address_changed": (
            v("ip", "old"),
            v("ip", "new"),
            text(
                pl.lit("same target, now at "),
                v("ip", "new"),
                pl.lit(" (was "),
                v("ip", "old"),
                pl.lit(")"),
            ),
        ),
        "appeared": (
            pl.lit(None, pl.String),
            v("status", "new"),
            text(
                pl.lit("not in the old scan; "),
                v("status", "new"),
                pl.when(v("status", "new") != "ok")
                .then(text(pl.lit(", "), said("new")))
                .otherwise(pl.lit("")),
            ),
        ),
        "vanished": (
            v("status", "old"),
            pl.lit(None, pl.String),
            pl.lit("not in the new scan (no longer in the inventory, or in its DNS)"),
        ),
    }
    frames = [
        changed.filter(pl.col(kind)).select(
            "endpoint_id",
            "target",
            "ip",
            "port",
            change=pl.lit(kind, CHANGE),
            old=old,
            new=new,
            detail=detail,
        )
        for kind, (old, new, detail) in kinds.items()
    ]
    return pl.concat(frames, how="vertical").cast(DIFF_SCHEMA)  # type: ignore[arg-type]


def _details(changed: pl.DataFrame, ds: ScanDataset, side: str) -> pl.DataFrame:
    """For the changed endpoints of one side: error texts, trust store, the leaf's expiry and
    the intermediates' fingerprints and subjects, keyed by the pair's (output) ``endpoint_id``."""
    ids = changed.select("endpoint_id", own=pl.col(f"endpoint_id_{side}")).drop_nulls("own")
    own = ids.lazy().select(endpoint_id=pl.col("own"))
    certs = ds.certificates.select("cert_sha256", "subject", "not_after")
    names = (
        ds.chains.join(own, on="endpoint_id", how="semi")
        .filter((pl.col("source") == "presented") & (pl.col("position") > 0))
        .join(certs, on="cert_sha256", how="left")
        .group_by("endpoint_id")
        .agg(
            chain=pl.col("cert_sha256").sort_by("position").str.join(" "),
            names=pl.col("subject").sort_by("position").str.join(" | "),
        )
    )
    rows = (
        ds.endpoints.join(own, on="endpoint_id", how="semi")
        .select("endpoint_id", "error", "verify_error", "trust_store", "leaf_sha256")
        .join(certs.select(leaf_sha256="cert_sha256", not_after="not_after"), on="leaf_sha256",
              how="left")
        .join(names, on="endpoint_id", how="left")
        .drop("leaf_sha256")
        .collect()
    )  # fmt: skip
    rows = ids.join(rows, left_on="own", right_on="endpoint_id").drop("own")
    return rows.rename({c: f"{c}_{side}" for c in rows.columns if c != "endpoint_id"})


def _verdicts(
    pairs: pl.LazyFrame,
    before: ScanDataset,
    after: ScanDataset,
    policies: list[Policy],
    as_of: dt.datetime | dt.date | None,
) -> pl.DataFrame:
    """``verdict_changed`` rows: both scans judged by the same policies, joined through the
    endpoint pairs."""
    keys = ["policy", "format"]
    verdict = ("endpoint_id", "policy", "format", "verdict", "rule", "note")
    old = evaluate(before, policies, as_of).select(verdict).lazy()
    new = evaluate(after, policies, as_of).select(*verdict, "target", "ip", "port").lazy()
    matched = pairs.select("endpoint_id_old", "endpoint_id_new").drop_nulls()
    joined = (
        matched.join(old, left_on="endpoint_id_old", right_on="endpoint_id")
        .join(new, left_on=["endpoint_id_new", *keys], right_on=["endpoint_id", *keys],
              suffix="_new")
        .filter(pl.col("verdict") != pl.col("verdict_new"))
    )  # fmt: skip
    policy = pl.col("policy").str.extract(r"([^/\\]+)$")
    return (
        joined.select(
            endpoint_id="endpoint_id_new",
            target="target",
            ip="ip",
            port="port",
            change=pl.lit("verdict_changed", CHANGE),
            old=pl.col("verdict").cast(pl.String),
            new=pl.col("verdict_new").cast(pl.String),
            detail=pl.concat_str(
                policy,
                pl.lit(" ("),
                pl.col("format"),
                pl.lit("): "),
                pl.coalesce("rule_new", pl.lit("no rule")),
                pl.when(pl.col("note_new").is_not_null())
                .then(pl.concat_str(pl.lit("; "), pl.col("note_new")))
                .otherwise(pl.lit("")),
            ),
        )
        .collect()
        .cast(DIFF_SCHEMA)  # type: ignore[arg-type]
    )


__all__ = ["CHANGE", "CHANGES", "DEFAULT_FAIL_ON", "DIFF_SCHEMA", "diff", "summary"]
