# SPDX-License-Identifier: Apache-2.0
"""Chromium static pins: the corpus JSON files resolved through the .pins file."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinscan.certs.keys import spki_pin
from pinscan.errors import PolicyError
from pinscan.policy import chromium, formats
from pinscan.policy.model import Combine, Match, Policy

CORPUS = Path(__file__).parent / "data" / "policies"
PINS = CORPUS / "chromium__chromium__chromium__transport_security_state_static.pins"
UPSTREAM = CORPUS / "chromium__chromium__chromium__transport_security_state_static_pins.json"
SRC_NEXT = CORPUS / "chromium__hotianbexuanto__src.next__transport_security_state_static_pins.json"
ENFORCED_UNTIL = dt.datetime(2024, 8, 8, 12, 56, 26, tzinfo=dt.UTC) + dt.timedelta(days=70)


def test_pins_file_keys_and_ground_truth() -> None:
    timestamp, keys = chromium.read_pins_file(PINS.read_bytes(), str(PINS))
    assert timestamp == dt.datetime(2024, 8, 8, 12, 56, 26, tzinfo=dt.UTC)
    assert len(keys) == 30 and None not in keys.values()
    assert keys["ISRGRootX1"] == "C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M="
    assert keys["GTSRootR1"] == "hxqRlPTu1bMS/0DITB1SSu0vd4u/8l8TjPgfaAp63Gc="
    assert keys["DigiCertGlobalRoot"] == "r/mIkG3eEpVdm+u/ko/cwxzOMo1bk4TyHIlByibiA5E="
    assert keys["TestSPKI"] == "A" * 43 + "="


def test_pins_file_alone_is_not_a_policy() -> None:
    data = PINS.read_bytes()
    assert formats.detect(data, "x") == ["chromium"]
    with pytest.raises(PolicyError, match="named keys, not rules"):
        chromium.parse(data, str(PINS))


def test_src_next_resolves_fully() -> None:
    data = SRC_NEXT.read_bytes()
    assert formats.detect(data, "x") == ["chromium"]
    policy = chromium.parse(data, str(SRC_NEXT))
    assert policy.valid and policy.combine is Combine.MOST_SPECIFIC
    assert len(policy.rules) == 372
    assert [r for r in policy.rules if r.error] == []
    assert {r.expires for r in policy.rules} == {ENFORCED_UNTIL - dt.timedelta(microseconds=1)}
    by_host = {r.host: r for r in policy.rules}
    google = by_host["mail.google.com"]
    assert google.match is Match.SUBDOMAINS
    assert [p.text for p in google.pins] == [
        "GoogleBackup2048",
        "GTSRootR1",
        "GTSRootR2",
        "GTSRootR3",
        "GTSRootR4",
        "GlobalSignR4_owned_by_Google",
    ]
    assert "hxqRlPTu1bMS/0DITB1SSu0vd4u/8l8TjPgfaAp63Gc=" in {p.digest for p in google.pins}
    assert [p.text for p in google.bad_pins] == [
        "GlobalSignExtendedValidationCA",
        "GlobalSignExtendedValidationCA_G2",
        "GlobalSignExtendedValidationCA_SHA256_G2",
    ]
    first = policy.rules[0]
    assert (first.host, first.location.line) == ("pinningtest.appspot.com", 90)
    assert by_host["www.messenger.com"].location.line == 1945
    assert any("2024-10-17 12:56:26" in note for note in policy.notes)


def test_upstream_json_tor_pinset_does_not_resolve() -> None:
    policy = chromium.parse(UPSTREAM.read_bytes(), str(UPSTREAM))
    assert policy.valid and len(policy.rules) == 377
    broken = [r for r in policy.rules if r.error]
    assert len(broken) == 5 and all(
        ".torproject.org" in r.host or r.host == "torproject.org" for r in broken
    )
    assert "pinset 'tor'" in (broken[0].error or "")
    for name in ("RapidSSL", "Tor1", "Tor2", "Tor3", "R3LetsEncrypt", "R4LetsEncrypt"):
        assert name in (broken[0].error or "")


def test_pem_in_pins_file_hashes_to_the_published_pin() -> None:
    # spki_pin of the PEM itself, independent of read_pins_file.
    text = PINS.read_text()
    block = text.split("ISRGRootX1\n", 1)[1].split("-----END CERTIFICATE-----")[0]
    assert spki_pin(block + "-----END CERTIFICATE-----\n") == (
        "C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M="
    )


def fixture(tmp_path: Path, entries: list[dict], pinsets: list[dict], pins: str) -> Policy:
    (tmp_path / "transport_security_state_static.pins").write_text(pins)
    path = tmp_path / "transport_security_state_static.json"
    path.write_text("// comment\n" + json.dumps({"pinsets": pinsets, "entries": entries}, indent=1))
    return chromium.parse(path.read_bytes(), str(path))


PINS_TEXT = """# test
PinsListTimestamp
1700000000

KeyA
sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=

KeyB
sha256/BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBA=
"""


def test_older_combined_file_and_missing_names(tmp_path: Path) -> None:
    policy = fixture(
        tmp_path,
        [
            {"name": "hsts.example", "mode": "force-https"},
            {"name": "a.example", "include_subdomains_for_pinning": True, "pins": "good"},
            {"name": "b.example", "pins": "broken"},
            {"name": "c.example", "pins": "nope"},
        ],
        [
            {"name": "good", "static_spki_hashes": ["KeyA"], "bad_static_spki_hashes": ["KeyB"]},
            {"name": "broken", "static_spki_hashes": ["KeyA", "Missing"]},
        ],
        PINS_TEXT,
    )
    rules = {r.host: r for r in policy.rules}
    assert set(rules) == {"a.example", "b.example"}
    assert rules["a.example"].match is Match.SUBDOMAINS and rules["a.example"].error is None
    assert [p.text for p in rules["a.example"].bad_pins] == ["KeyB"]
    assert rules["b.example"].match is Match.EXACT and "Missing" in (rules["b.example"].error or "")
    assert "pinset 'nope' does not exist" in policy.warnings[0].message
    assert rules["a.example"].expires == dt.datetime(2024, 1, 23, 22, 13, 19, 999999, tzinfo=dt.UTC)


def test_no_pins_file_is_a_policy_error(tmp_path: Path) -> None:
    path = tmp_path / "transport_security_state_static_pins.json"
    shutil.copy(SRC_NEXT, path)
    policy = chromium.parse(path.read_bytes(), str(path))
    assert not policy.valid and "pins_file" in (policy.error or "")
    given_file = chromium.parse(path.read_bytes(), str(path), pins_file=PINS)
    assert given_file.valid and len(given_file.rules) == 372


def test_not_json_is_policy_error() -> None:
    with pytest.raises(PolicyError) as info:
        chromium.parse(b'{"pinsets": [,]}', "bad.json")
    assert info.value.line == 1


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_garbage_gives_a_policy_or_policy_error(data: bytes) -> None:
    for blob in (data, b'{"pinsets": [], "entries": [' + data, b"PinsListTimestamp\n" + data):
        with contextlib.suppress(PolicyError):
            assert isinstance(chromium.parse(blob, "fuzz.json", pins_file=PINS), Policy)
