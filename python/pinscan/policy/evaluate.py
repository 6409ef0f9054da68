# SPDX-License-Identifier: Apache-2.0
"""Judges every endpoint of a scan by every policy, as each client would: polars joins, no loop
over endpoints.

For each (endpoint, policy): the name the client connects with (the SNI override, else the host)
is split into its suffixes and joined with the rules' hosts; each format's scope (exact, any
depth, one level, one label) filters the join; the format's combination (most specific rule, or
the union of all) picks the rules; their pins are joined with the chain the client checks (the
built chain, or the presented leaf for curl) at the positions each pin-set allows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import polars as pl

from pinscan.certificates import certificates
from pinscan.dataset import ScanDataset
from pinscan.dataset.schema import PIN_RESULTS_SCHEMA as RESULT_SCHEMA
from pinscan.dataset.schema import VERDICT, VERDICTS
from pinscan.policy.model import ChainSource, Combine, Match, Policy, Position

# Trust stores whose anchors an Android `<certificates src="system">` stands for.
_PUBLIC_STORES = ("mozilla", "system")


def evaluate(
    dataset: ScanDataset,
    policies: Policy | Iterable[Policy],
    as_of: dt.datetime | dt.date | None = None,
) -> pl.DataFrame:
    """One row per (endpoint, policy) with the client's verdict.

    ``verdict`` is ``pass``, ``fail``, ``report-only`` (no pin matched, but the rule only
    reports), ``expired`` (the rule's pin-set is past its expiration at ``as_of``, so the client
    does not enforce it), ``error`` (the client rejects the policy itself), ``no_chain`` (the
    endpoint is pinned but the scan captured no certificate) or ``unpinned`` (no rule covers the
    name). ``matched_pin``/``matched_position`` say which pin matched where in ``chain`` (the
    ``verified`` chain, the ``presented`` one when the chain did not verify, or the ``leaf``);
    ``matched_sent`` is false when the pass rests on a certificate, usually the root, that the
    server did not send. ``note`` explains anything a reader would otherwise have to work out.
    """
    prepared = prepare(dataset, policies, as_of)
    if not prepared.policies:
        return pl.DataFrame(schema=RESULT_SCHEMA)
    judged = _judge(prepared)
    policies, endpoints = prepared.policies, prepared.endpoints
    policy_frame = pl.LazyFrame(
        {
            "policy_id": list(range(len(policies))),
            "policy": [p.name for p in policies],
            "format": [p.format for p in policies],
        },
        schema={"policy_id": pl.Int32, "policy": pl.String, "format": pl.String},
    )
    every = endpoints.join(policy_frame, how="cross")
    out = (
        every.join(judged, on=["endpoint_id", "policy_id"], how="left")
        .with_columns(
            verdict=pl.coalesce("verdict", pl.lit("unpinned")).cast(VERDICT),
        )
        .sort("policy_id", "endpoint_id")
        .select(RESULT_SCHEMA.names())
        .cast(RESULT_SCHEMA)  # type: ignore[arg-type]
    )
    return out.collect()


@dataclass(frozen=True)
class Prepared:
    """The frames every judgement starts from; :mod:`pinscan.policy.findings` reuses them."""

    policies: list[Policy]
    moment: dt.datetime
    endpoints: pl.LazyFrame
    rules: pl.LazyFrame
    pins: pl.LazyFrame
    bad_pins: pl.LazyFrame
    sets: pl.LazyFrame
    selected: pl.LazyFrame
    """(endpoint, rule) for each rule that applies, with the chain the client checks."""
    chains: pl.LazyFrame


def prepare(
    dataset: ScanDataset,
    policies: Policy | Iterable[Policy],
    as_of: dt.datetime | dt.date | None = None,
) -> Prepared:
    policies = [policies] if isinstance(policies, Policy) else list(policies)
    moment = instant(as_of)
    endpoints = (
        dataset.endpoints.select(
            "endpoint_id",
            "target",
            "ip",
            "port",
            "status",
            "trust_store",
            name=pl.coalesce("sni", "host").str.strip_chars_end(".").str.to_lowercase(),
        )
        .collect()
        .lazy()
    )
    rules, pins, bad_pins, sets = rule_frames(policies, moment)
    chains = chain_pins(
        dataset,
        need_sha1=_uses_sha1(policies),
        need_trustkit=any(p.format == "trustkit" for p in policies),
    )
    selected = _with_chain(select_rules(endpoints, rules), chains)
    return Prepared(policies, moment, endpoints, rules, pins, bad_pins, sets, selected, chains)


def instant(as_of: dt.datetime | dt.date | None) -> dt.datetime:
    if as_of is None:
        return dt.datetime.now(dt.UTC)
    if isinstance(as_of, dt.datetime):
        return as_of if as_of.tzinfo else as_of.replace(tzinfo=dt.UTC)
    return dt.datetime(as_of.year, as_of.month, as_of.day, tzinfo=dt.UTC)


def _uses_sha1(policies: Sequence[Policy]) -> bool:
    return any(pin.algorithm == "sha1" for p in policies for r in p.rules for pin in r.pins)


def rule_frames(
    policies: Sequence[Policy], moment: dt.datetime
) -> tuple[pl.LazyFrame, pl.LazyFrame, pl.LazyFrame, pl.LazyFrame]:
    """The policies as four small frames: rules, their pins, their veto pins, their pin-sets."""
    rules: dict[str, list] = {
        k: []
        for k in (
            "rule_id",
            "policy_id",
            "host",
            "match",
            "combine",
            "chain_kind",
            "trustkit_view",
            "rule",
            "rule_location",
            "error",
            "exclude",
            "expires",
            "expired",
            "enforce",
            "override_system",
        )
    }
    pins: dict[str, list] = {k: [] for k in ("rule_id", "set_key", "positions", "algorithm", "pin")}
    bad: dict[str, list] = {k: [] for k in ("rule_id", "algorithm", "pin")}
    sets: dict[str, list] = {k: [] for k in ("rule_id", "set_key", "positions")}
    rule_id = 0
    for policy_id, policy in enumerate(policies):
        for rule in policy.rules:
            error = policy.error or rule.error
            if policy.error and policy.error_location:
                error = f"{policy.error} ({policy.error_location})"
            rules["rule_id"].append(rule_id)
            rules["policy_id"].append(policy_id)
            rules["host"].append(rule.host)
            rules["match"].append(rule.match.value)
            rules["combine"].append(policy.combine.value)
            rules["chain_kind"].append(policy.chain.value)
            rules["trustkit_view"].append(policy.format == "trustkit")
            rules["rule"].append(rule.label())
            rules["rule_location"].append(str(rule.location))
            rules["error"].append(error)
            rules["exclude"].append(rule.exclude)
            rules["expires"].append(rule.expires)
            rules["expired"].append(rule.expires is not None and moment > rule.expires)
            rules["enforce"].append(rule.enforce)
            rules["override_system"].append("system" in rule.override_pins)
            for index, pin_set in enumerate(rule.pin_sets):
                # A union policy unites pins per position; a most-specific one keeps each set.
                key = (
                    pin_set.positions.value
                    if policy.combine is Combine.UNION
                    else f"{rule_id}:{index}"
                )
                sets["rule_id"].append(rule_id)
                sets["set_key"].append(key)
                sets["positions"].append(pin_set.positions.value)
                for pin in pin_set.pins:
                    pins["rule_id"].append(rule_id)
                    pins["set_key"].append(key)
                    pins["positions"].append(pin_set.positions.value)
                    pins["algorithm"].append(pin.algorithm)
                    pins["pin"].append(pin.digest)
            for pin in rule.bad_pins:
                bad["rule_id"].append(rule_id)
                bad["algorithm"].append(pin.algorithm)
                bad["pin"].append(pin.digest)
            rule_id += 1
    return (
        pl.LazyFrame(
            rules,
            schema={
                "rule_id": pl.Int32,
                "policy_id": pl.Int32,
                "host": pl.String,
                "match": pl.String,
                "combine": pl.String,
                "chain_kind": pl.String,
                "trustkit_view": pl.Boolean,
                "rule": pl.String,
                "rule_location": pl.String,
                "error": pl.String,
                "exclude": pl.Boolean,
                "expires": pl.Datetime("us", "UTC"),
                "expired": pl.Boolean,
                "enforce": pl.Boolean,
                "override_system": pl.Boolean,
            },
        ),
        pl.LazyFrame(
            pins,
            schema={
                "rule_id": pl.Int32,
                "set_key": pl.String,
                "positions": pl.String,
                "algorithm": pl.String,
                "pin": pl.String,
            },
        ),
        pl.LazyFrame(bad, schema={"rule_id": pl.Int32, "algorithm": pl.String, "pin": pl.String}),
        pl.LazyFrame(
            sets, schema={"rule_id": pl.Int32, "set_key": pl.String, "positions": pl.String}
        ),
    )


def select_rules(endpoints: pl.LazyFrame, rules: pl.LazyFrame) -> pl.LazyFrame:
    """(endpoint_id, rule) for every rule that applies to the endpoint's name under its format.

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
        suffixes.join(rules, left_on="suffix", right_on="host")
        .filter(scope)
        # Most specific: only the rules at the smallest distance survive (one, in a valid file).
        .filter(
            (pl.col("combine") == Combine.UNION.value)
            | (depth == depth.min().over("name", "policy_id"))
        )
    )
    return endpoints.select("endpoint_id", "name", "trust_store").join(matched, on="name")


