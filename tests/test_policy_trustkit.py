# SPDX-License-Identifier: Apache-2.0
"""TrustKit (iOS) reader, writer and SPKI hashing; and what both Info.plist readers share:
sniffing an Info.plist that holds both formats, hostile input."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import json
import plistlib
import random
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pinscan import spki_pin
from pinscan.errors import PolicyError
from pinscan.policy import _public_suffix, formats, ios, load_policies, load_policy
from pinscan.policy import trustkit as tk
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
from pinscan.policy.trustkit_hash import trustkit_spki

from corpora import vectors_dir

CORPUS = Path(__file__).parent / "data" / "policies"
PIN_A = "TQEtdMbmwFgYUifM4LDF+xgEtd0z69mPGmkp014d6ZY="
PIN_B = "rFjc3wG7lTZe43zeYTvPq8k4xdDEutCmIhI5dn4oCeE="
PIN_C = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


def corpus(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def plist_formats(data: bytes) -> list[str]:
    """The Info.plist formats whose sniffers claim ``data``."""
    return [name for name, module in (("ios", ios), ("trustkit", tk)) if module.sniff(data)]


def plist(body: str) -> bytes:
    """A complete XML plist around ``body`` (the root element)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" '
        '"http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n'
        f'<plist version="1.0">\n{body}\n</plist>\n'
    ).encode()


# ---------------------------------------------------------------------------------------------
# TrustKit fixtures, in the shapes of TrustKit's README/getting-started and its unit tests.

TRUSTKIT_README = plist("""<dict>
    <key>TSKConfiguration</key>
    <dict>
        <key>TSKSwizzleNetworkDelegates</key>
        <false/>
        <key>TSKPinnedDomains</key>
        <dict>
            <key>yahoo.com</key>
            <dict>
                <key>TSKIncludeSubdomains</key>
                <true/>
                <key>TSKEnforcePinning</key>
                <true/>
                <key>TSKExpirationDate</key>
                <string>2027-12-01</string>
                <key>TSKReportUris</key>
                <array>
                    <string>https://reporting.example.com/log_report</string>
                </array>
                <key>TSKPublicKeyHashes</key>
                <array>
                    <string>TQEtdMbmwFgYUifM4LDF+xgEtd0z69mPGmkp014d6ZY=</string>
                    <string>rFjc3wG7lTZe43zeYTvPq8k4xdDEutCmIhI5dn4oCeE=</string>
                </array>
            </dict>
            <key>login.yahoo.com</key>
            <dict>
                <key>kSKExcludeSubdomainFromParentPolicy</key>
                <true/>
            </dict>
            <key>www.datatheorem.com</key>
            <dict>
                <key>TSKEnforcePinning</key>
                <false/>
                <key>TSKPublicKeyHashes</key>
                <array>
                    <string>hxqRlPTu1bMS/0DITB1SSu0vd4u/8l8TjPgfaAp63Gc=</string>
                </array>
            </dict>
        </dict>
    </dict>
</dict>""")


def test_trustkit_readme_plist() -> None:
    assert plist_formats(TRUSTKIT_README) == ["trustkit"]
    policy = tk.parse(TRUSTKIT_README, "Info.plist")
    assert (policy.format, policy.combine, policy.chain, policy.error) == (
        "trustkit",
        Combine.MOST_SPECIFIC,
        ChainSource.VERIFIED,
        None,
    )
    yahoo, login, dt_com = policy.rules
    assert (yahoo.host, yahoo.match, yahoo.enforce, yahoo.location.line) == (
        "yahoo.com",
        Match.SUBDOMAINS,
        True,
        11,
    )
    assert yahoo.expires == dt.datetime(2027, 12, 1, tzinfo=dt.UTC)
    assert [(p.digest, p.location.line) for p in yahoo.pins] == [(PIN_A, 25), (PIN_B, 26)]
    assert yahoo.pin_sets[0].positions is Position.ANY
    assert (login.host, login.match, login.exclude, login.pin_sets) == (
        "login.yahoo.com",
        Match.EXACT,
        True,
        (),
    )
    assert (dt_com.host, dt_com.match, dt_com.enforce, dt_com.expires) == (
        "www.datatheorem.com",
        Match.EXACT,
        False,
        None,
    )
    assert len(dt_com.pins) == 1  # one pin is enough when not enforcing
    assert any("case-sensitively" in note for note in policy.notes)
    assert any("TSKReportUris" in note for note in policy.notes)


