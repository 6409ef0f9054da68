# SPDX-License-Identifier: Apache-2.0
"""iOS ATS ``NSPinnedDomains`` reader and writer."""

from __future__ import annotations

import base64
import datetime as dt
import json
import plistlib
from pathlib import Path

import pytest

from pinscan.policy import formats, ios, trustkit
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
APPLE = "ios__apple-open-source__macos__"
PIN_A = "TQEtdMbmwFgYUifM4LDF+xgEtd0z69mPGmkp014d6ZY="
PIN_B = "rFjc3wG7lTZe43zeYTvPq8k4xdDEutCmIhI5dn4oCeE="


def corpus(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def plist_formats(data: bytes) -> list[str]:
    """The Info.plist formats whose sniffers claim ``data``."""
    return [name for name, module in (("ios", ios), ("trustkit", trustkit)) if module.sniff(data)]


def ats(name: str) -> Policy:
    return ios.parse(corpus(name), name)


def ats_plist(domains: dict[str, object]) -> bytes:
    return plistlib.dumps({"NSAppTransportSecurity": {"NSPinnedDomains": domains}}, sort_keys=False)


def spki_list(*pins: str) -> list[dict[str, str]]:
    return [{"SPKI-SHA256-BASE64": pin} for pin in pins]


def positions(policy: Policy, host: str) -> dict[Position, list[str]]:
    """Pins per position over every rule for ``host`` (ATS unites matching entries)."""
    out: dict[Position, list[str]] = {}
    for rule in policy.rules:
        if rule.host == host:
            for pin_set in rule.pin_sets:
                out.setdefault(pin_set.positions, []).extend(p.digest for p in pin_set.pins)
    return out


# ---------------------------------------------------------------------------------------------
# ATS: Apple's own oracle and the corpus.


def test_ats_matches_apples_parsing_oracle() -> None:
    """NSPinnedDomainsParsingTest.plist holds trustd's expected parse of every
    NSPinnedDomains_*.plist: presence and count of each list, and NSIncludesSubdomains."""
    oracle = plistlib.loads(corpus(f"{APPLE}NSPinnedDomainsParsingTest.plist"))
    checked = set()
    for case in oracle:
        name = f"{APPLE}{case['PlistFileName']}.plist"
        expected = case["ExpectedProperties"]
        policy = ats(name)
        found = positions(policy, "example.org")
        for key, position in (
            ("NSPinnedLeafIdentities", Position.LEAF),
            ("NSPinnedCAIdentities", Position.CA),
        ):
            assert (position in found) is expected[key], (name, key)
            if f"{key}Count" in expected:
                assert len(found[position]) == expected[f"{key}Count"], (name, key)
        if "NSIncludesSubdomains" in expected:
            (rule,) = policy.rules
            assert (rule.match is Match.ONE_LEVEL) is expected["NSIncludesSubdomains"]
        checked.add(name)
    assert checked == {p.name for p in CORPUS.glob(f"{APPLE}NSPinnedDomains_*.plist")}


def test_ats_apple_files_concretely() -> None:
    ca = ats(f"{APPLE}NSPinnedDomains_ca.plist")
    (rule,) = ca.rules
    assert (rule.host, rule.match, rule.location.line) == ("example.org", Match.ONE_LEVEL, 9)
    (pin_set,) = rule.pin_sets
    assert pin_set.positions is Position.CA
    assert [(p.digest, p.location.line) for p in pin_set.pins] == [
        ("r/mIkG3eEpVdm+u/ko/cwxzOMo1bk4TyHIlByibiA5E=", 17)
    ]
    assert (ca.format, ca.combine, ca.chain, ca.error, ca.warnings) == (
        "ios",
        Combine.UNION,
        ChainSource.VERIFIED,
        None,
        (),
    )

    leaf = ats(f"{APPLE}NSPinnedDomains_leaf.plist")
    (rule,) = leaf.rules
    assert rule.match is Match.EXACT
    assert [(p.digest, p.location.line) for p in rule.pins] == [
        ("i9HalScvf6T/skE3/A7QOq5n5cTYs8UHNOEFCnkguSI=", 15),
        ("i9HalScvf6T/skE3/A7QOq5n5cTYs8UHNOEFCnkguSI=", 19),
    ]

    both = ats(f"{APPLE}NSPinnedDomains_leaf_and_ca.plist")
    assert positions(both, "example.org") == {
        Position.LEAF: ["i9HalScvf6T/skE3/A7QOq5n5cTYs8UHNOEFCnkguSI="],
        Position.CA: [
            "5kJvNEMw0KjrCAu7eXY5HZdvyCS13BbA0VJG1RSP91w=",
            "r/mIkG3eEpVdm+u/ko/cwxzOMo1bk4TyHIlByibiA5E=",
        ],
    }
    assert len(both.rules[0].pin_sets) == 2  # two sets in one rule: both must match

    empty = ats(f"{APPLE}NSPinnedDomains_with_empty_spki.plist")
    assert positions(empty, "example.org") == {Position.LEAF: []}
    assert [(w.location.line, "holds no usable pin" in w.message) for w in empty.warnings] == [
        (11, True)
    ]

    invalid = ats(f"{APPLE}NSPinnedDomains_with_invalid_spki.plist")
    assert positions(invalid, "example.org") == {Position.LEAF: [], Position.CA: []}
    messages = [(w.location.line, w.message) for w in invalid.warnings]
    assert (
        15,
        "example.org: NSPinnedLeafIdentities is not an array: ATS reads it as an empty list",
    ) in messages
    assert any(line == 11 and "not a dictionary" in m for line, m in messages)

    without = ats(f"{APPLE}NSPinnedDomains_without_spki.plist")
    assert without.rules == ()
    assert [(w.location.line, w.message) for w in without.warnings] == [
        (
            9,
            "example.org: neither NSPinnedLeafIdentities nor NSPinnedCAIdentities: ATS does not "
            "pin it",
        )
    ]

    oracle = ats(f"{APPLE}NSPinnedDomainsParsingTest.plist")
    assert oracle.rules == ()
    assert "ATS pins nothing" in oracle.warnings[0].message


def test_ats_real_app_files() -> None:
    marco = ats("ios__MarcoEidinger__TestingNSPinnedDomains__Info.plist")
    (rule,) = marco.rules
    assert (rule.host, rule.match, rule.location.line) == (
        "jsonplaceholder.typicode.com",
        Match.ONE_LEVEL,
        55,
    )
    assert positions(marco, rule.host) == {
        Position.LEAF: ["XlCPXC6IrttTF9Y1887kS+efCCf3uFjHW6D1TUI9f+Q="]
    }
    assert rule.pins[0].location.line == 63
    assert marco.warnings == ()

    owasp = ats("ios__OWASP__mastg__Info.plist")
    assert [(r.host, r.match, r.location.line) for r in owasp.rules] == [
        ("sha256.badssl.com", Match.ONE_LEVEL, 9),
        ("rsa2048.badssl.com", Match.ONE_LEVEL, 21),
    ]
    assert positions(owasp, "sha256.badssl.com") == {
        Position.CA: ["HXXQgxueCIU5TTLHob/bPbwcKOKw6DkfsTWYHbxbqTY="]
    }
    assert positions(owasp, "rsa2048.badssl.com") == {
        Position.CA: ["0SDf3cRToyZJaMsoS17oF72VMavLxj/N7WkTpymPxdc="]
    }
    assert owasp.warnings == ()

    toolkit = ats("ios__httptoolkit__ios-ssl-pinning-demo__Info.plist")
    (rule,) = toolkit.rules  # NSExceptionDomains is not pinning
    assert (rule.host, rule.match, rule.location.line) == ("sha256.badssl.com", Match.EXACT, 17)
    assert positions(toolkit, rule.host) == {
        Position.CA: ["C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M="]  # ISRG Root X1
    }


@pytest.mark.parametrize("path", sorted(CORPUS.glob("ios__*")), ids=lambda p: p.name)
def test_sniff_corpus(path: Path) -> None:
    expected = [] if "ParsingTest" in path.name else ["ios"]
    assert plist_formats(path.read_bytes()) == expected
    if expected:
        assert formats.detect(path.read_bytes(), path.name) == ["ios"]


# ---------------------------------------------------------------------------------------------
# ATS semantics fixtures.


def test_ats_keys_case_insensitive_and_never_matching_keys_skipped() -> None:
    policy = ios.parse(
        ats_plist(
            {
                "API.Example.COM": {"NSPinnedCAIdentities": spki_list(PIN_A)},
                "api.example.com": {"NSPinnedCAIdentities": spki_list(PIN_B)},
                "dot.example.com.": {"NSPinnedCAIdentities": spki_list(PIN_A)},
                "*.example.com": {"NSPinnedCAIdentities": spki_list(PIN_A)},
                "bad.example.com": "not a dict",
            }
        ),
        "x.plist",
    )
    # Both spellings match the same host: their lists are united (Combine.UNION).
    assert [(r.host, r.pattern) for r in policy.rules] == [
        ("api.example.com", "API.Example.COM"),
        ("api.example.com", "api.example.com"),
    ]
    assert positions(policy, "api.example.com") == {Position.CA: [PIN_A, PIN_B]}
    skipped = [w.message for w in policy.warnings]
    assert len(skipped) == 3
    assert "never matches" in skipped[0] and "'dot.example.com.'" in skipped[0]
    assert "never matches" in skipped[1] and "'*.example.com'" in skipped[1]
    assert skipped[2] == "'bad.example.com': not a dictionary: ATS skips it"


def test_ats_includes_subdomains_only_boolean_true() -> None:
    policy = ios.parse(
        ats_plist(
            {
                "a.example": {"NSIncludesSubdomains": True, "NSPinnedLeafIdentities": []},
                "b.example": {"NSIncludesSubdomains": "YES", "NSPinnedLeafIdentities": []},
                "c.example": {"NSIncludesSubdomains": 1, "NSPinnedLeafIdentities": []},
                "d.example": {"NSIncludesSubdomains": False, "NSPinnedLeafIdentities": []},
            }
        ),
        "x.plist",
    )
    assert [(r.host, r.match) for r in policy.rules] == [
        ("a.example", Match.ONE_LEVEL),
        ("b.example", Match.EXACT),
        ("c.example", Match.EXACT),
        ("d.example", Match.EXACT),
    ]
    assert sum("not a boolean" in w.message for w in policy.warnings) == 2


def test_ats_base64_like_secbase64decode() -> None:
    """Apple's decoder skips characters outside the alphabet; a digest of any length is kept
    (it never matches); one that decodes to nothing is skipped."""
    spaced = PIN_A[:10] + " \n" + PIN_A[10:]
    short = base64.b64encode(b"x" * 20).decode()
    policy = ios.parse(
        ats_plist(
            {
                "example.org": {
                    "NSPinnedLeafIdentities": [
                        {"SPKI-SHA256-BASE64": spaced},
                        {"SPKI-SHA256-BASE64": short},
                        {"SPKI-SHA256-BASE64": "!!!"},
                        {"SPKI-SHA256-BASE64": 42},
                        {"other": PIN_A},
                        PIN_B,
                    ]
                }
            }
        ),
        "x.plist",
    )
    assert positions(policy, "example.org") == {Position.LEAF: [PIN_A, short]}
    messages = " | ".join(w.message for w in policy.warnings)
    assert "skips" in messages and "20 bytes" in messages and "does not decode" in messages
    assert sum("not a dictionary with a SPKI-SHA256-BASE64" in w.message for w in policy.warnings)
    assert len(policy.warnings) == 6


def test_ats_binary_and_json_and_missing() -> None:
    domains = {"example.org": {"NSPinnedCAIdentities": spki_list(PIN_A, PIN_B)}}
    binary = plistlib.dumps(
        {"NSAppTransportSecurity": {"NSPinnedDomains": domains}}, fmt=plistlib.FMT_BINARY
    )
    assert plist_formats(binary) == ["ios"]
    policy = ios.parse(binary, "Info.plist")
    assert positions(policy, "example.org") == {Position.CA: [PIN_A, PIN_B]}
    assert policy.rules[0].location.line is None

    as_json = json.dumps({"NSAppTransportSecurity": {"NSPinnedDomains": domains}}, indent=1)
    policy = ios.parse(as_json.encode(), "dump.json")
    assert positions(policy, "example.org") == {Position.CA: [PIN_A, PIN_B]}
    assert policy.rules[0].location.line == 4

    nothing = ios.parse(plistlib.dumps({"CFBundleName": "x"}), "x.plist")
    assert (nothing.rules, nothing.error) == ((), None)
    assert "ATS pins nothing" in nothing.warnings[0].message

    required = ios.parse(
        plistlib.dumps(
            {
                "SecTrustPinningRequired": True,
                "NSAppTransportSecurity": {"NSPinnedDomains": domains},
            }
        ),
        "x.plist",
    )
    assert any("SecTrustPinningRequired" in note for note in required.notes)


# ---------------------------------------------------------------------------------------------
# Writers: round trips.


def suggestion(roles: tuple[str, ...], **kwargs: object) -> Suggestion:
    pins = tuple(
        SuggestedPin(Pin.sha256(base64.b64encode(bytes([i]) * 32).decode()), role, f"{role} -- {i}")
        for i, role in enumerate(roles)
    )
    values: dict[str, object] = {
        "domain": "api.example.com",
        "include_subdomains": True,
        "pins": pins,
        "expires": dt.date(2027, 6, 30),
        "header": ("pinscan suggest", "scan of 2025-01-01"),
    }
    values.update(kwargs)
    return Suggestion(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        (("intermediate", "root", "backup"), {Position.CA: [0, 1, 2]}),
        (("leaf", "backup"), {Position.LEAF: [0, 1]}),
        (("leaf", "intermediate", "backup"), {Position.LEAF: [0, 2], Position.CA: [1, 2]}),
    ],
)
def test_write_ats_round_trip(roles: tuple[str, ...], expected: dict[Position, list[int]]) -> None:
    wanted = suggestion(roles)
    text = ios.write(wanted)
    assert "<!-- pinscan suggest -->" in text and "never expire" in text and "2027-06-30" in text
    assert "- -" in text  # "--" is not allowed inside an XML comment
    assert plist_formats(text.encode()) == ["ios"]
    policy = ios.parse(text.encode(), "out.plist")
    assert policy.warnings == ()
    (rule,) = policy.rules
    assert (rule.host, rule.match) == ("api.example.com", Match.ONE_LEVEL)
    digests = [p.pin.digest for p in wanted.pins]
    assert positions(policy, "api.example.com") == {
        pos: [digests[i] for i in idx] for pos, idx in expected.items()
    }
    assert {p.digest for p in rule.pins} == set(digests)
