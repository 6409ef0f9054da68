# SPDX-License-Identifier: Apache-2.0
"""OkHttp CertificatePinner source: fixtures in the shapes real code takes (pin-formats.md §9)."""

from __future__ import annotations

import contextlib
import datetime as dt

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinscan.errors import PolicyError
from pinscan.policy import formats, okhttp
from pinscan.policy.evaluate import evaluate
from pinscan.policy.model import Combine, Match, Pin, Policy, SuggestedPin, Suggestion

from fleet import pki
from policyfleet import Served, write_dataset

ISRG = "C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M="
R3 = "jQJTbIh0grw0/1TkHSumWb+Fs0Ggogr621gT3PvPKG0="
DIGICERT_EV = "WoiWRyIOVNa9ihaBciRSC7XHjliYS9VwUGOIud4PB18="


def read(text: str, source: str = "Pinner.kt") -> Policy:
    assert okhttp.sniff(text.encode())
    return okhttp.parse(text.encode(), source)


def summary(policy: Policy) -> dict[tuple[str, Match], list[str]]:
    return {(r.host, r.match): [p.label for p in r.pins] for r in policy.rules}


# square/okhttp samples/guide recipes/kt/CertificatePinning.kt: chain split over lines.
SQUARE_KT = """
class CertificatePinning {
  private val client = OkHttpClient.Builder()
      .certificatePinner(
          CertificatePinner.Builder()
              .add("publicobject.com", "sha256/afwiKY3RxoMmLkuRW1l7QsPZTJPwDS2pdDROQjXw8ig=")
              .build())
      .build()
}
"""

# The 2016 Java recipe: four sha1/ pins, one add() per pin.
SQUARE_SHA1_JAVA = """
public final class CertificatePinning {
  public CertificatePinning() {
    client = new OkHttpClient();
    client.setCertificatePinner(
        new CertificatePinner.Builder()
            .add("publicobject.com", "sha1/DmxUShsZuNiqPQsX2Oi9uv2sCnw=")
            .add("publicobject.com", "sha1/SXxoaOSEzPC6BgGmxAt/EAcsajw=")
            .add("publicobject.com", "sha1/blhOM3W9V/bVQhsWAcLYwPU6n24=")
            .add("publicobject.com", "sha1/T5x9IXmcrQ7YuQxXnxoCmeeQ84c=")
            .build());
  }
}
"""

# chiuki/mockwebserver-demo: host in a local variable, an unpadded first pin, a Java constant.
CHIUKI_JAVA = f"""
public abstract class OkHttp {{
  private static final String ROOT = "sha256/{DIGICERT_EV}";
  public static OkHttpClient getInstance() {{
    String hostname = "api.github.com";
    CertificatePinner certificatePinner = new CertificatePinner.Builder()
        .add(hostname, "sha256/6wJsqVDF8K19zxfLxV5DGRneLyzso9adVdUN/exDacw")
        .add(hostname, "sha256/k2v657xBsOVe1PQRwOsHsw3bsGT2VzIqz5K+59sNQws=")
        .add(hostname, ROOT)
        .build();
    return new OkHttpClient.Builder().certificatePinner(certificatePinner).build();
  }}
}}"""

# httptoolkit/android-ssl-pinning-demo MainActivity.kt: Kotlin string templates of top-level
# const vals, the host in a local val; comments mention pins that must not count.
HTTPTOOLKIT_KT = f"""
// We check for both the long-term root & intermediate
const val LETS_ENCRYPT_ISRG_X1_ROOT_PK_SHA256 = "{ISRG}"
const val LETS_ENCRYPT_R3_INTERM_PK_SHA256 = "{R3}"
fun sendOkHttpPinned(view: View) {{
    val hostname = "ecc384.badssl.com"
    val certificatePinner = CertificatePinner.Builder()
        .add(hostname, "sha256/${{LETS_ENCRYPT_ISRG_X1_ROOT_PK_SHA256}}")
        .add(hostname, "sha256/$LETS_ENCRYPT_R3_INTERM_PK_SHA256")
        // .add("commented.example.com", "sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .build()
}}
"""