def test_trustkit_json_dumps() -> None:
    constants = {
        "kTSKSwizzleNetworkDelegates": False,
        "kTSKPinnedDomains": {
            "example.com": {
                "kTSKIncludeSubdomains": True,
                "kTSKPublicKeyHashes": [PIN_A, PIN_B],
            },
            "open.example.com": {"kTSKExcludeSubdomainFromParentPolicy": True},
        },
    }
    strings = {
        "TSKConfiguration": {
            "TSKPinnedDomains": {
                "example.com": {
                    "TSKPublicKeyHashes": [PIN_A, PIN_B],
                    "TSKExpirationDate": "2026-03-01",
                }
            }
        }
    }
    for doc in (constants, {"TSKConfiguration": constants}):
        data = json.dumps(doc, indent=2).encode()
        assert plist_formats(data) == ["trustkit"]
        policy = tk.parse(data, "tk.json")
        assert policy.error is None
        assert [(r.host, r.match, r.exclude) for r in policy.rules] == [
            ("example.com", Match.SUBDOMAINS, False),
            ("open.example.com", Match.EXACT, True),
        ]
        assert policy.rules[0].pins[1].location.line is not None
    policy = tk.parse(json.dumps(strings).encode(), "tk.json")
    assert policy.rules[0].expires == dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    assert plist_formats(json.dumps({"pinsets": []}).encode()) == []


def trustkit(domains: object, **extra: object) -> Policy:
    return tk.parse(
        plistlib.dumps(
            {"TSKConfiguration": {"TSKPinnedDomains": domains, **extra}}, sort_keys=False
        ),
        "tk.plist",
    )


@pytest.mark.parametrize(
    ("domains", "message"),
    [
        # TSKPinConfigurationTests.m testPinOnePublicKey: the same pin twice is one pin (NSSet).
        ({"www.good.com": {"TSKPublicKeyHashes": [PIN_A, PIN_A]}}, "less than 2 pins"),
        # testDisablePinningForSubdomainWithoutParentAndNoPublicKey
        (
            {
                "good.com": {"TSKPublicKeyHashes": [PIN_A, PIN_C], "TSKIncludeSubdomains": False},
                "unsecured.good.com": {"kSKExcludeSubdomainFromParentPolicy": True},
            },
            "could not find a policy for a parent domain",
        ),
        # testDisablePinningForSubdomainAdditionalDomainKeys
        (
            {
                "good.com": {"TSKPublicKeyHashes": [PIN_A, PIN_C], "TSKIncludeSubdomains": True},
                "unsecured.good.com": {
                    "kSKExcludeSubdomainFromParentPolicy": True,
                    "TSKEnforcePinning": True,
                },
            },
            "detected additional configuration keys",
        ),
        # testIncludeSubdomainsEnabledForSuffix, and a two-label public suffix
        (
            {"com": {"TSKIncludeSubdomains": True, "TSKPublicKeyHashes": [PIN_A, PIN_C]}},
            "includeSubdomains for a domain suffix com",
        ),
        (
            {"co.uk": {"TSKIncludeSubdomains": True, "TSKPublicKeyHashes": [PIN_A, PIN_C]}},
            "includeSubdomains for a domain suffix co.uk",
        ),
        # testNoPinnedDomains
        ({}, "no pinned domains"),
        ("not a dictionary", "no pinned domains"),
        # a pin that is not the base64 of 32 bytes
        ({"good.com": {"TSKPublicKeyHashes": [PIN_A, "AAAA"]}}, "invalid Pin AAAA"),
        ({"good.com": {"TSKPublicKeyHashes": [PIN_A, 7]}}, "not a string"),
        ({"good.com": {"TSKPublicKeyHashes": PIN_A}}, "not an array"),
        # no public suffix at all: GetRegistryLength is 0
        ({"localhost": {"TSKPublicKeyHashes": [PIN_A, PIN_C]}}, "invalid domain localhost"),
        ({"10.0.0.1": {"TSKPublicKeyHashes": [PIN_A, PIN_C]}}, "invalid domain 10.0.0.1"),
        # the correctly spelled exclude key is not what TrustKit reads: an entry without pins
        (
            {
                "good.com": {"TSKPublicKeyHashes": [PIN_A, PIN_C], "TSKIncludeSubdomains": True},
                "open.good.com": {"TSKExcludeSubdomainFromParentPolicy": True},
            },
            "less than 2 pins",
        ),
        (
            {"good.com": {"TSKPublicKeyHashes": [PIN_A, PIN_C], "TSKEnforcePinning": [1]}},
            "not a boolean",
        ),
        (
            {
                "good.com": {
                    "TSKPublicKeyHashes": [PIN_A, PIN_C],
                    "TSKExpirationDate": dt.datetime(2027, 1, 1),
                }
            },
            "not a string",
        ),
    ],
)
def test_trustkit_configs_that_throw(domains: object, message: str) -> None:
    policy = trustkit(domains)
    assert policy.error is not None and message in policy.error, policy.error
    assert policy.error_location is not None and policy.error_location.path == "tk.plist"
    if isinstance(domains, dict) and domains:
        assert any(rule.error and message in rule.error for rule in policy.rules)


