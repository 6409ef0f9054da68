# SPDX-License-Identifier: Apache-2.0
"""The numbers of a fleet report, computed from a scan dataset as lazy polars queries.

Figures about connections (status, TLS, verification, problems) are group-bys of the endpoints
alone. Figures about certificates (issuers, keys, expiry) first count endpoints per leaf, then join
those counts, one row per distinct leaf, to the certificates: joining certificate strings onto
every endpoint would cost more than all the rest. Everything runs in one ``pl.collect_all``, and
nothing iterates over endpoints in Python: only aggregates (and, for the HTML page, a capped table
of endpoints) are ever materialised.

On a scan of a history, ``history=True`` adds the trend (per scan, endpoints by status,
verification and failing pins) and what :func:`pinscan.diff` finds since the scan before.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from pinscan.dataset import ScanDataset
from pinscan.dataset import history as hist
from pinscan.dataset import open as open_dataset
from pinscan.dataset.reader import running
from pinscan.diffing import diff
from pinscan.diffing import summary as diff_summary
from pinscan.policy.evaluate import evaluate
from pinscan.policy.model import Policy
from pinscan.records import VERIFY_ERRORS
from pinscan.report.lockout import MATRIX_ROWS, Lockout, lockout_section
from pinscan.rotation import Analysis, Selection, analyse, parse_scenarios

if TYPE_CHECKING:
    from pinscan.catalog.graph import Catalog
    from pinscan.policy.suggest import BackupKey

#: "Expiring within N days" windows, cumulative (the 30-day count includes the 7-day one).
WINDOWS = (7, 30, 90)
#: The expiry timeline has one bin per week for a year; earlier is "expired", later one bin.
TIMELINE_WEEKS = 52
#: Verdicts that mean a pinned client breaks (or rejects its own policy).
FAILING = ("fail", "error")
#: Rank of an endpoint in the HTML table: lower comes first, so problems are never cut off.
PROBLEM, EXPIRING, FINE = 0, 1, 2
#: Scans in the trend of a history: the reported one and those before it.
TREND_SCANS = 24

_DAY_US = 86_400_000_000
_ENDPOINT_COLUMNS = (
    "endpoint_id", "target", "ip", "port", "status", "error", "tls_version", "leaf_sha256",
    "spki_sha256", "verified", "verify_error", "hostname_match",
)  # fmt: skip


@dataclass(frozen=True)
class Summary:
    """What ``pinscan report`` shows, as small DataFrames (notebook-friendly) and one dict.

    Counts are of endpoints (target x address) unless a column says ``certificates`` (distinct
    leaves). Expiry is measured at ``as_of`` from each endpoint's leaf ``not_after``; ``days``
    columns are :func:`whole_days`.
    """

    scan: dict[str, Any]
    as_of: dt.datetime
    endpoints: int
    #: Endpoints that presented a certificate (whatever the handshake's status).
    with_chain: int
    #: Endpoints with a failing verdict (``fail`` or ``error``) under at least one policy: what
    #: an audit's ``max_pin_failures`` counts. ``coverage`` counts per policy.
    pin_failing: int
    status: pl.DataFrame
    tls_versions: pl.DataFrame
    key_types: pl.DataFrame
    issuers: pl.DataFrame
    distinct_issuers: int
    expiring: pl.DataFrame
    timeline: pl.DataFrame
    soonest: pl.DataFrame
    unverified: pl.DataFrame
    verdicts: pl.DataFrame
    coverage: pl.DataFrame
    problems: pl.DataFrame
    #: Where the verdicts come from: ``policy`` (evaluated now), ``pin_results`` or ``none``.
    verdict_source: str
    #: The HTML page's endpoint table (problems first), capped; ``table_total`` rows exist.
    table: pl.DataFrame = field(default_factory=pl.DataFrame)
    #: With ``history=True`` on a scan of a history: one row per scan, up to this one (at most
    #: :data:`TREND_SCANS`), oldest first; ``pin_failing`` is null for a scan without verdicts.
    trend: pl.DataFrame = field(default_factory=pl.DataFrame)
    #: With ``history=True``: the scan before this one in its history (``scan_id``,
    #: ``started_at``), and what ``pinscan diff`` reports from it to this one; None when there
    #: is none.
    previous: dict[str, Any] | None = None
    changes: pl.DataFrame | None = None
    #: With policies and ``scenarios``: what each rotation scenario does to their pins.
    lockout: Lockout | None = None

    @property
    def table_left_out(self) -> int:
        return self.endpoints - self.table.height

    def count(self, frame: str, **where: str) -> int:
        """The ``endpoints`` count of the row of one of the frames, 0 when absent:
        ``summary.count("status", status="ok")``."""
        rows = getattr(self, frame)
        for column, value in where.items():
            rows = rows.filter(pl.col(column).cast(pl.String) == value)
        return int(rows["endpoints"].sum()) if rows.height else 0

    def to_dict(self) -> dict[str, Any]:
        """Everything but the endpoint table and the list of changes (their counts per kind are
        in), as JSON-ready values (``--format json``); times in ISO 8601."""

        def rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
            return [
                {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in row.items()}
                for row in frame.iter_rows(named=True)
            ]

        changes = None
        if self.changes is not None:
            changes = {str(kind): n for kind, n in diff_summary(self.changes).iter_rows()}
        return {
            "scan": self.scan,
            "as_of": self.as_of.isoformat(),
            "endpoints": self.endpoints,
            "with_chain": self.with_chain,
            "pin_failing": self.pin_failing,
            "status": rows(self.status),
            "tls_versions": rows(self.tls_versions),
            "key_types": rows(self.key_types),
            "issuers": rows(self.issuers),
            "distinct_issuers": self.distinct_issuers,
            "expiring": rows(self.expiring),
            "timeline": rows(self.timeline),
            "soonest": rows(self.soonest),
            "unverified": rows(self.unverified),
            "verdict_source": self.verdict_source,
            "verdicts": rows(self.verdicts),
            "coverage": rows(self.coverage),
            "problems": rows(self.problems),
            "trend": rows(self.trend),
            "previous": self.previous,
            "changes": changes,
            "lockout": None if self.lockout is None else self.lockout.to_dict(),
        }


def summarize(
    dataset: ScanDataset,
    policies: Policy | Iterable[Policy] | None = None,
    as_of: dt.datetime | dt.date | None = None,
    *,
    top: int = 10,
    table_rows: int = 0,
    history: bool = False,
    changes: pl.DataFrame | None = None,
    scenarios: str | Sequence[str] | Selection | None = "all",
    catalog: Catalog | None = None,
    switch_to: Sequence[str] = (),
    backup_keys: Sequence[str | Path | BackupKey] = (),
    lockout_rows: int = MATRIX_ROWS,
    analysis: Analysis | None = None,
) -> Summary:
    """Summarise a scan: status, TLS versions, keys, issuers, expiry, verification, pins.

    Verdicts come from ``policies`` when given (evaluated at ``as_of``), else from the dataset's
    ``pin_results`` (written by ``scan --policy``). ``top`` caps the issuer, problem and
    soonest-expiring lists. ``table_rows`` > 0 also fills ``Summary.table`` for the HTML page:
    every problem endpoint first (errors, unverified, wrong name, expired, failing pins), then those
    expiring within 30 days, then the rest, up to ``table_rows``. ``history`` (on one scan of a
    history) also fills ``trend``, from the verdicts each scan stored, and ``previous`` and
    ``changes``, what :func:`pinscan.diff` finds from the scan before (judged by ``policies`` at
    ``as_of`` too, when given); a caller that has that diff already passes it as ``changes``.

    Examples
    --------
    >>> s = pinscan.summarize(pinscan.open("out"))  # doctest: +SKIP
    >>> s.count("status", status="ok"), s.expiring  # doctest: +SKIP
    """
    moment = _moment(as_of)
    selection = None if scenarios is None else parse_scenarios(scenarios)
    given = None
    if policies is not None:
        given = [policies] if isinstance(policies, Policy) else list(policies)
        pins, source = evaluate(dataset, given, moment).lazy(), "policy"
    else:
        pins = dataset.pin_results
        source = "pin_results" if pins.select(pl.len()).collect().item() else "none"
    pins = pins.select("endpoint_id", "target", "policy", "verdict", "note")
    certificates = _certificates(dataset, moment)
    endpoints = _endpoints(dataset, pins)
    # Collected once: every certificate figure is a small query over it, and polars would
    # otherwise group the million endpoints by leaf again for each.
    leaves = _leaves(endpoints, certificates).collect().lazy()
    queries = {
        "totals": leaves.select(
            with_chain=pl.col("endpoints").sum(),
            distinct_issuers=pl.col("issuer").drop_nulls().n_unique(),
        ).join(
            endpoints.select(endpoints=pl.len(), pin_failing=pl.col("pin_failing").sum()),
            how="cross",
        ),
        "status": _counts(endpoints, "status"),
        "tls_versions": _counts(
            endpoints.filter(pl.col("tls_version").is_not_null()), "tls_version"
        ),
        "key_types": _sums(leaves, "key"),
        "issuers": leaves.group_by("issuer")
        .agg(pl.col("endpoints").sum(), certificates=pl.len())
        .sort("endpoints", "issuer", descending=[True, False])
        .head(top),
        "expiring": _expiring(leaves),
        "timeline": _timeline(leaves, moment),
        "soonest": _soonest(leaves, top),
        "unverified": _counts(
            endpoints.filter(pl.col("unverified_reason").is_not_null()), "unverified_reason"
        ).rename({"unverified_reason": "reason"}),
        "verdicts": pins.group_by("policy", "verdict")
        .agg(endpoints=pl.len())
        .sort("policy", "verdict"),
        "coverage": _coverage(pins),
        "problems": _problems(endpoints, pins, top),
    }
    frames = dict(zip(queries, pl.collect_all(list(queries.values())), strict=True))
    if table_rows > 0:
        # On its own: run alongside the rest, its join of every endpoint adds to their peak.
        frames["table"] = _table(endpoints, leaves, pins, table_rows).collect()
    totals = frames.pop("totals").row(0, named=True)
    summary = Summary(
        scan=_scan_meta(dataset),
        as_of=moment,
        endpoints=totals["endpoints"],
        with_chain=totals["with_chain"] or 0,
        pin_failing=totals["pin_failing"],
        distinct_issuers=totals["distinct_issuers"],
        verdict_source=source,
        **frames,
    )
    if analysis is None and given and selection and (selection.kinds or selection.patterns):
        analysis = analyse(
            dataset, given, selection, as_of=moment, catalog=catalog, switch_to=switch_to,
            backup_keys=backup_keys,
        )  # fmt: skip
    if analysis is not None:
        section = lockout_section(analysis.lockout, analysis.scenarios, rows=lockout_rows, top=top)
        summary = replace(summary, lockout=section)
    if history:
        summary = _with_history(summary, dataset, given, changes)
    return summary


def _moment(as_of: dt.datetime | dt.date | None) -> dt.datetime:
    if as_of is None:
        return dt.datetime.now(dt.UTC)
    if not isinstance(as_of, dt.datetime):
        return dt.datetime.combine(as_of, dt.time(), dt.UTC)
    return as_of if as_of.tzinfo else as_of.replace(tzinfo=dt.UTC)


def _scan_meta(dataset: ScanDataset) -> dict[str, Any]:
    meta = dataset.meta
    keys = ("scan_id", "started_at", "finished_at", "complete", "pinscan_version")
    # An incomplete scan is either still being written or was interrupted: say which.
    writer = None if meta.get("complete") else running(dataset.path)
    missing = meta.get("shards", {}).get("missing")
    return {
        "path": str(dataset.path),
        **{k: meta.get(k) for k in keys},
        "running": writer,
        **({"missing_shards": missing} if missing else {}),
    }


def scan_state(scan: dict[str, Any]) -> str:
    """``complete``, or why not: still running (by whom), shards not done, or interrupted."""
    if scan.get("complete"):
        return "complete"
    if scan.get("running"):
        return f"INCOMPLETE: {scan['running']} is still running"
    if scan.get("missing_shards"):
        shards = ", ".join(map(str, scan["missing_shards"][:10]))
        more = ", ..." if len(scan["missing_shards"]) > 10 else ""
        return f"INCOMPLETE: shards {shards}{more} not done (pinscan scan --shard I/N, or --resume)"
    return "INCOMPLETE: interrupted; pinscan scan --resume finishes it"


def days_left(moment: dt.datetime) -> pl.Expr:
    """Days from ``moment`` to ``not_after``, fractional, so that "within 7 days" is exact to the
    microsecond."""
    return (pl.col("not_after") - pl.lit(moment)).dt.total_microseconds() / _DAY_US


def whole_days(days: pl.Expr) -> pl.Expr:
    """Days left as people count them, and as a scan's ``days_to_expiry`` does: whole days,
    rounded down (29.9 days left is 29; expired an hour ago is -1). Every report, table and
    audit message shows this."""
    return days.floor().cast(pl.Int64)


def _certificates(dataset: ScanDataset, moment: dt.datetime) -> pl.LazyFrame:
    """Each certificate once, with a readable key label and its days left at ``moment``."""
    return (
        dataset.certificates.select(
            "cert_sha256", "subject", "issuer", "key_type", "key_bits", "curve", "not_after"
        )
        # A history read with scans="all" holds a certificate once per scan that first saw it.
        .unique("cert_sha256", keep="any")
        .rename({"cert_sha256": "leaf_sha256"})
        .with_columns(
            key=pl.when(pl.col("key_type").is_not_null()).then(
                pl.concat_str(
                    pl.col("key_type"),
                    pl.coalesce(pl.col("curve"), pl.col("key_bits").cast(pl.String)),
                    separator=" ",
                    ignore_nulls=True,
                )
            ),
            days_left=days_left(moment),
        )
        .drop("key_type", "key_bits", "curve")
    )


def _endpoints(dataset: ScanDataset, pins: pl.LazyFrame) -> pl.LazyFrame:
    """Endpoints with why they do not verify and whether a pinned client fails on them."""
    failing = pins.filter(pl.col("verdict").is_in(FAILING)).select("endpoint_id").unique()
    return (
        dataset.endpoints.select(_ENDPOINT_COLUMNS)
        .join(failing.with_columns(pin_failing=pl.lit(True)), on="endpoint_id", how="left")
        .with_columns(
            unverified_reason=_unverified_reason(),
            pin_failing=pl.col("pin_failing").fill_null(False),
        )
    )


def verify_words(kind: pl.Expr) -> pl.Expr:
    """A ``verify_error`` kind in words (``incomplete_chain``: "incomplete chain (missing
    intermediate)"); the text of scans written before the kinds is kept as it is."""
    return kind.replace(VERIFY_ERRORS)