def chain_pins(dataset: ScanDataset, *, need_sha1: bool, need_trustkit: bool) -> pl.LazyFrame:
    """Each endpoint's chain positions with the pins of the certificate there.

    ``presented`` rows, and ``verified`` rows where the chain verified; ``sent`` says whether the
    certificate at that position was in what the server presented. ``spki_trustkit`` is the pin
    TrustKit iOS computes (it rebuilds the SPKI from the raw key), null where it cannot, with
    ``trustkit_problem`` saying why; both only when a TrustKit policy is evaluated.
    """
    certs = dataset.certificates.select(
        "cert_sha256", "spki_sha256", "not_after", "key_type", "der"
    )
    certs = certs.unique("cert_sha256")
    extra: list[pl.DataFrame] = []
    if need_sha1 or need_trustkit:
        frame = certs.collect()
        if need_sha1:
            extra.append(
                certificates(frame["der"], sha1=True).select("cert_sha256", "spki_sha1").unique()
            )
        if need_trustkit:
            extra.append(_trustkit_pins(frame))
        certs = frame.lazy()
    for table in extra:
        certs = certs.join(table.lazy(), on="cert_sha256", how="left")
    if not need_sha1:
        certs = certs.with_columns(spki_sha1=pl.lit(None, pl.String))
    if not need_trustkit:
        certs = certs.with_columns(
            spki_trustkit=pl.lit(None, pl.String), trustkit_problem=pl.lit(None, pl.String)
        )
    chains = dataset.chains.select("endpoint_id", "source", "position", "cert_sha256")
    presented = chains.filter(pl.col("source") == "presented")
    sent = presented.select("endpoint_id", "cert_sha256").unique().with_columns(sent=pl.lit(True))
    return (
        chains.with_columns(pl.col("source").cast(pl.String))
        .join(sent, on=["endpoint_id", "cert_sha256"], how="left")
        .with_columns(pl.col("sent").fill_null(False))
        .join(certs.drop("der"), on="cert_sha256", how="left")
    )