def test_trustkit_valid_edge_cases() -> None:
    policy = trustkit(
        {
            "good.com": {"TSKIncludeSubdomains": "YES", "TSKPublicKeyHashes": [PIN_A, PIN_C]},
            "unsecured.good.com": {"kSKExcludeSubdomainFromParentPolicy": True},
            "report.good.com": {"TSKEnforcePinning": False, "TSKPublicKeyHashes": [PIN_B]},
            "old.example.org": {
                "TSKPublicKeyHashes": [PIN_A, PIN_B],
                "TSKExpirationDate": "2015-01-01",
            },
            "bad-date.example.org": {
                "TSKPublicKeyHashes": [PIN_A, PIN_B],
                "TSKExpirationDate": "01/01/2015",
            },
            "Mixed.Example.org": {"TSKPublicKeyHashes": [PIN_A, PIN_B]},
            "off.example.org": {
                "kSKExcludeSubdomainFromParentPolicy": False,
                "TSKPublicKeyHashes": [PIN_A, PIN_B],
            },
        }
    )
    assert policy.error is None
    by_host = {r.host: r for r in policy.rules}
    assert by_host["good.com"].match is Match.SUBDOMAINS  # NSString boolValue: "YES"
    assert by_host["unsecured.good.com"].exclude
    assert (by_host["report.good.com"].enforce, len(by_host["report.good.com"].pins)) == (False, 1)
    assert by_host["old.example.org"].expires == dt.datetime(2015, 1, 1, tzinfo=dt.UTC)
    assert by_host["bad-date.example.org"].expires is None
    assert by_host["mixed.example.org"].pattern == "Mixed.Example.org"
    assert not by_host["off.example.org"].exclude
    messages = [w.message for w in policy.warnings]
    assert any("'01/01/2015' is not yyyy-MM-dd" in m and "never expire" in m for m in messages)
    assert any("'Mixed.Example.org'" in m and "case-sensitively" in m for m in messages)


def test_trustkit_subdomain_quirk() -> None:
    """TrustKit's isSubdomain has no label boundary: notgood.com is covered by good.com."""
    assert tk._is_subdomain("good.com", "www.good.com")
    assert tk._is_subdomain("good.com", "notgood.com")
    assert tk._is_subdomain("www.good.com", "sub.www.good.com.www.good.com")
    assert not tk._is_subdomain("good.com", "good.com.otherdomain.com")
    assert not tk._is_subdomain("good.com", "good.co.uk")


def test_trustkit_missing_configuration() -> None:
    policy = tk.parse(plistlib.dumps({"CFBundleName": "x"}), "x.plist")
    assert (policy.rules, policy.error) == ((), None)
    assert "no TSKConfiguration" in policy.warnings[0].message


def test_sniff_both_and_neither() -> None:
    both = plistlib.dumps(
        {
            "NSAppTransportSecurity": {"NSPinnedDomains": {"a.example": {}}},
            "TSKConfiguration": {"TSKPinnedDomains": {}},
        }
    )
    assert plist_formats(both) == ["ios", "trustkit"]
    # Both are read: the plist group is sniffed as one, before any other format.
    assert formats.detect(both, "Info.plist") == ["ios", "trustkit"]
    assert [p.format for p in load_policies(both)] == ["ios", "trustkit"]
    with pytest.raises(PolicyError, match=r"holds several policies \(ios, trustkit\)"):
        load_policy(both)
    for other in (
        b"",
        b"\x00\xff",
        b"<network-security-config/>",
        b"NSPinnedDomains garbage",
        b'{"TSKPinnedDomains": [',
        corpus("chromium__chromium__chromium__transport_security_state_static_pins.json"),
    ):
        assert plist_formats(other) == []


