# SPDX-License-Identifier: Apache-2.0
"""Android Network Security Config and TrustKit-Android readers, the Java/Android value
decoders they share, and the Android writer.

Corpus expectations follow AOSP's own tests (``XmlConfigTests``: ``testBadConfig*`` must fail to
parse, ``testBadPin`` pins android.com, ``testExpiredPin`` / ``testOverridesPins`` /
``testDebugDedup`` connect despite a wrong pin, ``testNestedDomainConfigs`` pins only the child)
and TrustKit-Android's ``TrustKitConfigurationParser`` / ``DomainPinningPolicy``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pinscan.certs.keys import spki_pin
from pinscan.errors import PolicyError
from pinscan.policy import android, formats, trustkit_android
from pinscan.policy._java_values import JavaDate, android_base64, java_date
from pinscan.policy.evaluate import evaluate
from pinscan.policy.model import (
    Combine,
    Match,
    Pin,
    Policy,
    SuggestedPin,
    Suggestion,
    utc_midnight,
)

from fleet import pki
from policyfleet import Served, write_dataset

CORPUS = Path(__file__).parent / "data" / "policies"
P1 = "zCTnfLwLKbS9S2sbp+uFz4KZOocFvXxkV06Ce9O5M2w="
P2 = "1HIpactkIAq2Y49orFOOQKurWxmmSFZhBCoQYcRhJ3Y="
P3 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


def corpus(name: str) -> bytes:
    return (CORPUS / f"android__{name}").read_bytes()


def nsc(body: str) -> bytes:
    head = '<?xml version="1.0" encoding="utf-8"?>\n<network-security-config>\n'
    return f"{head}{body}\n</network-security-config>\n".encode()


def nsc_formats(data: bytes) -> list[str]:
    """The formats whose sniffers claim ``data`` as a network security config."""
    readers = (("android", android), ("trustkit-android", trustkit_android))
    return [name for name, module in readers if module.sniff(data)]


def pinned(host: str, pins: list[str], extra: str = "", domain_attrs: str = "") -> str:
    pin_xml = "".join(f'<pin digest="SHA-256">{p}</pin>' for p in pins)
    return (
        f"<domain-config><domain{domain_attrs}>{host}</domain>"
        f"<pin-set>{pin_xml}</pin-set>{extra}</domain-config>"
    )


def summary(policy: Policy) -> list[tuple]:
    return [
        (r.host, r.match.value, [p.digest for p in r.pins], r.exclude, r.enforce)
        for r in policy.rules
    ]


# --- sniffing --------------------------------------------------------------------------------

SNIFFED = {
    "ProtonMail__proton-mail-android__network_security_config.uiAutomation.xml": 2,
    "ProtonMail__proton-mail-android__network_security_config.xml": 2,
    "datatheorem__TrustKit-Android__network_security_config.androidTest.1280940.xml": 2,
    "datatheorem__TrustKit-Android__network_security_config.androidTest.xml": 2,
    "datatheorem__TrustKit-Android__network_security_config.app.xml": 2,
    "datatheorem__TrustKit-Android__network_security_config.demoappkotlin.xml": 2,
    "httptoolkit__android-ssl-pinning-demo__network_security_config.8411df9.xml": 2,
    "httptoolkit__android-ssl-pinning-demo__network_security_config.xml": 2,
    "threema-ch__threema-android__network_security_config.3ec12ae.xml": 2,
}


@pytest.mark.parametrize("path", sorted(CORPUS.glob("android__*")), ids=lambda p: p.name)
def test_sniff_every_android_corpus_file(path: Path) -> None:
    name = path.name.removeprefix("android__")
    expected = ["android", "trustkit-android"][: SNIFFED.get(name, 1)]
    assert nsc_formats(path.read_bytes()) == expected
    assert formats.detect(path.read_bytes(), path.name) == expected


@pytest.mark.parametrize("path", sorted(CORPUS.glob("[!a]*__*")), ids=lambda p: p.name)
def test_sniff_leaves_other_formats_alone(path: Path) -> None:
    assert nsc_formats(path.read_bytes()) == []


def test_sniff_claims_a_broken_config_so_the_reader_can_say_why() -> None:
    broken = b"<network-security-config><domain-config></network-security-config>"
    assert nsc_formats(broken) == ["android"]
    with pytest.raises(PolicyError, match="not well-formed"):
        android.parse(broken, "broken.xml")
    assert nsc_formats(b"<resources>network-security-config</resources>") == []


# --- Android: the AOSP test files --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "line", "message"),
    [
        ("bad_config0", 7, "Unsupported pin digest algorithm: I am probably not an algorithm"),
        ("bad_config1", 7, "Unsupported pin digest algorithm: None"),
        ("bad_config2", 7, "Missing pin digest"),
        ("bad_config3", 8, "android.com has already been specified"),
        ("bad_config5", 5, "pin-set element not allowed in base-config"),
    ],
)
def test_aosp_bad_configs_are_rejected(name: str, line: int, message: str) -> None:
    source = f"android__aosp-mirror__platform_frameworks_base__{name}.xml"
    policy = android.parse(corpus(f"aosp-mirror__platform_frameworks_base__{name}.xml"), source)
    assert policy.error == message
    assert str(policy.error_location) == f"{source}:{line}"
    assert policy.format == "android"
    assert policy.combine is Combine.MOST_SPECIFIC
    if name != "bad_config5":  # the covered host still gets the verdict error
        assert [r.host for r in policy.rules] == ["android.com"]


def test_aosp_bad_config3_keeps_reading_after_the_first_error() -> None:
    policy = android.parse(corpus("aosp-mirror__platform_frameworks_base__bad_config3.xml"), "b3")
    assert [str(w) for w in policy.warnings] == [
        "b3:9: Android would also reject: No domain elements in domain-config"
    ]


def test_aosp_pins1_and_bad_pin_pin_android_com() -> None:
    for name, digest in (("pins1", P1), ("bad_pin", P2)):
        policy = android.parse(corpus(f"aosp-mirror__platform_frameworks_base__{name}.xml"), name)
        assert policy.valid
        assert summary(policy) == [("android.com", "exact", [digest], False, True)]
        (rule,) = policy.rules
        assert rule.expires is None
        assert rule.override_pins == frozenset()
        assert rule.location.line == 4
        assert [w.message for w in policy.warnings] == [
            "a single pin and no backup pin (Android lint MissingBackupPin)"
        ]


def test_aosp_expired_pin_expires_at_midnight_and_says_the_time_zone() -> None:
    policy = android.parse(corpus("aosp-mirror__platform_frameworks_base__expired_pin.xml"), "e")
    (rule,) = policy.rules
    assert rule.expires == dt.datetime(2015, 1, 1, tzinfo=dt.UTC)
    assert rule.pins[0].digest == "aaaaaaaaaaa2Y49orFOOQKurWxmmSFZhBCoQYcRhJ3Y="
    assert any("device's time zone" in note for note in policy.notes)


def test_aosp_override_pins_marks_the_system_anchor() -> None:
    policy = android.parse(corpus("aosp-mirror__platform_frameworks_base__override_pins.xml"), "o")
    (rule,) = policy.rules
    assert rule.override_pins == frozenset({"system"})
    assert rule.pins[0].digest == "aaaaaaaaIAq2Y49orFOOQKurWxmmSFZhBCoQYcRhJ3Y="


def test_aosp_override_dedup_only_overrides_in_a_debug_build() -> None:
    data = corpus("aosp-mirror__platform_frameworks_base__override_dedup.xml")
    release = android.parse(data, "d")
    assert release.rules[0].override_pins == frozenset()
    assert release.notes == (
        "release build: <debug-overrides> ignored (debuggable builds read it)",
    )
    debug = android.parse(data, "d", debug=True)
    assert debug.rules[0].override_pins == frozenset({"system"})
    assert summary(debug) == summary(release)


def test_aosp_debug_basic_has_no_domain_rules() -> None:
    data = corpus("aosp-mirror__platform_frameworks_base__debug_basic.xml")
    for debug in (False, True):
        policy = android.parse(data, "debug_basic", debug=debug)
        assert policy.valid
        assert policy.rules == ()


def test_aosp_domain_whitespace_is_trimmed() -> None:
    policy = android.parse(
        corpus("aosp-mirror__platform_frameworks_base__domain_whitespace.xml"), "w"
    )
    assert policy.valid
    assert summary(policy) == [
        ("android.com", "exact", [P1], False, True),
        ("developer.android.com", "exact", [P1], False, True),
    ]
    assert [r.pattern for r in policy.rules] == ["android.com", "developer.android.com"]
    assert policy.rules[0].pins[0].text == P1


def test_aosp_nested_domains_pin_only_the_child() -> None:
    policy = android.parse(corpus("aosp-mirror__platform_frameworks_base__nested_domains.xml"), "n")
    assert summary(policy) == [
        ("android.com", "subdomains", [], True, True),
        ("developer.android.com", "exact", [P1], False, True),
    ]
    # The child inherits the parent's explicit anchors (system, overridePins false).
    assert all(r.override_pins == frozenset() for r in policy.rules)


def test_aosp_nested_domains_override_has_no_pins() -> None:
    data = corpus("aosp-mirror__platform_frameworks_base__nested_domains_override.xml")
    policy = android.parse(data, "n")
    assert policy.valid
    assert summary(policy) == [
        ("android.com", "subdomains", [], True, True),
        ("developer.android.com", "exact", [], True, True),
    ]


# --- Android: real app configs -------------------------------------------------------------------


def test_threema_four_configs_all_subdomains() -> None:
    policy = android.parse(corpus("threema-ch__threema-android__network_security_config.xml"), "t")
    assert policy.valid and policy.warnings == () and policy.notes == ()
    assert [(r.host, r.match, len(r.pins), r.location.line) for r in policy.rules] == [
        ("threema.ch", Match.SUBDOMAINS, 6, 17),
        ("threema.com", Match.SUBDOMAINS, 6, 32),
        ("sfu.threema.ch", Match.SUBDOMAINS, 4, 43),
        ("test.threema.ch", Match.SUBDOMAINS, 3, 52),
    ]
    assert policy.rules[0].pins[0].digest == "vGQZ8hm2h+km+q7rnJ7kF9S17BwSY0rbhwjz6nIupf0="
    # base-config trusts system and user CAs, neither overriding pins.
    assert all(r.override_pins == frozenset() for r in policy.rules)


def test_threema_old_revision_reads_the_same_for_android() -> None:
    old = android.parse(
        corpus("threema-ch__threema-android__network_security_config.3ec12ae.xml"), "o"
    )
    new = android.parse(corpus("threema-ch__threema-android__network_security_config.xml"), "n")
    assert summary(old) == summary(new)


def test_protonmail_domain_without_pin_set_is_an_unpinned_carve_out() -> None:
    policy = android.parse(
        corpus("ProtonMail__proton-mail-android__network_security_config.xml"), "p"
    )
    assert policy.valid
    assert summary(policy) == [
        (
            "mail-api.proton.me",
            "subdomains",
            [
                "+0dMG0qG2Ga+dNE8uktwMm7dv6RFEXwBoBjQ43GqsQ0=",
                "CT56BhOTmj5ZIPgb/xD5mH8rY3BLo/MlhP7oPyJUEDo=",
                "35Dx28/uzN3LeltkCBQ8RHK0tlNSa2kCpCRGNp34Gxc=",
                "qYIukVc63DEITct8sFT7ebIq5qsWmuscaIKeJx+5J5A=",
            ],
            False,
            True,
        ),
        ("localhost", "subdomains", [], True, True),
    ]
    assert [str(w) for w in policy.warnings] == [
        "p:45: Android ignores enforcePinning on <domain-config> (TrustKit reads it only on "
        "<trustkit-config>)"
    ]


def test_protonmail_ui_automation_debug_cert_overrides_pins_in_debug_builds_only() -> None:
    data = corpus("ProtonMail__proton-mail-android__network_security_config.uiAutomation.xml")
    assert all(r.override_pins == frozenset() for r in android.parse(data, "u").rules)
    debug = android.parse(data, "u", debug=True)
    # debug-overrides certificates default to overridePins=true and reach every config.
    assert [(r.host, r.override_pins) for r in debug.rules] == [
        ("mail-api.proton.me", frozenset({"@raw/instrumentation_cert"})),
        ("localhost", frozenset({"@raw/instrumentation_cert"})),
    ]


def test_afterpay_expired_single_pin_sets_and_an_ip_address() -> None:
    policy = android.parse(corpus("afterpay__sdk-android__network_security_config.xml"), "a")
    assert policy.valid
    assert [(r.host, r.match, len(r.pins), r.expires) for r in policy.rules] == [
        ("portal.afterpay.com", Match.EXACT, 1, utc_midnight(dt.date(2022, 5, 25))),
        ("portal.sandbox.afterpay.com", Match.EXACT, 2, utc_midnight(dt.date(2021, 9, 9))),
        ("10.0.2.2", Match.EXACT, 1, None),
    ]
    # The tools: namespace attribute is not Android's; its own anchors list no override.
    assert policy.rules[2].override_pins == frozenset()
    assert [w.location.line for w in policy.warnings] == [13, 39]
    assert _TZ in policy.notes


_TZ = (
    "pin-set expiration: Android (and TrustKit-Android) stop enforcing at 00:00 of that date in "
    "the device's time zone; pinscan uses 00:00 UTC"
)


def test_codeql_negative_test_is_rejected_on_its_date() -> None:
    policy = android.parse(corpus("github__codeql__NetworkSecurityConfig.xml"), "c")
    assert policy.error == "Invalid expiration date in pin-set"
    assert policy.error_location is not None and policy.error_location.line == 5
    assert [r.host for r in policy.rules] == ["good.example.com"]
    assert [str(w) for w in policy.warnings] == [
        "c:6: Android would also reject: digest length 0 does not match expected length for "
        "SHA-256 of 32"
    ]


def test_httptoolkit_unpadded_dud_pin_is_32_bytes_to_android() -> None:
    data = corpus("httptoolkit__android-ssl-pinning-demo__network_security_config.xml")
    policy = android.parse(data, "h")
    assert policy.valid
    assert [(r.host, len(r.pins), r.exclude) for r in policy.rules] == [
        ("testserver.host", 0, True),
        ("rsa2048--untrusted-root.testserver.host", 2, False),
        ("rsa4096--untrusted-root.testserver.host", 2, False),
        ("rsa8192--untrusted-root.testserver.host", 0, True),
        ("tls-v1-3--tls-v1-2.testserver.host", 0, True),
    ]
    dud = policy.rules[1].pins[1]
    assert dud.text == "ABCDEFABCDEFABCDEFABCDEFABCDEFABCDEFABCDEFA"
    assert dud.digest == "ABCDEFABCDEFABCDEFABCDEFABCDEFABCDEFABCDEFA="


def test_httptoolkit_old_revision_pins_isrg_root_x1() -> None:
    data = corpus("httptoolkit__android-ssl-pinning-demo__network_security_config.8411df9.xml")
    policy = android.parse(data, "h")
    assert [(r.host, [p.digest for p in r.pins][:1]) for r in policy.rules] == [
        ("sha256.badssl.com", ["C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M="]),
        ("rsa4096.badssl.com", ["C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M="]),
    ]
    assert [w.location.line for w in policy.warnings] == [28]


def test_trustkit_android_test_configs_for_android() -> None:
    data = corpus("datatheorem__TrustKit-Android__network_security_config.androidTest.xml")
    policy = android.parse(data, "t")
    assert policy.valid
    assert [r.host for r in policy.rules] == [
        "www.datatheorem.com",
        "datatheorem.com",
        "www.yahoo.com",
        "www.github.com",
        "www.microsoft.com",
        "expired.badssl.com",
        "untrusted-root.badssl.com",
        "wrong.host.badssl.com",
    ]
    # Android ignores <trustkit-config>: every config is enforced.
    assert all(r.enforce and len(r.pins) == 2 and r.match is Match.EXACT for r in policy.rules)
    assert [r.expires for r in policy.rules if r.expires] == [utc_midnight(dt.date(2015, 1, 1))]


def test_trustkit_android_old_test_config_debug_overrides() -> None:
    data = corpus("datatheorem__TrustKit-Android__network_security_config.androidTest.1280940.xml")
    assert len(android.parse(data, "t").rules) == 6
    debug = android.parse(data, "t", debug=True)
    assert {r.override_pins for r in debug.rules} == {frozenset({"@raw/good", "@raw/cacertorg"})}


@pytest.mark.parametrize("name", ["app", "demoappkotlin"])
def test_trustkit_android_demo_apps(name: str) -> None:
    data = corpus(f"datatheorem__TrustKit-Android__network_security_config.{name}.xml")
    policy = android.parse(data, name)
    assert policy.valid
    expected = [
        ("www.datatheorem.com", "subdomains", [P3, "YLh1dUR9y6Kja30RrAn7JKnbQG/uEtLMkBgFF2Fuihg="]),
        # The last character's spare bits are dropped: the canonical digest ends "BA=".
        ("www.google.com", "subdomains", [P3, "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBA="]),
    ]
    if name == "demoappkotlin":
        expected.append(("localhost", "subdomains", []))
    assert [(h, m, p) for h, m, p, _, _ in summary(policy)] == expected
    assert policy.rules[0].expires == utc_midnight(dt.date(2018, 1, 1))
    assert [w.location.line for w in policy.warnings] == [14] + ([25] if name != "app" else [])


# --- Android: semantics fixtures -------------------------------------------------------------


def test_nested_config_inherits_the_parent_pin_set_and_may_replace_it() -> None:
    policy = android.parse(
        nsc(
            f"""<domain-config><domain includeSubdomains="true">example.com</domain>
  <pin-set expiration="2030-06-01"><pin digest="SHA-256">{P1}</pin></pin-set>
  <domain-config><domain>a.example.com</domain></domain-config>
  <domain-config><domain>b.example.com</domain>
    <pin-set><pin digest="SHA-256">{P2}</pin></pin-set></domain-config>
  <domain-config><domain>c.example.com</domain><pin-set/></domain-config>