def _trustkit_pins(certs: pl.DataFrame) -> pl.DataFrame:
    """TrustKit's view of each distinct certificate: one Python call per certificate, not per
    endpoint (a fleet serves far fewer distinct certificates than it has endpoints)."""
    from pinscan.policy.apple import trustkit_spki

    views = [trustkit_spki(der) for der in certs["der"]]
    return pl.DataFrame(
        {
            "cert_sha256": certs["cert_sha256"],
            "spki_trustkit": [pin for pin, _ in views],
            "trustkit_problem": [reason for _, reason in views],
        },
        schema={
            "cert_sha256": pl.String,
            "spki_trustkit": pl.String,
            "trustkit_problem": pl.String,
        },
    )


def _with_chain(selected: pl.LazyFrame, chains: pl.LazyFrame) -> pl.LazyFrame:
    """Adds which chain the client checks: the built chain when there is one, else what was
    presented (with a note); the presented leaf for curl."""
    has_verified = (
        chains.filter(pl.col("source") == "verified")
        .select("endpoint_id")
        .unique()
        .with_columns(has_verified=pl.lit(True))
    )
    has_any = chains.select("endpoint_id").unique().with_columns(has_chain=pl.lit(True))
    return (
        selected.join(has_verified, on="endpoint_id", how="left")
        .join(has_any, on="endpoint_id", how="left")
        .with_columns(
            pl.col("has_verified").fill_null(False),
            pl.col("has_chain").fill_null(False),
        )
        .with_columns(
            chain=pl.when(pl.col("chain_kind") == ChainSource.LEAF.value)
            .then(pl.lit("leaf"))
            .when(pl.col("has_verified"))
            .then(pl.lit("verified"))
            .otherwise(pl.lit("presented")),
        )
    )