# menjoo Config.kt + Pinning.kt in one file: qualified constants; a KDoc comment holds an
# OkHttp failure message and a truncated fake pin (not pins).
MENJOO_KT = """
object Pinning {
    const val DOMAIN_INFOSUPPORT_COM = "infosupport.com"
    const val CERT_COMODO_INFOSUPPORT_COM = "sha256/jZTHOvQmgAA3TNS56Wqdn6indUj5L4YFcjT/BSP412c="
    const val CERT_COMODO_INTERMEDIATE = "sha256/klO23nT2ehFDXCfx3eHTDRESMz3asj1muO+4aIdjiuY="
    const val CERT_COMODO_CA = "sha256/grX4Ta9HpZx6tSHkmCrvpApTQGo67CYDnvprLg5yRME="
}
object Config {
    /**
     * .add("yourdomain.com", "sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
     * Peer certificate chain:
     * sha256/jZTHOvQmgAA3TNS56Wqdn6indUj5L4YFcjT/BSP412c=: CN=infosupport.com
     */
    private fun createCertificatePinner(): CertificatePinner {
        return CertificatePinner.Builder()
                .add(Pinning.DOMAIN_INFOSUPPORT_COM, Pinning.CERT_COMODO_INFOSUPPORT_COM)
                .add(Pinning.DOMAIN_INFOSUPPORT_COM, Pinning.CERT_COMODO_INTERMEDIATE)
                .add(Pinning.DOMAIN_INFOSUPPORT_COM, Pinning.CERT_COMODO_CA)
                .build()
    }
}
"""

# ApturiCOVID NetworkModule.kt: vararg add(domain, pin1..pin4), two builders by flavour.
APTURI_KT = """
class NetworkModule {
    companion object {
        private const val API_PIN_1 = "sha256/AD1268BbF/w+Hh5JXyPLDLVAdh67VIG2agjkdYjC/kI="
        private const val API_PIN_2 = "sha256/KhxI+AM5BFntDid1jc3tGAWOh/Qg8uG4ARPFF/QdXyg="
        private const val STAGING_PIN = "sha256/psmaXsNEQMAcQikTDZYnDYdZTi2FspxEiLcwxoKXtEA="
        private const val DOMAIN = "apturicovid-api.spkc.gov.lv"
        private const val DOMAIN_STAGING = "apturicovid-staging-api.spkc.gov.lv"
    }
    fun provideCertificatePinner(): CertificatePinner {
        return when(BuildConfig.FLAVOR) {
            STAGING -> {
                CertificatePinner.Builder()
                    .add(DOMAIN_STAGING, STAGING_PIN)
                    .build()
            }
            else -> {
                CertificatePinner.Builder()
                    .add(DOMAIN, API_PIN_1, API_PIN_2)
                    .build()
            }
        }
    }
}
"""


def test_square_kotlin_recipe() -> None:
    policy = read(SQUARE_KT)
    assert policy.valid and policy.combine is Combine.UNION
    assert summary(policy) == {
        ("publicobject.com", Match.EXACT): ["sha256/afwiKY3RxoMmLkuRW1l7QsPZTJPwDS2pdDROQjXw8ig="]
    }
    assert policy.rules[0].location.line == 6
    assert any("4.3" in note and "**." in note for note in policy.notes)


def test_square_sha1_recipe_unites_four_adds() -> None:
    policy = read(SQUARE_SHA1_JAVA, "CertificatePinning.java")
    (rule,) = policy.rules
    assert [p.algorithm for p in rule.pins] == ["sha1"] * 4
    assert rule.pins[0].digest == "DmxUShsZuNiqPQsX2Oi9uv2sCnw="
    assert [p.location.line for p in rule.pins] == [7, 8, 9, 10]
    assert policy.warnings == ()