</domain-config>"""
        ),
        "n.xml",
    )
    assert policy.valid
    assert [(r.host, [p.digest for p in r.pins], r.exclude, r.expires) for r in policy.rules] == [
        ("example.com", [P1], False, utc_midnight(dt.date(2030, 6, 1))),
        ("a.example.com", [P1], False, utc_midnight(dt.date(2030, 6, 1))),
        ("b.example.com", [P2], False, None),  # replaced, expiration and all
        ("c.example.com", [], True, None),  # an empty pin-set unpins
    ]
    assert [str(w) for w in policy.warnings][-1] == (
        "n.xml:8: empty pin-set: Android does not pin these names"
    )


def test_deep_nesting_inherits_through_every_level() -> None:
    inner = "<domain-config><domain>d.c.b.a.test</domain></domain-config>"
    for name in ("c.b.a.test", "b.a.test"):
        inner = f"<domain-config><domain>{name}</domain>{inner}</domain-config>"
    policy = android.parse(nsc(pinned("a.test", [P1, P2], inner)), "x")
    assert [(r.host, len(r.pins)) for r in policy.rules] == [
        ("a.test", 2),
        ("b.a.test", 2),
        ("c.b.a.test", 2),
        ("d.c.b.a.test", 2),
    ]


def test_trust_anchors_inherit_like_pins() -> None:
    policy = android.parse(
        nsc(
            f"""<base-config><trust-anchors><certificates src="user" overridePins="true"/>
