# SPDX-License-Identifier: Apache-2.0
"""The lockout analysis against the real Let's Encrypt hierarchy, a private PKI and the stores:
the cases issue 14 names, each judged through a real Android network security config."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import lechains
import polars as pl
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

import pinscan
from pinscan.catalog.graph import Catalog
from pinscan.errors import ConfigError
from pinscan.rotation import analyse, parse_scenarios
from pinscan.rotation.schema import HEADROOM_SCHEMA, LOCKOUT_SCHEMA

from fleet import pki
from policyfleet import Served, pin_of, write_dataset

#: Let's Encrypt's 2024 generation at work: R10 to R14 valid and issuing, Gen Y not yet begun.
SPRING_2025 = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)


def nsc(
    tmp_path: Path, name: str, *pins: str, domain: str = "example.com"
) -> pinscan.policy.Policy:
    """An Android network security config pinning ``pins`` for ``domain`` and below."""
    body = "".join(f'<pin digest="SHA-256">{pin}</pin>' for pin in pins)
    path = tmp_path / f"{name}.xml"
    path.write_text(
        "<network-security-config><domain-config>"
        f'<domain includeSubdomains="true">{domain}</domain><pin-set>{body}</pin-set>'
        "</domain-config></network-security-config>"
    )
    return pinscan.load_policy(path)


def outcomes(frame: pl.DataFrame, name: str | None = None) -> dict[str, str]:
    rows = frame if name is None else frame.filter(pl.col("name") == name)
    return {str(s): str(o) for s, o in rows.select("scenario", "outcome").iter_rows()}


@pytest.fixture(scope="module")
def r10_scan(tmp_path_factory) -> pinscan.ScanDataset:
    """api.example.com under R10 and ISRG Root X1, as Android builds it."""
    leaf = pki.leaf("api.example.com", key="rsa")
    return lechains.write(
        tmp_path_factory.mktemp("r10"), [("api.example.com", leaf, ["R10", "ISRG Root X1"])]
    )


def test_the_scenario_tables_keep_their_columns(r10_scan, tmp_path) -> None:
    analysis = analyse(r10_scan, nsc(tmp_path, "r10", lechains.pin("R10")), as_of=SPRING_2025)
    assert analysis.lockout.schema == LOCKOUT_SCHEMA
    assert analysis.headroom().schema == HEADROOM_SCHEMA
    assert pinscan.lockout(
        r10_scan, nsc(tmp_path, "r10", lechains.pin("R10")), as_of=SPRING_2025
    ).equals(analysis.lockout)


def test_pinning_only_r10_locks_out_on_r11_and_every_sibling_pinned_survives(
    r10_scan, tmp_path
) -> None:
    only = analyse(r10_scan, nsc(tmp_path, "r10", lechains.pin("R10")), as_of=SPRING_2025)
    seen = outcomes(only.lockout)
    # Let's Encrypt picks R10 to R14 at random per certificate: the catalog's siblings.
    assert {s for s in seen if s.startswith("sibling:")} == {f"sibling:R{n}" for n in range(11, 15)}
    assert seen["sibling:R11"] == "locks_out"
    assert seen["renew_new_key"] == seen["renew_same_key"] == "survives"
    chain = only.lockout.filter(pl.col("scenario") == "sibling:R11")["new_chain"].cast(pl.String)
    assert chain.to_list() == ["new leaf key > R11 > ISRG Root X1"]
    gate = only.gate()
    assert set(gate["scenario"].cast(pl.String)) == {f"sibling:R{n}" for n in range(11, 15)}
    every = [lechains.pin(f"R{n}") for n in range(10, 15)]
    all_pinned = analyse(r10_scan, nsc(tmp_path, "all", *every), as_of=SPRING_2025)
    assert set(outcomes(all_pinned.lockout).values()) - {"untrusted"} == {"survives"}
    assert all_pinned.gate().is_empty()


def test_after_gen_y_began_the_siblings_are_its_active_and_backup_set(r10_scan, tmp_path) -> None:
    """Today (after the page of 2026-07-08 retired R10 to R14) a renewal comes from YR1, YR2
    or YR3, under Root YR, which Android's store does not hold: through its cross-sign by X1."""
    now = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
    r10 = analyse(r10_scan, nsc(tmp_path, "r10", lechains.pin("R10")), as_of=now)
    seen = outcomes(r10.lockout)
    assert {s for s in seen if s.startswith("sibling:")} == {
        "sibling:YR1",
        "sibling:YR2",
        "sibling:YR3",
    }
    assert {seen[f"sibling:YR{n}"] for n in (1, 2, 3)} == {"locks_out"}
    chains = set(r10.lockout["new_chain"].cast(pl.String))
    assert "new leaf key > YR1 > Root YR > ISRG Root X1" in chains
    gen_y = [lechains.pin(n) for n in ("R10", "YR1", "YR2", "YR3")]
    assert analyse(r10_scan, nsc(tmp_path, "geny", *gen_y), as_of=now).gate().is_empty()
    root = analyse(r10_scan, nsc(tmp_path, "x1", lechains.pin("ISRG Root X1")), as_of=now)
    assert root.gate().is_empty()