def _unverified_reason() -> pl.Expr:
    """Why an endpoint that presented a certificate is not trusted for its name; null when it
    is, or presented none."""
    name_mismatch = pl.col("verified") & pl.col("hostname_match").not_()
    return (
        pl.when(pl.col("leaf_sha256").is_null())
        .then(None)
        .when(pl.col("verified").not_() | pl.col("verified").is_null())
        .then(pl.coalesce(verify_words(pl.col("verify_error")), pl.lit("did not verify")))
        .when(name_mismatch)
        .then(pl.lit("certificate does not match the name"))
        .otherwise(None)
    )


def _leaves(endpoints: pl.LazyFrame, certificates: pl.LazyFrame) -> pl.LazyFrame:
    """One row per leaf certificate served: how many endpoints serve it, one of them, and the
    certificate's columns."""
    return (
        endpoints.filter(pl.col("leaf_sha256").is_not_null())
        .group_by("leaf_sha256")
        .agg(endpoints=pl.len(), example=pl.col("target").min())
        .join(certificates, on="leaf_sha256", how="left")
    )


def _sums(leaves: pl.LazyFrame, column: str) -> pl.LazyFrame:
    return (
        leaves.group_by(column)
        .agg(pl.col("endpoints").sum())
        .sort("endpoints", column, descending=[True, False], nulls_last=True)
    )