# ---------------------------------------------------------------------------------------------
# TrustKit's SPKI hash.

_ISSUER = ec.generate_private_key(ec.SECP256R1())


def certificate(public_key: object) -> bytes:
    """A certificate for ``public_key``, signed by a fixed P-256 issuer."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pinscan test")])
    now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
    )
    return builder.sign(_ISSUER, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def rsa_public(bits: int, e: int = 65537) -> rsa.RSAPublicKey:
    """An RSA public key of exactly ``bits`` bits (a random odd modulus: only hashed here)."""
    rng = random.Random(bits * 7 + e)
    n = rng.getrandbits(bits) | (1 << (bits - 1)) | 1
    return rsa.RSAPublicNumbers(e, n).public_key()


def vector(path: str) -> bytes:
    data = (vectors_dir() / path).read_bytes()
    return x509.load_pem_x509_certificate(data).public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize(
    "key",
    [
        rsa_public(2048),
        rsa_public(3072),
        rsa_public(4096),
        ec.generate_private_key(ec.SECP256R1()).public_key(),
        ec.generate_private_key(ec.SECP384R1()).public_key(),
    ],
    ids=["rsa2048", "rsa3072", "rsa4096", "p256", "p384"],
)
def test_trustkit_spki_equal(key: object) -> None:
    der = certificate(key)
    assert trustkit_spki(der) == (spki_pin(der), None)


def test_trustkit_spki_equal_on_real_roots() -> None:
    checked = 0
    for path in ("letsencryptx3.pem", "ecdsa_root.pem", "rapidssl_sha256_ca_g3.pem"):
        der = vector(path)
        pin, reason = trustkit_spki(der)
        assert (pin, reason) == (spki_pin(der), None), path
        checked += 1
    assert checked == 3


def test_trustkit_spki_rsa_exponent_3_differs() -> None:
    der = certificate(rsa_public(2048, e=3))
    pin, reason = trustkit_spki(der)
    assert pin is not None and pin != spki_pin(der)
    assert reason is not None and "public exponent 3" in reason and spki_pin(der) in reason
    spki = (
        x509.load_der_x509_certificate(der)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    )
    header = bytes.fromhex("30820122300d06092a864886f70d01010105000382010f00")
    assert pin == base64.b64encode(hashlib.sha256(header + spki).digest()).decode()


@pytest.mark.parametrize(
    ("key", "words"),
    [
        (rsa_public(1024), "RSA-1024 key"),
        (rsa_public(2047), "RSA-2047 key"),
        (rsa_public(8192), "RSA-8192 key"),
        (ec.generate_private_key(ec.SECP521R1()).public_key(), "EC key on secp521r1"),
        (ed25519.Ed25519PrivateKey.generate().public_key(), "Ed25519 key"),
    ],
    ids=["rsa1024", "rsa2047", "rsa8192", "p521", "ed25519"],
)
def test_trustkit_spki_unsupported(key: object, words: str) -> None:
    pin, reason = trustkit_spki(certificate(key))
    assert pin is None
    assert reason is not None and words in reason and "blocks the connection" in reason


def test_trustkit_spki_vectors() -> None:
    pin, reason = trustkit_spki(vector("custom/rsa_pss_cert.pem"))
    assert pin is None and reason is not None and "RSASSA-PSS" in reason
    pin, reason = trustkit_spki(vector("ed25519/root-ed25519.pem"))
    assert pin is None and reason is not None and "Ed25519" in reason
    # Explicit curve parameters: pinscan's own reader takes the certificate, Apple does not.
    explicit = (vectors_dir() / "custom/ec_no_named_curve.pem").read_bytes()
    pin, reason = trustkit_spki(explicit)
    assert pin is None and reason is not None and "explicit curve parameters" in reason
    pin, reason = trustkit_spki(b"not a certificate")
    assert pin is None and reason is not None and "cannot read" in reason


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


def test_write_trustkit_round_trip() -> None:
    wanted = suggestion(("leaf", "intermediate", "backup"))
    text = tk.write(wanted)
    assert "00:00 UTC" in text and "<!-- pinscan suggest -->" in text
    assert plist_formats(text.encode()) == ["trustkit"]
    policy = tk.parse(text.encode(), "out.plist")
    assert (policy.error, policy.warnings) == (None, ())
    (rule,) = policy.rules
    assert (rule.host, rule.match, rule.enforce) == ("api.example.com", Match.SUBDOMAINS, True)
    assert rule.expires == dt.datetime(2027, 6, 30, tzinfo=dt.UTC)
    assert [p.digest for p in rule.pins] == [p.pin.digest for p in wanted.pins]

    lax = tk.write(suggestion(("leaf",), include_subdomains=False, expires=None, enforce=False))
    (rule,) = tk.parse(lax.encode(), "out.plist").rules
    assert (rule.match, rule.enforce, rule.expires, rule.error) == (Match.EXACT, False, None, None)
    assert "too few" not in lax
    assert "too few" in tk.write(suggestion(("leaf",)))


# ---------------------------------------------------------------------------------------------
# Hostile input.

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE plist [
 <!ENTITY a "NSPinnedDomainsNSPinnedDomainsNSPinnedDomainsNSPinnedDomains">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
 <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
 <!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
 <!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">
]>
<plist version="1.0"><dict><key>NSAppTransportSecurity</key><string>&f;</string></dict></plist>
"""

EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE plist [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<plist version="1.0"><dict><key>NSPinnedDomains</key><string>&x;</string></dict></plist>
"""


@pytest.mark.parametrize("data", [BILLION_LAUGHS, EXTERNAL], ids=["laughs", "external"])
def test_entities_rejected(data: bytes) -> None:
    start = time.monotonic()
    for reader in (ios.parse, tk.parse):
        with pytest.raises(PolicyError, match="entity"):
            reader(data, "evil.plist")
    assert plist_formats(data) == []
    assert time.monotonic() - start < 2


def test_deep_and_cyclic_inputs() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(PolicyError):
        tk.parse(b'{"TSKPinnedDomains": ' + deep + b"}", "deep.json")
    nested = plist("<array>" * 50_000 + "</array>" * 50_000)
    assert ios.parse(nested, "deep.plist").rules == ()


def _read_any(data: bytes) -> None:
    for reader in (ios.parse, tk.parse):
        with contextlib.suppress(PolicyError):
            assert isinstance(reader(data, "fuzz"), Policy)
    assert set(plist_formats(data)) <= {"ios", "trustkit"}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_fuzz_random_bytes(data: bytes) -> None:
    _read_any(b"bplist00" + data)
    _read_any(data)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fuzz_garbled_corpus(data: st.DataObject) -> None:
    base = bytearray(data.draw(st.sampled_from(sorted(CORPUS.glob("ios__*")))).read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(base) - 1))
        base[at] = data.draw(st.integers(0, 255))
    _read_any(bytes(base))
    _read_any(bytes(TRUSTKIT_README[: data.draw(st.integers(0, len(TRUSTKIT_README)))]))


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "TSKPinnedDomains",
                        "TSKPublicKeyHashes",
                        "TSKIncludeSubdomains",
                        "kSKExcludeSubdomainFromParentPolicy",
                        "TSKEnforcePinning",
                        "TSKExpirationDate",
                        "good.com",
                        "a.good.com",
                        "com",
                        "NSPinnedLeafIdentities",
                        "SPKI-SHA256-BASE64",
                    ]
                ),
                children,
                max_size=4,
            )
        ),
        max_leaves=20,
    )
)
@settings(max_examples=300, deadline=None)
def test_fuzz_structures(config: object) -> None:
    for root in (
        {"TSKConfiguration": config},
        {"NSAppTransportSecurity": {"NSPinnedDomains": config}},
    ):
        data = json.dumps(root).encode()
        _read_any(data)
        try:
            as_plist = plistlib.dumps(root)
        except (TypeError, ValueError, OverflowError):  # None, control characters, huge ints
            continue
        _read_any(as_plist)


def test_trustkit_without_system_public_suffix_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without /usr/share/publicsuffix, a built-in list of common suffixes is checked and
    unknown TLDs are not refused (pinscan cannot tell them from real ones)."""
    monkeypatch.setattr(_public_suffix, "_PSL_PATHS", (Path("/nonexistent/psl.dat"),))
    _public_suffix._suffixes.cache_clear()
    try:
        policy = trustkit(
            {
                "co.uk": {"TSKIncludeSubdomains": True, "TSKPublicKeyHashes": [PIN_A, PIN_C]},
                "localhost": {"TSKPublicKeyHashes": [PIN_A, PIN_C]},
            }
        )
        assert policy.error is not None and "domain suffix co.uk" in policy.error
        assert policy.rules[1].error is None
        assert any("No system public suffix list" in note for note in policy.notes)
    finally:
        _public_suffix._suffixes.cache_clear()