def test_a_leaf_key_pin_locks_out_when_the_key_changes(tmp_path) -> None:
    leaf = pki.leaf("api.example.com", key="rsa")
    scan = lechains.write(tmp_path / "ds", [("api.example.com", leaf, ["R10", "ISRG Root X1"])])
    spare = ec.generate_private_key(ec.SECP256R1()).public_key()
    spare_file = tmp_path / "spare.pem"
    spare_file.write_bytes(spare.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    spare_pin = pinscan.spki_pin(spare_file.read_bytes())
    leaf_only = nsc(tmp_path, "leaf", pin_of(leaf))
    seen = outcomes(analyse(scan, leaf_only, backup_keys=[spare_file], as_of=SPRING_2025).lockout)
    assert seen["renew_same_key"] == "survives"
    assert seen["renew_new_key"] == "locks_out"
    assert seen["backup_key"] == "locks_out"
    # certbot's default makes a new key for a certificate from a sibling too.
    assert seen["sibling:R11"] == "locks_out"
    with_spare = nsc(tmp_path, "spare", pin_of(leaf), spare_pin)
    seen = outcomes(analyse(scan, with_spare, backup_keys=[spare_file], as_of=SPRING_2025).lockout)
    assert (seen["backup_key"], seen["renew_new_key"]) == ("survives", "locks_out")


def test_a_root_pin_survives_renewals_and_siblings_and_locks_out_on_a_switch(
    r10_scan, tmp_path
) -> None:
    root = nsc(tmp_path, "root", lechains.pin("ISRG Root X1"))
    analysis = analyse(r10_scan, root, switch_to=["DigiCert"], as_of=SPRING_2025)
    seen = outcomes(analysis.lockout)
    assert {seen["renew_new_key"], seen["renew_same_key"]} == {"survives"}
    assert {o for s, o in seen.items() if s.startswith("sibling:")} == {"survives"}
    switches = {s: o for s, o in seen.items() if s.startswith("switch:")}
    assert switches == {"switch:DigiCert": "locks_out"}
    chain = analysis.lockout.filter(pl.col("kind") == "switch")["new_chain"].cast(pl.String)[0]
    assert chain.startswith("new leaf key > ") and "DigiCert" in chain
    # A switch is an emergency: it is reported, and gates only when named.
    assert analysis.gate().is_empty()
    assert set(analysis.gate("switch")["scenario"].cast(pl.String)) == {"switch:DigiCert"}


def test_the_families_the_fleet_uses_are_the_default_switches(tmp_path) -> None:
    scan = lechains.write(
        tmp_path / "ds",
        [
            ("api.example.com", pki.leaf("api.example.com", key="rsa"), ["R10", "ISRG Root X1"]),
            ("www.example.org", pki.leaf("www.example.org", key="rsa"), ["R11", "ISRG Root X1"]),
        ],
    )
    analysis = analyse(scan, nsc(tmp_path, "x1", lechains.pin("ISRG Root X1")), "switch")
    # Both are Let's Encrypt's: no other family to switch to.
    assert analysis.lockout.is_empty()
    with pytest.raises(
        ConfigError, match="switch_to: 'No Such CA Anywhere' is no CA family or issuing CA"
    ):
        analyse(
            scan,
            nsc(tmp_path, "x1", lechains.pin("ISRG Root X1")),
            "switch",
            switch_to=["No Such CA Anywhere"],
        )


def test_a_private_pki_given_as_a_catalog_behaves_as_a_public_one(tmp_path) -> None:
    """Two issuing intermediates under one private root: the catalog learns them from PEM files,
    as --ca-catalog gives them."""
    scan = write_dataset(
        tmp_path / "ds", [Served("api.corp.example", pki.leaf("api.corp.example"))]
    )
    files = []
    for issued, name in (
        (pki.root(), "root"),
        (pki.intermediate(), "one"),
        (pki.second_intermediate(), "two"),
    ):
        path = tmp_path / f"{name}.pem"
        path.write_bytes(issued.cert.public_bytes(Encoding.PEM))
        files.append(path)
    catalog = Catalog.shipped().with_pems(files)
    policy = nsc(tmp_path, "int", pin_of(pki.intermediate()), domain="corp.example")
    seen = outcomes(analyse(scan, policy, catalog=catalog).lockout)
    assert seen["sibling:Pinscan Test Intermediate 2"] == "locks_out"
    assert seen["renew_new_key"] == "survives"
    both = nsc(
        tmp_path,
        "both",
        pin_of(pki.intermediate()),
        pin_of(pki.second_intermediate()),
        domain="corp.example",
    )
    routine = analyse(scan, both, "routine,renew_same_key", catalog=catalog)
    assert set(outcomes(routine.lockout).values()) == {"survives"}
    root = nsc(tmp_path, "root", pin_of(pki.root()), domain="corp.example")
    assert set(
        outcomes(analyse(scan, root, catalog=catalog, scenarios="routine").lockout).values()
    ) == {"survives"}
    # Without the private CAs the catalog knows no sibling: renewals only.
    assert not any(s.startswith("sibling:") for s in outcomes(analyse(scan, policy).lockout))


def test_a_removed_root_is_replaced_through_a_cross_sign_the_catalog_knows(tmp_path) -> None:
    by_root, by_platform = pki.cross_signed()
    leaf = pki.cross_signed_leaf("x.corp.example")
    path = [leaf.der, by_root.der, pki.root().der]
    scan = lechains.write_paths(tmp_path / "ds", [("x.corp.example", path)], store="ca_bundle")
    files = []
    for issued, name in (
        (pki.root(), "root"),
        (pki.platform_root(), "platform"),
        (by_root, "a"),
        (by_platform, "b"),
    ):
        path = tmp_path / f"{name}.pem"
        path.write_bytes(issued.cert.public_bytes(Encoding.PEM))
        files.append(path)
    catalog = Catalog.shipped().with_pems(files)
    on_root = nsc(tmp_path, "root", pin_of(pki.root()), domain="corp.example")
    analysis = analyse(scan, on_root, "root_removed", catalog=catalog)
    row = analysis.lockout.row(0, named=True)
    assert str(row["new_chain"]) == (
        "same leaf key > Pinscan Cross-Signed Intermediate > Pinscan Platform Root"
    )
    assert row["outcome"] == "locks_out"
    both = nsc(
        tmp_path, "both", pin_of(pki.root()), pin_of(pki.platform_root()), domain="corp.example"
    )
    assert outcomes(analyse(scan, both, "root_removed", catalog=catalog).lockout) == {
        "root_removed": "survives"
    }
    # With no other path the chain does not build at all: untrusted, whatever the pins.
    alone = outcomes(analyse(scan, on_root, "root_removed").lockout)
    assert alone == {"root_removed": "untrusted"}


def test_an_android_pin_on_a_root_only_android_holds_is_judged_on_android(tmp_path) -> None:
    by_platform = pki.cross_signed()[1]
    leaf = pki.cross_signed_leaf("x.test")
    android_path = (leaf.der, by_platform.der, pki.platform_root().der)
    scan = write_dataset(
        tmp_path / "ds",
        [
            Served(
                "x.test",
                leaf,
                trust_store="mozilla",
                store_paths=[("mozilla", True, ()), ("android", True, android_path)],
            )
        ],
    )
    policy = nsc(tmp_path, "platform", pin_of(pki.platform_root()), domain="x.test")
    analysis = analyse(scan, policy, "routine")
    rows = analysis.lockout
    assert set(rows["store"].cast(pl.String)) == {"android"}
    assert outcomes(rows) == {"renew_new_key": "survives"}
    assert str(rows["new_chain"][0]).endswith("> Pinscan Platform Root")
    room = analysis.headroom().row(0, named=True)
    assert (room["today"], room["store"], room["carrier"]) == ("pass", "android", "root")


def test_the_gate_counts_only_endpoints_that_pass_today(tmp_path) -> None:
    scan = lechains.write(
        tmp_path / "ds",
        [
            ("api.example.com", pki.leaf("api.example.com", key="rsa"), ["R10", "ISRG Root X1"]),
            ("old.example.com", pki.leaf("old.example.com", key="rsa"), ["R11", "ISRG Root X1"]),
        ],
    )
    analysis = analyse(scan, nsc(tmp_path, "r10", lechains.pin("R10")), as_of=SPRING_2025)
    assert dict(
        analysis.today.join(analysis.endpoints, on="eid")
        .select(pl.col("name").cast(pl.String), pl.col("today").cast(pl.String))
        .iter_rows()
    ) == {
        "api.example.com": "pass",
        "old.example.com": "fail",
    }
    assert set(analysis.gate()["name"].cast(pl.String)) == {"api.example.com"}
    assert "old.example.com" in set(analysis.lockout["name"].cast(pl.String))


def test_headroom_counts_the_pins_and_where_they_match(r10_scan, tmp_path) -> None:
    pins = (lechains.pin("R10"), lechains.pin("ISRG Root X1"), lechains.pin("R11"))
    room = analyse(r10_scan, nsc(tmp_path, "two", *pins), as_of=SPRING_2025).headroom()
    row = room.row(0, named=True)
    assert row["pins_matched"] == 2
    assert [str(p) for p in row["positions"]] == ["intermediate", "root"]
    assert (row["carrier"], row["pass_ends"]) == (
        "root",
        dt.datetime(2035, 6, 4, 11, 4, 38, tzinfo=dt.UTC),
    )
    assert "sibling:R12" in {str(s) for s in row["survives"]} and row["locks_out"] == []


def test_a_leaf_that_carries_the_only_pin_and_expires_soon_is_a_finding(tmp_path) -> None:
    leaf = pki.leaf("api.example.com", key="rsa")
    scan = lechains.write(tmp_path / "ds", [("api.example.com", leaf, ["R10", "ISRG Root X1"])])
    ends = leaf.cert.not_valid_after_utc
    analysis = analyse(
        scan, nsc(tmp_path, "leaf", pin_of(leaf)), as_of=ends - dt.timedelta(days=12, hours=1)
    )
    found = analysis.expiry_findings(30)
    assert found["kind"].to_list() == ["expiry_headroom"]
    assert found["message"][0] == (
        "api.example.com passes only through its leaf key; the leaf expires within 12 days "
        f"({ends:%Y-%m-%d}); a renewal with a new key (certbot's default) locks out"
    )
    assert analysis.expiry_findings(5).is_empty()


def test_scenarios_are_chosen_by_kind_and_by_name() -> None:
    routine = parse_scenarios("routine")
    assert routine.matches("sibling:R11", "sibling") and not routine.matches(
        "root_removed", "root_removed"
    )
    named = parse_scenarios("renew_new_key,sibling:r1?")
    assert named.matches("sibling:R11", "sibling") and not named.matches("sibling:YR1", "sibling")
    assert parse_scenarios(["all"]).matches("switch:DigiCert Inc", "switch")
    with pytest.raises(ConfigError, match="scenarios: no scenario 'renewal'"):
        parse_scenarios("renewal")


def test_only_the_scenarios_asked_for_are_made(r10_scan, tmp_path) -> None:
    analysis = analyse(
        r10_scan, nsc(tmp_path, "r10", lechains.pin("R10")), "sibling:R11", as_of=SPRING_2025
    )
    assert outcomes(analysis.lockout) == {"sibling:R11": "locks_out"}
    assert analysis.scenarios["scenario"].to_list() == ["sibling:R11"]