</trust-anchors></base-config>
{pinned("a.test", [P1])}
<domain-config><domain>b.test</domain><pin-set><pin digest="SHA-256">{P1}</pin></pin-set>
  <trust-anchors><certificates src="@raw/ca" overridePins="TRUE"/><certificates src="system"/>
  </trust-anchors>
  <domain-config><domain>c.b.test</domain></domain-config>
  <domain-config><domain>d.b.test</domain><trust-anchors/></domain-config>
</domain-config>"""
        ),
        "x",
    )
    assert policy.valid
    assert [(r.host, r.override_pins) for r in policy.rules] == [
        ("a.test", frozenset({"user"})),  # from base-config
        ("b.test", frozenset({"@raw/ca"})),
        ("c.b.test", frozenset({"@raw/ca"})),
        ("d.b.test", frozenset()),  # its own (empty) anchors replace the parent's
    ]


def test_base_config_after_domain_configs_still_gives_its_anchors() -> None:
    body = pinned("a.test", [P1]) + (
        '<base-config><trust-anchors><certificates src="system" overridePins="true"/>'
        "</trust-anchors></base-config>"
    )
    assert android.parse(nsc(body), "x").rules[0].override_pins == frozenset({"system"})


def test_include_subdomains_and_case_and_digest_name() -> None:
    policy = android.parse(
        nsc(
            f"""<domain-config>
