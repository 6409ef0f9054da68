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

import base64
import datetime as dt
import hashlib
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import polars as pl

from pinscan.catalog.derive import display_name
from pinscan.catalog.graph import Catalog
from pinscan.certs.keys import spki_der
from pinscan.dataset import ScanDataset
from pinscan.errors import InputError
from pinscan.policy.evaluate import Prepared, enforced, judge, pin_matches, prepare, used_chains
from pinscan.policy.findings import FINDINGS_SCHEMA
from pinscan.policy.model import Policy
from pinscan.policy.suggest import BackupKey
from pinscan.policy.trustkit_hash import trustkit_spki
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
    return _analysis(dataset, prepared, catalog, selection, switch_to, spares)


@dataclass
class Analysis:
    """A lockout analysis: :attr:`lockout`, :attr:`scenarios`, :meth:`headroom`,
    :meth:`expiry_findings` and :meth:`gate`.

    It keeps the judgement per class of (endpoint, policy) pairs (``cases``) and which class
    each pair is in (``members``), not the scan's chains; the tables with names are made from
    those on first use.
    """

    moment: dt.datetime
    selection: Selection
    policies: pl.DataFrame
    """``policy_id``, ``policy``, ``format``."""
    endpoints: pl.DataFrame
    """``eid``, ``endpoint_id``, ``target``, ``name`` of the covered endpoints."""
    today: pl.DataFrame
    """Today's judgement of each covered pair: ``eid``, ``policy_id``, ``rule``, ``today``,
    ``store``, ``expires``."""
    members: pl.DataFrame
    """``eid``, ``policy_id``, ``cls``: the class of each pair with a chain, in pair order."""
    cases: pl.DataFrame
    """Each (class, scenario) judged: ``cls``, ``v_index``, ``scenario``, ``kind``, ``routine``,
    ``new_chain``, ``detail``, ``verdict``, ``outcome``, ``matched_pin``,
    ``matched_position``."""
    matched: pl.DataFrame
    """Today's matches per pair: ``pins_matched``, ``positions``, ``carrier``,
    ``carried_until``."""
    _cache: dict[str, pl.DataFrame] = field(default_factory=dict, repr=False)

    @property
    def lockout(self) -> pl.DataFrame:
        """One row per (endpoint, policy, scenario), in :data:`LOCKOUT_SCHEMA`."""
        if "lockout" not in self._cache:
            self._cache["lockout"] = self._rows(self.members, self.cases)
        return self._cache["lockout"]

    @property
    def scenarios(self) -> pl.DataFrame:
        """One row per scenario made: ``scenario``, ``kind``, ``routine``, ``detail`` (what it
        does, for the first chain it was made for) and ``endpoints`` it applies to."""
        counts = (
            self.members.join(self.cases.select("cls", "scenario"), on="cls")
            .group_by("scenario")
            .agg(endpoints=pl.col("eid").n_unique().cast(pl.UInt32))
        )
        return (
            self.cases.unique("scenario", keep="first", maintain_order=True)
            .join(counts, on="scenario")
            .with_columns(pl.col("scenario").cast(pl.String))
            .sort("kind", "scenario")
            .select(_SCENARIOS_SCHEMA.names())
        )

    def gate(self, fail_on: str | Sequence[str] | Selection | None = None) -> pl.DataFrame:
        """The rows a scheduled job should fail on (:data:`LOCKOUT_SCHEMA`): an endpoint that
        passes today and that a scenario in ``fail_on`` (the routine ones by default) locks
        out."""
        selection = ROUTINE_SELECTION if fail_on is None else parse_scenarios(fail_on)
        locked = self.cases.filter(pl.col("outcome") == "locks_out")
        wanted = [
            selection.matches(name, kind)
            for name, kind in locked.select(pl.col("scenario").cast(pl.String), "kind").iter_rows()
        ]
        locked = locked.filter(pl.Series(wanted, dtype=pl.Boolean))
        passing = self.today.filter(pl.col("today") == "pass").select("eid", "policy_id")
        return self._rows(self.members.join(passing, on=["eid", "policy_id"]), locked)

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

    def _rows(self, members: pl.DataFrame, cases: pl.DataFrame) -> pl.DataFrame:
        """``members`` x ``cases`` as :data:`LOCKOUT_SCHEMA` rows, in pair then scenario order:
        the names are joined last, onto rows that are already the result's."""
        return (
            members.lazy()
            .join(cases.lazy().drop("detail"), on="cls", maintain_order="left_right")
            .join(self.today.lazy(), on=["eid", "policy_id"], how="left", maintain_order="left")
            .join(self.endpoints.lazy(), on="eid", how="left", maintain_order="left")
            .join(self.policies.lazy(), on="policy_id", how="left", maintain_order="left")
            .select(LOCKOUT_SCHEMA.names())
            .cast(LOCKOUT_SCHEMA)  # type: ignore[arg-type]
            .collect()
        )


