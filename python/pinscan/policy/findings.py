# SPDX-License-Identifier: Apache-2.0
"""Fleet-wide findings about the policies themselves: what would brick an app next, not whether
one endpoint passes today (that is :func:`pinscan.policy.evaluate.evaluate`).

One row per finding: ``no_backup_pin`` (every pin of a rule is in a current chain, so losing that
key bricks the app: RFC 7469 §4.3, TrustKit), ``stale_pins`` (no pin matches anything served),
``rotation_risk`` (only leaf keys match and a leaf expires soon), ``pinset_expiring`` and
``pinset_expired``, ``policy_error`` and ``policy_warning`` (what the client rejects or skips),
``store_missing`` (the scan has no path of the policy's platform store for some endpoints, which
were judged on the scan's own verified chain instead),
``trustkit_hash`` (TrustKit's rebuilt SPKI differs or cannot be made), ``node_pubkey`` (a pin
that is Node's ``sha256(cert.pubkey)`` of an EC leaf it covers: a hash of the raw EC point, not of
the SPKI the policy's client hashes, so it never matches) and ``artifact_error`` (something inside
an app given as a policy that could not be read: a refused member, a DEX that does not decode; a
policy or pinner there is missing from the verdicts).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping

import polars as pl

from pinscan.certs.keys import spki_der
from pinscan.dataset import ScanDataset
from pinscan.errors import InputError
from pinscan.policy.artifacts.model import Artifact
from pinscan.policy.evaluate import Prepared, pin_matches, prepare, used_chains
from pinscan.policy.model import Policy
from pinscan.policy.trustkit_hash import spki_parts

SEVERITIES = ("error", "warning", "info")

FINDINGS_SCHEMA = pl.Schema(
    {
        "policy": pl.String,
        "rule": pl.String,
        "location": pl.String,
        "kind": pl.String,
        "severity": pl.Enum(list(SEVERITIES)),
        "endpoints": pl.Int64,
        "message": pl.String,
    }
)


def findings(
    dataset: ScanDataset,
    policies: Policy | Iterable[Policy],
    as_of: dt.datetime | dt.date | None = None,
    *,
    days: int = 30,
    stores: str | Mapping[str, str] | None = None,
    okhttp_jvm: bool = False,
    artifacts: Iterable[Artifact] = (),
) -> pl.DataFrame:
    """Findings across the fleet; ``days`` is the horizon of "expiring soon"; ``stores`` and
    ``okhttp_jvm`` pick the store that judges each format, as for
    :func:`~pinscan.policy.evaluate.evaluate`; ``artifacts``, the apps the policies came from,
    add a row for each thing in them that could not be read."""
    prepared = prepare(dataset, policies, as_of, stores=stores, okhttp_jvm=okhttp_jvm)
    frames = [
        _artifact_errors(artifacts),
        _from_files(prepared),
        _per_rule(prepared, days),
        _per_certificate(prepared),
        _node_pins(dataset, prepared),
        _store_missing(prepared),
    ]
    return (
        pl.concat([f.cast(FINDINGS_SCHEMA) for f in frames])  # type: ignore[arg-type]
        .sort("severity", "policy", "location", "kind")
        .select(FINDINGS_SCHEMA.names())
    )


def _frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=FINDINGS_SCHEMA)


def _from_files(prepared: Prepared) -> pl.DataFrame:
    rows = []
    for policy in prepared.policies:
        if policy.error:
            rows.append(
                {
                    "policy": policy.name,
                    "location": str(policy.error_location or policy.name),
                    "kind": "policy_error",
                    "severity": "error",
                    "message": f"the client rejects this file: {policy.error}",
                }
            )
        for rule in policy.rules:
            if rule.error and not policy.error:
                rows.append(
                    {
                        "policy": policy.name,
                        "rule": rule.label(),
                        "location": str(rule.location),
                        "kind": "policy_error",
                        "severity": "error",
                        "message": f"the client rejects this rule: {rule.error}",
                    }
                )
        rows.extend(
            {
                "policy": policy.name,
                "location": str(w.location),
                "kind": "policy_warning",
                "severity": "warning",
                "message": w.message,
            }
            for w in policy.warnings
        )
    return _frame(rows)


def _artifact_errors(artifacts: Iterable[Artifact]) -> pl.DataFrame:
    return _frame(
        [
            {
                "policy": artifact.path,
                "location": where,
                "kind": "artifact_error",
                "severity": "warning",
                "message": f"could not be read, so what it holds is not judged: {what}",
            }
            for artifact in artifacts
            for where, what in artifact.problems()
        ]
    )


def _per_rule(prepared: Prepared, days: int) -> pl.DataFrame:
    moment = prepared.moment
    horizon = moment + dt.timedelta(days=days)
    names = pl.LazyFrame(
        {
            "policy_id": list(range(len(prepared.policies))),
            "policy": [p.name for p in prepared.policies],
        },
        schema={"policy_id": pl.Int32, "policy": pl.String},
    )
    rules = prepared.rules.join(names, on="policy_id").filter(
        pl.col("error").is_null() & ~pl.col("exclude")
    )
    # Endpoints a rule covers and for which the scan has a chain to judge.
    covered = prepared.selected.filter(pl.col("has_chain"))
    used = used_chains(covered, prepared.chains)
    matched = pin_matches(prepared.pins, used)
    per_rule = rules.join(
        covered.group_by("rule_id").agg(endpoints=pl.col("eid").n_unique()),
        on="rule_id",
        how="left",
    ).join(
        matched.group_by("rule_id").agg(
            served_pins=pl.col("pin").n_unique(),
            only_leaf=(pl.col("position") == 0).all(),
        ),
        on="rule_id",
        how="left",
    )
    rule_pins = prepared.pins.group_by("rule_id").agg(pins=pl.col("pin").n_unique())
    leaf_expiry = (
        used.filter(pl.col("position") == 0)
        .group_by("rule_id")
        .agg(leaf_not_after=pl.col("not_after").min())
    )
    per_rule = (
        per_rule.join(rule_pins, on="rule_id", how="left")
        .join(leaf_expiry, on="rule_id", how="left")
        .with_columns(
            pl.col("endpoints").fill_null(0),
            pl.col("served_pins").fill_null(0),
            pl.col("pins").fill_null(0),
        )
        .collect()
    )
    rows = []
    # Expiry of rules that cover nothing scanned is said once per policy, not once per rule: a
    # browser list holds hundreds of them.
    idle: dict[tuple[str, str], list[dict]] = {}
    for r in per_rule.iter_rows(named=True):  # one row per rule: policies are small
        base = {"policy": r["policy"], "rule": r["rule"], "location": r["rule_location"]}
        covered_n = r["endpoints"]
        if not covered_n and r["expires"] is not None and r["expires"] <= horizon:
            kind = "pinset_expired" if r["expired"] else "pinset_expiring"
            idle.setdefault((r["policy"], kind), []).append(r)
            continue
        if r["expires"] is not None and r["expired"]:
            rows.append(
                {
                    **base,
                    "kind": "pinset_expired",
                    "severity": "warning",
                    "endpoints": covered_n,
                    "message": f"pin-set expired {r['expires']:%Y-%m-%d %H:%M} UTC: not enforced",
                }
            )
        elif r["expires"] is not None and r["expires"] <= horizon:
            rows.append(
                {
                    **base,
                    "kind": "pinset_expiring",
                    "severity": "warning",
                    "endpoints": covered_n,
                    "message": f"pin-set expires {r['expires']:%Y-%m-%d %H:%M} UTC, "
                    f"within {days} days: ship an update with new pins before then",
                }
            )
        if not covered_n or r["expired"]:
            continue
        if r["served_pins"] == 0:
            rows.append(
                {
                    **base,
                    "kind": "stale_pins",
                    "severity": "warning",
                    "endpoints": covered_n,
                    "message": f"none of the {r['pins']} pins matches anything the "
                    f"{covered_n} covered endpoints serve",
                }
            )
            continue
        if r["served_pins"] >= r["pins"]:
            rows.append(
                {
                    **base,
                    "kind": "no_backup_pin",
                    "severity": "warning",
                    "endpoints": covered_n,
                    "message": f"all {r['pins']} pins are in current chains: no backup pin, "
                    "so losing one of those keys bricks the client",
                }
            )
        leaf_end = r["leaf_not_after"]
        if r["only_leaf"] and leaf_end is not None and leaf_end <= horizon:
            rows.append(
                {
                    **base,
                    "kind": "rotation_risk",
                    "severity": "warning",
                    "endpoints": covered_n,
                    "message": f"only leaf keys match and a leaf expires {leaf_end:%Y-%m-%d}: "
                    "a renewal with a new key fails unless its pin is already shipped",
                }
            )
    for (policy, kind), idle_rules in idle.items():
        first = min(idle_rules, key=lambda r: (r["expires"], r["rule_location"], r["rule"]))
        state = "expired" if kind == "pinset_expired" else f"expiring within {days} days"
        rows.append(
            {
                "policy": policy,
                "rule": first["rule"],
                "location": first["rule_location"],
                "kind": kind,
                "severity": "info",
                "endpoints": 0,
                "message": f"{len(idle_rules)} pin-set(s) {state}, covering no scanned endpoint "
                f"(the first at {first['expires']:%Y-%m-%d %H:%M} UTC, here)",
            }
        )
    return _frame(rows)


def _store_missing(prepared: Prepared) -> pl.DataFrame:
    """Once per policy: endpoints judged on another path than their platform store's, because
    the scan has none of it (a dataset of an older pinscan, or a scan without that store)."""
    missing = (
        prepared.selected.filter(pl.col("store_missing"))
        .group_by("policy_id", "platform")
        .agg(endpoints=pl.col("eid").n_unique())
        .sort("policy_id")
        .collect()
    )
    rows = []
    for r in missing.iter_rows(named=True):
        name = prepared.policies[r["policy_id"]].name
        rows.append(
            {
                "policy": name,
                "location": name,
                "kind": "store_missing",
                "severity": "warning",
                "endpoints": r["endpoints"],
                "message": f"the scan has no path of the {r['platform']} store for "
                f"{r['endpoints']} covered endpoints (written by an older pinscan, or scanned "
                f"without --trust-store {r['platform']}): they were judged on the chain of the "
                "scan's first store that verifies them; rescan to judge them as the client would",
            }
        )
    return _frame(rows)


def _per_certificate(prepared: Prepared) -> pl.DataFrame:
    """TrustKit compatibility, once per (policy, certificate) in the chains checked."""
    covered = prepared.selected.filter(pl.col("has_chain"))
    used = used_chains(covered, prepared.chains)
    names = {i: p.name for i, p in enumerate(prepared.policies)}
    rows = []
    trustkit = (
        used.filter(pl.col("trustkit_view") & pl.col("trustkit_problem").is_not_null())
        .group_by("policy_id", "trustkit_problem")
        .agg(endpoints=pl.col("eid").n_unique())
        .collect()
    )
    rows.extend(
        {
            "policy": names[r["policy_id"]],
            "location": names[r["policy_id"]],
            "kind": "trustkit_hash",
            "severity": "warning",
            "endpoints": r["endpoints"],
            "message": r["trustkit_problem"],
        }
        for r in trustkit.iter_rows(named=True)
    )
    return _frame(rows)


def _node_pins(dataset: ScanDataset, prepared: Prepared) -> pl.DataFrame:
    """Pins that are Node's hash of an EC leaf their rule covers. The Node docs pin a server with
    ``sha256(cert.pubkey)`` in ``checkServerIdentity``; for an RSA key ``pubkey`` is the SPKI,
    for an EC key the bare point, so such a pin, copied into a policy whose client hashes the
    SPKI (every format pinscan reads), names a served key yet never matches. Said only where a
    policy holds such a pin, not wherever an EC leaf is served."""
    covered = prepared.selected.filter(pl.col("has_chain")).select("policy_id", "rule_id", "eid")
    leaves = (
        covered.join(prepared.endpoints.select("eid", "endpoint_id"), on="eid")
        .join(dataset.endpoints.select("endpoint_id", "leaf_sha256"), on="endpoint_id")
        .select("policy_id", "rule_id", "eid", cert_sha256="leaf_sha256")
        .unique()
        .collect()
    )
    ec = (
        dataset.certificates.filter(pl.col("key_type") == "ec")
        .select("cert_sha256", "spki_sha256", "subject", "der")
        .unique("cert_sha256")
        .join(leaves.lazy().select("cert_sha256").unique(), on="cert_sha256")
        .collect()
    )
    if ec.is_empty():
        return _frame([])
    ec = ec.with_columns(node_pin=pl.Series([_node_pin(der) for der in ec["der"]], dtype=pl.String))
    pinned = (
        prepared.pins.filter(pl.col("algorithm") == "sha256")
        .select("rule_id", node_pin="pin")
        .unique()
        .collect()
    )
    found = (
        leaves.join(ec.drop("der"), on="cert_sha256")
        .join(pinned, on=["rule_id", "node_pin"])
        .join(prepared.rules.select("rule_id", "rule", "rule_location").collect(), on="rule_id")
        .group_by("policy_id", "rule", "rule_location", "node_pin", "spki_sha256", "subject")
        .agg(endpoints=pl.col("eid").n_unique())
        .sort("rule_location", "node_pin")
    )
    names = {i: p.name for i, p in enumerate(prepared.policies)}
    return _frame(
        [
            {
                "policy": names[r["policy_id"]],
                "rule": r["rule"],
                "location": r["rule_location"],
                "kind": "node_pubkey",
                "severity": "warning",
                "endpoints": r["endpoints"],
                "message": f"sha256/{r['node_pin']} is Node's sha256(cert.pubkey) of the EC leaf "
                f"{r['subject']}: a hash of the bare EC point, not of the SPKI this client "
                f"hashes, so it never matches; the SPKI pin is sha256/{r['spki_sha256']}",
            }
            for r in found.iter_rows(named=True)
        ]
    )


def _node_pin(der: bytes) -> str | None:
    """Base64 of sha256 over the key's bit string as the certificate holds it: the EC point
    Node's ``cert.pubkey`` returns."""
    try:
        _, _, point = spki_parts(spki_der(der))
    except (InputError, ValueError):
        return None
    return base64.b64encode(hashlib.sha256(point).digest()).decode()


__all__ = ["FINDINGS_SCHEMA", "SEVERITIES", "findings"]