<domain includeSubdomains="true">  API.Example.COM </domain>
<domain includeSubdomains="false">web.example.com</domain>
<domain includeSubdomains="yes">odd.example.com</domain>
<pin-set><pin digest="sha-256">  {P1}\n</pin><pin digest="SHA-256">{P1}</pin></pin-set>
</domain-config>"""
        ),
        "x",
    )
    assert policy.valid
    assert [(r.host, r.match, len(r.pins)) for r in policy.rules] == [
        ("api.example.com", Match.SUBDOMAINS, 1),  # the same digest twice counts once
        ("web.example.com", Match.EXACT, 1),
        ("odd.example.com", Match.EXACT, 1),
    ]
    assert str(policy.warnings[0]) == (
        "x:6: includeSubdomains='yes' is not a boolean to aapt2: Android reads the default, false"
    )


def test_trailing_dot_domain_never_matches_on_android() -> None:
    policy = android.parse(nsc(pinned("example.com.", [P1, P2])), "x")
    assert policy.valid
    assert policy.rules == ()
    assert "never matches" in policy.warnings[0].message


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        (pinned("a.test", [P1]) + pinned("A.TEST", [P2]), 3, "a.test has already been specified"),
        (
            pinned("a.test", [P1], "<domain-config><domain>a.test</domain></domain-config>"),
            3,
            "a.test has already been specified",
        ),
        (
            pinned("a.test", [P1], f'<pin-set><pin digest="SHA-256">{P2}</pin></pin-set>'),
            3,
            "Multiple pin-set elements not allowed",
        ),
        (
            pinned("a.test", [P1], "<trust-anchors/><trust-anchors/>"),
            3,
            "Multiple trust-anchor elements not allowed",
        ),
        ("<domain-config><pin-set/></domain-config>", 3, "No domain elements in domain-config"),
        ("<domain-config><domain></domain></domain-config>", 3, "Domain name missing"),
        ("<domain-config><domain> \n </domain></domain-config>", 3, "Domain name missing"),
        (
            "<domain-config><domain>a.test<b/></domain></domain-config>",
            3,
            "domain contains additional elements",
        ),
        (
            "<base-config><domain>a.test</domain></base-config>",
            3,
            "domain element not allowed in base-config",
        ),
        (
            "<base-config><domain-config/></base-config>",
            3,
            "Nested domain-config not allowed in base-config",
        ),
        ("<base-config/>\n<base-config/>", 4, "Only one base-config allowed"),
        ("<debug-overrides/>\n<debug-overrides/>", 4, "Only one debug-overrides allowed"),
        (
            pinned("a.test", [P1], "<trust-anchors><certificates/></trust-anchors>"),
            3,
            "certificates element missing src attribute",
        ),
        (
            pinned("a.test", [P1], '<trust-anchors><certificates src="raw/x"/></trust-anchors>'),
            3,
            "Unknown certificates src. Should be one of system|user|@resourceVal",
        ),
        (
            pinned("a.test", ["AAAA"]),
            3,
            "digest length 3 does not match expected length for SHA-256 of 32",
        ),
        (pinned("a.test", [P1[:-2] + "=A"]), 3, "Invalid pin digest"),
        (pinned("a.test", [P1 + "<x/>"]), 3, "pin contains additional elements"),
        (pinned("a.test", ["<x/>" + P1]), 3, "Missing pin digest"),
    ],
)
def test_android_whole_file_rejections(body: str, line: int, message: str) -> None:
    policy = android.parse(nsc(body), "bad.xml")
    assert policy.error == message
    assert str(policy.error_location) == f"bad.xml:{line}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2027-01-01", dt.date(2027, 1, 1)),
        ("2027-1-1", dt.date(2027, 1, 1)),  # any digit count
        ("2027-01-01T12:00", dt.date(2027, 1, 1)),  # text after the day is ignored
        (" 2024-02-29", dt.date(2024, 2, 29)),
        ("2023-02-29", None),  # not lenient: no rolling over
        ("2027-13-01", None),
        ("2027-00-10", None),
        ("2038/1/19", None),
        ("", None),
        ("27-01", None),
    ],
)
def test_expiration_dates_as_simple_date_format(text: str, expected: dt.date | None) -> None:
    got = java_date(text)
    assert (got.day if got else None) == expected
    body = f'<domain-config><domain>a.test</domain><pin-set expiration="{text}">'
    policy = android.parse(
        nsc(body + f'<pin digest="SHA-256">{P1}</pin></pin-set></domain-config>'), "x"
    )
    if expected is None:
        assert policy.error == "Invalid expiration date in pin-set"
    else:
        assert policy.valid and policy.rules[0].expires == utc_midnight(expected)


def test_a_year_past_9999_never_expires() -> None:
    assert java_date("20270-01-01") == JavaDate(None)
    assert java_date("9" * 5000 + "-01-01") == JavaDate(None)
    assert java_date("2027-01-" + "1" * 5000) is None
    assert java_date("20270-02-29") is None  # 20270 is no leap year
    assert java_date("20400-02-29") == JavaDate(None)
    assert java_date("0-01-01") is None
    assert java_date("2027-" + "0" * 6000 + "1-01") == JavaDate(dt.date(2027, 1, 1))
    body = pinned("a.test", [P1]).replace("<pin-set>", '<pin-set expiration="20270-01-01">')
    policy = android.parse(nsc(body), "x")
    assert policy.valid and policy.rules[0].expires is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (P1, P1),
        (P1[:-1], P1),  # padding is optional
        (" \n" + P1[:20] + " !" + P1[20:], P1),  # bytes outside the alphabet are skipped
        ("...", ""),
        ("QQ==", "QQ=="),
        ("QQ=", None),  # half the padding
        ("QQ==QQ", None),  # data after the padding
        ("Q", None),  # one character short of a byte
        ("=QQ", None),
    ],
)
def test_android_base64(text: str, expected: str | None) -> None:
    raw = android_base64(text)
    if expected is None:
        assert raw is None
    else:
        import base64

        assert raw == base64.b64decode(expected)


def test_debug_overrides_errors_only_count_in_debug_builds() -> None:
    body = (
        pinned("a.test", [P1])
        + "<debug-overrides><pin-set/><domain>x.test</domain></debug-overrides>"
    )
    assert android.parse(nsc(body), "x").valid
    debug = android.parse(nsc(body), "x", debug=True)
    assert debug.error == "pin-set element not allowed in debug-overrides"
    assert debug.warnings[-1].message == (
        "Android would also reject: domain element not allowed in debug-overrides"
    )


def test_debug_overrides_override_pins_false_is_kept() -> None:
    body = pinned("a.test", [P1]) + (
        '<debug-overrides><trust-anchors><certificates src="@raw/a"/>'
        '<certificates src="@raw/b" overridePins="false"/></trust-anchors></debug-overrides>'
    )
    debug = android.parse(nsc(body), "x", debug=True)
    assert debug.rules[0].override_pins == frozenset({"@raw/a"})
    assert not any("_debug.xml" in n for n in debug.notes)
    assert any(
        "_debug.xml" in n for n in android.parse(nsc(pinned("a.test", [P1])), "x", debug=True).notes
    )


def test_namespaced_and_unknown_elements_are_skipped() -> None:
    body = (
        '<domain-config xmlns:a="http://example.com/not-a-package">'
        '<domain a:includeSubdomains="true">a.test</domain>'
        f'<certificateTransparency enabled="true"/><wrapper><pin-set><pin digest="SHA-256">{P1}'
        "</pin></pin-set></wrapper></domain-config>"
    )
    policy = android.parse(nsc(body), "x")
    assert policy.valid
    # Android reads only un-namespaced attributes and skips unknown elements whole.
    assert summary(policy) == [("a.test", "exact", [], True, True)]
    # TrustKit's event loop finds the pin-set inside the unknown element.
    assert [len(r.pins) for r in trustkit_android.parse(nsc(body), "x").rules] == [1]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not well-formed"),
        (b"<network-security-config>", "not well-formed"),
        (b"<resources/>", "not a <network-security-config> document"),
        (
            b'<!DOCTYPE n [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
            b"<network-security-config>&b;</network-security-config>",
            "DTD is not allowed",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE n SYSTEM "http://example.com/x.dtd">'
            b"<network-security-config/>",
            "DTD is not allowed",
        ),
        (b"<network-security-config>&ext;</network-security-config>", "not well-formed"),
        (b"<x:network-security-config/>", "not well-formed"),
        (b"<a>" * 300 + b"</a>" * 300, "nesting deeper"),
    ],
)
def test_unreadable_files_raise_policy_error(data: bytes, message: str) -> None:
    for reader in (android.parse, trustkit_android.parse):
        with pytest.raises(PolicyError, match=message):
            reader(data, "bad.xml")


def test_utf16_files_read() -> None:
    data = nsc(pinned("a.test", [P1])).decode().replace("utf-8", "utf-16").encode("utf-16")
    assert [r.host for r in android.parse(data, "x").rules] == ["a.test"]


# --- TrustKit-Android --------------------------------------------------------------------------


def tk(body: str) -> Policy:
    return trustkit_android.parse(nsc(body), "tk.xml")


def test_trustkit_protonmail_enforces_and_skips_the_domain_without_pins() -> None:
    for name in ("xml", "uiAutomation.xml"):
        data = corpus(f"ProtonMail__proton-mail-android__network_security_config.{name}")
        policy = trustkit_android.parse(data, "p")
        assert policy.valid and policy.format == "trustkit-android"
        assert [(r.host, r.match, len(r.pins), r.enforce) for r in policy.rules] == [
            ("mail-api.proton.me", Match.SUBDOMAINS, 4, True)
        ]


def test_trustkit_android_test_config_enforcement_per_domain() -> None:
    data = corpus("datatheorem__TrustKit-Android__network_security_config.androidTest.xml")
    policy = trustkit_android.parse(data, "t")
    assert policy.valid
    assert [(r.host, r.enforce) for r in policy.rules] == [
        ("www.datatheorem.com", True),
        ("datatheorem.com", True),
        ("www.yahoo.com", True),
        ("www.github.com", False),
        ("www.microsoft.com", False),
        ("expired.badssl.com", False),
        ("untrusted-root.badssl.com", False),
        ("wrong.host.badssl.com", False),
    ]
    assert policy.rules[4].expires == utc_midnight(dt.date(2015, 1, 1))
    old = trustkit_android.parse(
        corpus("datatheorem__TrustKit-Android__network_security_config.androidTest.1280940.xml"),
        "o",
    )
    assert [r.enforce for r in old.rules] == [True, True, True, True, False, True]


@pytest.mark.parametrize("name", ["app", "demoappkotlin"])
def test_trustkit_demo_apps(name: str) -> None:
    data = corpus(f"datatheorem__TrustKit-Android__network_security_config.{name}.xml")
    policy = trustkit_android.parse(data, name)
    assert policy.valid
    assert [(r.host, r.match, len(r.pins), r.enforce) for r in policy.rules] == [
        ("www.datatheorem.com", Match.SUBDOMAINS, 2, True),
        ("www.google.com", Match.SUBDOMAINS, 2, True),
    ]
    assert policy.rules[0].expires == utc_midnight(dt.date(2018, 1, 1))


def test_trustkit_threema_old_enforces_new_reports_only() -> None:
    old = trustkit_android.parse(
        corpus("threema-ch__threema-android__network_security_config.3ec12ae.xml"), "o"
    )
    new = trustkit_android.parse(
        corpus("threema-ch__threema-android__network_security_config.xml"), "n"
    )
    assert [(r.host, len(r.pins), r.enforce) for r in old.rules] == [
        ("threema.ch", 6, True),
        ("threema.com", 6, True),
        ("sfu.threema.ch", 4, True),
        ("test.threema.ch", 3, True),
    ]
    assert [r.enforce for r in new.rules] == [False] * 4  # no <trustkit-config>: report-only


def test_trustkit_httptoolkit_single_pin_is_fine_when_reporting_only() -> None:
    policy = trustkit_android.parse(
        corpus("httptoolkit__android-ssl-pinning-demo__network_security_config.8411df9.xml"), "h"
    )
    assert policy.valid
    assert [(r.host, len(r.pins), r.enforce) for r in policy.rules] == [
        ("sha256.badssl.com", 2, True),
        ("rsa4096.badssl.com", 1, False),
    ]
    new = trustkit_android.parse(
        corpus("httptoolkit__android-ssl-pinning-demo__network_security_config.xml"), "h"
    )
    assert [(r.host, r.enforce) for r in new.rules] == [
        ("rsa2048--untrusted-root.testserver.host", False),
        ("rsa4096--untrusted-root.testserver.host", True),
    ]


def test_trustkit_afterpay_ip_address_is_an_invalid_domain() -> None:
    policy = trustkit_android.parse(
        corpus("afterpay__sdk-android__network_security_config.xml"), "a"
    )
    assert policy.error == "Tried to pin an invalid domain: 10.0.2.2"
    assert str(policy.error_location) == "a:34"
    assert [(r.host, r.enforce, r.error is None) for r in policy.rules] == [
        ("portal.afterpay.com", False, True),
        ("portal.sandbox.afterpay.com", False, True),
        ("10.0.2.2", False, False),
    ]


@pytest.mark.parametrize(
    ("name", "message", "line"),
    [
        ("bad_config0", "Unexpected digest value: I am probably not an algorithm", 7),
        ("bad_config1", "Unexpected digest value: None", 7),
        ("bad_config2", "Invalid pin: '' is not 32 bytes", 7),
        ("bad_config3", "Policy contains 0 domains to pin", 1),
        ("bad_config5", "Policy contains 0 domains to pin", 1),
        ("debug_basic", "Policy contains 0 domains to pin", 1),
        ("nested_domains_override", "Policy contains 0 domains to pin", 1),
        ("domain_whitespace", "Tried to pin an invalid domain:    developer.android.com    ", 6),
    ],
)
def test_trustkit_aosp_files_it_rejects(name: str, message: str, line: int) -> None:
    data = corpus(f"aosp-mirror__platform_frameworks_base__{name}.xml")
    policy = trustkit_android.parse(data, name)
    assert policy.error == message
    assert policy.error_location is not None and policy.error_location.line == line


@pytest.mark.parametrize(
    "name", ["pins1", "bad_pin", "expired_pin", "override_pins", "override_dedup"]
)
def test_trustkit_aosp_single_pin_files_report_only(name: str) -> None:
    policy = trustkit_android.parse(
        corpus(f"aosp-mirror__platform_frameworks_base__{name}.xml"), name
    )
    assert policy.valid
    assert [(r.host, r.match, len(r.pins), r.enforce) for r in policy.rules] == [
        ("android.com", Match.EXACT, 1, False)
    ]


def test_trustkit_nested_domains_inherit_include_subdomains() -> None:
    policy = trustkit_android.parse(
        corpus("aosp-mirror__platform_frameworks_base__nested_domains.xml"), "n"
    )
    assert [(r.host, r.match, r.enforce) for r in policy.rules] == [
        ("developer.android.com", Match.SUBDOMAINS, False)
    ]


def test_trustkit_codeql_rejected_on_its_date() -> None:
    policy = trustkit_android.parse(corpus("github__codeql__NetworkSecurityConfig.xml"), "c")
    assert policy.error == "Invalid expiration date in pin-set"
    assert policy.error_location is not None and policy.error_location.line == 5


def test_trustkit_enforce_needs_two_pins_and_no_empty_set() -> None:
    one = tk(pinned("a.test", [P1], '<trustkit-config enforcePinning="true"/>'))
    assert one.error == "Less than two pins were supplied for domain a.test"
    empty = tk(
        "<domain-config><domain>a.test</domain><pin-set/>"
        '<trustkit-config enforcePinning="TRUE"/></domain-config>'
    )
    assert empty.error is not None and empty.error.startswith("An empty pin-set was supplied")
    report = tk(
        "<domain-config><domain>a.test</domain><pin-set/><trustkit-config/></domain-config>"
    )
    assert report.valid
    (rule,) = report.rules
    assert not rule.enforce and len(rule.pin_sets) == 1 and rule.pin_sets[0].pins == ()


def test_trustkit_keeps_the_last_domain_and_inherits_settings() -> None:
    policy = tk(
        f"""<domain-config><domain includeSubdomains="true">a.test</domain>
