# SPDX-License-Identifier: Apache-2.0
"""`pinscan suggest` with the CA catalog: the pin-set covers every sibling of today's issuing CA,
on Let's Encrypt's real hierarchy (certificates from the vendored sources, pins computed from
them, not from the catalog's rows) and on a private PKI given as a CA catalog.

Each suggestion is then judged by `pinscan.evaluate` on chains from every sibling: an endpoint
per (sibling, path to a root), the test PKI's leaf under the real CA certificates (the evaluator
judges pins, not signatures)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import tarfile
from pathlib import Path

import lechains
import polars as pl
import pytest
from cryptography.hazmat.primitives import serialization

import pinscan
from pinscan.catalog.graph import Catalog
from pinscan.certs.keys import read_certificates
from pinscan.policy.formats import read
from pinscan.policy.suggest import BackupKey, render, suggest
from pinscan.rotation import analyse
from pinscan.rotation.suggested import survival

from cliresult import run
from fleet import pki
from policyfleet import Served, write_dataset

SOURCES = Path(__file__).resolve().parents[1] / "data" / "ca-sources.tar.xz"
#: A day when R10-R14 and E5-E9 are retired but valid, YR1/YR2 and YE1/YE2 active and YR3/YE3
#: backups (the catalog's Let's Encrypt page is of 2026-07-08).
AS_OF = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)

# Each Let's Encrypt CA certificate the tests serve, by file in the sources' letsencrypt/.
RSA_SIBLINGS = {f"R1{n}": f"2024/r1{n}.pem" for n in range(5)} | {
    f"YR{n}": f"gen-y/int-yr{n}.pem" for n in (1, 2, 3)
}
ECDSA_SIBLINGS = {f"E{n}": f"2024/e{n}.pem" for n in range(5, 10)} | {
    f"YE{n}": f"gen-y/int-ye{n}.pem" for n in (1, 2, 3)
}


@pytest.fixture(scope="module")
def le() -> dict[str, bytes]:
    """Let's Encrypt's certificates as the vendored sources hold them: path -> DER."""
    found = {}
    with tarfile.open(SOURCES) as archive:
        for member in archive:
            path = member.name.removeprefix("data/letsencrypt/")
            if member.isfile() and path != member.name and path.endswith(".pem"):
                data = archive.extractfile(member)
                assert data is not None
                found[path] = read_certificates(data.read())[0]
    return found


@pytest.fixture(scope="module")
def spare(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("spare") / "spare.pem"
    key = pki.leaf("spare.invalid").key.public_key()
    path.write_bytes(
        key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


def chains_dataset(
    directory: Path, served: dict[str, list[bytes]], host: str | None = None
) -> pinscan.ScanDataset:
    """One endpoint per target, each with its verified chain (leaf first, root last) and the
    chain below the root as presented; named ``host``, else its target."""
    return lechains.write_paths(directory, list(served.items()), store="mozilla", host=host)


def leaf(name: str) -> bytes:
    return pki.leaf(name).der


def pin(der: bytes) -> str:
    return pinscan.spki_pin(der)


def pins_of(suggestion) -> set[str]:
    return {p.pin.digest for p in suggestion.pins}


def every_sibling(le: dict[str, bytes]) -> dict[str, list[bytes]]:
    """A chain from every Let's Encrypt intermediate it may issue from, by every path a client
    may build: R1x under X1; E5-E9 under X2 and, cross-signed, under X1; the Gen Y
    intermediates under their own roots, and through those roots' cross-signs by X1 and X2."""
    x1, x2 = le["isrgrootx1.pem"], le["isrg-root-x2.pem"]
    chains = {}
    for name, path in RSA_SIBLINGS.items():
        if name.startswith("R"):
            chains[f"{name}.x1"] = [le[path], x1]
        else:
            chains[f"{name}.yr"] = [le[path], le["gen-y/root-yr.pem"]]
            chains[f"{name}.x1"] = [le[path], le["gen-y/root-yr-by-x1.pem"], x1]
    for name, path in ECDSA_SIBLINGS.items():
        if name.startswith("E"):
            chains[f"{name}.x2"] = [le[path], x2]
            cross = path.replace(".pem", "-cross.pem")
            chains[f"{name}.x1"] = [le[cross], x1]
        else:
            chains[f"{name}.ye"] = [le[path], le["gen-y/root-ye.pem"]]
            chains[f"{name}.x2"] = [le[path], le["gen-y/root-ye-by-x2.pem"], x2]
    return {label: [leaf("api.example.com"), *chain] for label, chain in chains.items()}