def _counts(frame: pl.LazyFrame, column: str) -> pl.LazyFrame:
    return (
        frame.group_by(column)
        .agg(endpoints=pl.len())
        .sort("endpoints", column, descending=[True, False], nulls_last=True)
    )


def _expiring(leaves: pl.LazyFrame) -> pl.LazyFrame:
    """One row per window: ``expired`` (``days`` 0), then within 7, 30 and 90 days; counted in
    one pass over the leaves."""
    days = pl.col("days_left")
    windows = [("expired", 0, days <= 0)]
    windows += [(f"within {n} days", n, (days > 0) & (days <= n)) for n in WINDOWS]
    sums = leaves.select(
        *(pl.col("endpoints").filter(hit).sum().alias(f"e{n}") for _, n, hit in windows),
        *(hit.sum().alias(f"c{n}") for _, n, hit in windows),
    )
    return pl.concat(
        sums.select(
            window=pl.lit(label),
            days=pl.lit(n, pl.Int32),
            endpoints=pl.col(f"e{n}").cast(pl.UInt32),
            certificates=pl.col(f"c{n}").cast(pl.UInt32),
        )
        for label, n, _ in windows
    )


def _timeline(leaves: pl.LazyFrame, moment: dt.datetime) -> pl.LazyFrame:
    """Endpoints by the week their leaf expires: ``week`` -1 is already expired, 0 the coming
    seven days, ..., ``TIMELINE_WEEKS`` a year or later. Empty weeks are rows too, with 0."""
    week = (
        pl.when(pl.col("days_left") <= 0)
        .then(-1)
        .otherwise((pl.col("days_left") / 7).floor().cast(pl.Int32).clip(0, TIMELINE_WEEKS))
        .cast(pl.Int32)
    )
    start = pl.lit(moment.date()) + pl.duration(days=pl.col("week").clip(0) * 7)
    every = pl.LazyFrame({"week": range(-1, TIMELINE_WEEKS + 1)}, schema={"week": pl.Int32})
    counted = (
        leaves.filter(pl.col("not_after").is_not_null())
        .group_by(week.alias("week"))
        .agg(pl.col("endpoints").sum(), certificates=pl.len())
    )
    return (
        every.join(counted, on="week", how="left")
        .with_columns(pl.col("endpoints", "certificates").fill_null(0).cast(pl.UInt32))
        .with_columns(starts=start)
        .sort("week")
    )