def test_chiuki_unpadded_pin_and_constants() -> None:
    policy = read(CHIUKI_JAVA, "OkHttp.java")
    assert policy.valid
    assert summary(policy) == {
        ("api.github.com", Match.EXACT): [
            "sha256/6wJsqVDF8K19zxfLxV5DGRneLyzso9adVdUN/exDacw=",  # padded: it still matches
            "sha256/k2v657xBsOVe1PQRwOsHsw3bsGT2VzIqz5K+59sNQws=",
            f"sha256/{DIGICERT_EV}",
        ]
    }


def test_httptoolkit_templates_and_commented_code() -> None:
    policy = read(HTTPTOOLKIT_KT, "MainActivity.kt")
    assert summary(policy) == {
        ("ecc384.badssl.com", Match.EXACT): [f"sha256/{ISRG}", f"sha256/{R3}"]
    }


def test_menjoo_qualified_constants_and_doc_comment() -> None:
    policy = read(MENJOO_KT, "Config.kt")
    assert summary(policy) == {
        ("infosupport.com", Match.EXACT): [
            "sha256/jZTHOvQmgAA3TNS56Wqdn6indUj5L4YFcjT/BSP412c=",
            "sha256/klO23nT2ehFDXCfx3eHTDRESMz3asj1muO+4aIdjiuY=",
            "sha256/grX4Ta9HpZx6tSHkmCrvpApTQGo67CYDnvprLg5yRME=",
        ]
    }
    assert policy.valid and policy.warnings == ()


def test_menjoo_constants_in_another_file_are_reported() -> None:
    config_only = MENJOO_KT.split("object Config")[1]
    policy = read("object Config" + config_only, "Config.kt")
    assert policy.rules == ()
    assert len(policy.warnings) == 3
    assert all("not a literal or a constant of this file" in str(w) for w in policy.warnings)


def test_apturi_varargs_and_two_builders() -> None:
    policy = read(APTURI_KT, "NetworkModule.kt")
    assert summary(policy) == {
        ("apturicovid-staging-api.spkc.gov.lv", Match.EXACT): [
            "sha256/psmaXsNEQMAcQikTDZYnDYdZTi2FspxEiLcwxoKXtEA="
        ],
        ("apturicovid-api.spkc.gov.lv", Match.EXACT): [
            "sha256/AD1268BbF/w+Hh5JXyPLDLVAdh67VIG2agjkdYjC/kI=",
            "sha256/KhxI+AM5BFntDid1jc3tGAWOh/Qg8uG4ARPFF/QdXyg=",
        ],
    }
    assert "2 CertificatePinner builders" in policy.warnings[0].message


def test_codeql_minimal_pinner() -> None:
    text = """import okhttp3.CertificatePinner;
class Test{
    void test1() throws Exception {
    CertificatePinner certificatePinner = new CertificatePinner.Builder()
         .add("good.example.com", "sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
         .build();
    }
}"""
    policy = read(text, "Test.java")
    assert summary(policy) == {
        ("good.example.com", Match.EXACT): ["sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="]
    }


@pytest.mark.parametrize(
    ("pattern", "host", "match"),
    [
        ("example.com", "example.com", Match.EXACT),
        ("*.example.com", "example.com", Match.ONE_LABEL),
        ("**.example.com", "example.com", Match.SUBDOMAINS),
        ("API.Example.COM", "api.example.com", Match.EXACT),
    ],
)
def test_pattern_scopes(pattern: str, host: str, match: Match) -> None:
    policy = read(f'CertificatePinner.Builder().add("{pattern}", "sha256/{ISRG}").build()')
    assert [(r.host, r.match, r.pattern) for r in policy.rules] == [(host, match, pattern.lower())]


def test_patterns_overlap_by_union() -> None:
    policy = read(
        f"""val p = CertificatePinner.Builder()
        .add("**.example.com", "sha256/{ISRG}")
        .add("api.example.com", "sha256/{R3}")
        .build()"""
    )
    assert policy.combine is Combine.UNION
    assert len(policy.rules) == 2


