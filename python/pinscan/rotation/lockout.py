# SPDX-License-Identifier: Apache-2.0
"""Will the pins survive the next certificate? Every (endpoint, policy) judged under each
rotation scenario by the evaluator that judges today's chains.

Today's judged path of each (endpoint, policy) is split into its leaf and the CA keys above it.
The planner (:mod:`pinscan.rotation.paths`) turns each distinct path into the chains a scenario
would serve; (endpoint, policy) pairs that would be judged alike (the same rules, the same path,
the same policy pins on their leaf) form one class, and each class is judged once per scenario
by :func:`pinscan.policy.evaluate.judge`, over chain rows made from the catalog. A million
endpoints behind a few CAs are a few thousand judgements, not a million.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

import polars as pl

from pinscan.catalog.derive import display_name
from pinscan.catalog.graph import Catalog
from pinscan.certs.keys import spki_pin
from pinscan.dataset import ScanDataset
from pinscan.errors import InputError
from pinscan.policy.evaluate import Prepared, judge, pin_matches, prepare, used_chains
from pinscan.policy.findings import FINDINGS_SCHEMA
from pinscan.policy.model import Policy
from pinscan.policy.suggest import BackupKey
from pinscan.rotation.paths import NEW, SAME, Planner, Spare
from pinscan.rotation.scenarios import ROUTINE_SELECTION, Selection, parse_scenarios
from pinscan.rotation.schema import (
    HEADROOM_SCHEMA,
    KIND,
    KINDS,
    LOCKOUT_SCHEMA,
    OUTCOME,
    PLACES,
    ROUTINE,
)

_SCENARIOS_SCHEMA = pl.Schema(
    {
        "scenario": pl.String,
        "kind": KIND,
        "routine": pl.Boolean,
        "detail": pl.String,
        "endpoints": pl.UInt32,
    }
)
# What each verdict under a scenario means for the client.
_OUTCOME_OF = {
    "pass": "survives",
    "report-only": "survives",
    "fail": "locks_out",
    "error": "locks_out",
    "unpinned": "unpinned",
    "expired": "unpinned",
}


def lockout(
    dataset: ScanDataset,
    policies: Policy | Iterable[Policy],
    scenarios: str | Sequence[str] | Selection = "all",
    **options: object,
) -> pl.DataFrame:
    """One row per (endpoint, policy, scenario) for every endpoint a policy covers, in
    :data:`~pinscan.rotation.schema.LOCKOUT_SCHEMA`: does the pin-set accept the chain that
    scenario would serve? ``options`` as :func:`analyse` takes them."""
    return analyse(dataset, policies, scenarios, **options).lockout  # type: ignore[arg-type]


def analyse(
    dataset: ScanDataset,
    policies: Policy | Iterable[Policy],
    scenarios: str | Sequence[str] | Selection = "all",
    *,
    as_of: dt.datetime | dt.date | None = None,
    catalog: Catalog | None = None,
    switch_to: Sequence[str] = (),
    backup_keys: Sequence[str | os.PathLike[str] | BackupKey] = (),
    password: bytes | str | None = None,
    stores: str | Mapping[str, str] | None = None,
    okhttp_jvm: bool = False,
) -> Analysis:
    """The lockout analysis of a scan by ``policies``.

    ``scenarios``: ``all``, ``routine`` (``renew_new_key`` and every ``sibling:``), or kinds and
    names (:func:`~pinscan.rotation.scenarios.parse_scenarios`). ``catalog``: the CAs a renewal
    may come from (the shipped catalog; ``Catalog.shipped().with_pems(files)`` adds a private
    PKI). ``switch_to``: families (or issuing CAs) to switch to, besides those the fleet uses.
    ``backup_keys``: spare keys (files of a key, certificate or CSR; ``password`` opens an
    encrypted one). ``as_of``, ``stores`` and ``okhttp_jvm`` as :func:`pinscan.evaluate` takes
    them.
    """
    selection = parse_scenarios(scenarios)
    catalog = catalog if catalog is not None else Catalog.shipped()
    spares = [_spare(key, password) for key in backup_keys]
    prepared = prepare(dataset, policies, as_of, stores=stores, okhttp_jvm=okhttp_jvm)
    return Analysis(dataset, prepared, catalog, selection, list(switch_to), spares)


@dataclass
class Analysis:
    """A lockout analysis: :attr:`lockout`, :attr:`scenarios`, :meth:`headroom`,
    :meth:`expiry_findings` and :meth:`gate`. Tables are computed on first use."""

    dataset: ScanDataset
    prepared: Prepared
    catalog: Catalog
    selection: Selection
    switch_to: list[str]
    spares: list[Spare]
    _cache: dict[str, pl.DataFrame] = field(default_factory=dict, repr=False)

    @property
    def moment(self) -> dt.datetime:
        return self.prepared.moment

    @cached_property
    def today(self) -> pl.DataFrame:
        """Today's verdict of every covered (endpoint, policy), as the evaluator gives it."""
        if not self.prepared.policies:
            return pl.DataFrame(schema={"eid": pl.UInt32, "policy_id": pl.Int32})
        return judge(self.prepared).collect()

    @cached_property
    def _pairs(self) -> pl.DataFrame:
        """Each covered (endpoint, policy) with a chain: its class and its path's id."""
        return self._plan[0]

    @cached_property
    def _plan(self) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        return _plan(self)

    @property
    def scenarios(self) -> pl.DataFrame:
        """One row per scenario the analysis made: ``scenario``, ``kind``, ``routine``,
        ``detail`` (what it does, for the first path it was made for) and ``endpoints``."""
        if "scenarios" not in self._cache:
            frame = self.lockout
            self._cache["scenarios"] = (
                frame.with_columns(pl.col("scenario").cast(pl.String))
                .group_by("scenario", "kind")
                .agg(
                    routine=pl.col("routine").first(),
                    endpoints=pl.col("endpoint_id").n_unique().cast(pl.UInt32),
                )
                .join(self._plan[2].select("scenario", "detail").unique("scenario"), on="scenario")
                .sort("kind", "scenario")
                .select(_SCENARIOS_SCHEMA.names())
            )
        return self._cache["scenarios"]

    @property
    def lockout(self) -> pl.DataFrame:
        """One row per (endpoint, policy, scenario), in :data:`LOCKOUT_SCHEMA`."""
        if "lockout" not in self._cache:
            self._cache["lockout"] = _lockout(self)
        return self._cache["lockout"]

    def gate(self, fail_on: str | Sequence[str] | Selection | None = None) -> pl.DataFrame:
        """The rows a scheduled job should fail on: an endpoint that passes today and that a
        scenario in ``fail_on`` (the routine ones by default) locks out."""
        selection = ROUTINE_SELECTION if fail_on is None else parse_scenarios(fail_on)
        rows = self.lockout.filter((pl.col("outcome") == "locks_out") & (pl.col("today") == "pass"))
        wanted = [
            selection.matches(name, kind)
            for name, kind in rows.select(pl.col("scenario").cast(pl.String), "kind").iter_rows()
        ]
        return rows.filter(pl.Series(wanted, dtype=pl.Boolean))

    def headroom(self) -> pl.DataFrame:
        """One row per covered (endpoint, policy), in :data:`HEADROOM_SCHEMA`."""
        if "headroom" not in self._cache:
            self._cache["headroom"] = _headroom(self)
        return self._cache["headroom"]

    def expiry_findings(self, days: int = 30) -> pl.DataFrame:
        """``expiry_headroom`` findings (:data:`~pinscan.policy.findings.FINDINGS_SCHEMA`): a
        passing (endpoint, policy) whose pass ends within ``days``, because the certificate
        carrying its matching pins expires or its pin-set does."""
        return _expiry_findings(self, days)