def _analysis(
    dataset: ScanDataset,
    prepared: Prepared,
    catalog: Catalog,
    selection: Selection,
    switch_to: Sequence[str],
    spares: Sequence[Spare],
) -> Analysis:
    """Everything judged while the scan's chains are at hand; only the compact frames stay."""
    policies = pl.DataFrame(
        {
            "policy_id": list(range(len(prepared.policies))),
            "policy": [p.name for p in prepared.policies],
            "format": [p.format for p in prepared.policies],
        },
        schema={"policy_id": pl.Int32, "policy": pl.Categorical(), "format": pl.Categorical()},
    )
    today = (
        judge(prepared)
        .select(
            "eid",
            "policy_id",
            "expires",
            rule=pl.col("rule").cast(pl.Categorical()),
            today="verdict",
            store=pl.col("store").cast(pl.Categorical()),
        )
        .collect()
    )
    endpoints = (
        prepared.endpoints.join(today.lazy().select("eid").unique(), on="eid", how="semi")
        .select(
            "eid",
            "endpoint_id",
            pl.col("target").cast(pl.Categorical()),
            pl.col("name").cast(pl.Categorical()),
        )
        .collect()
    )
    members, classes, variants = _plan(dataset, prepared, catalog, selection, switch_to, spares)
    pins = variants["new_above"].explode().drop_nulls().unique().to_list()
    keys = pl.DataFrame(
        {"pin": pins, "spki_sha1": [(catalog.ca(pin) or {}).get("spki_sha1") for pin in pins]},
        schema={"pin": pl.String, "spki_sha1": pl.String},
    )
    cases = _judge_cases(prepared, spares, classes, variants, keys)
    return Analysis(
        moment=prepared.moment,
        selection=selection,
        policies=policies,
        endpoints=endpoints,
        today=today,
        members=members,
        cases=cases,
        matched=_matched(prepared),
    )


# Planning ---------------------------------------------------------------------------------------


def _spare(key: str | os.PathLike[str] | BackupKey, password: bytes | str | None) -> Spare:
    """A spare key's pins, from its file; an unreadable one is an error naming the file."""
    spare = key if isinstance(key, BackupKey) else BackupKey.read(key)
    secret = spare.password if spare.password is not None else password
    try:
        spki = spki_der(spare.data, password=secret)
    except (InputError, ValueError) as exc:
        reason = exc.reason if isinstance(exc, InputError) else str(exc)
        raise InputError(spare.source, reason) from exc
    trustkit, problem = trustkit_spki(spki)
    return Spare(
        spare.source,
        base64.b64encode(hashlib.sha256(spki).digest()).decode(),
        base64.b64encode(hashlib.sha1(spki).digest()).decode(),
        trustkit,
        problem,
    )


