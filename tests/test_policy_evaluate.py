# SPDX-License-Identifier: Apache-2.0
"""The evaluator against the semantics table of pin-formats.md, one row at a time, over datasets
written by the real dataset writer from real certificates (tests/policyfleet.py)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

import pinscan
from pinscan.policy.evaluate import evaluate
from pinscan.policy.model import (
    ChainSource,
    Combine,
    Location,
    Match,
    Pin,
    PinSet,
    Policy,
    Position,
    Rule,
)

from fleet import pki
from policyfleet import Served, pin_of, write_dataset

HERE = Location("test.policy", 1)


def rule(host: str, match: Match, *pin_sets: PinSet, **kw) -> Rule:
    return Rule(host=host, match=match, pin_sets=pin_sets, location=HERE, **kw)


def pins(*issued: pki.Issued, positions: Position = Position.ANY) -> PinSet:
    return PinSet(tuple(Pin.sha256(pin_of(i)) for i in issued), positions)


def policy(*rules: Rule, combine=Combine.MOST_SPECIFIC, chain=ChainSource.VERIFIED, **kw):
    return Policy("p", "toml", rules, combine, chain, **kw)


def verdicts(result: pl.DataFrame) -> dict[str, str]:
    return dict(zip(result["name"], result["verdict"], strict=True))


@pytest.fixture(scope="module")
def names() -> dict[str, pki.Issued]:
    return {
        n: pki.leaf(n)
        for n in ("example.com", "a.example.com", "b.a.example.com", "other.org", "c.example.com")
    }


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, names) -> pinscan.ScanDataset:
    return write_dataset(
        tmp_path_factory.mktemp("ds"), [Served(n, issued) for n, issued in names.items()]
    )


def test_most_specific_rule_wins_and_only_it(dataset, names):
    # The parent pins only the intermediate; the child pins a key nobody serves: the child wins.
    wrong = pki.leaf("unrelated.test")
    p = policy(
        rule("example.com", Match.SUBDOMAINS, pins(pki.intermediate())),
        rule("a.example.com", Match.EXACT, pins(wrong)),
    )
    got = verdicts(evaluate(dataset, p))
    assert got == {
        "example.com": "pass",
        "a.example.com": "fail",
        "b.a.example.com": "pass",  # a.example.com is exact: b.a falls back to the parent
        "c.example.com": "pass",
        "other.org": "unpinned",
    }


def test_union_unites_every_matching_rule(dataset, names):
    p = policy(
        rule("example.com", Match.ONE_LABEL, pins(pki.leaf("unrelated.test"))),
        rule("a.example.com", Match.EXACT, pins(names["a.example.com"])),
        combine=Combine.UNION,
    )
    got = verdicts(evaluate(dataset, p))
    # OkHttp `*.example.com`: one label only, not example.com itself nor b.a.example.com.
    assert got["example.com"] == "unpinned"
    assert got["b.a.example.com"] == "unpinned"
    assert got["a.example.com"] == "pass"  # via the exact rule's pin, united with *.
    assert got["c.example.com"] == "fail"


def test_one_level_covers_exactly_one_more_label(dataset, names):
    p = policy(
        rule("example.com", Match.ONE_LEVEL, pins(pki.root(), positions=Position.CA)),
        combine=Combine.UNION,
    )
    got = verdicts(evaluate(dataset, p))
    assert got["example.com"] == "pass"
    assert got["a.example.com"] == "pass"
    assert got["b.a.example.com"] == "unpinned"


def test_positions_leaf_and_ca_lists_must_both_match(dataset, names):
    leaf = names["a.example.com"]
    both = rule(
        "a.example.com",
        Match.EXACT,
        pins(leaf, positions=Position.LEAF),
        pins(pki.intermediate(), positions=Position.CA),
    )
    ca_as_leaf = rule("example.com", Match.EXACT, pins(pki.intermediate(), positions=Position.LEAF))
    leaf_as_ca = rule(
        "c.example.com", Match.EXACT, pins(names["c.example.com"], positions=Position.CA)
    )
    result = evaluate(dataset, policy(both, ca_as_leaf, leaf_as_ca, combine=Combine.UNION))
    got = verdicts(result)
    assert got["a.example.com"] == "pass"
    assert got["example.com"] == "fail"
    assert got["c.example.com"] == "fail"
    row = result.filter(pl.col("name") == "a.example.com").row(0, named=True)
    assert row["matched_position"] == 0
    assert row["matched_pin"] == f"sha256/{pin_of(leaf)}"
    # The leaf list matches but the CA list is empty: iOS never matches an empty list.
    empty_ca = rule(
        "a.example.com", Match.EXACT, pins(leaf, positions=Position.LEAF), PinSet((), Position.CA)
    )
    assert verdicts(evaluate(dataset, policy(empty_ca)))["a.example.com"] == "fail"


def test_a_pass_on_the_root_says_the_server_does_not_send_it(dataset):
    result = evaluate(dataset, policy(rule("other.org", Match.EXACT, pins(pki.root()))))
    row = result.filter(pl.col("name") == "other.org").row(0, named=True)
    assert row["verdict"] == "pass"
    assert row["chain"] == "verified"
    assert row["matched_position"] == 2
    assert row["matched_sent"] is False
    assert "does not send" in row["note"]


def test_curl_checks_the_presented_leaf_only(dataset, names):
    ca_pin = rule("other.org", Match.EXACT, pins(pki.intermediate(), positions=Position.LEAF))
    leaf_pin = rule(
        "a.example.com", Match.EXACT, pins(names["a.example.com"], positions=Position.LEAF)
    )
    result = evaluate(dataset, policy(ca_pin, leaf_pin, chain=ChainSource.LEAF))
    got = verdicts(result)
    assert got["other.org"] == "fail"
    assert got["a.example.com"] == "pass"
    assert set(result.filter(pl.col("verdict") != "unpinned")["chain"]) == {"leaf"}


def test_expiry_is_strictly_after_the_instant(dataset):
    expires = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    p = policy(rule("other.org", Match.EXACT, pins(pki.leaf("nobody.test")), expires=expires))
    at = {
        "before": evaluate(dataset, p, as_of=expires - dt.timedelta(seconds=1)),
        "at": evaluate(dataset, p, as_of=expires),
        "after": evaluate(dataset, p, as_of=expires + dt.timedelta(microseconds=1)),
        "next day": evaluate(dataset, p, as_of=dt.date(2027, 1, 2)),
    }
    got = {k: verdicts(v)["other.org"] for k, v in at.items()}
    assert got == {"before": "fail", "at": "fail", "after": "expired", "next day": "expired"}


def test_report_only_error_exclusion_override_and_veto(dataset, names):
    nobody = pins(pki.leaf("nobody.test"))
    cases = {
        "report": policy(rule("other.org", Match.EXACT, nobody, enforce=False)),
        "error": policy(
            rule("other.org", Match.EXACT, pins(names["other.org"])),
            error="bad date",
            error_location=Location("f.xml", 7),
        ),
        "rule error": policy(rule("other.org", Match.EXACT, nobody, error="fewer than 2 pins")),
        "override": policy(
            rule("other.org", Match.EXACT, nobody, override_pins=frozenset({"system"}))
        ),
        "veto": policy(
            rule(
                "other.org",
                Match.EXACT,
                pins(pki.root()),
                bad_pins=(Pin.sha256(pin_of(pki.intermediate())),),
            )
        ),
    }
    rows = {
        k: evaluate(dataset, p).filter(pl.col("name") == "other.org").row(0, named=True)
        for k, p in cases.items()
    }
    assert rows["report"]["verdict"] == "report-only"
    assert rows["error"]["verdict"] == "error"
    assert "f.xml:7" in rows["error"]["note"]
    assert rows["rule error"]["verdict"] == "error"
    # The anchor is the scan's private bundle, placed in the system store by default (scan
    # --anchor-store): overridePins on src="system" applies to it (issue 17); placed in the
    # user store, it does not.
    assert rows["override"]["verdict"] == "unpinned"
    user = evaluate(dataset, cases["override"], anchor_store="user")
    assert user.filter(pl.col("name") == "other.org")["verdict"].item() == "fail"
    assert rows["veto"]["verdict"] == "fail"
    assert "vetoed" in rows["veto"]["note"]


def test_exclusion_and_system_override(tmp_path):
    leaf = pki.leaf("x.example.net")
    ds = write_dataset(
        tmp_path,
        [
            Served("x.example.net", leaf, trust_store="mozilla"),
            Served("y.example.net", pki.leaf("y.example.net"), trust_store="mozilla"),
        ],
    )
    nobody = pins(pki.leaf("nobody.test"))
    p = policy(
        rule("example.net", Match.SUBDOMAINS, nobody),
        rule("x.example.net", Match.EXACT, PinSet(()), exclude=True),
    )
    assert verdicts(evaluate(ds, p)) == {"x.example.net": "unpinned", "y.example.net": "fail"}
    overridden = policy(
        rule("example.net", Match.SUBDOMAINS, nobody, override_pins=frozenset({"system"}))
    )
    result = evaluate(ds, overridden)
    assert set(result["verdict"]) == {"unpinned"}
    assert "overridePins" in result["note"][0]


def test_unverified_no_chain_sni_and_sha1(tmp_path):
    leaf = pki.leaf("self.example")
    ds = write_dataset(
        tmp_path,
        [
            Served("self.example", leaf, verified=False),
            Served("down.example", None, status="refused"),
            Served("127.0.0.9", pki.leaf("named.example"), sni="Named.Example."),
        ],
    )
    from cryptography.hazmat.primitives import hashes, serialization

    spki = leaf.cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = hashes.Hash(hashes.SHA1())
    digest.update(spki)
    import base64

    sha1 = Pin.parse("sha1", base64.b64encode(digest.finalize()).decode())
    p = policy(
        rule("self.example", Match.EXACT, PinSet((sha1,))),
        rule("down.example", Match.EXACT, pins(leaf)),
        rule("named.example", Match.EXACT, pins(pki.intermediate())),
    )
    result = evaluate(ds, p)
    got = dict(zip(result["target"], result["verdict"], strict=True))
    assert got == {"self.example": "pass", "down.example": "no_chain", "127.0.0.9": "pass"}
    row = result.filter(pl.col("target") == "self.example").row(0, named=True)
    assert row["chain"] == "presented"
    assert row["matched_pin"].startswith("sha1/")
    assert "does not verify" in row["note"]
    down = result.filter(pl.col("target") == "down.example").row(0, named=True)
    assert (down["chain"], down["note"]) == (None, "no certificate was served: refused")


def test_no_policies_and_many_policies(dataset):
    assert evaluate(dataset, []).is_empty()
    p1 = policy(rule("example.com", Match.EXACT, pins(pki.intermediate())))
    p2 = Policy("q", "okhttp", p1.rules, Combine.UNION)
    result = evaluate(dataset, [p1, p2])
    assert result.height == 2 * dataset.endpoints.collect().height
    assert set(result["policy"]) == {"p", "q"}


def kinds(frame: pl.DataFrame) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for rule_label, kind in zip(frame["rule"], frame["kind"], strict=True):
        out.setdefault(kind, set()).add(rule_label)
    return out


def test_findings_backup_stale_rotation_expiry(dataset, names):
    from pinscan.policy.findings import findings

    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=10)
    gone = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    spare = pki.leaf("spare.test")  # never served: a real backup
    p = policy(
        rule("a.example.com", Match.EXACT, pins(names["a.example.com"], pki.intermediate())),
        rule("c.example.com", Match.EXACT, pins(names["c.example.com"], spare), expires=soon),
        rule("other.org", Match.EXACT, pins(spare, pki.leaf("nobody.test"))),
        rule("example.com", Match.EXACT, pins(spare), expires=gone),
    )
    found = findings(dataset, p, days=30)
    assert kinds(found) == {
        "no_backup_pin": {"a.example.com"},
        "pinset_expiring": {"c.example.com"},
        "stale_pins": {"other.org"},
        "pinset_expired": {"example.com"},
    }
    # The test PKI's leaves are EC keys, but no pin is a Node one: nothing to say about Node.
    assert "node_pubkey" not in set(found["kind"])
    # A leaf-only pin whose leaf ends within the horizon is a rotation risk.
    leaf_only = policy(rule("c.example.com", Match.EXACT, pins(names["c.example.com"], spare)))
    leaf_end = names["c.example.com"].cert.not_valid_after_utc
    days_left = (leaf_end - dt.datetime.now(dt.UTC)).days
    assert "rotation_risk" in kinds(findings(dataset, leaf_only, days=days_left + 2))
    assert "rotation_risk" not in kinds(findings(dataset, leaf_only, days=max(days_left - 2, 0)))


def test_findings_report_policy_errors_and_warnings(dataset):
    from pinscan.policy.findings import findings
    from pinscan.policy.model import Diagnostic

    p = policy(
        rule("other.org", Match.EXACT, pins(pki.root())),
        error="duplicate domain other.org",
        error_location=Location("nsc.xml", 12),
        warnings=(Diagnostic(Location("nsc.xml", 3), "skipped a bad pin"),),
    )
    found = findings(dataset, p)
    rows = {r["kind"]: r for r in found.iter_rows(named=True)}
    assert rows["policy_error"]["location"] == "nsc.xml:12"
    assert rows["policy_error"]["severity"] == "error"
    assert rows["policy_warning"]["message"] == "skipped a bad pin"


def test_trustkit_judges_with_its_own_hash_and_blocks_keys_it_cannot_hash(tmp_path):
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    from pinscan.policy.findings import findings

    ed = pki._issue("ed.example.com", ed25519.Ed25519PrivateKey.generate(), pki.intermediate(),
                    ca=False, names=("ed.example.com",))  # fmt: skip
    e3 = pki._issue("e3.example.com", rsa.generate_private_key(public_exponent=3, key_size=2048),
                    pki.intermediate(), ca=False, names=("e3.example.com",))  # fmt: skip
    ds = write_dataset(tmp_path, [Served("ed.example.com", ed), Served("e3.example.com", e3)])
    leaf_pins = lambda issued: pins(issued, pki.intermediate())  # noqa: E731
    rules = (
        rule("ed.example.com", Match.EXACT, leaf_pins(ed), enforce=False),
        rule("e3.example.com", Match.EXACT, pins(e3, pki.leaf("nobody.test"))),
    )
    trustkit = Policy("tk", "trustkit", rules, Combine.MOST_SPECIFIC)
    plain = Policy("plain", "toml", rules, Combine.MOST_SPECIFIC)
    result = evaluate(ds, [trustkit, plain])
    got = {(r["policy"], r["name"]): r for r in result.iter_rows(named=True)}
    # The real SPKI pins pass for any client that hashes the certificate's SPKI.
    assert got[("plain", "ed.example.com")]["verdict"] == "pass"
    assert got[("plain", "e3.example.com")]["verdict"] == "pass"
    # TrustKit walks from the anchor down and matches the intermediate before it reaches the
    # Ed25519 leaf, so it passes; the e=3 leaf's TrustKit hash is not its SPKI pin, and nothing
    # else in that rule matches, so it fails.
    assert got[("tk", "ed.example.com")]["verdict"] == "pass"
    assert got[("tk", "ed.example.com")]["matched_position"] == 1
    assert got[("tk", "e3.example.com")]["verdict"] == "fail"
    # An Ed25519 leaf pinned alone: TrustKit cannot hash it and blocks even when only reporting.
    alone = Policy(
        "tk2", "trustkit", (rule("ed.example.com", Match.EXACT, pins(ed), enforce=False),),
        Combine.MOST_SPECIFIC,
    )  # fmt: skip
    row = evaluate(ds, alone).filter(pl.col("name") == "ed.example.com").row(0, named=True)
    assert row["verdict"] == "fail"
    assert "TrustKit cannot hash" in row["note"]
    kinds_found = set(findings(ds, [trustkit])["kind"])
    assert "trustkit_hash" in kinds_found


def test_expiry_of_rules_covering_nothing_is_one_finding_per_policy(dataset):
    from pinscan.policy.findings import findings

    gone = dt.datetime(2024, 10, 17, tzinfo=dt.UTC)
    p = policy(
        *(rule(f"idle{i}.invalid", Match.EXACT, pins(pki.root()), expires=gone) for i in range(3)),
        rule("other.org", Match.EXACT, pins(pki.root()), expires=gone),
    )
    found = findings(dataset, p).filter(pl.col("kind") == "pinset_expired")
    by_rule = {r["rule"]: r for r in found.iter_rows(named=True)}
    assert set(by_rule) == {"other.org", "idle0.invalid"}
    assert by_rule["other.org"]["endpoints"] == 1
    assert by_rule["idle0.invalid"]["endpoints"] == 0
    assert by_rule["idle0.invalid"]["message"].startswith("3 pin-set(s) expired")
