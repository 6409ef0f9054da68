# SPDX-License-Identifier: Apache-2.0
"""`pinscan.diff` on precise cases: small real datasets (certificates of the test PKI, written by
pinscan's own writer) that differ in exactly one way each, including what a real fleet scan
cannot stage on loopback: addresses changing behind a name, a name that stops resolving."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pytest

import pinscan
from pinscan.dataset import history as hist
from pinscan.dataset.writer import DatasetWriter
from pinscan.diffing import CHANGES, DIFF_SCHEMA
from pinscan.errors import DatasetError
from pinscan.records import Endpoint

from fleet import pki


@dataclass
class Row:
    name: str
    ip: str | None
    issued: pki.Issued | None
    status: str = "ok"
    verified: bool = True
    extra: list[bytes] = field(default_factory=list)


def write(directory: Path, rows: list[Row]) -> pinscan.ScanDataset:
    writer = DatasetWriter.create(directory, scan_id=directory.name, arguments={}, version="t")
    endpoints = []
    for line, r in enumerate(rows, 1):
        presented = [*r.issued.chain_der, *r.extra] if r.issued else []
        verified = [*r.issued.chain_der, pki.root().der] if r.issued and r.verified else []
        endpoints.append(
            Endpoint(
                target_id=hashlib.sha256(r.name.encode()).hexdigest()[:16],
                line=line,
                target=r.name,
                host=r.name,
                ip=r.ip,
                port=443,
                sni=None,
                status=r.status,
                error=None if r.status == "ok" else f"{r.status} at {r.ip or r.name}",
                presented=presented,
                verified_chain=verified,
                verified=bool(verified) if presented else None,
                verify_error=None if verified or not presented else "unable to get issuer",
                trust_store="ca_bundle" if verified else None,
            )
        )
    writer.write(endpoints)
    writer.finish({"targets": len(rows), "endpoints": len(rows)})
    return pinscan.open(directory)


def changes(tmp_path: Path, old: list[Row], new: list[Row], **kw) -> pl.DataFrame:
    return pinscan.diff(write(tmp_path / "old", old), write(tmp_path / "new", new), **kw)


def kinds(frame: pl.DataFrame) -> list[tuple[str, str]]:
    return sorted(frame.select("target", pl.col("change").cast(pl.String)).iter_rows())


A, B = pki.leaf("a.diff.test"), pki.leaf("b.diff.test")


def test_no_change_is_an_empty_frame_with_the_schema(tmp_path: Path) -> None:
    rows = [Row("a.diff.test", "10.0.0.1", A), Row("down.diff.test", "10.0.0.2", None, "refused")]
    out = changes(tmp_path, rows, rows)
    assert out.is_empty() and out.schema == DIFF_SCHEMA
    summary = pinscan.diff_summary(out)
    assert summary["change"].cast(pl.String).to_list() == list(CHANGES)
    assert summary["count"].sum() == 0


def test_an_address_change_behind_a_name_is_the_same_endpoint(tmp_path: Path) -> None:
    out = changes(
        tmp_path, [Row("a.diff.test", "10.0.0.1", A)], [Row("a.diff.test", "10.0.0.9", A)]
    )
    assert kinds(out) == [("a.diff.test", "address_changed")]
    row = out.row(0, named=True)
    assert (row["ip"], row["old"], row["new"]) == ("10.0.0.9", "10.0.0.1", "10.0.0.9")


def test_addresses_are_paired_by_key_within_a_target(tmp_path: Path) -> None:
    # Two servers with their own keys both moved: each pairs with the one serving its key.
    old = [Row("lb.diff.test", "10.0.0.1", A), Row("lb.diff.test", "10.0.0.2", B)]
    new = [Row("lb.diff.test", "10.0.0.8", B), Row("lb.diff.test", "10.0.0.9", A)]
    out = changes(tmp_path, old, new)
    assert kinds(out) == [("lb.diff.test", "address_changed")] * 2
    assert sorted(out.select("old", "new").rows()) == [
        ("10.0.0.1", "10.0.0.9"),
        ("10.0.0.2", "10.0.0.8"),
    ]


def test_a_name_that_stops_resolving_is_a_new_failure(tmp_path: Path) -> None:
    old = [Row("a.diff.test", "10.0.0.1", A)]
    out = changes(tmp_path, old, [Row("a.diff.test", None, None, "dns_error")])
    assert kinds(out) == [("a.diff.test", "new_failure")]
    assert out.select("old", "new", "ip").row(0) == ("ok", "dns_error", "10.0.0.1")
    back = pinscan.diff(tmp_path / "new", tmp_path / "old")
    assert kinds(back) == [("a.diff.test", "recovered")]
    assert back["detail"][0] == "failing before: dns_error at a.diff.test"


def test_extra_and_missing_addresses_appear_and_vanish(tmp_path: Path) -> None:
    old = [Row("a.diff.test", "10.0.0.1", A), Row("gone.diff.test", "10.0.0.3", B)]
    new = [Row("a.diff.test", "10.0.0.1", A), Row("a.diff.test", "10.0.0.2", A)]
    out = changes(tmp_path, old, new)
    assert kinds(out) == [("a.diff.test", "appeared"), ("gone.diff.test", "vanished")]
    appeared = out.filter(pl.col("change") == "appeared").row(0, named=True)
    assert (appeared["ip"], appeared["old"], appeared["new"]) == ("10.0.0.2", None, "ok")


def test_status_changes_between_failures(tmp_path: Path) -> None:
    old = [Row("a.diff.test", "10.0.0.1", None, "refused")]
    out = changes(tmp_path, old, [Row("a.diff.test", "10.0.0.1", None, "reset")])
    assert kinds(out) == [("a.diff.test", "status_changed")]
    assert out.select("old", "new", "detail").row(0) == ("refused", "reset", "reset at 10.0.0.1")


def test_key_renewal_issuer_chain_and_verification(tmp_path: Path) -> None:
    same_key = pki._issue(
        "b.diff.test", B.key, pki.intermediate(), ca=False, names=("b.diff.test",)
    )
    other_ca = pki._issue("Diff Other CA", pki._key("ec"), pki.root(), ca=True)
    moved_ca = pki._issue("c.diff.test", A.key, other_ca, ca=False, names=("c.diff.test",))
    c = pki._issue("c.diff.test", A.key, pki.intermediate(), ca=False, names=("c.diff.test",))
    old = [
        Row("a.diff.test", "10.0.0.1", A),
        Row("b.diff.test", "10.0.0.2", B),
        Row("c.diff.test", "10.0.0.3", c),
        Row("d.diff.test", "10.0.0.4", A),
        Row("e.diff.test", "10.0.0.5", A),
    ]
    new = [
        Row("a.diff.test", "10.0.0.1", B),  # another key
        Row("b.diff.test", "10.0.0.2", same_key),  # renewed
        Row("c.diff.test", "10.0.0.3", moved_ca),  # same key, another CA
        Row("d.diff.test", "10.0.0.4", A, extra=[pki.root().der]),  # now sends the root too
        Row("e.diff.test", "10.0.0.5", A, verified=False),  # same chain, no longer verifies
    ]
    out = changes(tmp_path, old, new)
    assert kinds(out) == [
        ("a.diff.test", "key_rotated"),
        ("b.diff.test", "renewed"),
        ("c.diff.test", "issuer_changed"),
        ("c.diff.test", "renewed"),
        ("d.diff.test", "chain_changed"),
        ("e.diff.test", "verification_changed"),
    ]
    by = {(r["target"], r["change"]): r for r in out.iter_rows(named=True)}
    rotated = by[("a.diff.test", "key_rotated")]
    assert (rotated["old"], rotated["new"]) == (pinscan.spki_pin(A.der), pinscan.spki_pin(B.der))
    renewal = by[("b.diff.test", "renewed")]
    assert renewal["new"] == hashlib.sha256(same_key.der).hexdigest()
    assert renewal["detail"].startswith("new certificate, same key; valid until 20")
    assert by[("c.diff.test", "issuer_changed")]["new"] == "CN=Diff Other CA,O=Pinscan Test Fleet"
    chain = by[("d.diff.test", "chain_changed")]
    assert len(chain["new"].split()) == 2 and chain["detail"].endswith(
        "[CN=Pinscan Test Intermediate,O=Pinscan Test Fleet | "
        "CN=Pinscan Test Root,O=Pinscan Test Fleet]"
    )
    flip = by[("e.diff.test", "verification_changed")]
    assert (flip["old"], flip["new"]) == ("verified", "unverified")
    assert flip["detail"] == "chain no longer verifies: unable to get issuer"


def test_verdict_changes_with_policies(tmp_path: Path) -> None:
    policy = pinscan.load_policies(
        f'[[pin-set]]\ndomain = "a.diff.test"\npositions = "leaf"\n'
        f'pins = ["sha256/{pinscan.spki_pin(A.der)}"]\n'.encode(),
        "toml",
    )
    old = [Row("a.diff.test", "10.0.0.1", A), Row("b.diff.test", "10.0.0.2", B)]
    new = [Row("a.diff.test", "10.0.0.9", B), Row("b.diff.test", "10.0.0.2", A)]
    out = changes(tmp_path, old, new, policies=policy)
    verdicts = out.filter(pl.col("change") == "verdict_changed")
    # Matched through the address change; b is unpinned either way.
    assert verdicts.select("target", "ip", "old", "new").rows() == [
        ("a.diff.test", "10.0.0.9", "pass", "fail")
    ]
    assert "a.diff.test" in verdicts["detail"][0]
    assert pinscan.diff(tmp_path / "old", tmp_path / "new", []).equals(
        pinscan.diff(tmp_path / "old", tmp_path / "new")
    )


def test_diff_compares_one_scan_with_another(tmp_path: Path) -> None:
    write(tmp_path / "one", [Row("a.diff.test", "10.0.0.1", A)])
    with pytest.raises(DatasetError, match="holds one scan"):
        pinscan.diff(f"{tmp_path / 'one'}@-2", tmp_path / "one")
    history = tmp_path / "H"
    for name in ("s1", "s2"):
        hist.prepare(history)
        write(history / "_staging" / name, [Row("a.diff.test", "10.0.0.1", A)])
        hist.commit(history, history / "_staging" / name)
    every = pinscan.open(history, scans="all")
    with pytest.raises(DatasetError, match="holds 2 scans"):
        pinscan.diff(every, history)
    assert pinscan.diff(f"{history}@s1", f"{history}@s2").is_empty()