@pytest.mark.parametrize(
    ("value", "digest"),
    [
        (ISRG.rstrip("="), ISRG),  # unpadded
        (ISRG + "==", ISRG),  # extra =
        ("jQJTbIh0grw0_1TkHSumWb-Fs0Ggogr621gT3PvPKG0=", R3),  # URL-safe
        ("C5+lpZ7tcVwmwQIMcRtPbsQt WLABXhQzejna0wHFr8M=", ISRG),  # whitespace
    ],
)
def test_lenient_base64(value: str, digest: str) -> None:
    policy = read(f'CertificatePinner.Builder().add("a.example", "sha256/{value}").build()')
    assert policy.valid and policy.rules[0].pins[0].digest == digest


@pytest.mark.parametrize("value", ["", "AAAA", "C5+lpZ7tcVwmwQ"])
def test_truncated_or_empty_digest_is_kept_and_warned(value: str) -> None:
    policy = read(f'CertificatePinner.Builder().add("a.example", "sha256/{value}").build()')
    assert policy.valid
    (pin,) = policy.rules[0].pins
    assert len(pin.digest) < 44
    assert "never matches" in policy.warnings[0].message


# The rules below are square/okhttp okhttp/src/commonJvmAndroid/kotlin/okhttp3/CertificatePinner.kt:
# `Pin`'s init requires "*." or "**." with no other "*" ("Unexpected pattern"), a pattern that
# `toCanonicalHost()` accepts ("Invalid pattern"), a "sha1/" or "sha256/" prefix, case-sensitive
# ("pins must start with"), and a hash okio's `decodeBase64()` decodes ("Invalid pin hash"); okio
# (okio/src/commonMain/kotlin/okio/Base64.kt) returns null for a character outside both alphabets
# and for a lone trailing digit (4n+1 characters). `Builder.add()` builds a `Pin` per pin, so
# it throws and `build()` is never reached.
@pytest.mark.parametrize(
    ("pattern", "pin", "message"),
    [
        ("a.example", ISRG, "pins must start with 'sha256/' or 'sha1/'"),
        ("a.example", f"SHA256/{ISRG}", "pins must start with"),
        ("a.example", "sha256/AAAA!AAA", "Invalid pin hash"),
        ("a.example", "sha256/AAAAA", "Invalid pin hash"),  # 5 chars: undecodable length
        ("a.example", f"sha256/{ISRG.rstrip('=')}AA", "Invalid pin hash"),  # 45: a lone digit
        ("a.example ", f"sha256/{ISRG}", "Invalid pattern"),  # a host with a space
        ("a example", f"sha256/{ISRG}", "Invalid pattern"),
        ("api.*.example.com", f"sha256/{ISRG}", "Unexpected pattern"),
        ("*.*.example.com", f"sha256/{ISRG}", "Unexpected pattern"),
        ("host.example:443", f"sha256/{ISRG}", "Invalid pattern"),
        ("https://host.example", f"sha256/{ISRG}", "Invalid pattern"),
    ],
)
def test_add_throws_so_the_whole_pinner_errors(pattern: str, pin: str, message: str) -> None:
    text = f"""val p = CertificatePinner.Builder()
        .add("good.example", "sha256/{R3}")
        .add("{pattern}", "{pin}")
        .build()"""
    policy = read(text)
    assert not policy.valid
    assert message in (policy.error or "")
    assert policy.error_location is not None and policy.error_location.line == 3
    assert ("good.example", Match.EXACT) in summary(policy)  # still read: every host errors