def _judged_paths(prepared: Prepared) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The chain each pair is judged on, as its leaf and the CA keys above it (issuer first):
    the judging store's path, or what was presented when none verifies. Returns ``(eid,
    policy_id, leaf_cid, tail_id)`` per pair and the distinct paths, ``(tail_id, above,
    store)``: a fleet has few."""
    pairs = (
        prepared.selected.filter(pl.col("has_chain"))
        .select("eid", "policy_id", "store", judged_path="path")
        .unique(["eid", "policy_id"])
    )
    paths = (
        pairs.join(prepared.chains.select("eid", "position", "verified", "path", "cid"), on="eid")
        # The store's path even for curl, which checks only the leaf: a scenario rebuilds the
        # path the client verifies (a removed root is a root, not the last certificate sent).
        .filter(
            pl.when(pl.col("judged_path").is_not_null())
            .then(pl.col("verified") & (pl.col("path") == pl.col("judged_path")))
            .otherwise(~pl.col("verified"))
        )
        .join(prepared.certs.lazy().select("cid", "spki_sha256"), on="cid", how="left")
        .sort("position")
        .group_by("eid", "policy_id")
        .agg(
            pl.col("store").first().cast(pl.String),
            leaf_cid=pl.col("cid").first(),
            above=pl.col("spki_sha256").filter(pl.col("position") > 0),
        )
        .with_columns(tail_id=(pl.struct("above", "store").rank("dense") - 1).cast(pl.UInt32))
        .collect()
    )
    tails = paths.group_by("tail_id").agg(pl.col("above", "store").first()).sort("tail_id")
    return paths.select("eid", "policy_id", "leaf_cid", "tail_id"), tails


# Columns of `selected` that differ between endpoints under the same rules: part of the class.
_PAIR_COLUMNS = ("chain", "path", "judge", "store", "wanted", "store_missing", "trust_store")
_LEAF_IDS = ("sha256_id", "sha1_id", "trustkit_id", "trustkit_blocked", "trustkit_problem")


def _plan(
    dataset: ScanDataset,
    prepared: Prepared,
    catalog: Catalog,
    selection: Selection,
    switch_to: Sequence[str],
    spares: Sequence[Spare],
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """``members`` (each pair's class), ``classes`` (one representative pair each, with its
    path's ``tail_id`` and its leaf's pin ids) and ``variants`` (the scenarios of each path)."""
    paths, tails = _judged_paths(prepared)
    per_pair = (
        prepared.selected.filter(pl.col("has_chain"))
        .group_by("eid", "policy_id")
        .agg(*(pl.col(c).first() for c in _PAIR_COLUMNS), rules=pl.col("rule_id").sort())
    )
    leaf_ids = prepared.certs.lazy().select(pl.col("cid").alias("leaf_cid"), *_LEAF_IDS)
    key = ["policy_id", "rules", *_PAIR_COLUMNS, "tail_id", *_LEAF_IDS]
    pairs = (
        per_pair.join(paths.lazy(), on=["eid", "policy_id"])
        .join(leaf_ids, on="leaf_cid", how="left")
        .with_columns(cls=pl.struct(key).rank("dense") - 1)
        .collect()
    )
    classes = (
        pairs.group_by("cls")
        .agg(*(pl.col(c).first() for c in key if c != "rules"), rep=pl.col("eid").first())
        .sort("cls")
    )
    members = pairs.select("eid", "policy_id", "cls").sort("policy_id", "eid")
    issuers = pairs.join(tails.select("tail_id", issuer=pl.col("above").list.first()), on="tail_id")
    fleet = Counter(
        dict(
            issuers.drop_nulls("issuer")
            .group_by("issuer")
            .agg(n=pl.col("eid").n_unique())
            .iter_rows()
        )
    )
    del pairs, issuers
    planner = Planner(
        catalog,
        prepared.moment,
        selection,
        fleet=fleet,
        switch_to=switch_to,
        spares=spares,
        names=_served_names(dataset, tails, catalog),
    )
    rows = [
        (tail_id, index, v.scenario, v.kind, v.leaf, v.above, v.chain, v.detail)
        for tail_id, above, store in tails.iter_rows()
        for index, v in enumerate(
            planner.variants(tuple(above), None if store is None else str(store))
        )
    ]
    variants = pl.DataFrame(
        rows,
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
    return members, classes, variants


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


def _judge_cases(
    prepared: Prepared,
    spares: Sequence[Spare],
    classes: pl.DataFrame,
    variants: pl.DataFrame,
    keys: pl.DataFrame,
) -> pl.DataFrame:
    """Every (class, scenario) judged, once, on its representative pair's rules; a chain that
    does not build is not judged (verdict null, outcome ``untrusted``)."""
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
    chains = _case_chains(prepared, spares, built, keys)
    judged = judge(replace(prepared, selected=selected, chains=chains)).select(
        case="eid",
        verdict="verdict",
        matched_pin="matched_pin",
        matched_position="matched_position",
    )
    outcome = (
        pl.when(pl.col("verdict").is_null())
        .then(pl.lit("untrusted"))
        .otherwise(pl.col("verdict").cast(pl.String).replace_strict(_OUTCOME_OF, default=None))
    )
    return (
        cases.lazy()
        .join(judged, on="case", how="left")
        .select(
            "cls",
            "v_index",
            pl.col("scenario").cast(pl.Categorical()),
            "kind",
            routine=pl.col("kind").is_in(list(ROUTINE)),
            new_chain=pl.col("new_chain").cast(pl.Categorical()),
            detail="detail",
            verdict="verdict",
            outcome=outcome.cast(OUTCOME),
            matched_pin=pl.col("matched_pin").cast(pl.Categorical()),
            matched_position="matched_position",
        )
        .sort("cls", "v_index")
        .collect()
    )


def _case_chains(
    prepared: Prepared, spares: Sequence[Spare], built: pl.DataFrame, keys: pl.DataFrame
) -> pl.LazyFrame:
    """The chain rows of each built case, as :func:`~pinscan.policy.evaluate.chain_pins` gives
    a served chain's: the leaf (today's key, none of the policies' pins, or the spare's) and the
    CA keys above it, with the policy pins each has. ``keys`` gives the SHA-1 pin
    (``spki_sha1``) of each CA key (``pin``) the scenarios use."""
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
    sha1 = known.filter(pl.col("algorithm") == "sha1").select("pin", "pin_id")
    # A CA key the scan served keeps the pins its certificate has; one only the catalog knows
    # has its SHA-256 and SHA-1 pins (TrustKit's rebuilt SPKI is the SPKI itself for the keys
    # CAs use).
    served = (
        prepared.certs.select("spki_sha256", "cert_id", *_LEAF_IDS)
        .unique("spki_sha256")
        .rename({"spki_sha256": "pin"})
    )
    leaf_markers = [SAME, NEW, *(f"backup:{i}" for i in range(len(spares)))]
    spare_ids = (
        pl.DataFrame(
            {
                "leaf": [f"backup:{i}" for i in range(len(spares))],
                "pin": [s.pin for s in spares],
                "sha1": [s.sha1 for s in spares],
                "trustkit": [s.trustkit for s in spares],
                "trustkit_problem": [s.trustkit_problem for s in spares],
            },
            schema={
                "leaf": pl.String,
                "pin": pl.String,
                "sha1": pl.String,
                "trustkit": pl.String,
                "trustkit_problem": pl.String,
            },
        )
        .join(sha256, on="pin", how="left")
        .join(sha1.rename({"pin": "sha1", "pin_id": "sha1_id"}), on="sha1", how="left")
        .join(
            sha256.rename({"pin": "trustkit", "pin_id": "trustkit_id"}), on="trustkit", how="left"
        )
        .select(
            "leaf",
            "sha1_id",
            "trustkit_id",
            "trustkit_problem",
            sha256_id="pin_id",
            trustkit_blocked=pl.col("trustkit").is_null()
            & pl.col("trustkit_problem").is_not_null(),
        )
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
            sha1_id=pl.when(pl.col("leaf") == SAME).then("sha1_id").otherwise("sha1_id_spare"),
            trustkit_id=pl.when(pl.col("leaf") == SAME)
            .then("trustkit_id")
            .otherwise("trustkit_id_spare"),
            trustkit_blocked=pl.when(pl.col("leaf") == SAME)
            .then("trustkit_blocked")
            .otherwise(pl.col("trustkit_blocked_spare").fill_null(False)),
            trustkit_problem=pl.when(pl.col("leaf") == SAME)
            .then("trustkit_problem")
            .otherwise("trustkit_problem_spare"),
            # Every scenario serves a new leaf certificate: no certificate pin names it.
            cert_id=pl.lit(None, pl.Int32),
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
        .join(keys, on="pin", how="left")
        .join(
            sha1.rename({"pin": "spki_sha1", "pin_id": "catalog_sha1_id"}),
            on="spki_sha1",
            how="left",
        )
        .select(
            "case",
            "chain",
            "path",
            "position",
            sha256_id=pl.coalesce("sha256_id", "catalog_id"),
            sha1_id=pl.coalesce("sha1_id", "catalog_sha1_id"),
            trustkit_id=pl.coalesce("trustkit_id", "catalog_id"),
            trustkit_blocked=pl.col("trustkit_blocked").fill_null(False),
            trustkit_problem="trustkit_problem",
            # A CA certificate the scan served is served again; one only the catalog knows is
            # named by no certificate pin of a policy that judged the scan.
            cert_id=pl.col("cert_id").cast(pl.Int32),
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
            cert_id="cert_id",
            # A new certificate: not expired; the server sends it.
            not_after=pl.lit(None, pl.Datetime("us", "UTC")),
            key_type=pl.lit(None, pl.String),
            trustkit_problem="trustkit_problem",
            trustkit_blocked="trustkit_blocked",
            sent=pl.lit(True),
        )
    )


# Headroom ---------------------------------------------------------------------------------------


def _matched(prepared: Prepared) -> pl.DataFrame:
    """Per pair, today's matching pins: how many distinct, at which places, and the place and
    end of validity of the match that lasts longest (the pass holds while one does)."""
    key = ["eid", "policy_id"]
    used = used_chains(enforced(prepared.selected), prepared.chains)
    top = used.group_by(key).agg(top=pl.col("position").max())
    place = (
        pl.when(pl.col("position") == 0)
        .then(pl.lit("leaf"))
        .when((pl.col("position") == pl.col("top")) & pl.col("verified"))
        .then(pl.lit("root"))
        .otherwise(pl.lit("intermediate"))
    )
    return (
        pin_matches(prepared.pins, used)
        .join(top, on=key)
        .with_columns(place=place.cast(_PLACE))
        .sort("not_after", descending=True, nulls_last=True)
        .group_by(key)
        .agg(
            pins_matched=pl.col("pin_id").n_unique().cast(pl.UInt32),
            positions=pl.col("place").unique().sort(),
            carrier=pl.col("place").first().cast(pl.String),
            carried_until=pl.col("not_after").first(),
        )
        .collect()
    )


_PLACE = pl.Enum(list(PLACES))


def _headroom(analysis: Analysis) -> pl.DataFrame:
    key = ["eid", "policy_id"]
    cases = analysis.cases
    per_class = cases.group_by("cls").agg(
        survives=pl.col("scenario").filter(pl.col("outcome") == "survives"),
        locks_out=pl.col("scenario").filter(pl.col("outcome") == "locks_out"),
    )
    lists = analysis.members.lazy().join(per_class.lazy(), on="cls").drop("cls")
    passing = pl.col("today") == "pass"
    set_ends = pl.col("expires").is_not_null() & (
        pl.col("carried_until").is_null() | (pl.col("expires") < pl.col("carried_until"))
    )
    ends = pl.when(set_ends).then("expires").otherwise("carried_until")
    return (
        analysis.today.lazy()
        .join(analysis.matched.lazy(), on=key, how="left", maintain_order="left")
        .join(lists, on=key, how="left", maintain_order="left")
        .join(analysis.endpoints.lazy(), on="eid", how="left", maintain_order="left")
        .join(analysis.policies.lazy(), on="policy_id", how="left", maintain_order="left")
        .with_columns(
            pins_matched=pl.col("pins_matched").fill_null(0),
            positions=pl.col("positions").fill_null(pl.lit([], pl.List(_PLACE))),
            survives=pl.col("survives").fill_null(pl.lit([], pl.List(pl.Categorical()))),
            locks_out=pl.col("locks_out").fill_null(pl.lit([], pl.List(pl.Categorical()))),
            carrier=pl.when(passing).then(
                pl.when(set_ends).then(pl.lit("pin-set")).otherwise("carrier")
            ),
            pass_ends=pl.when(passing).then(ends),
        )
        .with_columns(
            days_left=((pl.col("pass_ends") - analysis.moment).dt.total_seconds() // 86400).cast(
                pl.Int32
            ),
        )
        .sort("policy_id", "eid")
        .select(HEADROOM_SCHEMA.names())
        .cast(HEADROOM_SCHEMA)  # type: ignore[arg-type]
        .collect()
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