def _soonest(leaves: pl.LazyFrame, top: int) -> pl.LazyFrame:
    """The leaves that expire first (expired ones included), with how many endpoints serve each."""
    return (
        leaves.filter(pl.col("not_after").is_not_null())
        .bottom_k(top, by=["not_after", "leaf_sha256"])
        .sort("not_after", "leaf_sha256")
        .select(
            "subject",
            "issuer",
            "not_after",
            whole_days(pl.col("days_left")).alias("days"),
            "endpoints",
            "example",
            "leaf_sha256",
        )
    )


def _coverage(pins: pl.LazyFrame) -> pl.LazyFrame:
    """Per policy: how many endpoints it pins at all, and how many of those pass or fail."""
    verdict = pl.col("verdict")
    return (
        pins.group_by("policy")
        .agg(
            endpoints=pl.len(),
            pinned=(verdict != "unpinned").sum(),
            passing=(verdict == "pass").sum(),
            failing=verdict.is_in(FAILING).sum(),
        )
        .with_columns(coverage=pl.col("pinned") / pl.col("endpoints"))
        .sort("policy")
    )


def _problems(endpoints: pl.LazyFrame, pins: pl.LazyFrame, top: int) -> pl.LazyFrame:
    """The most common things wrong: handshake errors by message, verification failures by
    reason, and failing pins by policy and note; each with how many endpoints and one example."""
    failed = endpoints.filter(pl.col("status") != "ok").select(
        kind=pl.col("status").cast(pl.String),
        problem=pl.coalesce(pl.col("error"), pl.col("status").cast(pl.String)),
        target=pl.col("target"),
    )
    unverified = endpoints.filter(pl.col("unverified_reason").is_not_null()).select(
        kind=pl.lit("verify"), problem=pl.col("unverified_reason"), target=pl.col("target")
    )
    pinned = pins.filter(pl.col("verdict").is_in(FAILING)).select(
        kind=pl.lit("pin"),
        problem=pl.concat_str(
            pl.col("policy").str.split("/").list.last(),
            pl.lit(": "),
            pl.col("verdict").cast(pl.String),
            pl.lit(" ("),
            pl.col("note").fill_null("no pin matched"),
            pl.lit(")"),
        ),
        target=pl.col("target"),
    )
    return (
        pl.concat([failed, unverified, pinned])
        .group_by("kind", "problem")
        .agg(endpoints=pl.len(), example=pl.col("target").min())
        .sort("endpoints", "kind", "problem", descending=[True, False, False])
        .head(top)
    )