# Planning ---------------------------------------------------------------------------------------


def _spare(key: str | os.PathLike[str] | BackupKey, password: bytes | str | None) -> Spare:
    spare = key if isinstance(key, BackupKey) else BackupKey.read(key)
    secret = spare.password if spare.password is not None else password
    try:
        return Spare(spare.source, spki_pin(spare.data, password=secret))
    except InputError:
        raise
    except ValueError as exc:
        raise InputError(spare.source, str(exc)) from exc


def _judged_paths(prepared: Prepared) -> pl.DataFrame:
    """(eid, policy_id, cids): the positions of the chain each pair is judged on, leaf first:
    the judging store's path, or what was presented when none verifies (curl's leaf too)."""
    pairs = (
        prepared.selected.filter(pl.col("has_chain"))
        .select("eid", "policy_id", "chain", judged_path="path")
        .unique(["eid", "policy_id"])
    )
    return (
        pairs.join(prepared.chains.select("eid", "position", "verified", "path", "cid"), on="eid")
        .filter(
            pl.when(pl.col("chain") == "verified")
            .then(pl.col("verified") & (pl.col("path") == pl.col("judged_path")))
            .otherwise(~pl.col("verified"))
        )
        .sort("position")
        .group_by("eid", "policy_id")
        .agg(cids=pl.col("cid"))
        .collect()
    )


