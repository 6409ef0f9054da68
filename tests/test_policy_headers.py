# SPDX-License-Identifier: Apache-2.0
"""HPKP headers and curl --pinnedpubkey: the corpus files and the semantics rows."""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinscan.errors import PolicyError
from pinscan.policy import curl, formats, hpkp
from pinscan.policy.model import (
    ChainSource,
    Combine,
    Match,
    Pin,
    Policy,
    Position,
    SuggestedPin,
    Suggestion,
)

CORPUS = Path(__file__).parent / "data" / "policies"
P1 = "cUPcTAZWKaASuYWhhneDttWpY3oBAkE3h2+soZS7sWs="
P2 = "M8HztCzM3elUxkcjR2S5P4hhyBNf6lHkmjAHKhpGPWE="
SUGGESTION = Suggestion(
    "api.example.com",
    True,
    (
        SuggestedPin(Pin.sha256(P1), "leaf", "leaf key"),
        SuggestedPin(Pin.sha256(P2), "backup", "spare"),
    ),
    dt.date(2099, 1, 1),
    ("made by pinscan",),
)


# --- HPKP ---------------------------------------------------------------------------------


def test_mdn_page_headers_have_no_host() -> None:
    data = (CORPUS / "hpkp__mdn__content__public-key-pins.index.md.txt").read_bytes()
    assert formats.detect(data, "mdn") == ["hpkp"]
    policy = hpkp.parse(data, "mdn")
    assert policy.rules == () and policy.valid
    assert [w.location.line for w in policy.warnings] == [45, 75]
    assert "no host" in policy.warnings[0].message
    assert "browsers reject" in policy.warnings[0].message  # the <placeholder> syntax block
    assert "reject" not in policy.warnings[1].message  # the RFC example is a fine header


def test_mdn_example_with_a_host() -> None:
    data = (CORPUS / "hpkp__mdn__content__public-key-pins.index.md.txt").read_bytes()
    policy = hpkp.parse(data, "mdn", host="www.example.org")
    (rule,) = policy.rules
    assert (rule.host, rule.match, rule.enforce, rule.error) == (
        "www.example.org",
        Match.SUBDOMAINS,
        True,
        None,
    )
    assert [p.digest for p in rule.pins] == [P1, P2]
    assert rule.expires is None and rule.location.line == 75
    assert policy.combine is Combine.MOST_SPECIFIC
    assert any("max-age counts from" in note for note in policy.notes)


DUMP = f"""$ curl -sI https://a.example/
HTTP/2 200
public-key-pins: pin-sha256="{P1}"; pin-sha256="{P2}"; max-age=600

# host: b.example
Public-Key-Pins-Report-Only: PIN-SHA256="{P1}"; pin-sha256="{P2}"; includeSubdomains

Host: c.example:8443
Public-Key-Pins: pin-sha256="{P1}";
  pin-sha1="AAAA";
  max-age=10; unknown-directive=12; report-uri="https://r.example/"
"""


def test_response_dump_sets_hosts() -> None:
    policy = hpkp.parse(DUMP.encode(), "dump.txt")
    got = {
        r.host: (r.match, r.enforce, r.error, len(r.pins), r.location.line) for r in policy.rules
    }
    assert got == {
        "a.example": (Match.EXACT, True, None, 2, 3),
        "b.example": (Match.SUBDOMAINS, False, None, 2, 6),  # RO: no max-age needed
        "c.example": (Match.EXACT, True, None, 1, 9),  # pin-sha1 ignored, folded lines
    }
    assert policy.warnings == ()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (f'pin-sha256="{P1}"; pin-sha256="{P2}"', "no max-age"),
        (f'max-age=INVALID; pin-sha256="{P1}"', "max-age"),
        (f'max-age=5; max-age=5; pin-sha256="{P1}"', "max-age appears twice"),
        (f'max-age=5; pin-sha256="{P1}"; includeSubdomains; includeSubdomains', "twice"),
        (f'max-age=5; pin-sha256="{P1}"; pin-sha256="jdjsjsjs"', "not base64 of a SHA-256"),
        ('max-age=5; report-uri="https://r.example/"', "no pin-sha256"),
        ("thisisinvalidtest", "no max-age"),
    ],
)
def test_rejected_headers_are_rule_errors(value: str, reason: str) -> None:
    policy = hpkp.parse(f"Host: x.example\nPublic-Key-Pins: {value}\n".encode(), "h")
    (rule,) = policy.rules
    assert rule.error is not None and reason in rule.error
    assert policy.valid  # the file is fine: the browser rejects that header only