def verdicts(
    dataset: pinscan.ScanDataset, text: str, fmt: str, as_of: dt.datetime | None = AS_OF
) -> dict[str, str]:
    """Each endpoint's verdict by the policy in ``text``."""
    (policy,) = read(text.encode(), f"<{fmt}>", fmt)
    frame = pinscan.evaluate(dataset, policy, as_of=as_of)
    return dict(zip(frame["target"], frame["verdict"], strict=True))


# --- Let's Encrypt -------------------------------------------------------------------------


def test_r12_suggestion_pins_the_keys_every_rsa_sibling_chains_through(le, spare, tmp_path):
    today = chains_dataset(
        tmp_path / "today", {"api.example.com": [leaf("api.example.com"), le["2024/r12.pem"],
                                                  le["isrgrootx1.pem"]]}
    )  # fmt: skip
    suggestion, warnings = suggest(
        today, "api.example.com", backup_keys=[BackupKey.read(spare)], as_of=AS_OF
    )
    assert not warnings
    # The smallest set every RSA sibling's chain passes: ISRG Root X1 (above R10-R14, and above
    # Root YR through its cross-sign) and Root YR (where a chain from YR1-YR3 may stop).
    x1, yr = pin(le["isrgrootx1.pem"]), pin(le["gen-y/root-yr.pem"])
    assert pins_of(suggestion) == {x1, yr, pinscan.spki_pin(spare.read_bytes())}
    assert pin(le["gen-y/root-yr-by-x1.pem"]) == yr  # one key, two certificates
    roles = {p.pin.digest: p.role for p in suggestion.pins}
    assert roles[x1] == roles[yr] == "root"
    said = " ".join(suggestion.coverage)
    assert (
        "R12 (the issuing CA of 1 endpoint) may be replaced at a renewal by any of its 7 " in said
    )
    assert "(R10, R11, R13, R14, YR1, YR2 and YR3)" in said
    assert "every chain from them passes ISRG Root X1 or Root YR: 2 pins for 8 CAs" in said
    assert "Without ISRG Root X1 the chain of R12 builds no other way the catalog knows" in said
    text = render(today, suggestion, "android", as_of=AS_OF)
    assert all(line in text for line in suggestion.coverage)

    # Judged on a chain from every sibling, by every path: all pass. Today's issuer alone (what
    # suggest pinned before the catalog) fails every sibling but itself.
    siblings = chains_dataset(tmp_path / "siblings", every_sibling(le), "api.example.com")
    rsa = {t: v for t, v in verdicts(siblings, text, "android").items() if "R" in t}
    assert len(rsa) == 5 + 3 * 2 and set(rsa.values()) == {"pass"}
    narrow = toml_pins(
        "api.example.com", pin(le["2024/r12.pem"]), pinscan.spki_pin(spare.read_bytes())
    )
    narrow_verdicts = verdicts(siblings, narrow, "toml")
    assert narrow_verdicts["R12.x1"] == "pass"
    assert narrow_verdicts["R11.x1"] == narrow_verdicts["YR1.yr"] == "fail"


def toml_pins(domain: str, *pins: str) -> str:
    listed = ", ".join(f'"sha256/{p}"' for p in pins)
    return f'[[pin-set]]\ndomain = "{domain}"\npins = [{listed}]\n'