<domain>b.test</domain>
<pin-set expiration="2030-01-01"><pin digest="SHA-256">{P1}</pin>
  <pin digest="SHA-256">{P2}</pin></pin-set>
<trustkit-config enforcePinning="true"/>
<domain-config><domain includeSubdomains="true">c.b.test</domain>
  <pin-set><pin digest="SHA-256">{P2}</pin><pin digest="SHA-256">{P3}</pin></pin-set>
</domain-config>
</domain-config>"""
    )
    assert policy.valid
    assert [(r.host, r.match, r.enforce, r.expires) for r in policy.rules] == [
        ("b.test", Match.EXACT, True, utc_midnight(dt.date(2030, 1, 1))),
        # A child's own pin-set without expiration still inherits its parent's date.
        ("c.b.test", Match.SUBDOMAINS, True, utc_midnight(dt.date(2030, 1, 1))),
    ]
    assert [str(w) for w in policy.warnings] == [
        "tk.xml:3: TrustKit keeps only the last <domain> of a domain-config: a.test is not "
        "pinned by TrustKit"
    ]


def test_trustkit_digest_must_be_exactly_sha_256() -> None:
    policy = tk(pinned("a.test", [P1, P2], domain_attrs=""))
    assert policy.valid
    lower = tk(pinned("a.test", [P1, P2]).replace('digest="SHA-256"', 'digest="sha-256"', 1))
    assert lower.error == "Unexpected digest value: sha-256"
    assert android.parse(
        nsc(pinned("a.test", [P1, P2]).replace("SHA-256", "sha-256", 1)), "x"
    ).valid


def test_trustkit_duplicates_and_case() -> None:
    dup = tk(pinned("a.test", [P1, P2]) + pinned("a.test", [P1, P2]))
    assert dup.error == "Policy contains the same domain defined twice: a.test"
    case = tk(pinned("A.test", [P1, P2]) + pinned("a.test", [P1, P2]))
    assert case.valid  # case-sensitive names: two distinct domains to TrustKit
    assert "case-sensitively" in case.warnings[0].message


def test_trustkit_does_not_shadow_with_unpinned_configs() -> None:
    body = pinned("example.com", [P1, P2], domain_attrs=' includeSubdomains="true"')
    body += "<domain-config><domain>a.example.com</domain></domain-config>"
    assert [r.host for r in tk(body).rules] == ["example.com"]
    assert [(r.host, r.exclude) for r in android.parse(nsc(body), "x").rules] == [
        ("example.com", False),
        ("a.example.com", True),
    ]


def test_trustkit_bad_pin_value() -> None:
    policy = tk(pinned("a.test", [P1, "AAAA"]))
    assert policy.error == "Invalid pin: 'AAAA' is not 32 bytes"
    assert policy.rules[0].pins[0].digest == P1


# --- writer ----------------------------------------------------------------------------------


def suggestion(**overrides: object) -> Suggestion:
    fields: dict[str, object] = {
        "domain": "api.example.com",
        "include_subdomains": True,
        "pins": (
            SuggestedPin(Pin.sha256(P1), "leaf", "leaf key of CN=api.example.com (3 endpoints)"),
            SuggestedPin(Pin.sha256(P2), "backup", "spare key -- keep offline -"),
        ),
        "expires": dt.date(2027, 3, 1),
        "header": ("Generated by pinscan suggest", "scan of 2026-11-27 -- 3 endpoints"),
    }
    fields.update(overrides)
    return Suggestion(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("include", [True, False])
@pytest.mark.parametrize("expires", [dt.date(2027, 3, 1), None])
def test_writer_round_trips(include: bool, expires: dt.date | None) -> None:
    text = android.write(suggestion(include_subdomains=include, expires=expires))
    data = text.encode()
    assert nsc_formats(data) == ["android"]
    policy = android.parse(data, "out.xml")
    assert policy.valid
    (rule,) = policy.rules
    assert rule.host == "api.example.com"
    assert rule.match is (Match.SUBDOMAINS if include else Match.EXACT)
    assert [p.digest for p in rule.pins] == [P1, P2]
    assert rule.expires == (utc_midnight(expires) if expires else None)
    assert ("expiration=" in text) is (expires is not None)
    assert "trustkit-config" not in text


def test_writer_comments() -> None:
    text = android.write(suggestion(enforce=False))
    assert "<!-- leaf: leaf key of CN=api.example.com (3 endpoints) -->" in text
    assert "<!-- backup: spare key - - keep offline -  -->" in text
    assert "  scan of 2026-11-27 - - 3 endpoints" in text
    assert "00:00 on 2027-03-01 in the device's time zone" in text
    assert "no report-only mode" in text
    body = text.split("<!--", 1)[1]
    for comment in body.split("<!--"):
        assert "--" not in comment.split("-->")[0]


def test_writer_comments_show_idna_names_as_they_read() -> None:
    # An XML comment cannot hold "--": an A-label is shown as the name it spells, not mangled.
    pin = SuggestedPin(Pin.sha256(P1), "leaf", "leaf key of CN=xn--bcher-kva.example")
    text = android.write(suggestion(domain="xn--bcher-kva.example", pins=(pin, pin)))
    assert "<!-- leaf: leaf key of CN=bücher.example -->" in text
    assert '<domain includeSubdomains="true">xn--bcher-kva.example</domain>' in text
    body = text.split("<!--", 1)[1]
    assert not any("--" in c.split("-->")[0] for c in body.split("<!--"))


def test_writer_escapes_the_domain_and_refuses_what_android_cannot_hold() -> None:
    text = android.write(suggestion(domain="a&b.test"))
    assert '<domain includeSubdomains="true">a&amp;b.test</domain>' in text
    assert android.parse(text.encode(), "x").rules[0].host == "a&b.test"
    with pytest.raises(ValueError, match="at least one pin"):
        android.write(suggestion(pins=()))
    sha1 = Pin("sha1", "DmxUShsZuNiqPQsX2Oi9uv2sCnw=", "sha1/DmxUShsZuNiqPQsX2Oi9uv2sCnw=")
    with pytest.raises(ValueError, match="SHA-256 only"):
        android.write(suggestion(pins=(SuggestedPin(sha1, "leaf", "x"),)))


def test_writer_is_registered() -> None:
    assert formats.write(suggestion(), "android") == android.write(suggestion())
    (policy,) = formats.read(android.write(suggestion()).encode(), "x.xml")
    assert policy.format == "android"


# --- hostile input ---------------------------------------------------------------------------


def _read_all(data: bytes) -> None:
    nsc_formats(data)
    for reader in (android.parse, trustkit_android.parse):
        with contextlib.suppress(PolicyError):
            assert isinstance(reader(data, "fuzz.xml"), Policy)
    with contextlib.suppress(PolicyError):
        assert isinstance(android.parse(data, "fuzz.xml", debug=True), Policy)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_give_a_policy_or_policy_error(data: bytes) -> None:
    _read_all(data)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_value_decoders_never_raise(text: str) -> None:
    got = java_date(text)
    assert got is None or got.day is None or isinstance(got.day, dt.date)
    raw = android_base64(text)
    assert raw is None or len(raw) <= len(text.encode())


_PIECES = [
    "<domain-config>", "</domain-config>", "<domain>", "</domain>", "a.test", "<pin-set>",
    "</pin-set>", '<pin digest="SHA-256">', "</pin>", P1, '<pin-set expiration="2020-02-30">',
    "<trust-anchors>", "</trust-anchors>", '<certificates src="system" overridePins="x"/>',
    "<base-config>", "</base-config>", "<debug-overrides>", "</debug-overrides>",
    '<trustkit-config enforcePinning="true">', "</trustkit-config>",
    '<domain includeSubdomains="true">',
    "&amp;", "<!-- c -->", " ", "\u00e9", "<![CDATA[x]]>",
]  # fmt: skip


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=40))
def test_random_element_soup_gives_a_policy_or_policy_error(pieces: list[str]) -> None:
    _read_all(nsc("".join(pieces)))


def test_garbled_corpus_files_give_a_policy_or_policy_error() -> None:
    rng = random.Random(7)
    for path in sorted(CORPUS.glob("android__*")):
        original = path.read_bytes()
        for _ in range(40):
            data = bytearray(original)
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            _read_all(bytes(data))
            cut = rng.randrange(len(original))
            _read_all(original[:cut] + original[cut + rng.randint(1, 50) :])


# --- Android's verdicts (issue 17) -----------------------------------------------------------
# Each case as Android's own code reads the config aapt2 compiled (AOSP frameworks/base,
# core/java/android/security/net/config/XmlConfigSource.java and
# core/java/android/content/res/XmlBlock.java); tests/test_artifact_android.py compiles the same
# configs with aapt2 and checks that the compiled app reads the same.

HOST = "www.example.com"
SUB = ' includeSubdomains="true"'


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """www.example.com serving a chain to the test root, which the scan's --ca-bundle holds."""
    return write_dataset(tmp_path_factory.mktemp("ds17"), [Served(HOST, pki.leaf(HOST))])


