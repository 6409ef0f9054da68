# SPDX-License-Identifier: Apache-2.0
"""pinscan's native TOML policy: every key, strictness with line numbers, the writer."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinscan.errors import PolicyError
from pinscan.policy import formats
from pinscan.policy import toml as toml_policy
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

A = "C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M="
B = "hxqRlPTu1bMS/0DITB1SSu0vd4u/8l8TjPgfaAp63Gc="
SHA1 = "DmxUShsZuNiqPQsX2Oi9uv2sCnw="

FULL = f"""# every key
combine = "union"
chain = "leaf"

[[pin-set]]
domain = "Example.COM."
include-subdomains = true
pins = ["sha256/{A}", "sha1/{SHA1}"]
expires = 2027-01-31
enforce = false
bad-pins = ["sha256/{B}"]

[[pin-set]]
domain = "ios.example"
match = "one-level"
leaf-pins = ["sha256/{A}"]
ca-pins = [
  "sha256/{B}",  # a comment
]
expires = 2027-01-31T12:00:00+02:00

[[pin-set]]
domain = "x.example"
match = "one-label"
pins = ["sha256/{A}"]
positions = "ca"
exclude = true
override-pins = ["system"]
"""


def test_every_key() -> None:
    assert formats.detect(FULL.encode(), "p.toml") == ["toml"]
    policy = toml_policy.parse(FULL.encode(), "p.toml")
    assert policy.valid, policy.error
    assert (policy.combine, policy.chain) == (Combine.UNION, ChainSource.LEAF)
    first, second, third = policy.rules
    assert (first.host, first.match, first.enforce, first.location.line) == (
        "example.com",
        Match.SUBDOMAINS,
        False,
        5,
    )
    assert [p.label for p in first.pins] == [f"sha256/{A}", f"sha1/{SHA1}"]
    assert first.expires == dt.datetime(2027, 1, 31, tzinfo=dt.UTC)
    assert [p.digest for p in first.bad_pins] == [B]
    assert second.match is Match.ONE_LEVEL
    assert [s.positions for s in second.pin_sets] == [Position.LEAF, Position.CA]
    assert second.pin_sets[1].pins[0].location.line == 18
    assert second.expires == dt.datetime(2027, 1, 31, 10, tzinfo=dt.UTC)
    assert (third.match, third.pin_sets[0].positions, third.exclude) == (
        Match.ONE_LABEL,
        Position.CA,
        True,
    )
    assert third.override_pins == frozenset({"system"})


def test_defaults() -> None:
    policy = toml_policy.parse(
        f'[[pin-set]]\ndomain = "a.example"\npins = ["sha256/{A}"]\n'.encode(), "d"
    )
    (rule,) = policy.rules
    assert (policy.combine, policy.chain) == (Combine.MOST_SPECIFIC, ChainSource.VERIFIED)
    assert (rule.match, rule.enforce, rule.expires, rule.exclude) == (
        Match.EXACT,
        True,
        None,
        False,
    )
    assert rule.pin_sets[0].positions is Position.ANY


def test_empty_pins_are_kept_and_warned() -> None:
    policy = toml_policy.parse(b'[[pin-set]]\ndomain = "a.example"\npins = []\n', "e")
    assert policy.valid and policy.rules[0].pin_sets[0].pins == ()
    assert "never matches" in policy.warnings[0].message


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ('domain = "a.example"\npins = ["sha256/{A}"]\ncolour = "red"', 4, "unknown key 'colour'"),
        ('domain = "a.example"\npins = ["{A}"]', 3, "not 'sha256/<base64>'"),
        ('domain = "a.example"\npins = ["sha256/AAAA"]', 3, "wrong length"),
        ('domain = "a.example"\npins = ["sha256/!!!!"]', 3, "not base64"),
        ('domain = "a.example"\npins = ["md5/{A}"]', 3, "sha256 or sha1"),
        ('domain = "a.example"\npins = ["sha256/{A}"]\nexpires = "2027-01-01"', 4, "TOML date"),
        ('domain = "a.example"\npins = ["sha256/{A}"]\nexpires = 2027-01-01T00:00:00', 4, "offset"),
        ('domain = "*.a.example"\npins = ["sha256/{A}"]', 2, "use match"),
        ('domain = "a.example"\npins = ["sha256/{A}"]\nmatch = "wild"', 4, "one of exact"),
        (
            'domain = "a.example"\ninclude-subdomains = false\nmatch = "subdomains"\npins = []',
            4,
            "contradicts",
        ),
        ('domain = "a.example"\npins = ["sha256/{A}"]\nenforce = "yes"', 4, "true or false"),
        ('domain = "a.example"', 1, "has no pins"),
    ],
)
def test_strict_errors_with_lines(body: str, line: int, message: str) -> None:
    text = "[[pin-set]]\n" + body.replace("{A}", A) + "\n"
    policy = toml_policy.parse(text.encode(), "s.toml")
    assert not policy.valid
    assert message in (policy.error or "")
    assert policy.error_location is not None and policy.error_location.line == line


def test_other_tables_still_read_and_unknown_top_key() -> None:
    text = f"""combine = "most-specific"
mode = "strict"

[[pin-set]]
domain = "a.example"
pins = ["sha256/{A}"]

[[pin-set]]
domain = "b.example"
pins = ["sha256/bad"]
"""
    policy = toml_policy.parse(text.encode(), "t.toml")
    assert policy.error == "unknown top-level key 'mode'"
    assert policy.error_location is not None and policy.error_location.line == 2
    assert [r.host for r in policy.rules] == ["a.example"]


def test_toml_syntax_error_is_policy_error() -> None:
    with pytest.raises(PolicyError) as info:
        toml_policy.parse(b'[[pin-set]]\ndomain = "a.example\n', "bad.toml")
    assert info.value.line == 2


def test_round_trip_with_comments() -> None:
    suggestion = Suggestion(
        "api.example.com",
        True,
        (
            SuggestedPin(Pin.sha256(A), "intermediate", 'R3 "quoted"\nsecond line'),
            SuggestedPin(Pin.sha256(B), "backup", "spare key"),
        ),
        dt.date(2027, 6, 1),
        ("pinscan suggest", "scan of 2026-11-27"),
    )
    text = toml_policy.write(suggestion)
    assert text.startswith("# pinscan suggest\n# scan of 2026-11-27\n")
    assert "# intermediate: R3" in text and "# backup: spare key" in text and "UTC" in text
    assert formats.detect(text.encode(), "x") == ["toml"]
    policy = toml_policy.parse(text.encode(), "x")
    assert policy.valid and policy.warnings == ()
    (rule,) = policy.rules
    assert (rule.host, rule.match, rule.expires, rule.enforce) == (
        "api.example.com",
        Match.SUBDOMAINS,
        dt.datetime(2027, 6, 1, tzinfo=dt.UTC),
        True,
    )
    assert [p.digest for p in rule.pins] == [A, B]
    plain = toml_policy.write(Suggestion("a.example", False, suggestion.pins, None, enforce=False))
    (rule,) = toml_policy.parse(plain.encode(), "y").rules
    assert (rule.match, rule.expires, rule.enforce) == (Match.EXACT, None, False)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_garbage_gives_a_policy_or_policy_error(data: bytes) -> None:
    for blob in (data, b"[[pin-set]]\n" + data):
        with contextlib.suppress(PolicyError):
            assert isinstance(toml_policy.parse(blob, "fuzz.toml"), Policy)