def used_chains(rows: pl.LazyFrame, chains: pl.LazyFrame) -> pl.LazyFrame:
    """The positions of the chain each (endpoint, rule) row is checked against, with the hash
    the client compares (TrustKit's own for TrustKit policies)."""
    return (
        rows.select("endpoint_id", "policy_id", "rule_id", "chain", "trustkit_view")
        .join(chains, on="endpoint_id")
        .filter(
            ((pl.col("chain") == "verified") & (pl.col("source") == "verified"))
            | ((pl.col("chain") == "presented") & (pl.col("source") == "presented"))
            | (
                (pl.col("chain") == "leaf")
                & (pl.col("source") == "presented")
                & (pl.col("position") == 0)
            )
        )
        .with_columns(
            spki_sha256=pl.when(pl.col("trustkit_view"))
            .then(pl.col("spki_trustkit"))
            .otherwise(pl.col("spki_sha256"))
        )
    )


def pin_matches(pins: pl.LazyFrame, used_chain: pl.LazyFrame) -> pl.LazyFrame:
    """Every (rule pin, chain position) pair that matches, where the pin-set allows it."""
    in_chain = used_chain.unpivot(
        index=["endpoint_id", "policy_id", "rule_id", "position", "sent"],
        on=["spki_sha256", "spki_sha1"],
        variable_name="algorithm",
        value_name="pin",
    ).with_columns(pl.col("algorithm").str.strip_prefix("spki_"))
    position_ok = (
        pl.when(pl.col("positions") == Position.LEAF.value)
        .then(pl.col("position") == 0)
        .when(pl.col("positions") == Position.CA.value)
        .then(pl.col("position") >= 1)
        .otherwise(True)
    )
    return pins.join(in_chain, on=["rule_id", "algorithm", "pin"]).filter(position_ok)