def verdict(dataset, data: bytes, **options) -> tuple[str, str | None]:
    (row,) = evaluate(dataset, android.parse(data, "nsc.xml"), **options).to_dicts()
    return row["verdict"], row["note"]


@pytest.mark.parametrize(("text", "match"), [("1", "subdomains"), ("0x1", "subdomains"),
                                            ("-1", "subdomains"), (" 1 ", "subdomains"),
                                            ("#fff", "subdomains"), ("0", "exact"),
                                            ("0x0", "exact"), ("True", "subdomains"),
                                            ("TRUE", "subdomains"), ("yes", "exact")])  # fmt: skip
def test_include_subdomains_integers_are_booleans(served, text: str, match: str) -> None:
    # aapt2 types an un-namespaced value (XmlReferenceLinker.cpp: the default attribute, TYPE_ANY;
    # ResourceUtils::TryParseItemForAttribute: colour, boolean, integer); XmlConfigSource
    # .parseDomain reads getAttributeBooleanValue, which XmlBlock.Parser answers for any type
    # from TYPE_FIRST_INT to TYPE_LAST_INT as data != 0.
    data = nsc(pinned("example.com", [P1, P2], domain_attrs=f' includeSubdomains="{text}"'))
    policy = android.parse(data, "x")
    assert policy.rules[0].match.value == match
    assert bool(policy.warnings) == (text == "yes")  # only a string reads as the default
    assert verdict(served, data)[0] == ("fail" if match == "subdomains" else "unpinned")