@pytest.mark.parametrize(
    ("pattern", "pin", "meant"),
    [
        ("a.example", f"SHA256/{ISRG}", "a.example"),
        ("a.example", "sha256/AAAA!AAA", "a.example"),
        ("a.example ", f"sha256/{ISRG}", "a.example"),
        ("https://a.example/", f"sha256/{ISRG}", "a.example"),
        ("a.example:443", f"sha256/{ISRG}", "a.example"),
        ("**.A.example", ISRG, "a.example"),
    ],
)
def test_the_host_of_a_throwing_add_is_judged_error(
    tmp_path, pattern: str, pin: str, meant: str
) -> None:
    """The client is never built, so its requests fail: the hosts are `error`, not `unpinned`,
    the one whose add() threw included (it has no valid pin, but it is named)."""
    policy = read(f'val c = CertificatePinner.Builder().add("{pattern}", "{pin}").build()')
    assert not policy.valid
    assert [r.host for r in policy.rules] == [meant]
    served = [Served("a.example", pki.leaf("a.example")), Served("b.example", None)]
    result = evaluate(write_dataset(tmp_path / "ds", served), policy)
    verdicts = dict(zip(result["target"], result["verdict"], strict=True))
    assert verdicts == {"a.example": "error", "b.example": "unpinned"}
    note = result.filter(pl.col("target") == "a.example")["note"][0]
    assert "client rejects the policy: CertificatePinner.Builder.add() throws" in note


def test_a_pattern_that_names_no_host_is_said(tmp_path) -> None:
    policy = read(f'CertificatePinner.Builder().add("api.*.example", "sha256/{ISRG}").build()')
    assert not policy.valid and policy.rules == ()
    assert "names no host" in policy.warnings[0].message


def test_add_without_pins_never_validates_the_pattern() -> None:
    policy = read('CertificatePinner.Builder().add("host:443").build()')
    assert policy.valid and policy.rules == ()


def test_trailing_dot_pattern_never_matches() -> None:
    policy = read(f'CertificatePinner.Builder().add("a.example.", "sha256/{ISRG}").build()')
    assert policy.rules == () and "never matches" in policy.warnings[0].message


def test_builder_variable_and_apply_block() -> None:
    text = f"""
    CertificatePinner.Builder builder = new CertificatePinner.Builder();
    builder.add("a.example", "sha256/{ISRG}");
    builder.add("b.example", "sha256/" + "{R3}");
    val other = CertificatePinner.Builder().apply {{
        add("c.example", "sha256/{ISRG}")
    }}.build()
    list.add("not.a.pin", "x");
    """
    policy = read(text, "Mixed.kt")
    assert set(summary(policy)) == {
        ("a.example", Match.EXACT),
        ("b.example", Match.EXACT),
        ("c.example", Match.EXACT),
    }
    assert summary(policy)[("b.example", Match.EXACT)] == [f"sha256/{R3}"]


def test_round_trip() -> None:
    suggestion = Suggestion(
        "api.example.com",
        True,
        (
            SuggestedPin(Pin.sha256(ISRG), "root", 'ISRG Root X1 */ "quoted"'),
            SuggestedPin(Pin.sha256(R3), "backup", "spare key"),
        ),
        dt.date(2027, 1, 31),
        ("generated by pinscan suggest",),
    )
    text = okhttp.write(suggestion)
    assert "// backup: spare key" in text and "2027-01-31" in text
    assert formats.detect(text.encode(), "x.kt") == ["okhttp"]
    policy = okhttp.parse(text.encode(), "x.kt")
    assert policy.valid
    assert summary(policy) == {
        ("api.example.com", Match.SUBDOMAINS): [f"sha256/{ISRG}", f"sha256/{R3}"]
    }
    exact = okhttp.parse(
        okhttp.write(Suggestion("a.example", False, suggestion.pins, None)).encode(), "y.kt"
    )
    assert [(r.host, r.match) for r in exact.rules] == [("a.example", Match.EXACT)]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400) | st.text(max_size=300).map(str.encode))
def test_garbage_gives_a_policy_or_policy_error(data: bytes) -> None:
    for blob in (data, b"CertificatePinner.Builder().add(" + data):
        with contextlib.suppress(PolicyError):
            assert isinstance(okhttp.parse(blob, "fuzz.kt"), Policy)