def _judge(prepared: Prepared) -> pl.LazyFrame:
    key = ["endpoint_id", "policy_id"]
    per_rule, chains, moment = prepared.selected, prepared.chains, prepared.moment
    pins, bad_pins, sets = prepared.pins, prepared.bad_pins, prepared.sets
    # Rules that are enforced at this moment: not expired, not excluded, not switched off.
    live = per_rule.filter(
        pl.col("error").is_null()
        & ~pl.col("exclude")
        & ~pl.col("expired")
        & ~(pl.col("override_system") & pl.col("trust_store").is_in(_PUBLIC_STORES))
    )
    used_chain = used_chains(live, chains)
    matches = (
        pin_matches(pins, used_chain)
        .group_by(*key, "set_key")
        .agg(
            pl.col("position").min().alias("set_position"),
            pl.col("position").max().alias("top_position"),
            pl.col("pin", "algorithm", "sent").sort_by("position").first(),
        )
    )
    required = live.select(*key, "rule_id").join(sets, on="rule_id").select(*key, "set_key")
    required = required.unique()
    set_results = required.join(matches, on=[*key, "set_key"], how="left")
    # TrustKit walks the chain from the anchor down and blocks the connection, even when only
    # reporting, at the first certificate whose key it cannot hash, unless a pin matched above it.
    unhashable = (
        used_chain.filter(pl.col("trustkit_view") & pl.col("trustkit_problem").is_not_null())
        .filter(pl.col("spki_trustkit").is_null())
        .group_by(key)
        .agg(
            blocked_position=pl.col("position").max(),
            blocked_reason=pl.col("trustkit_problem").sort_by("position").last(),
        )
    )
    pinned = set_results.group_by(key).agg(
        top_match=pl.col("top_position").max(),
        all_sets=(pl.col("set_position").is_not_null()).all(),
        matched_position=pl.col("set_position").sort_by("set_position").first(),
        matched_pin=(pl.col("algorithm") + "/" + pl.col("pin"))
        .sort_by("set_position", nulls_last=True)
        .first(),
        matched_sent=pl.col("sent").sort_by("set_position", nulls_last=True).first(),
    )
    vetoed = (
        pin_matches(bad_pins.with_columns(positions=pl.lit(Position.ANY.value)), used_chain)
        .group_by(key)
        .agg(veto=pl.col("algorithm").first() + "/" + pl.col("pin").first())
    )
    leaf_expired = (
        used_chain.filter(pl.col("position") == 0)
        .group_by(key)
        .agg(leaf_not_after=pl.col("not_after").min())
    )
    summary = per_rule.group_by(key).agg(
        pl.col("rule").unique(maintain_order=True).str.join(", "),
        pl.col("rule_location").unique(maintain_order=True).str.join(", "),
        pl.col("error").drop_nulls().first(),
        excluded=pl.col("exclude").all(),
        expired=(pl.col("expired") | pl.col("exclude")).all() & ~pl.col("exclude").all(),
        overridden=(pl.col("override_system") & pl.col("trust_store").is_in(_PUBLIC_STORES)).all(),
        expires=pl.col("expires").min(),
        enforce=pl.col("enforce").filter(~pl.col("expired") & ~pl.col("exclude")).any(),
        chain=pl.col("chain").first(),
        has_chain=pl.col("has_chain").first(),
    )
    judged = (
        summary.join(pinned, on=key, how="left")
        .join(vetoed, on=key, how="left")
        .join(leaf_expired, on=key, how="left")
        .join(unhashable, on=key, how="left")
        .with_columns(
            blocked=pl.col("blocked_position").is_not_null()
            & (pl.col("top_match").is_null() | (pl.col("blocked_position") > pl.col("top_match")))
        )
        .with_columns(
            passed=pl.col("all_sets").fill_null(False)
            & pl.col("veto").is_null()
            & ~pl.col("blocked"),
        )
        .with_columns(
            verdict=pl.when(pl.col("error").is_not_null())
            .then(pl.lit("error"))
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
            .otherwise(pl.lit("overridePins: the anchor is a system CA, pins are not checked"))
        ),
        pl.when(pl.col("verdict") == "expired").then(pl.lit("pin-set expired: not enforced")),
        pl.when(
            pl.col("verdict").is_in(["fail", "report-only"])
            & pl.col("veto").is_null()
            & ~pl.col("blocked")
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
            pl.lit("chain does not verify: the client refuses it before checking pins")
        ),
        pl.when(
            pl.col("verdict").is_in(["pass", "fail"]) & (pl.col("leaf_not_after") < moment)
        ).then(pl.lit("the leaf has expired at this moment")),
        separator="; ",
        ignore_nulls=True,
    )
    return judged.with_columns(note=pl.when(note != "").then(note)).select(
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
    )


__all__ = ["RESULT_SCHEMA", "VERDICTS", "Prepared", "evaluate", "prepare"]