def test_max_age_zero_removes_the_pins() -> None:
    text = f'Host: x.example\nPublic-Key-Pins: max-age=0; pin-sha256="{P1}"\n'
    policy = hpkp.parse(text.encode(), "h")
    assert policy.rules == () and "max-age=0" in policy.warnings[0].message


def test_later_header_replaces_earlier_but_a_rejected_one_does_not() -> None:
    text = f"""Host: x.example
Public-Key-Pins: max-age=5; pin-sha256="{P1}"; pin-sha256="{P2}"
Public-Key-Pins: pin-sha256="{P1}"
Public-Key-Pins: max-age=9; pin-sha256="{P2}"; includeSubDomains
"""
    policy = hpkp.parse(text.encode(), "h")
    (rule,) = policy.rules
    assert rule.location.line == 4 and rule.match is Match.SUBDOMAINS
    assert ["leaves the one of line 2" in w.message for w in policy.warnings] == [True, False]


def test_hpkp_round_trip() -> None:
    text = hpkp.write(SUGGESTION)
    assert "# pin 2, backup: spare" in text and "UTC" in text
    assert formats.detect(text.encode(), "x") == ["hpkp"]
    (rule,) = hpkp.parse(text.encode(), "x").rules
    assert (rule.host, rule.match, rule.error, rule.enforce) == (
        "api.example.com",
        Match.SUBDOMAINS,
        None,
        True,
    )
    assert [p.digest for p in rule.pins] == [P1, P2]
    report = hpkp.write(Suggestion("a.example", False, SUGGESTION.pins, None, enforce=False))
    (rule,) = hpkp.parse(report.encode(), "y").rules
    assert (rule.match, rule.enforce) == (Match.EXACT, False)


# --- curl ---------------------------------------------------------------------------------


def test_curl_test2041_pins_localhost_leaf() -> None:
    data = (CORPUS / "curl__curl__curl__test2041").read_bytes()
    assert formats.detect(data, "t") == ["curl"]
    policy = curl.parse(data, "test2041")
    assert policy.chain is ChainSource.LEAF and policy.combine is Combine.MOST_SPECIFIC
    (rule,) = policy.rules
    assert (rule.host, rule.match, rule.location.line) == ("localhost", Match.EXACT, 37)
    assert rule.pin_sets[0].positions is Position.LEAF
    assert [p.digest for p in rule.pins] == ["+JYNkp2GTGRgrvZMUkOxbFJQQqYpwNE6toGmBjz00D8="]
    assert policy.warnings == ()


def test_curl_test2042_wrong_pin_still_a_rule() -> None:
    policy = curl.parse((CORPUS / "curl__curl__curl__test2042").read_bytes(), "test2042")
    (rule,) = policy.rules
    assert rule.host == "localhost" and rule.location.line == 30
    assert [p.digest for p in rule.pins] == ["bSIggTf+ikMG0CtmDlpMVBd7yi7H1md4URogRPqerso="]


def test_curl_option_man_page() -> None:
    # The live setopt pins a key file; the sha256// alternative is inside a C comment.
    data = (CORPUS / "curl__curl__curl__CURLOPT_PINNEDPUBLICKEY.md").read_bytes()
    assert formats.detect(data, "m") == ["curl"]
    policy = curl.parse(data, "CURLOPT_PINNEDPUBLICKEY.md")
    assert policy.rules == ()
    (warning,) = policy.warnings
    assert warning.location.line == 80
    assert "example.com" in warning.message and "/etc/publickey.der" in warning.message