def test_override_pins_one_on_system_anchors_is_an_override() -> None:
    # XmlConfigSource.parseCertificatesEntry: getAttributeBooleanValue(null, "overridePins"):
    # "1" is an integer, so true (XmlBlock.Parser.getAttributeBooleanValue).
    for text in ("1", "0x1"):
        anchors = (
            f'<trust-anchors><certificates src="system" overridePins="{text}"/></trust-anchors>'
        )
        policy = android.parse(nsc(pinned("a.test", [P1, P2], anchors)), "x")
        assert policy.rules[0].override_pins == frozenset({"system"})
        assert policy.warnings == ()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (pinned("example<!-- c -->.com", [P1, P2], "", SUB), "domain contains additional elements"),
        (
            pinned("example.com", [P1[:20] + "<!-- c -->" + P1[20:], P2], "", SUB),
            "digest length 15 does not match expected length for SHA-256 of 32",
        ),
        (
            pinned("example.com", [P1 + "<!-- c -->" + "A", P2], "", SUB),
            "pin contains additional elements",
        ),
    ],
)
def test_a_comment_inside_text_is_a_second_text_node_android_refuses(
    served, body: str, message: str
) -> None:
    # aapt2 ends the text at the comment (tools/aapt2/xml/XmlDom.cpp: CommentDataHandler calls
    # FinishPendingText): two text nodes. XmlConfigSource.parseDomain / parsePin read the first
    # and throw a ParserException when next() is not END_TAG (or the first is no 32-byte pin).
    policy = android.parse(nsc(body), "x")
    assert policy.error == message
    assert verdict(served, nsc(body))[0] == "error"


def test_a_comment_beside_the_text_is_not_a_second_node() -> None:
    # Whitespace-only text is dropped (XmlFlattener.cpp: Visit(xml::Text*)).
    body = pinned("  <!-- c -->example.com<!-- c -->\n ", [P1, P2])
    assert [r.host for r in android.parse(nsc(body), "x").rules] == ["example.com"]


def test_android_namespace_attribute_does_not_build(served) -> None:
    # aapt2 link resolves an attribute in a package namespace to its definition
    # (tools/aapt2/link/XmlReferenceLinker.cpp); no framework version defines
    # android:includeSubdomains: "attribute android:includeSubdomains not found", no app.
    body = (
        '<domain-config xmlns:android="http://schemas.android.com/apk/res/android">'
        f'<domain android:includeSubdomains="true">{HOST}</domain>'
        f'<pin-set><pin digest="SHA-256">{P1}</pin><pin digest="SHA-256">{P2}</pin></pin-set>'
        "</domain-config>"
    )
    for reader in (android, trustkit_android):
        policy = reader.parse(nsc(body), "x")
        assert policy.error is not None
        assert policy.error.startswith("attribute android:includeSubdomains not found")
    got, note = verdict(served, nsc(body))
    assert got == "error" and "the app does not build" in note


def test_a_bare_doctype_is_read_and_enforced(served) -> None:
    # aapt2 (expat) accepts a DOCTYPE; one without an internal subset declares no entity.
    data = nsc(pinned("example.com", [P1, P2], domain_attrs=' includeSubdomains="true"'))
    data = data.replace(b"<network-security-config>", b"<!DOCTYPE network-security-config>\n"
                        b"<network-security-config>")  # fmt: skip
    assert verdict(served, data)[0] == "fail"
    for refused in (b"<!DOCTYPE network-security-config []>", b'<!DOCTYPE n PUBLIC "a" "b">'):
        with pytest.raises(PolicyError, match="DTD is not allowed"):
            android.parse(data.replace(b"<!DOCTYPE network-security-config>", refused), "x")