def _table(
    endpoints: pl.LazyFrame, leaves: pl.LazyFrame, pins: pl.LazyFrame, rows: int
) -> pl.LazyFrame:
    """Up to ``rows`` endpoints, problems first, then the soonest to expire. Only the expiry is
    joined to every endpoint to rank them; the rest of the certificate only to those chosen."""
    problem = (
        (pl.col("status") != "ok")
        | pl.col("unverified_reason").is_not_null()
        | pl.col("pin_failing")
        | (pl.col("days_left") <= 0)
    )
    rank = (
        pl.when(problem)
        .then(PROBLEM)
        .when(pl.col("days_left") <= 30)
        .then(EXPIRING)
        .otherwise(FINE)
        .cast(pl.Int8)
    )
    # Ranked on narrow columns; the chosen few then get everything else.
    ranked = (
        endpoints.select("endpoint_id", "leaf_sha256", "status", "unverified_reason", "pin_failing")
        .join(leaves.select("leaf_sha256", "days_left"), on="leaf_sha256", how="left")
        .with_columns(rank=rank)
        .bottom_k(rows, by=["rank", "days_left", "endpoint_id"])
        .select("endpoint_id", "rank", "days_left")
    )
    chosen = endpoints.join(ranked, on="endpoint_id").join(
        leaves.drop("days_left", "endpoints", "example"), on="leaf_sha256", how="left"
    )
    verdicts = (
        pins.filter(pl.col("verdict") != "unpinned")
        .join(chosen.select("endpoint_id"), on="endpoint_id", how="semi")
        .sort("policy")
        .group_by("endpoint_id")
        .agg(
            pins=pl.concat_str(
                pl.col("policy").str.split("/").list.last(),
                pl.lit(": "),
                pl.col("verdict").cast(pl.String),
            ).str.join(", ")
        )
    )
    return (
        chosen.join(verdicts, on="endpoint_id", how="left")
        .sort("rank", "days_left", "target", "endpoint_id", nulls_last=True)
        .select(
            "rank",
            "target",
            "ip",
            "port",
            pl.col("status").cast(pl.String),
            "tls_version",
            "key",
            pl.col("spki_sha256").alias("pin"),
            "issuer",
            "subject",
            "not_after",
            whole_days(pl.col("days_left")).alias("days"),
            "verified",
            "hostname_match",
            pl.coalesce(
                "unverified_reason",
                "error",
                pl.when(pl.col("status") != "ok").then(pl.col("status").cast(pl.String)),
                pl.when(pl.col("days_left") <= 0).then(pl.lit("expired")),
                pl.when(pl.col("pin_failing")).then(pl.lit("pin check fails")),
            ).alias("problem"),
            "pins",
        )
    )