def test_e7_suggestion_covers_both_roots_and_the_gen_y_root(le, spare, tmp_path):
    # E7 as most clients build it in 2026: under ISRG Root X2. Its siblings E5-E9 have a
    # certificate under X2 and a cross-sign under X1, so neither root alone is in every chain.
    today = chains_dataset(
        tmp_path / "today",
        {"api.example.com": [leaf("api.example.com"), le["2024/e7.pem"], le["isrg-root-x2.pem"]]},
    )
    suggestion, _ = suggest(today, "example.com", backup_keys=[BackupKey.read(spare)], as_of=AS_OF)
    expected = {pin(le[p]) for p in ("isrgrootx1.pem", "isrg-root-x2.pem", "gen-y/root-ye.pem")}
    assert pins_of(suggestion) - {pinscan.spki_pin(spare.read_bytes())} == expected
    said = " ".join(suggestion.coverage)
    assert "ISRG Root X1, ISRG Root X2 or Root YE: 3 pins for 8 CAs" in said
    assert "Without ISRG Root X2 the chain of E7 still builds, through a cross-sign" in said
    text = render(today, suggestion, "ios", as_of=AS_OF)
    siblings = chains_dataset(tmp_path / "siblings", every_sibling(le), "api.example.com")
    ecdsa = {t: v for t, v in verdicts(siblings, text, "ios").items() if "E" in t}
    assert len(ecdsa) == 5 * 2 + 3 * 2 and set(ecdsa.values()) == {"pass"}


def test_rsa_and_ecdsa_hosts_share_a_pin_set_with_no_redundant_root(le, spare, tmp_path):
    today = chains_dataset(
        tmp_path / "today",
        {
            "rsa.example.com": [leaf("rsa.example.com"), le["2024/r12.pem"], le["isrgrootx1.pem"]],
            "ec.example.com": [leaf("ec.example.com"), le["2024/e7.pem"], le["isrg-root-x2.pem"]],
        },
    )
    suggestion, _ = suggest(today, "example.com", backup_keys=[BackupKey.read(spare)], as_of=AS_OF)
    roots = ("isrgrootx1.pem", "isrg-root-x2.pem", "gen-y/root-yr.pem", "gen-y/root-ye.pem")
    assert pins_of(suggestion) - {pinscan.spki_pin(spare.read_bytes())} == {
        pin(le[p]) for p in roots
    }
    text = render(today, suggestion, "okhttp", as_of=AS_OF)
    siblings = chains_dataset(tmp_path / "siblings", every_sibling(le), "api.example.com")
    assert set(verdicts(siblings, text, "okhttp").values()) == {"pass"}


def test_without_a_spare_key_the_catalog_cover_is_the_second_pin(le, tmp_path):
    today = chains_dataset(
        tmp_path / "today",
        {"api.example.com": [leaf("api.example.com"), le["2024/r12.pem"], le["isrgrootx1.pem"]]},
    )
    suggestion, warnings = suggest(today, "example.com", as_of=AS_OF)
    assert pins_of(suggestion) == {pin(le["isrgrootx1.pem"]), pin(le["gen-y/root-yr.pem"])}
    assert any(w.startswith("NO BACKUP KEY") for w in warnings)


def test_curl_pins_leaf_keys_and_says_no_ca_pin_can_help(le, spare, tmp_path):
    today = chains_dataset(
        tmp_path / "today",
        {"api.example.com": [leaf("api.example.com"), le["2024/r12.pem"], le["isrgrootx1.pem"]]},
    )
    suggestion, _ = suggest(
        today, "api.example.com", backup_keys=[BackupKey.read(spare)], as_of=AS_OF, leaf_only=True
    )
    assert pins_of(suggestion) == {
        pin(leaf("api.example.com")),
        pinscan.spki_pin(spare.read_bytes()),
    }
    assert suggestion.coverage[0].startswith("This client checks the leaf alone")


# --- A private PKI -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def private_pki(tmp_path_factory) -> Path:
    """The test PKI's root and its two issuing intermediates, as a PEM bundle."""
    path = tmp_path_factory.mktemp("pki") / "internal-ca.pem"
    path.write_bytes(
        b"".join(
            issued.cert.public_bytes(serialization.Encoding.PEM)
            for issued in (pki.root(), pki.intermediate(), pki.second_intermediate())
        )
    )
    return path


def test_private_ca_without_its_certificates_is_pinned_alone(spare, tmp_path):
    dataset = write_dataset(
        tmp_path / "ds", [Served("api.example.com", pki.leaf("api.example.com"))]
    )
    suggestion, _ = suggest(dataset, "example.com", backup_keys=[BackupKey.read(spare)])
    assert pins_of(suggestion) == {
        pin(pki.intermediate().der),
        pinscan.spki_pin(spare.read_bytes()),
    }
    assert "is not in the CA catalog: its siblings are unknown" in suggestion.coverage[0]