def _source_tree(tmp_path: Path, raw: dict[str, bytes], src: str = "@raw/company_ca") -> Path:
    config = tmp_path / "app" / "src" / "main" / "res" / "xml" / "network_security_config.xml"
    config.parent.mkdir(parents=True)
    anchors = f'<trust-anchors><certificates src="{src}"/></trust-anchors>'
    config.write_bytes(nsc(pinned("example.com", [P1, P2], anchors, SUB)))
    if raw:
        (config.parent.parent / "raw").mkdir()
        for name, data in raw.items():
            (config.parent.parent / "raw" / name).write_bytes(data)
    return config


def test_a_raw_anchor_of_a_source_tree_is_read_from_res_raw(tmp_path) -> None:
    # The app build packs res/raw/company_ca.* as raw/company_ca, whatever the extension; on the
    # device ResourceCertificateSource reads its certificates as the config's anchors
    # (XmlConfigSource.parseCertificatesEntry: getAttributeResourceValue(null, "src", -1)).
    pem = pki.root().cert.public_bytes(serialization.Encoding.PEM)
    config = _source_tree(tmp_path, {"company_ca.crt": pem})
    policy = android.parse(config.read_bytes(), str(config))
    assert policy.valid
    (anchor,) = policy.rules[0].anchors
    assert anchor.source == "@raw/company_ca" and anchor.file.endswith("res/raw/company_ca.crt")
    assert [p.digest for p in anchor.pins] == [spki_pin(pki.root().der)]


def test_a_missing_raw_anchor_does_not_build(tmp_path, served) -> None:
    # aapt2 link: "resource raw/missing_ca (aka ...) not found": there is no app to run.
    config = _source_tree(tmp_path, {"other.pem": b"x"}, "@raw/missing_ca")
    policy = android.parse(config.read_bytes(), str(config))
    assert policy.error == (
        "@raw/missing_ca: no res/raw/missing_ca.* beside res/xml/: aapt2 link fails "
        "(resource raw/missing_ca not found), the app does not build"
    )
    (row,) = evaluate(served, policy).to_dicts()
    assert row["verdict"] == "error"
    # Outside a resource tree nothing is looked up: the anchor stays a name.
    assert android.parse(config.read_bytes(), "network_security_config.xml").valid


def _anchored(anchors: str, pins: tuple[str, ...]) -> bytes:
    body = "".join(f'<pin digest="SHA-256">{p}</pin>' for p in pins)
    return nsc(
        f'<domain-config><domain includeSubdomains="true">example.com</domain>'
        f"<trust-anchors>{anchors}</trust-anchors><pin-set>{body}</pin-set></domain-config>"
    )


def test_a_config_trusting_only_user_cas_fails_a_chain_to_a_system_root(served) -> None:
    # NetworkSecurityTrustManager.checkServerTrusted builds the chain on the config's anchors
    # (its TrustManagerImpl holds getTrustAnchors() only) before checkPins: a root in the system
    # store that <trust-anchors> does not list fails the connection, whatever the pins say.
    good = (spki_pin(pki.intermediate().der), P1)
    data = _anchored('<certificates src="user"/>', good)
    got, note = verdict(served, data)  # the scan's root, in the system store by default
    assert got == "fail"
    assert note.startswith("the config trusts no anchor that verifies the chain")
    assert "placed in the system store" in note
    assert verdict(served, data, anchor_store="user")[0] == "pass"
    assert verdict(served, _anchored('<certificates src="system"/>', good))[0] == "pass"
    # The same on an unpinned name: the chain fails before pins are looked at.
    unpinned = nsc(
        '<domain-config><domain includeSubdomains="true">example.com</domain>'
        '<trust-anchors><certificates src="user"/></trust-anchors></domain-config>'
    )
    assert verdict(served, unpinned)[0] == "fail"


def test_override_pins_one_unpins_a_chain_to_that_anchor(served) -> None:
    # NetworkSecurityTrustManager.isPinningEnforced: false when the anchor the chain ends at
    # has overridePins; "1" is true (XmlBlock.Parser.getAttributeBooleanValue).
    data = _anchored('<certificates src="system" overridePins="1"/>', (P1, P2))
    got, note = verdict(served, data)
    assert got == "unpinned" and note.startswith("overridePins")
    # The root placed in the user store: the system anchor is not the one the chain ends at.
    assert verdict(served, data, anchor_store="user")[0] == "fail"
    user = _anchored('<certificates src="user" overridePins="0x1"/>', (P1, P2))
    assert verdict(served, user, anchor_store="user")[0] == "unpinned"


def test_a_raw_anchor_trusts_a_chain_through_its_key(tmp_path, served) -> None:
    # ResourceCertificateSource: the bundled file's certificates are the config's anchors.
    good = [spki_pin(pki.intermediate().der), P1]
    for raw, expected in ((pki.root(), "pass"), (pki.leaf("elsewhere.test"), "fail")):
        folder = tmp_path / raw.der.hex()[-12:]
        pem = raw.cert.public_bytes(serialization.Encoding.PEM)
        config = _source_tree(folder, {"company_ca.pem": pem})
        config.write_bytes(_anchored('<certificates src="@raw/company_ca"/>', tuple(good)))
        policy = android.parse(config.read_bytes(), str(config))
        (row,) = evaluate(served, policy).to_dicts()
        assert row["verdict"] == expected, row


def test_an_empty_trust_anchors_is_said_to_trust_nothing() -> None:
    # NetworkSecurityConfig.getTrustAnchors() is empty: no chain verifies on the device.
    policy = android.parse(nsc(pinned("a.test", [P1, P2], "<trust-anchors/>")), "x")
    assert policy.rules[0].anchors == ()
    assert "empty <trust-anchors>: Android trusts no root" in policy.warnings[0].message


def test_debug_override_anchors_are_added_in_a_debuggable_build(served) -> None:
    # XmlConfigSource.addDebugAnchorsIfNeeded: a debuggable build adds the debug-overrides
    # anchors to the configs' own, so a root in the user store is trusted there, and its
    # overridePins (true by default in debug-overrides: parseConfigEntry) unpins.
    data = _anchored('<certificates src="system"/>', (P1, P2)).replace(
        b"</network-security-config>",
        b'<debug-overrides><trust-anchors><certificates src="user"/></trust-anchors>'
        b"</debug-overrides></network-security-config>",
    )
    release = android.parse(data, "x")
    debug = android.parse(data, "x", debug=True)
    assert [a.source for a in release.rules[0].anchors] == ["system"]
    assert [a.source for a in debug.rules[0].anchors] == ["system", "user"]
    assert evaluate(served, release, anchor_store="user")["verdict"].item() == "fail"
    assert evaluate(served, debug, anchor_store="user")["verdict"].item() == "unpinned"


def test_a_raw_anchor_pinscan_cannot_read_is_not_held_against_the_chain(served) -> None:
    # Outside its source tree a config's @raw/ca has unknown keys: it may be the root.
    good = (spki_pin(pki.intermediate().der), P1)
    assert verdict(served, _anchored('<certificates src="@raw/ca"/>', good))[0] == "pass"