# Columns of `selected` that differ between endpoints under the same rules: part of the class.
_PAIR_COLUMNS = ("chain", "path", "judge", "store", "wanted", "store_missing", "trust_store")
_LEAF_IDS = ("sha256_id", "sha1_id", "trustkit_id", "trustkit_blocked", "trustkit_problem")


def _plan(analysis: Analysis) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The pairs with their class, the classes, and the variants of each path."""
    prepared = analysis.prepared
    certs = prepared.certs
    spki_of = certs.select("cid", "spki_sha256")
    paths = (
        _judged_paths(prepared)
        .explode("cids")
        .with_columns(position=pl.int_range(pl.len()).over("eid", "policy_id"))
        .join(spki_of, left_on="cids", right_on="cid", how="left")
        .group_by("eid", "policy_id", maintain_order=True)
        .agg(leaf_cid=pl.col("cids").first(), above=pl.col("spki_sha256").slice(1))
    )
    store_of = prepared.selected.select("eid", "policy_id", "store").unique(["eid", "policy_id"])
    paths = paths.join(store_of.collect(), on=["eid", "policy_id"], how="left")
    # Base64 has no comma: the joined pins are the path's key (polars joins no lists).
    paths = paths.with_columns(
        path_key=pl.col("above").list.join(","), store=pl.col("store").cast(pl.String)
    )
    tails = (
        paths.select("path_key", "above", "store")
        .unique(["path_key", "store"], maintain_order=True)
        .with_row_index("tail_id")
    )
    fleet = Counter(
        dict(
            paths.filter(pl.col("above").list.len() > 0)
            .group_by(issuer=pl.col("above").list.first())
            .agg(n=pl.col("eid").n_unique())
            .iter_rows()
        )
    )
    planner = Planner(
        analysis.catalog,
        analysis.moment,
        analysis.selection,
        fleet=fleet,
        switch_to=analysis.switch_to,
        spares=analysis.spares,
        names=_served_names(analysis.dataset, tails, analysis.catalog),
    )
    variant_rows = []
    for tail_id, _, above, store in tails.iter_rows():
        for index, v in enumerate(planner.variants(tuple(above), store)):
            variant_rows.append(
                (tail_id, index, v.scenario, v.kind, v.leaf, v.above, v.chain, v.detail)
            )
    variants = pl.DataFrame(
        variant_rows,
        schema={
            "tail_id": pl.UInt32,
            "v_index": pl.UInt32,
            "scenario": pl.String,
            "kind": KIND,
            "leaf": pl.String,
            "new_above": pl.List(pl.String),
            "new_chain": pl.String,
            "detail": pl.String,
        },
        orient="row",
    )
    per_pair = (
        prepared.selected.filter(pl.col("has_chain"))
        .group_by("eid", "policy_id")
        .agg(
            *(pl.col(c).first() for c in _PAIR_COLUMNS),
            rules=pl.col("rule_id").sort().cast(pl.String).str.join(","),
        )
        .collect()
    )
    leaf_ids = certs.select(pl.col("cid").alias("leaf_cid"), *_LEAF_IDS)
    pairs = (
        per_pair.join(
            paths.select("eid", "policy_id", "leaf_cid", "path_key"), on=["eid", "policy_id"]
        )
        .join(
            tails.drop("above"),
            left_on=["path_key", pl.col("store").cast(pl.String)],
            right_on=["path_key", "store"],
            how="left",
            nulls_equal=True,
        )
        .join(leaf_ids, on="leaf_cid", how="left")
        .drop("path_key", "leaf_cid")
    )
    key = ["policy_id", "rules", *_PAIR_COLUMNS, "tail_id", *_LEAF_IDS]
    classes = (
        pairs.group_by(key, maintain_order=True)
        .agg(members=pl.col("eid"))
        .with_row_index("cls")
        .with_columns(rep=pl.col("members").list.first())
    )
    members = classes.select("cls", "policy_id", eid="members").explode("eid")
    return members, classes.drop("members"), variants


def _served_names(dataset: ScanDataset, tails: pl.DataFrame, catalog: Catalog) -> dict[str, str]:
    """Names for keys the catalog lacks (a private CA), from the certificates the scan saw."""
    unknown = {pin for above in tails["above"] for pin in above if catalog.ca(pin) is None}
    if not unknown:
        return {}
    rows = (
        dataset.certificates.filter(pl.col("spki_sha256").is_in(list(unknown)))
        .select("spki_sha256", "subject")
        .unique("spki_sha256")
        .collect()
    )
    return {pin: display_name(subject) or pin for pin, subject in rows.iter_rows()}


# Judging ----------------------------------------------------------------------------------------


def _judge_cases(analysis: Analysis) -> pl.DataFrame:
    """Every (class, scenario) judged: ``cls``, ``v_index``, ``verdict``, ``matched_pin``,
    ``matched_position``; a chain that does not build is not judged (verdict null)."""
    prepared = analysis.prepared
    _, classes, variants = analysis._plan
    cases = (
        classes.join(variants, on="tail_id")
        .sort("cls", "v_index")
        .with_row_index("case")
        .with_columns(pl.col("case").cast(pl.UInt32))
    )
    built = cases.filter(pl.col("new_above").is_not_null())
    selected = (
        prepared.selected.join(
            built.lazy().select("case", eid="rep", policy_id="policy_id"), on=["eid", "policy_id"]
        )
        .drop("eid")
        .rename({"case": "eid"})
    )
    chains = _case_chains(prepared, analysis.spares, built)
    judged = judge(replace(prepared, selected=selected, chains=chains)).collect()
    return cases.join(
        judged.select(
            case="eid",
            verdict="verdict",
            matched_pin="matched_pin",
            matched_position="matched_position",
        ),
        on="case",
        how="left",
    ).select(
        "cls",
        "v_index",
        "scenario",
        "kind",
        "new_chain",
        "detail",
        "verdict",
        "matched_pin",
        "matched_position",
    )


def _case_chains(prepared: Prepared, spares: Sequence[Spare], built: pl.DataFrame) -> pl.LazyFrame:
    """The chain rows of each built case, as :func:`~pinscan.policy.evaluate.chain_pins` gives
    a served chain's: the leaf (today's key, none of the policies' pins, or the spare's) and the
    CA keys above it, with the policy pins each has."""
    known = (
        pl.concat(
            [
                prepared.pins.select("algorithm", "pin", "pin_id"),
                prepared.bad_pins.select("algorithm", "pin", "pin_id"),
            ]
        )
        .unique(["algorithm", "pin"])
        .collect()
    )
    sha256 = known.filter(pl.col("algorithm") == "sha256").select("pin", "pin_id")
    # A CA key the scan served keeps the pins its certificate has; one only the catalog knows
    # has its SHA-256 pin (TrustKit's rebuilt SPKI is the SPKI itself for the keys CAs use).
    served = (
        prepared.certs.select("spki_sha256", *_LEAF_IDS)
        .unique("spki_sha256")
        .rename({"spki_sha256": "pin"})
    )
    leaf_markers = [SAME, NEW, *(f"backup:{i}" for i in range(len(spares)))]
    spare_rows = pl.DataFrame(
        {"leaf": [f"backup:{i}" for i in range(len(spares))], "pin": [s.pin for s in spares]},
        schema={"leaf": pl.String, "pin": pl.String},
    )
    spare_ids = spare_rows.join(sha256, on="pin", how="left").select(
        "leaf", sha256_id="pin_id", trustkit_id="pin_id"
    )
    verified = pl.col("chain") == "verified"
    leaf = (
        built.select("case", "leaf", "chain", "path", *_LEAF_IDS)
        .join(spare_ids, on="leaf", how="left", suffix="_spare")
        .select(
            "case",
            "chain",
            "path",
            position=pl.lit(0, pl.Int16),
            sha256_id=pl.when(pl.col("leaf") == SAME)
            .then("sha256_id")
            .otherwise("sha256_id_spare"),
            sha1_id=pl.when(pl.col("leaf") == SAME).then("sha1_id"),
            trustkit_id=pl.when(pl.col("leaf") == SAME)
            .then("trustkit_id")
            .otherwise("trustkit_id_spare"),
            trustkit_blocked=pl.when(pl.col("leaf") == SAME)
            .then("trustkit_blocked")
            .otherwise(False),
            trustkit_problem=pl.when(pl.col("leaf") == SAME).then("trustkit_problem"),
        )
    )
    assert set(built["leaf"].unique().to_list()) <= set(leaf_markers)
    above = (
        built.select("case", "chain", "path", pin="new_above")
        .with_columns(position=pl.int_ranges(1, pl.col("pin").list.len() + 1, dtype=pl.Int16))
        .explode("pin", "position")
        .drop_nulls("pin")
        .join(served, on="pin", how="left")
        .join(sha256.rename({"pin_id": "catalog_id"}), on="pin", how="left")
        .select(
            "case",
            "chain",
            "path",
            "position",
            sha256_id=pl.coalesce("sha256_id", "catalog_id"),
            sha1_id="sha1_id",
            trustkit_id=pl.coalesce("trustkit_id", "catalog_id"),
            trustkit_blocked=pl.col("trustkit_blocked").fill_null(False),
            trustkit_problem="trustkit_problem",
        )
    )
    return (
        pl.concat([leaf, above])
        .lazy()
        .select(
            eid="case",
            position="position",
            verified=verified,
            primary=verified,
            path=pl.when(verified).then("path"),
            cid=pl.lit(None, pl.UInt32),
            sha256_id="sha256_id",
            sha1_id="sha1_id",
            trustkit_id="trustkit_id",
            # A new certificate: not expired; the server sends it.
            not_after=pl.lit(None, pl.Datetime("us", "UTC")),
            key_type=pl.lit(None, pl.String),
            trustkit_problem="trustkit_problem",
            trustkit_blocked="trustkit_blocked",
            sent=pl.lit(True),
        )
    )


def _lockout(analysis: Analysis) -> pl.DataFrame:
    prepared = analysis.prepared
    if not prepared.policies:
        return pl.DataFrame(schema=LOCKOUT_SCHEMA)
    members = analysis._pairs
    judged = _judge_cases(analysis)
    outcome = (
        pl.when(pl.col("verdict").is_null())
        .then(pl.lit("untrusted"))
        .otherwise(pl.col("verdict").cast(pl.String).replace_strict(_OUTCOME_OF, default=None))
        .cast(OUTCOME)
    )
    judged = judged.with_columns(
        outcome=outcome,
        routine=pl.col("kind").is_in(list(ROUTINE)),
        scenario=pl.col("scenario").cast(pl.Categorical),
        new_chain=pl.col("new_chain").cast(pl.Categorical),
    )
    endpoints = prepared.endpoints.select("eid", "endpoint_id", "target", "name").collect()
    today = analysis.today.select("eid", "policy_id", "rule", today="verdict", store="store")
    names = pl.DataFrame(
        {
            "policy_id": list(range(len(prepared.policies))),
            "policy": [p.name for p in prepared.policies],
            "format": [p.format for p in prepared.policies],
        },
        schema={"policy_id": pl.Int32, "policy": pl.String, "format": pl.String},
    )
    return (
        members.join(judged, on="cls")
        .join(today, on=["eid", "policy_id"], how="left")
        .join(endpoints, on="eid", how="left")
        .join(names, on="policy_id", how="left")
        .sort("policy_id", "eid", "v_index")
        .select(LOCKOUT_SCHEMA.names())
        .cast(LOCKOUT_SCHEMA)  # type: ignore[arg-type]
    )


# Headroom ---------------------------------------------------------------------------------------


def _headroom(analysis: Analysis) -> pl.DataFrame:
    prepared = analysis.prepared
    if not prepared.policies:
        return pl.DataFrame(schema=HEADROOM_SCHEMA)
    key = ["eid", "policy_id"]
    live = prepared.selected.filter(
        pl.col("error").is_null() & ~pl.col("exclude") & ~pl.col("expired")
    )
    used = used_chains(live, prepared.chains)
    top = used.group_by(key).agg(top=pl.col("position").max())
    matches = (
        pin_matches(prepared.pins, used)
        .join(top, on=key)
        .with_columns(
            place=pl.when(pl.col("position") == 0)
            .then(pl.lit("leaf"))
            .when((pl.col("position") == pl.col("top")) & pl.col("verified"))
            .then(pl.lit("root"))
            .otherwise(pl.lit("intermediate"))
        )
    )
    # The pass holds while some matching certificate is valid: the one that lasts longest.
    matched = (
        matches.sort("not_after", descending=True, nulls_last=True)
        .group_by(key)
        .agg(
            pins_matched=pl.col("pin_id").n_unique().cast(pl.UInt32),
            positions=pl.col("place").unique().sort(),
            carrier=pl.col("place").first(),
            carried_until=pl.col("not_after").first(),
        )
        .collect()
    )
    lock = analysis.lockout
    lists = (
        lock.join(
            analysis.prepared.endpoints.select("eid", "endpoint_id").collect(),
            on="endpoint_id",
        )
        .group_by("eid", "policy")
        .agg(
            survives=pl.col("scenario").filter(pl.col("outcome") == "survives"),
            locks_out=pl.col("scenario").filter(pl.col("outcome") == "locks_out"),
        )
    )
    endpoints = prepared.endpoints.select("eid", "endpoint_id", "target", "name").collect()
    names = pl.DataFrame(
        {
            "policy_id": list(range(len(prepared.policies))),
            "policy": [p.name for p in prepared.policies],
            "format": [p.format for p in prepared.policies],
        },
        schema={"policy_id": pl.Int32, "policy": pl.String, "format": pl.String},
    )
    moment = analysis.moment
    passing = pl.col("today") == "pass"
    set_ends = pl.col("expires").is_not_null() & (
        pl.col("carried_until").is_null() | (pl.col("expires") < pl.col("carried_until"))
    )
    ends = pl.when(set_ends).then("expires").otherwise("carried_until")
    return (
        analysis.today.select(*key, "expires", "store", today="verdict")
        .join(matched, on=key, how="left")
        .join(endpoints, on="eid", how="left")
        .join(names, on="policy_id", how="left")
        .join(lists, on=["eid", "policy"], how="left")
        .with_columns(
            pins_matched=pl.col("pins_matched").fill_null(0),
            positions=pl.col("positions").fill_null([]).cast(pl.List(pl.Enum(list(PLACES)))),
            carrier=pl.when(passing).then(
                pl.when(set_ends).then(pl.lit("pin-set")).otherwise("carrier")
            ),
            pass_ends=pl.when(passing).then(ends),
        )
        .with_columns(
            days_left=((pl.col("pass_ends") - moment).dt.total_seconds() // 86400).cast(pl.Int32),
        )
        .sort("policy_id", "eid")
        .select(HEADROOM_SCHEMA.names())
        .cast(HEADROOM_SCHEMA)  # type: ignore[arg-type]
    )


def _expiry_findings(analysis: Analysis, days: int) -> pl.DataFrame:
    room = analysis.headroom().filter((pl.col("today") == "pass") & (pl.col("days_left") <= days))
    rows = []
    room = room.with_columns(
        where=pl.col("positions").cast(pl.List(pl.String)).list.join(","),
        locks=pl.col("locks_out").cast(pl.List(pl.String)).list.sort().list.join(","),
    )
    for (policy, name, carrier, where, locks), group in room.group_by(
        "policy", "name", "carrier", "where", "locks", maintain_order=True
    ):
        left = int(group["days_left"].min())
        when = group["pass_ends"].min()
        places = where.split(",") if where else []
        keys = " and ".join(f"{p} key" for p in places) or "pins"
        only = "only " if len(places) == 1 else ""
        message = f"{name} passes {only}through its {keys}; "
        scenario_names = set(locks.split(",")) if locks else set()
        if carrier == "pin-set":
            message += (
                f"the pin-set expires within {max(left, 0)} days ({when:%Y-%m-%d}): "
                "after that the client stops checking the pins"
            )
        else:
            message += f"the {carrier} expires within {max(left, 0)} days ({when:%Y-%m-%d})"
            if carrier == "leaf" and "renew_new_key" in scenario_names:
                message += "; a renewal with a new key (certbot's default) locks out"
            elif carrier == "intermediate":
                siblings = sorted(s for s in scenario_names if s.startswith("sibling:"))
                if siblings:
                    message += f"; a renewal from {', '.join(siblings)} locks out"
        rows.append(
            {
                "policy": policy,
                "rule": None,
                "location": None,
                "kind": "expiry_headroom",
                "severity": "info" if carrier == "pin-set" else "warning",
                "endpoints": group.height,
                "message": message,
            }
        )
    return pl.DataFrame(rows, schema=FINDINGS_SCHEMA)


__all__ = ["KINDS", "Analysis", "analyse", "lockout"]
