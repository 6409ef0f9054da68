# SPDX-License-Identifier: Apache-2.0
"""Judges every endpoint of a scan by every policy, as each client would: polars joins, no loop
over endpoints.

For each (endpoint, policy): the name the client connects with (the SNI override, else the host)
is split into its suffixes and joined with the rules' hosts; each format's scope (exact, any
depth, one level, one label) filters the join; the format's combination (most specific rule, or
the union of all) picks the rules; their pins are joined with the chain the client checks (the
path its platform's trust store builds, or the presented leaf for curl) at the positions each
pin-set allows.

Which store's path judges which format is stated once, in :data:`PLATFORM_STORES`; ``stores=``
and ``okhttp_jvm=`` change it. A dataset that does not have that store's path (written before
pinscan kept every store's, or scanned without that store) is judged on the path of the scan's
first store that verifies, as before, and the verdict's note says so.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from pinscan.certs.table import certificates
from pinscan.dataset import ScanDataset
from pinscan.dataset.schema import PIN_RESULTS_SCHEMA as RESULT_SCHEMA
from pinscan.dataset.schema import VERDICT, VERDICTS
from pinscan.errors import ConfigError
from pinscan.policy.formats import MODULES
from pinscan.policy.model import CERT_SHA256, ChainSource, Combine, Match, Policy, Position
from pinscan.policy.trustkit_hash import trustkit_spki
from pinscan.records import ANCHOR_STORES, TRUST_STORES

#: The trust store whose path each client checks its pins against, by policy format, first
#: choice first (sources in docs/policies.md): Android's network security config, TrustKit on
#: Android and OkHttp on Android build the path on Android's system store; iOS ATS and TrustKit
#: on Apple's; curl on the machine's bundle when the scan has it (``--system-store``), else on
#: Mozilla's, which most systems' bundles are; Node.js on Mozilla's, the roots it ships. HPKP,
#: Chromium's static pins, pinscan's TOML and a CA bundle name no platform: they are judged on
#: the path of the scan's first store that verifies (the endpoint's ``trust_store``). When the
#: platform's store does not verify a chain and the scan's ``--ca-bundle`` does, the bundle's
#: path is the client's: the private anchors an app adds.
PLATFORM_STORES: dict[str, tuple[str, ...]] = {
    "android": ("android",),
    "trustkit-android": ("android",),
    "okhttp": ("android",),
    "ios": ("apple",),
    "trustkit": ("apple",),
    "curl": ("system", "mozilla"),
    "node": ("mozilla",),
}
#: The formats that name no platform, judged on the endpoint's verified chain. A CA bundle
#: (Node.js ``ca``) is its own store: the path the scan verified is the one it could anchor.
UNPLACED_FORMATS = ("hpkp", "chromium", "toml", "ca-bundle")
#: OkHttp on the JVM (a server, a desktop application) builds the path on the JVM's cacerts.
OKHTTP_JVM_STORE = "java"
#: Every store a verdict can be judged by: those pinscan ships, then the scan's own.
JUDGING_STORES = (*TRUST_STORES, "ca_bundle", "system")
# Stores whose anchors an Android `<certificates src="system">` stands for: all but the
# private bundle.
_PUBLIC_STORES = (*TRUST_STORES, "system")
# Store names in the evaluator's frames: small integers, not strings, in the frames of every
# covered endpoint.
_STORE = pl.Enum(JUDGING_STORES)


def platform_stores(
    stores: str | Mapping[str, str] | None = None, *, okhttp_jvm: bool = False
) -> dict[str, tuple[str, ...]]:
    """The stores each format is judged by: :data:`PLATFORM_STORES`, OkHttp on Java's with
    ``okhttp_jvm``, then ``stores``: one store name for every format, or ``{format: store}``
    for some. :class:`~pinscan.errors.ConfigError` for a name that is neither a format nor a
    store."""
    mapping = dict(PLATFORM_STORES)
    if okhttp_jvm:
        mapping["okhttp"] = (OKHTTP_JVM_STORE,)
    if stores is None:
        return mapping
    if isinstance(stores, str):
        stores = dict.fromkeys(MODULES, stores)
    if not isinstance(stores, Mapping):
        reason = f"must be a store name or a {{format: store}} mapping, not {stores!r}"
        raise ConfigError("stores", reason)
    for fmt, store in stores.items():
        if fmt not in MODULES:
            raise ConfigError("stores", f"no policy format {fmt!r}; formats: {', '.join(MODULES)}")
        if store not in JUDGING_STORES:
            known = ", ".join(JUDGING_STORES)
            raise ConfigError("stores", f"no store named {store!r}; stores: {known}")
        mapping[fmt] = (store,)
    return mapping


def evaluate(
    dataset: ScanDataset,
    policies: Policy | Iterable[Policy],
    as_of: dt.datetime | dt.date | None = None,
    *,
    stores: str | Mapping[str, str] | None = None,
    okhttp_jvm: bool = False,
    anchor_store: str | None = None,
) -> pl.DataFrame:
    """One row per (endpoint, policy) with the client's verdict.

    ``verdict`` is ``pass``, ``fail``, ``report-only`` (no pin matched, but the rule only
    reports), ``expired`` (the rule's pin-set is past its expiration at ``as_of``, so the client
    does not enforce it), ``error`` (the client rejects the policy itself), ``no_chain`` (the
    endpoint is pinned but the scan captured no certificate) or ``unpinned`` (no rule covers the
    name). ``matched_pin``/``matched_position`` say which pin matched where in ``chain`` (the
    ``verified`` chain, the ``presented`` one when the chain did not verify, or the ``leaf``;
    null when no certificate was served);
    ``matched_sent`` is false when the pass rests on a certificate, usually the root, that the
    server did not send. ``note`` explains anything a reader would otherwise have to work out.
    ``store`` names the trust store whose path judged the verdict (null when no chain was
    judged): the policy's platform store (:data:`PLATFORM_STORES`; ``stores`` and
    ``okhttp_jvm`` as :func:`platform_stores` takes them), ``ca_bundle`` when only the scan's
    private anchors verify the chain, or, when the dataset lacks the platform's path, the
    scan's first store that verifies it (the note says so).

    An Android config trusts only its ``<trust-anchors>`` (the platform's: ``system``): a chain
    that ends at a root it does not list is ``fail`` before any pin is looked at, and
    ``overridePins`` on the anchor the chain ends at makes the name ``unpinned``. The scan's
    ``--ca-bundle`` roots count as ``anchor_store`` places them (``system`` or ``user``;
    default: what ``scan --anchor-store`` recorded, else ``system``).
    """
    prepared = prepare(
        dataset, policies, as_of, stores=stores, okhttp_jvm=okhttp_jvm, anchor_store=anchor_store
    )
    if not prepared.policies:
        return pl.DataFrame(schema=RESULT_SCHEMA)
    # Judged once, then joined with the endpoints one policy at a time: the result is the
    # largest frame of all, and a policy's share of it is built (and sorted) on its own.
    judged = judge(prepared).collect()
    out = []
    for policy_id, policy in enumerate(prepared.policies):
        every = prepared.endpoints.with_columns(
            policy_id=pl.lit(policy_id, pl.Int32),
            policy=pl.lit(policy.name, pl.String),
            format=pl.lit(policy.format, pl.String),
        )
        mine = judged.lazy().filter(pl.col("policy_id") == policy_id)
        out.append(
            every.join(mine, on=["eid", "policy_id"], how="left", maintain_order="left")
            .with_columns(verdict=pl.coalesce("verdict", pl.lit("unpinned")).cast(VERDICT))
            .select(RESULT_SCHEMA.names())
            .cast(RESULT_SCHEMA)  # type: ignore[arg-type]
            .collect()
        )
    return pl.concat(out)


@dataclass(frozen=True)
class Prepared:
    """The frames every judgement starts from; :mod:`pinscan.policy.findings` reuses them.

    Endpoints and certificates are numbered (``eid``, ``cid``) once, so that every join after
    that is on integers rather than on hex ids.
    """

    policies: list[Policy]
    moment: dt.datetime
    endpoints: pl.LazyFrame
    rules: pl.LazyFrame
    pins: pl.LazyFrame
    bad_pins: pl.LazyFrame
    sets: pl.LazyFrame
    selected: pl.LazyFrame
    """(endpoint, rule) for each rule that applies, with the chain the client checks (``chain``:
    verified, presented, leaf or null; ``path``: the store whose verified path it is) and the
    store that judges it (``store``)."""
    chains: pl.LazyFrame
    certs: pl.DataFrame
    """One row per distinct certificate of the covered chains (``cid``), with its SPKI pin and
    the ids of the policy pins it has (``sha256_id``, ``sha1_id``, ``trustkit_id``)."""
    anchor_store: str = "system"
    """Where the scan's ``--ca-bundle`` roots sit on the device (:data:`ANCHOR_STORES`)."""


def prepare(
    dataset: ScanDataset,
    policies: Policy | Iterable[Policy],
    as_of: dt.datetime | dt.date | None = None,
    *,
    stores: str | Mapping[str, str] | None = None,
    okhttp_jvm: bool = False,
    anchor_store: str | None = None,
) -> Prepared:
    policies = [policies] if isinstance(policies, Policy) else list(policies)
    anchor_store = scan_anchor_store(dataset, anchor_store)
    judging = platform_stores(stores, okhttp_jvm=okhttp_jvm)
    moment = instant(as_of)
    endpoints = (
        dataset.endpoints.select(
            "endpoint_id",
            "target",
            "ip",
            "port",
            "status",
            # An enum: a name outside it (no pinscan writes one) would read as no store.
            trust_store=pl.col("trust_store").cast(_STORE, strict=False),
            name=pl.coalesce("sni", "host").str.strip_chars_end(".").str.to_lowercase(),
        )
        .with_row_index("eid")
        .collect()
        .lazy()
    )
    rules, pins, bad_pins, sets = rule_frames(policies, moment)
    applicable = select_rules(endpoints, rules).collect()
    # Only endpoints some rule covers need their chains: policies usually cover a small part of
    # a fleet, and the chains are the biggest table.
    covered = endpoints.join(applicable.lazy().select("eid").unique(), on="eid", how="semi")
    known_pins = pl.concat([f.select("algorithm", "pin", "pin_id") for f in (pins, bad_pins)])
    wanted = _wanted_stores(policies, judging)
    # Only the stores the policies' platforms build on are read, and the private anchors.
    needed = sorted({*wanted.collect()["store"], "ca_bundle"})
    entries = _store_entries(dataset, covered, needed).collect()
    certs = cert_pins(
        dataset,
        known_pins.unique("pin_id"),
        need_sha1=_uses_sha1(policies),
        need_trustkit=any(p.format == "trustkit" for p in policies),
    )
    chains = chain_pins(dataset, covered, certs, entries.lazy()).collect()
    # Kept for the rotation analysis: the certificates of the covered chains only, without
    # their fingerprints (a fleet's million leaves, most of them uncovered, are not).
    certs = certs.drop("cert_sha256").join(chains.select("cid").unique(), on="cid", how="semi")
    checked = entries.lazy().select(
        "eid",
        "store",
        store_verified="verified",
        # Whose rows in `chains` are this store's path: the verified chain's, unless it differs.
        rows_of=pl.when(pl.col("verified") & pl.col("chain").is_null())
        .then(pl.col("trust_store"))
        .when(pl.col("verified"))
        .then(pl.col("store")),
    )
    selected = _with_chain(applicable.lazy(), chains.lazy(), checked, wanted)
    selected = _anchor_trust(selected, chains.lazy(), certs, policies, anchor_store)
    selected = selected.collect().lazy()
    chains = chains.lazy()
    return Prepared(
        policies, moment, endpoints, rules, pins, bad_pins, sets, selected, chains, certs,
        anchor_store,
    )  # fmt: skip


def scan_anchor_store(dataset: ScanDataset, anchor_store: str | None = None) -> str:
    """Where the scan's ``--ca-bundle`` roots sit on the device: ``anchor_store`` when given,
    else what the scan recorded (``scan --anchor-store``), else ``system``."""
    if anchor_store is None:
        meta = getattr(dataset, "meta", None) or {}
        anchor_store = (meta.get("arguments") or {}).get("anchor_store") or "system"
    if anchor_store not in ANCHOR_STORES:
        reason = f"must be one of {', '.join(ANCHOR_STORES)}, not {anchor_store!r}"
        raise ConfigError("anchor_store", reason)
    return anchor_store


def _anchor_trust(
    selected: pl.LazyFrame,
    chains: pl.LazyFrame,
    certs: pl.DataFrame,
    policies: Sequence[Policy],
    anchor_store: str,
) -> pl.LazyFrame:
    """Adds whether the config trusts the anchor the judged path ends at (``distrusted``) and
    whether ``overridePins`` switches its pins off (``anchor_override``), as Android's
    ``NetworkSecurityTrustManager`` decides (AOSP ``core/java/android/security/net/config/``):
    the chain is built on the config's anchors only (``checkServerTrusted``: a chain to a root
    the config does not list fails before ``checkPins``), and ``isPinningEnforced`` is false
    when that anchor's ``<certificates>`` says ``overridePins``.

    A root of the platform's store is a ``system`` anchor; the scan's ``--ca-bundle`` roots are
    where ``anchor_store`` places them; a bundled ``@raw`` anchor (resolved from the app or the
    source tree) trusts a path that passes through one of its keys, and one whose keys are
    unknown is not held against the chain. Formats other than Android restrict nothing."""
    raw_rows = [
        (rule_id, pin.digest, ("@" + anchor.source) in {"@" + s for s in rule.override_pins})
        for rule_id, rule in enumerate(r for p in policies for r in p.rules)
        for anchor in rule.anchors
        if anchor.source.startswith("@")
        for pin in anchor.pins
        if pin.algorithm == "sha256"
    ]
    store = pl.coalesce("judge", "path")
    private = store == pl.lit("ca_bundle", _STORE)
    in_system = store.is_in(_PUBLIC_STORES) | (private & (anchor_store == "system"))
    in_user = private & (anchor_store == "user")
    raw_trusted = pl.lit(False)
    raw_override = pl.lit(False)
    if raw_rows:
        raw = pl.LazyFrame(
            raw_rows,
            schema={"rule_id": pl.Int32, "spki_sha256": pl.String, "raw_override": pl.Boolean},
            orient="row",
        )
        keys = (
            chains.filter(pl.col("verified"))
            .select("eid", "path", "cid")
            .join(certs.lazy().select("cid", "spki_sha256"), on="cid")
            .drop("cid")
            .unique()
        )
        hits = (
            selected.select("eid", "rule_id", "path")
            .join(keys, on=["eid", "path"])
            .join(raw, on=["rule_id", "spki_sha256"])
            .group_by("eid", "rule_id")
            .agg(raw_trusted=pl.lit(True), raw_override=pl.col("raw_override").any())
        )
        selected = selected.join(hits, on=["eid", "rule_id"], how="left")
        raw_trusted = pl.col("raw_trusted").fill_null(False)
        raw_override = pl.col("raw_override").fill_null(False)
    trusted = (
        (in_system & pl.col("trust_system"))
        | (in_user & pl.col("trust_user"))
        | raw_trusted
        | pl.col("trust_unknown")
    )
    overridden = (
        (in_system & pl.col("override_system")) | (in_user & pl.col("override_user")) | raw_override
    )
    out = selected.with_columns(
        distrusted=(pl.col("anchored") & pl.col("path").is_not_null() & ~trusted).fill_null(False),
        anchor_override=overridden.fill_null(False),
    )
    return out.drop("raw_trusted", "raw_override", strict=False)


def instant(as_of: dt.datetime | dt.date | None) -> dt.datetime:
    if as_of is None:
        return dt.datetime.now(dt.UTC)
    if isinstance(as_of, dt.datetime):
        return as_of if as_of.tzinfo else as_of.replace(tzinfo=dt.UTC)
    return dt.datetime(as_of.year, as_of.month, as_of.day, tzinfo=dt.UTC)


def _uses_sha1(policies: Sequence[Policy]) -> bool:
    return any(pin.algorithm == "sha1" for p in policies for r in p.rules for pin in r.pins)


# Pin-set positions as small integers in the frames.
_POSITIONS = {Position.ANY: 0, Position.LEAF: 1, Position.CA: 2, Position.ANCHOR: 3}


def rule_frames(
    policies: Sequence[Policy], moment: dt.datetime
) -> tuple[pl.LazyFrame, pl.LazyFrame, pl.LazyFrame, pl.LazyFrame]:
    """The policies as four small frames: rules, their pins, their veto pins, their pin-sets."""
    rule_schema = {
        "rule_id": pl.Int32,
        "policy_id": pl.Int32,
        "host": pl.String,
        "match": pl.String,
        "union": pl.Boolean,
        "leaf_only": pl.Boolean,
        "trustkit_view": pl.Boolean,
        "rule": pl.String,
        "rule_location": pl.String,
        "error": pl.String,
        "exclude": pl.Boolean,
        "expires": pl.Datetime("us", "UTC"),
        "expired": pl.Boolean,
        "enforce": pl.Boolean,
        "override_system": pl.Boolean,
        "override_user": pl.Boolean,
        "anchored": pl.Boolean,
        "trust_system": pl.Boolean,
        "trust_user": pl.Boolean,
        "trust_unknown": pl.Boolean,
    }
    pin_schema = {
        "rule_id": pl.Int32,
        "set_key": pl.Int64,
        "positions": pl.Int8,
        "algorithm": pl.String,
        "pin": pl.String,
        "pin_id": pl.Int32,
    }
    # Every distinct pin gets a small integer: the big chain frame then carries integers, not
    # base64 strings.
    pin_ids: dict[tuple[str, str], int] = {}

    def pin_id(algorithm: str, digest: str) -> int:
        return pin_ids.setdefault((algorithm, digest), len(pin_ids))

    rules: dict[str, list] = {k: [] for k in rule_schema}
    pins: dict[str, list] = {k: [] for k in pin_schema}
    bad: dict[str, list] = {k: [] for k in ("rule_id", "algorithm", "pin", "pin_id")}
    sets: dict[str, list] = {k: [] for k in ("rule_id", "set_key")}
    rule_id = 0
    for policy_id, policy in enumerate(policies):
        union = policy.combine is Combine.UNION
        for rule in policy.rules:
            error = policy.error or rule.error
            if policy.error and policy.error_location:
                error = f"{policy.error} ({policy.error_location})"
            row = {
                "rule_id": rule_id,
                "policy_id": policy_id,
                "host": rule.host,
                "match": rule.match.value,
                "union": union,
                "leaf_only": policy.chain is ChainSource.LEAF,
                "trustkit_view": policy.format == "trustkit",
                "rule": rule.label(),
                "rule_location": str(rule.location),
                "error": error,
                "exclude": rule.exclude,
                "expires": rule.expires,
                "expired": rule.expires is not None and moment > rule.expires,
                "enforce": rule.enforce,
                "override_system": "system" in rule.override_pins,
                "override_user": "user" in rule.override_pins,
                # Android restricts the roots a chain may end at to the config's anchors (a
                # rule built without any, by hand, is left unrestricted).
                "anchored": policy.format == "android" and bool(rule.anchors),
                "trust_system": any(a.source == "system" for a in rule.anchors),
                "trust_user": any(a.source == "user" for a in rule.anchors),
                # A @raw anchor whose keys are unknown (a config read outside its source tree)
                # may be the root: it is not held against the chain.
                "trust_unknown": any(
                    a.source.startswith("@") and not a.pins and a.file is None for a in rule.anchors
                ),
            }
            for column, value in row.items():
                rules[column].append(value)
            for index, pin_set in enumerate(rule.pin_sets):
                code = _POSITIONS[pin_set.positions]
                # A union policy unites pins per position; a most-specific one keeps each set.
                key = -1 - code if union else rule_id * 64 + index
                sets["rule_id"].append(rule_id)
                sets["set_key"].append(key)
                for pin in pin_set.pins:
                    row = (
                        rule_id,
                        key,
                        code,
                        pin.algorithm,
                        pin.digest,
                        pin_id(pin.algorithm, pin.digest),
                    )
                    for column, value in zip(pin_schema, row, strict=True):
                        pins[column].append(value)
            for pin in rule.bad_pins:
                bad["rule_id"].append(rule_id)
                bad["algorithm"].append(pin.algorithm)
                bad["pin"].append(pin.digest)
                bad["pin_id"].append(pin_id(pin.algorithm, pin.digest))
            rule_id += 1
    return (
        pl.LazyFrame(rules, schema=rule_schema),
        pl.LazyFrame(pins, schema=pin_schema),
        pl.LazyFrame(
            bad,
            schema={
                "rule_id": pl.Int32,
                "algorithm": pl.String,
                "pin": pl.String,
                "pin_id": pl.Int32,
            },
        ),
        pl.LazyFrame(sets, schema={"rule_id": pl.Int32, "set_key": pl.Int64}),
    )


def select_rules(endpoints: pl.LazyFrame, rules: pl.LazyFrame) -> pl.LazyFrame:
    """(eid, rule) for every rule that applies to the endpoint's name under its format.

    Names are split into suffixes once per distinct name: ``a.b.example.com`` gives
    ``(a.b.example.com, 0)``, ``(b.example.com, 1)``, ``(example.com, 2)``, ``(com, 3)``; the
    number is how many labels the rule's host is above the name.
    """
    names = endpoints.select("name").drop_nulls().unique()
    suffixes = (
        names.with_columns(labels=pl.col("name").str.split("."))
        .with_columns(depth=pl.int_ranges(0, pl.col("labels").list.len()))
        .explode("depth")
        .with_columns(
            suffix=pl.col("labels").list.slice(pl.col("depth")).list.join("."),
            depth=pl.col("depth").cast(pl.Int32),
        )
        .drop("labels")
    )
    depth = pl.col("depth")
    scope = (
        pl.when(pl.col("match") == Match.EXACT.value)
        .then(depth == 0)
        .when(pl.col("match") == Match.SUBDOMAINS.value)
        .then(True)
        .when(pl.col("match") == Match.ONE_LEVEL.value)
        .then(depth <= 1)
        .otherwise(depth == 1)  # Match.ONE_LABEL
    )
    matched = (
        suffixes.join(
            rules.select(
                "rule_id", "policy_id", "host", "match", "union", "leaf_only", "trustkit_view",
                "error", "exclude", "expired", "expires", "enforce", "override_system",
                "override_user", "anchored", "trust_system", "trust_user", "trust_unknown",
            ),
            left_on="suffix",
            right_on="host",
        )
        .filter(scope)
        # Most specific: only the rules at the smallest distance survive (one, in a valid file).
        .filter(pl.col("union") | (depth == depth.min().over("name", "policy_id")))
        .drop("suffix", "match")
    )  # fmt: skip
    return (
        endpoints.select("eid", "name", "trust_store", "status")
        .join(matched, on="name")
        .drop("name")
    )


def _store_entries(
    dataset: ScanDataset, endpoints: pl.LazyFrame, stores: Sequence[str]
) -> pl.LazyFrame:
    """(eid, trust_store, store, verified, chain) for each of ``stores`` the scan verified each
    endpoint against (none in datasets written before pinscan kept them). ``chain`` is null when
    the store's path is the endpoint's verified chain. The other stores' entries are dropped
    before they are unpacked: a fleet has several per endpoint."""
    entry = pl.element()
    return (
        dataset.endpoints.select("endpoint_id", "store_paths")
        .join(endpoints.select("endpoint_id", "eid", "trust_store"), on="endpoint_id")
        .with_columns(
            pl.col("store_paths").list.eval(
                entry.filter(entry.struct.field("store").is_in(list(stores)))
            )
        )
        .explode("store_paths")
        .unnest("store_paths")
        .with_columns(pl.col("store").cast(_STORE, strict=False))
        .filter(pl.col("store").is_not_null())
        .drop("endpoint_id")
    )


def cert_pins(
    dataset: ScanDataset, pin_ids: pl.LazyFrame, *, need_sha1: bool, need_trustkit: bool
) -> pl.DataFrame:
    """Each distinct certificate of the scan (``cid``) with the ids of the policy pins it has.

    ``sha256_id``, ``sha1_id`` and ``trustkit_id`` number the certificate's pins when a policy
    names them (null otherwise): ``trustkit`` is the pin TrustKit iOS computes, rebuilding the
    SPKI from the raw key; ``trustkit_blocked`` marks keys it cannot hash, ``trustkit_problem``
    says why.
    """
    certs = (
        dataset.certificates.select("cert_sha256", "spki_sha256", "not_after", "key_type")
        .unique("cert_sha256")
        .with_row_index("cid")
        .collect()
    )
    if need_sha1 or need_trustkit:
        ders = (
            dataset.certificates.select("cert_sha256", "der")
            .unique("cert_sha256")
            .join(certs.lazy().select("cert_sha256", "cid"), on="cert_sha256")
            .sort("cid")
            .collect()
        )
        if need_sha1:
            certs = certs.with_columns(spki_sha1=certificates(ders["der"], sha1=True)["spki_sha1"])
        if need_trustkit:
            certs = certs.with_columns(_trustkit_pins(ders["der"]))
    if not need_sha1:
        certs = certs.with_columns(spki_sha1=pl.lit(None, pl.String))
    if not need_trustkit:
        certs = certs.with_columns(
            spki_trustkit=pl.lit(None, pl.String), trustkit_problem=pl.lit(None, pl.String)
        )
    # A certificate pin (Node.js `cert.fingerprint256`) is the hash of the whole DER: worked
    # out only when a policy has one (a million certificates' fingerprints re-encoded for none).
    ids = pin_ids.collect()
    fingerprint = pl.col("cert_sha256").str.decode("hex", strict=False).bin.encode("base64")
    certs = certs.with_columns(
        cert_b64=fingerprint if (ids["algorithm"] == CERT_SHA256).any() else pl.lit(None, pl.String)
    )
    for algorithm, column, name in (
        ("sha256", "spki_sha256", "sha256_id"),
        ("sha1", "spki_sha1", "sha1_id"),
        ("sha256", "spki_trustkit", "trustkit_id"),
        (CERT_SHA256, "cert_b64", "cert_id"),
    ):
        known = ids.filter(pl.col("algorithm") == algorithm).select(
            pl.col("pin").alias(column), pl.col("pin_id").alias(name)
        )
        certs = certs.join(known, on=column, how="left")
    return certs.select(
        "cid",
        "cert_sha256",
        "spki_sha256",
        "sha256_id",
        "sha1_id",
        "trustkit_id",
        "cert_id",
        "not_after",
        "key_type",
        "trustkit_problem",
        trustkit_blocked=pl.col("spki_trustkit").is_null()
        & pl.col("trustkit_problem").is_not_null(),
    )


def chain_pins(
    dataset: ScanDataset, endpoints: pl.LazyFrame, certs: pl.DataFrame, entries: pl.LazyFrame
) -> pl.LazyFrame:
    """Each endpoint's chain positions, with the policy pins the certificate there has
    (``certs``, from :func:`cert_pins`).

    The presented rows (``verified`` false), and each path a store builds (``verified``,
    ``path`` the store's name): the endpoint's verified chain (``primary``, its ``trust_store``'s
    path, in every dataset) and, from ``entries`` (:func:`_store_entries`), each store's path
    that differs from it; ``sent`` says whether the certificate at that position was in what
    the server presented.
    """
    ids = endpoints.select("endpoint_id", "eid", "trust_store")
    primary = pl.col("source") == "verified"
    scanned = (
        dataset.chains.select("endpoint_id", "source", "position", "cert_sha256")
        .join(ids, on="endpoint_id")
        .select(
            "eid",
            "position",
            "cert_sha256",
            verified=primary,
            primary=primary,
            path=pl.when(primary).then(pl.col("trust_store")),
        )
    )
    # The paths of other stores that differ from the verified chain above.
    others = (
        entries.filter(pl.col("verified") & pl.col("chain").is_not_null())
        .select(
            "eid",
            position=pl.int_ranges(pl.col("chain").list.len(), dtype=pl.Int16),
            cert_sha256="chain",
            verified=pl.lit(True),
            primary=pl.lit(False),
            path="store",
        )
        .explode("position", "cert_sha256")
    )
    chains = (
        pl.concat([scanned, others])
        .join(certs.lazy().select("cert_sha256", "cid"), on="cert_sha256", how="left")
        .drop("cert_sha256")
    )
    sent = chains.filter(~pl.col("verified")).select("eid", "cid").unique()
    return (
        chains.join(sent.with_columns(sent=pl.lit(True)), on=["eid", "cid"], how="left")
        .with_columns(pl.col("sent").fill_null(False))
        .join(certs.lazy().drop("cert_sha256", "spki_sha256"), on="cid", how="left")
    )


def _trustkit_pins(ders: pl.Series) -> list[pl.Series]:
    """TrustKit's view of each distinct certificate: one Python call per certificate, not per
    endpoint (a fleet serves far fewer distinct certificates than it has endpoints)."""
    views = [trustkit_spki(der) for der in ders]
    return [
        pl.Series("spki_trustkit", [pin for pin, _ in views], dtype=pl.String),
        pl.Series("trustkit_problem", [reason for _, reason in views], dtype=pl.String),
    ]


def _wanted_stores(policies: Sequence[Policy], judging: dict[str, tuple[str, ...]]) -> pl.LazyFrame:
    """(policy, rank, store): the stores a policy's platform builds its path with, first choice
    first; none for a format that names no platform."""
    rows = [
        (policy_id, rank, store)
        for policy_id, policy in enumerate(policies)
        for rank, store in enumerate(judging.get(policy.format, ()))
    ]
    return pl.LazyFrame(
        rows, schema={"policy_id": pl.Int32, "rank": pl.Int8, "store": _STORE}, orient="row"
    )


def _with_chain(
    selected: pl.LazyFrame, chains: pl.LazyFrame, checked: pl.LazyFrame, wanted: pl.LazyFrame
) -> pl.LazyFrame:
    """Adds which chain the client checks and which store judges it.

    ``platform``: the policy's first choice of store; ``wanted``: the store of its choices the
    scan verified the endpoint against, if any. The client checks that store's path when it
    verifies, else the path to the scan's private anchors (``ca_bundle``) when they verify, else
    the presented chain (with a note: the client refuses it before pins). When the scan did not
    verify against the platform's store (``store_missing``), or the format names no platform, the
    endpoint's verified chain is checked (the path of its ``trust_store``), else the presented
    one. curl checks the presented leaf; no chain is checked when nothing was presented."""
    kinds = chains.group_by("eid").agg(has_verified=pl.col("primary").any())
    pairs = selected.select("eid", "policy_id").unique()
    choice = (
        pairs.join(wanted, on="policy_id")
        .join(checked, on=["eid", "store"])
        .sort("rank")
        .group_by("eid", "policy_id")
        .agg(
            wanted=pl.col("store").first(),
            wanted_ok=pl.col("store_verified").first(),
            wanted_rows=pl.col("rows_of").first(),
        )
    )
    bundle = checked.filter(pl.col("store") == pl.lit("ca_bundle", _STORE)).select(
        "eid", bundle_ok="store_verified", bundle_rows="rows_of"
    )
    platforms = wanted.filter(pl.col("rank") == 0).select("policy_id", platform="store")
    found = pl.col("wanted").is_not_null()
    return (
        selected.join(kinds, on="eid", how="left")
        .join(choice, on=["eid", "policy_id"], how="left")
        .join(bundle, on="eid", how="left")
        .join(platforms, on="policy_id", how="left")
        .with_columns(
            has_chain=pl.col("has_verified").is_not_null(),
            has_verified=pl.col("has_verified").fill_null(False),
        )
        .with_columns(
            # Whose rows in `chains` the path is: see `rows_of` in `prepare`.
            path=pl.when(found & pl.col("wanted_ok"))
            .then(pl.col("wanted_rows"))
            .when(found & pl.col("bundle_ok").fill_null(False))
            .then(pl.col("bundle_rows"))
            .when(~found & pl.col("has_verified"))
            .then(pl.col("trust_store")),
            judge=pl.when(found & pl.col("wanted_ok"))
            .then(pl.col("wanted"))
            .when(found & pl.col("bundle_ok").fill_null(False))
            .then(pl.lit("ca_bundle", _STORE)),
        )
        .with_columns(
            # No chain at all (refused, not TLS, ...): none is checked, so none is named.
            chain=pl.when(~pl.col("has_chain"))
            .then(pl.lit(None, pl.String))
            .when(pl.col("leaf_only"))
            .then(pl.lit("leaf"))
            .when(pl.col("path").is_not_null())
            .then(pl.lit("verified"))
            .otherwise(pl.lit("presented")),
            store=pl.when(~pl.col("has_chain"))
            .then(pl.lit(None, _STORE))
            .when(found)
            .then(pl.coalesce("judge", "wanted"))
            .otherwise(pl.col("trust_store")),
            store_missing=pl.col("platform").is_not_null()
            & ~found
            & pl.col("has_chain")
            & ~pl.col("leaf_only"),
        )
        .drop("wanted_ok", "wanted_rows", "bundle_ok", "bundle_rows", "has_verified")
    )


def used_chains(rows: pl.LazyFrame, chains: pl.LazyFrame) -> pl.LazyFrame:
    """The positions of the chain each (endpoint, rule) row is checked against, with the hash
    the client compares (TrustKit's own for TrustKit policies)."""
    return (
        rows.select("eid", "policy_id", "rule_id", "chain", "trustkit_view", judged_path="path")
        .join(chains, on="eid")
        .filter(
            pl.when(pl.col("chain") == "verified")
            .then(pl.col("verified") & (pl.col("path") == pl.col("judged_path")))
            .when(pl.col("chain") == "presented")
            .then(~pl.col("verified"))
            .otherwise(~pl.col("verified") & (pl.col("position") == 0))
        )
        .with_columns(
            sha256_id=pl.when(pl.col("trustkit_view"))
            .then(pl.col("trustkit_id"))
            .otherwise(pl.col("sha256_id")),
        )
    )


def pin_matches(pins: pl.LazyFrame, used_chain: pl.LazyFrame) -> pl.LazyFrame:
    """Every (rule pin, chain position) pair that matches, where the pin-set allows it.
    Certificate pins match only where the chain knows its certificates (``cert_id``): a
    rotation scenario's chain is of new certificates, which no certificate pin names."""
    columns = [("sha256", "sha256_id"), ("sha1", "sha1_id")]
    if "cert_id" in used_chain.collect_schema():
        columns.append((CERT_SHA256, "cert_id"))
    anchors = pins.select((pl.col("positions") == _POSITIONS[Position.ANCHOR]).any()).collect()
    if anchors.item():
        # An anchor pin matches a leaf only when the leaf is the whole path (self-signed): the
        # chain's length, worked out only when a policy has anchor pins.
        used_chain = used_chain.with_columns(
            path_top=pl.col("position").max().over("eid", "rule_id")
        )
    by_algorithm = [
        pins.filter(pl.col("algorithm") == algorithm).join(
            used_chain, left_on=["rule_id", "pin_id"], right_on=["rule_id", column]
        )
        for algorithm, column in columns
    ]
    position = pl.col("position")
    allowed = (
        pl.when(pl.col("positions") == _POSITIONS[Position.LEAF])
        .then(position == 0)
        .when(pl.col("positions") == _POSITIONS[Position.CA])
        .then(position >= 1)
        .when(pl.col("positions") == _POSITIONS[Position.ANCHOR])
        .then((position >= 1) | (pl.col("path_top") == 0) if anchors.item() else position >= 1)
        .otherwise(True)
    )
    return pl.concat(by_algorithm, how="diagonal_relaxed").filter(allowed)


def enforced(selected: pl.LazyFrame) -> pl.LazyFrame:
    """The (endpoint, rule) rows of ``selected`` whose pins the client checks at this moment:
    valid, not expired, not excluded, on a chain the config's anchors trust, not switched off by
    ``overridePins`` on the anchor the chain ends at."""
    return selected.filter(
        pl.col("error").is_null()
        & ~pl.col("exclude")
        & ~pl.col("expired")
        & ~pl.col("anchor_override")
        & ~pl.col("distrusted")
    )


def judge(prepared: Prepared) -> pl.LazyFrame:
    """One row per judged (endpoint, policy) of ``prepared``: the verdict and why. Rows of
    ``selected`` and ``chains`` are all it reads of the scan, so a chain that was never served
    (a rotation scenario's) is judged exactly as a served one."""
    key = ["eid", "policy_id"]
    per_rule, chains, moment = prepared.selected, prepared.chains, prepared.moment
    anchor_note = prepared.anchor_store
    live = enforced(per_rule)
    used_chain = used_chains(live, chains)
    # Sorted once by position, so that `first()` in each group is the match nearest the leaf
    # (polars keeps the order of rows within a group).
    matches = (
        pin_matches(prepared.pins, used_chain)
        .sort("position")
        .group_by(*key, "set_key")
        .agg(
            set_position=pl.col("position").first(),
            top_position=pl.col("position").max(),
            pin=pl.col("algorithm").first() + "/" + pl.col("pin").first(),
            sent=pl.col("sent").first(),
        )
    )
    required = (
        live.select(*key, "rule_id", "enforce")
        .join(prepared.sets, on="rule_id")
        .select(*key, "set_key", "enforce")
    ).unique()
    # An enforced rule decides alone: a report-only rule beside it (HPKP's Report-Only header
    # next to its enforced one, RFC 7469 2.1) only reports. Without one, the report-only sets
    # decide between pass and report-only.
    matched = pl.col("set_position").is_not_null()
    pinned = (
        required.join(matches, on=[*key, "set_key"], how="left")
        .sort("set_position", nulls_last=True)
        .group_by(key)
        .agg(
            # Plain aggregations (polars' fast path), combined once per pair below.
            enforced_sets=(matched | ~pl.col("enforce")).all(),
            every_set=matched.all(),
            any_enforced=pl.col("enforce").any(),
            matched_position=pl.col("set_position").first(),
            matched_pin=pl.col("pin").first(),
            matched_sent=pl.col("sent").first(),
            top_match=pl.col("top_position").max(),
        )
        .with_columns(
            all_sets=pl.when(pl.col("any_enforced"))
            .then(pl.col("enforced_sets"))
            .otherwise(pl.col("every_set"))
        )
        .drop("enforced_sets", "every_set", "any_enforced")
    )
    # TrustKit walks the chain from the anchor down and blocks the connection, even when only
    # reporting, at the first certificate whose key it cannot hash, unless a pin matched above it.
    unhashable = (
        used_chain.filter(pl.col("trustkit_view") & pl.col("trustkit_blocked"))
        .sort("position")
        .group_by(key)
        .agg(
            blocked_position=pl.col("position").last(),
            blocked_reason=pl.col("trustkit_problem").last(),
        )
    )
    vetoed = (
        pin_matches(prepared.bad_pins.with_columns(positions=pl.lit(0, pl.Int8)), used_chain)
        .group_by(key)
        .agg(veto=pl.col("algorithm").first() + "/" + pl.col("pin").first())
    )
    leaf_ends = (
        used_chain.filter(pl.col("position") == 0)
        .group_by(key)
        .agg(leaf_not_after=pl.col("not_after").min())
    )
    off = pl.col("expired") | pl.col("exclude")
    summary = per_rule.group_by(key).agg(
        rule_id=pl.col("rule_id").min(),
        n_rules=pl.len(),
        error_rule=pl.col("rule_id").filter(pl.col("error").is_not_null()).min(),
        excluded=pl.col("exclude").all(),
        expired=off.all() & ~pl.col("exclude").all(),
        overridden=pl.col("anchor_override").all(),
        distrusted=pl.col("distrusted").all(),
        expires=pl.col("expires").min(),
        enforce=pl.col("enforce").filter(~off).any(),
        chain=pl.col("chain").first(),
        has_chain=pl.col("has_chain").first(),
        status=pl.col("status").first(),
        store=pl.col("store").first(),
        wanted=pl.col("wanted").first(),
        platform=pl.col("platform").first(),
        store_missing=pl.col("store_missing").first(),
        trust_store=pl.col("trust_store").first(),
    )
    labels = prepared.rules.select("rule_id", "rule", "rule_location")
    errors = prepared.rules.select(error_rule="rule_id", error="error")
    judged = (
        summary.join(pinned, on=key, how="left")
        .join(vetoed, on=key, how="left")
        .join(leaf_ends, on=key, how="left")
        .join(unhashable, on=key, how="left")
        .join(labels, on="rule_id", how="left")
        .join(errors, on="error_rule", how="left")
        .with_columns(
            blocked=pl.col("blocked_position").is_not_null()
            & (pl.col("top_match").is_null() | (pl.col("blocked_position") > pl.col("top_match"))),
            rule=pl.when(pl.col("n_rules") > 1)
            .then(pl.format("{} (+{} more)", "rule", pl.col("n_rules") - 1))
            .otherwise(pl.col("rule")),
        )
        .with_columns(
            passed=pl.col("all_sets").fill_null(False)
            & pl.col("veto").is_null()
            & ~pl.col("blocked"),
        )
        .with_columns(
            verdict=pl.when(pl.col("error").is_not_null())
            .then(pl.lit("error"))
            .when(pl.col("distrusted"))
            .then(pl.lit("fail"))
            .when(pl.col("excluded") | pl.col("overridden"))
            .then(pl.lit("unpinned"))
            .when(pl.col("expired"))
            .then(pl.lit("expired"))
            .when(~pl.col("has_chain"))
            .then(pl.lit("no_chain"))
            .when(pl.col("passed"))
            .then(pl.lit("pass"))
            .when(pl.col("enforce") | pl.col("blocked"))
            .then(pl.lit("fail"))
            .otherwise(pl.lit("report-only")),
        )
    )
    note = pl.concat_str(
        pl.when(pl.col("error").is_not_null()).then(
            "client rejects the policy: " + pl.col("error")
        ),
        pl.when(pl.col("verdict") == "unpinned").then(
            pl.when(pl.col("excluded"))
            .then(pl.lit("a more specific rule without pins covers this name"))
            .otherwise(
                pl.lit("overridePins: the anchor the chain ends at overrides pins, not checked")
            )
        ),
        pl.when(pl.col("distrusted") & pl.col("error").is_null()).then(
            "the config trusts no anchor that verifies the chain (it ends at a root of the "
            + pl.col("store").cast(pl.String)
            + " store"
            + pl.when(pl.col("store") == pl.lit("ca_bundle", _STORE))
            .then(pl.lit(", placed in the " + anchor_note + " store"))
            .otherwise(pl.lit(""))
            + "): the connection fails before pins are checked"
        ),
        pl.when(pl.col("verdict") == "expired").then(pl.lit("pin-set expired: not enforced")),
        pl.when(pl.col("verdict") == "no_chain").then(
            "no certificate was served: " + pl.col("status").cast(pl.String)
        ),
        pl.when(
            pl.col("verdict").is_in(["fail", "report-only"])
            & pl.col("veto").is_null()
            & ~pl.col("blocked")
            & ~pl.col("distrusted")
        ).then("no pin of " + pl.col("rule") + " matches the " + pl.col("chain") + " chain"),
        pl.when(pl.col("veto").is_not_null()).then("vetoed by bad pin " + pl.col("veto")),
        pl.when(pl.col("blocked")).then(
            "TrustKit cannot hash a key in the chain and blocks the connection: "
            + pl.col("blocked_reason")
        ),
        pl.when((pl.col("verdict") == "pass") & ~pl.col("matched_sent")).then(
            pl.lit("passes on a certificate the server does not send (usually the root)")
        ),
        pl.when(pl.col("chain") == "presented").then(
            pl.when(pl.col("wanted").is_not_null())
            .then(
                "chain does not verify with the "
                + pl.col("wanted").cast(pl.String)
                + " store: the client refuses it before checking pins"
            )
            .otherwise(pl.lit("chain does not verify: the client refuses it before checking pins"))
        ),
        pl.when(pl.col("store_missing") & pl.col("verdict").is_in(_JUDGED)).then(
            "the scan has no path of the "
            + pl.col("platform").cast(pl.String)
            + " store: judged on "
            + pl.when(pl.col("chain") == "verified")
            .then("the " + pl.col("trust_store").cast(pl.String) + " path")
            .otherwise(pl.lit("the presented chain"))
        ),
        pl.when(
            pl.col("verdict").is_in(["pass", "fail"]) & (pl.col("leaf_not_after") < moment)
        ).then(pl.lit("the leaf has expired at this moment")),
        separator="; ",
        ignore_nulls=True,
    )
    return judged.with_columns(
        note=pl.when(note != "").then(note),
        store=pl.when(pl.col("verdict").is_in(_JUDGED)).then(pl.col("store").cast(pl.String)),
    ).select(
        *key,
        "rule",
        "rule_location",
        "verdict",
        "matched_pin",
        "matched_position",
        "matched_sent",
        "chain",
        "expires",
        "enforce",
        "note",
        "store",
    )


#: The verdicts reached by checking pins against a chain: those a store judged.
_JUDGED = ("pass", "fail", "report-only")

__all__ = [
    "ANCHOR_STORES",
    "JUDGING_STORES",
    "OKHTTP_JVM_STORE",
    "PLATFORM_STORES",
    "RESULT_SCHEMA",
    "UNPLACED_FORMATS",
    "VERDICTS",
    "Prepared",
    "cert_pins",
    "chain_pins",
    "enforced",
    "evaluate",
    "judge",
    "platform_stores",
    "prepare",
    "scan_anchor_store",
]