def test_private_pki_given_as_a_catalog_pins_the_root_both_intermediates_share(
    private_pki, spare, tmp_path
):
    dataset = write_dataset(
        tmp_path / "ds", [Served("api.example.com", pki.leaf("api.example.com"))]
    )
    catalog = Catalog.shipped().with_pems([private_pki])
    suggestion, _ = suggest(
        dataset, "example.com", backup_keys=[BackupKey.read(spare)], catalog=catalog
    )
    assert pins_of(suggestion) == {pin(pki.root().der), pinscan.spki_pin(spare.read_bytes())}
    said = " ".join(suggestion.coverage)
    assert "Pinscan Test Intermediate (the issuing CA of 1 endpoint) may be replaced" in said
    assert "every chain from them passes Pinscan Test Root: 1 pin for 2 CAs" in said
    text = render(dataset, suggestion, "android")
    # A certificate from the other intermediate passes too.
    second = chains_dataset(
        tmp_path / "second",
        {
            "next.example.com": [
                leaf("next.example.com"),
                pki.second_intermediate().der,
                pki.root().der,
            ]
        },
    )
    assert verdicts(second, text, "android", as_of=None) == {"next.example.com": "pass"}


def test_catalog_pins_are_the_pins_of_the_vendored_certificates(le):
    # What the tests above compare with: the catalog's pins for the Let's Encrypt CAs are
    # those pinscan computes from the vendored certificates.
    catalog = Catalog.shipped()
    for name, path in {**RSA_SIBLINGS, **ECDSA_SIBLINGS}.items():
        (row,) = catalog.lookup(name).filter(pl.col("le_name").is_not_null()).iter_rows(named=True)
        assert row["spki_sha256"] == pin(le[path]), name
        assert hashlib.sha256(le[path]).hexdigest() in row["certificates"]


# --- What the suggestion survives: the lockout analysis of the core -----------------------


def outcomes(dataset, text: str, fmt: str, **options) -> dict[str, str]:
    """Each scenario's worst outcome for the policy in ``text``, by pinscan.rotation.analyse."""
    policies = read(text.encode(), f"<{fmt}>", fmt)
    table = survival(analyse(dataset, policies, "all", as_of=AS_OF, **options))
    return dict(zip(table["scenario"], table["outcome"], strict=True))


def test_the_r12_suggestion_survives_renewals_and_every_sibling(le, spare, tmp_path):
    today = chains_dataset(
        tmp_path / "today",
        {"api.example.com": [leaf("api.example.com"), le["2024/r12.pem"], le["isrgrootx1.pem"]]},
    )
    backup = BackupKey.read(spare)
    suggestion, _ = suggest(today, "api.example.com", backup_keys=[backup], as_of=AS_OF)
    text = render(today, suggestion, "android", as_of=AS_OF)
    found = outcomes(today, text, "android", backup_keys=[backup])
    siblings = {s for s in found if s.startswith("sibling:")}
    assert siblings == {"sibling:YR1", "sibling:YR2", "sibling:YR3"}
    for scenario in ("renew_same_key", "renew_new_key", "backup_key", *siblings):
        assert found[scenario] == "survives", scenario
    # R12 hangs from ISRG Root X1 alone: without it no chain builds, whatever is pinned.
    assert found["root_removed"] == "untrusted"
    # What suggest pinned before the catalog, today's issuer and the spare, locks out on every
    # sibling: the scenarios tell the two apart.
    narrow = toml_pins(
        "api.example.com", pin(le["2024/r12.pem"]), pinscan.spki_pin(spare.read_bytes())
    )
    before = outcomes(today, narrow, "toml")
    assert before["renew_new_key"] == "survives"
    assert {before[s] for s in siblings} == {"locks_out"}


def test_the_e7_suggestion_survives_the_removal_of_its_root_through_the_cross_sign(
    le, spare, tmp_path
):
    today = chains_dataset(
        tmp_path / "today",
        {"api.example.com": [leaf("api.example.com"), le["2024/e7.pem"], le["isrg-root-x2.pem"]]},
    )
    suggestion, _ = suggest(
        today, "api.example.com", backup_keys=[BackupKey.read(spare)], as_of=AS_OF
    )
    text = render(today, suggestion, "ios", as_of=AS_OF)
    found = outcomes(today, text, "ios")
    assert {s for s in found if s.startswith("sibling:")} == {
        "sibling:YE1",
        "sibling:YE2",
        "sibling:YE3",
    }
    assert set(found.values()) == {"survives"}, found