def _with_history(
    summary: Summary,
    dataset: ScanDataset,
    policies: list[Policy] | None,
    changes: pl.DataFrame | None,
) -> Summary:
    """``summary`` with the trend of its history and the changes since the scan before; as is
    when ``dataset`` is not one scan of a history."""
    if dataset.scans.height != 1 or not hist.is_history(dataset.path):
        return summary
    ids = [meta["scan_id"] for meta in hist.committed(dataset.path)]
    at = ids.index(dataset.meta["scan_id"])
    trend = _trend(open_dataset(dataset.path, scans=ids[max(0, at + 1 - TREND_SCANS) : at + 1]))
    if not at:
        return replace(summary, trend=trend)
    before = open_dataset(dataset.path, scans=ids[at - 1])
    if changes is None:
        changes = diff(before, dataset, policies or None, as_of=summary.as_of)
    previous = {k: before.meta.get(k) for k in ("scan_id", "started_at")}
    return replace(summary, trend=trend, previous=previous, changes=changes)


def _trend(every: ScanDataset) -> pl.DataFrame:
    """Per scan, oldest first: endpoints, handshakes that succeeded and failed, endpoints not
    verified (as the report counts them) and endpoints failing a pin check (from the scan's
    ``pin_results``; null when it has none)."""
    ok = pl.col("status") == "ok"
    counts = every.endpoints.group_by("scan_id").agg(
        endpoints=pl.len(),
        handshake_ok=ok.sum(),
        handshake_failed=ok.not_().sum(),
        unverified=_unverified_reason().is_not_null().sum(),
    )
    verdicts = every.pin_results.group_by("scan_id").agg(
        pin_failing=pl.col("endpoint_id").filter(pl.col("verdict").is_in(FAILING)).n_unique()
    )
    counts, verdicts = pl.collect_all([counts, verdicts])
    numbers = ("endpoints", "handshake_ok", "handshake_failed", "unverified")
    return (
        every.scans.select("scan_id", "started_at")
        .join(counts, on="scan_id", how="left")
        .join(verdicts, on="scan_id", how="left")
        .with_columns(
            pl.col(numbers).fill_null(0).cast(pl.Int64), pl.col("pin_failing").cast(pl.Int64)
        )
        .sort("started_at", "scan_id")
    )


def policy_label(policy: str) -> str:
    """A policy's file name, which is what people call it (the dataset keeps the full path); for
    a policy inside an app, the app's name and the place in it (``app.apk!res/xml/nsc.xml``)."""
    app, bang, place = policy.partition("!")
    return f"{Path(app).name}!{place}" if bang else Path(policy).name