def test_curl_cmdline_man_page_examples_have_no_host() -> None:
    policy = curl.parse((CORPUS / "curl__curl__curl__pinnedpubkey.md").read_bytes(), "p.md")
    assert policy.rules == ()
    assert [(w.location.line, "no URL or host" in w.message) for w in policy.warnings] == [
        (14, True),
        (15, True),
    ]


def test_curl_c_adjacent_literals_and_url() -> None:
    text = """curl_easy_setopt(curl, CURLOPT_URL, "https://Example.com/x");
curl_easy_setopt(curl, CURLOPT_PINNEDPUBLICKEY,
                 "sha256//YhKJKSzoTt2b5FP18fvpHo7fJYqQCjAa3HWY3"
                 "tvRMwE=;sha256//t62CeU2tQiqkexU74Gxa2eg7fRbEg"
                 "oChTociMee9wno=");
"""
    (rule,) = curl.parse(text.encode(), "c.c").rules
    assert (rule.host, rule.location.line) == ("example.com", 2)
    assert [p.digest for p in rule.pins] == [
        "YhKJKSzoTt2b5FP18fvpHo7fJYqQCjAa3HWY3tvRMwE=",
        "t62CeU2tQiqkexU74Gxa2eg7fRbEgoChTociMee9wno=",
    ]


def test_curl_text_comparison_and_line_forms() -> None:
    text = f"""# pins
curl -sS --pinnedpubkey 'sha256//{P1};sha256//{P2.rstrip("=")}' \\
    https://api.example.com:8443/v1
api2.example.com sha256//{P2}
curl --pinnedpubkey=sha256//ce118b51897f4452dc https://short.example/
"""
    policy = curl.parse(text.encode(), "cmds.sh")
    got = {r.host: ([p.digest for p in r.pins], r.location.line) for r in policy.rules}
    assert got == {
        "api.example.com": ([P1, P2.rstrip("=")], 2),  # unpadded is kept: it never matches
        "api2.example.com": ([P2], 4),
        "short.example": (["ce118b51897f4452dc"], 5),
    }
    assert sum("never matches" in w.message for w in policy.warnings) == 2


def test_curl_key_file_next_to_policy(tmp_path: Path) -> None:
    key = (
        "-----BEGIN PUBLIC KEY-----\n"
        "MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n"
        "-----END PUBLIC KEY-----\n"
    )
    (tmp_path / "key.pem").write_text(key)
    (tmp_path / "junk.pem").write_text("nothing")
    policy_file = tmp_path / "pins.sh"
    policy_file.write_text(
        "curl --pinnedpubkey key.pem https://a.example/\n"
        "curl --pinnedpubkey junk.pem https://b.example/\n"
        "curl --pinnedpubkey ../../etc/passwd https://c.example/\n"
    )
    policy = curl.parse(policy_file.read_bytes(), str(policy_file))
    rules = {r.host: [p.digest for p in r.pins] for r in policy.rules}
    assert rules == {"a.example": ["oekVYFTgT6yJmunydRMs3Ael28TqLCrTof/G4NJTaB8="], "b.example": []}
    assert "c.example" in policy.warnings[-1].message


def test_curl_round_trip() -> None:
    text = curl.write(SUGGESTION)
    assert "# pin 1, leaf: leaf key" in text
    assert formats.detect(text.encode(), "x") == ["curl"]
    (rule,) = curl.parse(text.encode(), "x").rules
    assert (rule.host, rule.match) == ("api.example.com", Match.EXACT)
    assert [p.digest for p in rule.pins] == [P1, P2]
    assert curl.parse(text.encode(), "x").warnings == ()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400) | st.text(max_size=300).map(str.encode))
def test_garbage_gives_a_policy_or_policy_error(data: bytes) -> None:
    for module, prefix in (
        (hpkp, b"Host: a.example\nPublic-Key-Pins: "),
        (curl, b"curl --pinnedpubkey "),
    ):
        for blob in (data, prefix + data):
            with contextlib.suppress(PolicyError):
                assert isinstance(module.parse(blob, "fuzz"), Policy)