def test_cli_reports_every_scenario_and_json_says_what_it_cannot_survive(le, spare, tmp_path):
    today = chains_dataset(
        tmp_path / "today",
        {"api.example.com": [leaf("api.example.com"), le["2024/r12.pem"], le["isrgrootx1.pem"]]},
    )
    written = tmp_path / "nsc.xml"
    result = run(
        "suggest", str(today.path), "-d", "api.example.com", "--policy-format", "android",
        "-b", str(spare), "--switch-to", "DigiCert", "-o", str(written), "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["output_file"] == str(written) and document["policy"] is None
    pins = {p["pin"].removeprefix("sha256/"): p["role"] for p in document["pins"]}
    assert pins[pin(le["isrgrootx1.pem"])] == pins[pin(le["gen-y/root-yr.pem"])] == "root"
    assert pins[pinscan.spki_pin(spare.read_bytes())] == "backup"
    assert any("2 pins for 8 CAs" in note for note in document["coverage"])
    scenarios = {row["scenario"]: row for row in document["scenarios"]}
    assert scenarios["renew_new_key"]["outcome"] == "survives"
    assert scenarios["renew_new_key"]["routine"] is True
    assert scenarios["sibling:YR1"]["new_chain"] == "new leaf key > YR1 > Root YR > ISRG Root X1"
    assert document["cannot_survive"] == ["switch:DigiCert", "root_removed"]
    assert scenarios["switch:DigiCert"]["outcome"] == "locks_out"
    assert "sibling:YR3" in document["survives"] and "backup_key" in document["survives"]
    assert pinscan.load_policy(written).format == "android"

    # Text: the file on standard output, the report on standard error; --quiet keeps the file.
    result = run("suggest", str(today.path), "-d", "api.example.com", "-b", str(spare))
    assert result.exit_code == 0
    assert result.stdout.startswith("# Pin-set for api.example.com")
    lines = result.stderr.splitlines()
    assert (
        "pinscan: the pin-set for api.example.com under each rotation scenario (1 endpoint):"
        in lines
    )
    said = "survives sibling:YR2 a new leaf key issued by YR2, a sibling of R12"
    assert said in {" ".join(line.split()) for line in lines}
    assert lines[-1] == (
        "pinscan: survives 6 of 7 scenarios; not root_removed (no other path to a trusted root: "
        "no pin can help)"
    )
    quiet = run("suggest", str(today.path), "-d", "api.example.com", "-b", str(spare), "-q")
    assert quiet.stdout == result.stdout and quiet.stderr == ""


def test_cli_private_pki_given_with_ca_catalog_survives_the_other_intermediate(
    private_pki, spare, tmp_path
):
    dataset = write_dataset(
        tmp_path / "ds", [Served("api.example.com", pki.leaf("api.example.com"))]
    )
    result = run(
        "suggest", str(dataset.path), "-d", "example.com", "-b", str(spare),
        "--ca-catalog", str(private_pki), "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert {p["pin"] for p in document["pins"]} == {
        f"sha256/{pin(pki.root().der)}",
        f"sha256/{pinscan.spki_pin(spare.read_bytes())}",
    }
    scenarios = {row["scenario"]: row["outcome"] for row in document["scenarios"]}
    assert scenarios["sibling:Pinscan Test Intermediate 2"] == "survives"
    assert scenarios["renew_new_key"] == "survives"
    assert scenarios["root_removed"] == "untrusted"
    # Without the catalog the other intermediate is unknown: no sibling to judge, and the note
    # says why the issuer is pinned alone.
    result = run(
        "suggest", str(dataset.path), "-d", "example.com", "-b", str(spare), "--format", "json"
    )
    document = json.loads(result.stdout)
    assert not [s for s in document["scenarios"] if s["kind"] == "sibling"]
    assert "its siblings are unknown" in document["coverage"][0]
    assert document["policy"].startswith("# Pin-set for example.com")
