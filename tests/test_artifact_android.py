# SPDX-License-Identifier: Apache-2.0
"""Pins out of real Android apps: APKs, split APKs and bundles compiled in the test by Debian's
aapt2 (:mod:`android_apps`), DEX files written by :mod:`dexbuild`, judged through
``pinscan check`` on datasets of real certificates (:mod:`policyfleet`)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import zipfile

import dexbuild
import pytest
from android_apps import (
    PIN_A,
    PIN_B,
    App,
    build_aab,
    build_apk,
    build_apks,
    domain_config,
    nsc,
)
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization

import pinscan
from pinscan import _core
from pinscan.certs.keys import spki_pin
from pinscan.cli import main
from pinscan.policy import android
from pinscan.policy.artifacts import read_artifact
from pinscan.policy.model import Match

from fleet import pki
from policyfleet import Served, write_dataset

INTERMEDIATE = spki_pin(pki.intermediate().der)
ROOT_PEM = pki.root().cert.public_bytes(serialization.Encoding.PEM)


def check(dataset, *policies) -> dict[str, str]:
    args = ["check", str(dataset.path), "--format", "json"]
    for policy in policies:
        args += ["--policy", str(policy)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code in (0, 1), result.output
    return {row["name"]: row["verdict"] for row in json.loads(result.stdout)}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    names = ("api.example.com", "www.example.com", "cdn.example.net", "old.example.org")
    return write_dataset(tmp_path_factory.mktemp("ds"), [Served(n, pki.leaf(n)) for n in names])


def test_apk_config_is_found_through_the_manifest_and_judged(tmp_path, dataset):
    config = nsc(
        domain_config("example.com", (INTERMEDIATE, PIN_B)),
        domain_config("cdn.example.net", (PIN_A, PIN_B)),
        domain_config("old.example.org", (PIN_A, PIN_B), expiration="2020-01-01"),
    )
    apk = build_apk(tmp_path, App(config))
    artifact = read_artifact(apk, code=False)
    assert artifact.kind == "apk" and artifact.errors == []
    (policy,) = artifact.policies
    assert policy.name.endswith("app.apk!res/xml/network_security_config.xml")
    assert policy.format == "android" and policy.error is None
    config_pins = {(p.pin, p.hosts) for p in artifact.pins if p.kind == "config"}
    assert (INTERMEDIATE, ("example.com",)) in config_pins
    # The chain of each name against the pins Android would enforce: the expired pin-set is
    # not enforced any more.
    assert check(dataset, apk) == {
        "api.example.com": "pass",
        "www.example.com": "pass",
        "cdn.example.net": "fail",
        "old.example.org": "expired",
    }


def test_the_manifest_decides_not_the_file_name(tmp_path):
    # A decoy named network_security_config.xml is not what the app reads (MobSF#2049).
    config = nsc(domain_config("real.example.com"))
    app = App(config, config_name="release_pins", raw={})
    apk = build_apk(tmp_path, app)
    decoy = _compiled_decoy(tmp_path)
    with zipfile.ZipFile(apk, "a") as archive:
        archive.writestr("res/xml/network_security_config.xml", decoy)
    (policy,) = read_artifact(apk).policies
    assert policy.name.endswith("!res/xml/release_pins.xml")
    assert [rule.host for rule in policy.rules] == ["real.example.com"]


def _compiled_decoy(tmp_path) -> bytes:
    apk = build_apk(tmp_path, App(nsc(domain_config("decoy.example.com"))), "decoy.apk")
    with zipfile.ZipFile(apk) as archive:
        return archive.read("res/xml/network_security_config.xml")


@pytest.mark.parametrize("text", ["1", "0x1", "true", "True"])
def test_typed_attributes_are_read_as_android_reads_them(tmp_path, text):
    # aapt2 compiles "1" and "0x1" to integers; getAttributeBooleanValue reads any non-zero
    # integer as true (AOSP XmlBlock.Parser), so the subdomains are pinned.
    apk = build_apk(tmp_path, App(nsc(domain_config("example.com", include=text))))
    (policy,) = read_artifact(apk).policies
    (rule,) = policy.rules
    assert rule.match == Match.SUBDOMAINS and policy.warnings == ()


def test_obfuscated_names_and_shortened_paths_resolve_by_id(tmp_path):
    anchors = '<trust-anchors><certificates src="@raw/company_ca"/></trust-anchors>'
    config = nsc(domain_config("example.com", anchors=anchors))
    apk = build_apk(tmp_path, App(config, raw={"company_ca.pem": ROOT_PEM}), optimize=True)
    with zipfile.ZipFile(apk) as archive:
        assert not any("network_security_config" in name for name in archive.namelist())
    artifact = read_artifact(apk)
    assert artifact.errors == []
    (policy,) = artifact.policies
    assert "!res/" in policy.name and "network_security_config" not in policy.name
    (rule,) = policy.rules
    (anchor,) = rule.anchors
    assert [pin.digest for pin in anchor.pins] == [spki_pin(pki.root().der)]


def test_raw_anchors_become_bundled_certificate_pins(tmp_path):
    anchors = '<trust-anchors><certificates src="@raw/company_ca"/></trust-anchors>'
    config = nsc(domain_config("example.com", anchors=anchors))
    apk = build_apk(tmp_path, App(config, raw={"company_ca.pem": ROOT_PEM}))
    artifact = read_artifact(apk)
    (rule,) = artifact.policies[0].rules
    (anchor,) = rule.anchors
    assert anchor.source == "@raw/company_ca" and anchor.file.endswith("!res/raw/company_ca.pem")
    (found,) = [p for p in artifact.pins if p.kind == "bundled_certificate"]
    assert found.pin == spki_pin(pki.root().der) and found.hosts == ("example.com",)


def test_a_raw_anchor_that_is_no_certificate_is_one_error_line(tmp_path):
    anchors = '<trust-anchors><certificates src="@raw/broken"/></trust-anchors>'
    config = nsc(domain_config("example.com", anchors=anchors))
    apk = build_apk(tmp_path, App(config, raw={"broken.pem": b"not a certificate"}))
    artifact = read_artifact(apk)
    assert len(artifact.errors) == 1 and "res/raw/broken.pem" in artifact.errors[0]
    assert artifact.policies[0].rules[0].host == "example.com"


def test_trustkit_config_in_a_compiled_file(tmp_path):
    extra = '<trustkit-config enforcePinning="true"/>'  # read by TrustKit-Android as well
    config = nsc(domain_config("example.com", anchors=""), extra="")
    config = config.replace("</pin-set>", f"</pin-set>{extra}")
    apk = build_apk(tmp_path, App(config))
    formats = sorted(policy.format for policy in read_artifact(apk).policies)
    assert formats == ["android", "trustkit-android"]


def test_dex_pins_are_tied_to_hosts_where_the_bytecode_says(tmp_path):
    a, b = f"sha256/{PIN_A}", f"sha256/{PIN_B}"
    host_from_code = [
        ("new-instance", 0, dexbuild.BUILDER),
        ("invoke-direct", [0], dexbuild.INIT),
        ("invoke-static", [], (dexbuild.CLASS, "host", dexbuild.STRING, ())),
        ("move-result-object", 1),
        ("const-string", 3, f"sha1/{'A' * 27}="),
        ("filled-new-array", [3], dexbuild.STRINGS),
        ("move-result-object", 2),
        ("invoke-virtual", [0, 1, 2], dexbuild.ADD),
    ]
    first = dexbuild.build_dex([*dexbuild.pinner_call("api.example.com", [a, b]), ("return-void",)])
    second = dexbuild.build_dex(
        [
            *dexbuild.pinner_call("*.example.net", [b], filled=True),
            *dexbuild.pinner_call("example.org", [b]),
            *host_from_code,
            ("return-void",),
        ]
    )
    apk = build_apk(tmp_path, App(code={"classes.dex": first, "classes2.dex": second}))
    artifact = read_artifact(apk)
    pins = {(p.source.rpartition("!")[2], p.label, p.hosts) for p in artifact.pins}
    assert pins == {
        ("classes.dex", a, ("api.example.com",)),
        ("classes.dex", b, ("api.example.com",)),
        ("classes2.dex", b, ("*.example.net", "example.org")),
        ("classes2.dex", f"sha1/{'A' * 27}=", ()),
    }
    # The call whose host comes from a method is left out of the pinner, and said so.
    code_policy = artifact.policies[1]
    assert [rule.host for rule in code_policy.rules] == ["example.net", "example.org"]
    assert any("1 more add() call site" in note for note in code_policy.notes)


def test_a_jump_into_the_call_unties_it(tmp_path):
    # The host register may come from elsewhere when control can join before the call.
    code = [
        ("new-instance", 0, dexbuild.BUILDER),
        ("const-string", 1, "api.example.com"),
        ("const-string", 3, f"sha256/{PIN_A}"),
        ("filled-new-array", [3], dexbuild.STRINGS),
        ("move-result-object", 2),
        ("if-eqz", 0, 2),
        ("invoke-virtual", [0, 1, 2], dexbuild.ADD),
        ("return-void",),
    ]
    apk = build_apk(tmp_path, App(code={"classes.dex": dexbuild.build_dex(code)}))
    (found,) = read_artifact(apk).pins
    assert found.hosts == () and "map it" in found.note


def test_pins_in_assets_and_native_libraries(tmp_path):
    bundle = b'fetch(u,{pins:["sha256/' + PIN_A.encode() + b'"]})'
    library = b"\x7fELF" + b"\0" * 5000 + b"sha256/" + PIN_B.encode() + b"\0"
    app = App(code={"assets/index.android.bundle": bundle, "lib/arm64-v8a/libapp.so": library})
    apk = build_apk(tmp_path, app)
    pins = {(p.source.rpartition("!")[2], p.pin) for p in read_artifact(apk).pins}
    assert pins == {("assets/index.android.bundle", PIN_A), ("lib/arm64-v8a/libapp.so", PIN_B)}
    assert read_artifact(apk, code=False).pins == []


def test_split_apks(tmp_path, dataset):
    library = b"sha256/" + PIN_B.encode()
    base = App(nsc(domain_config("example.com", (INTERMEDIATE, PIN_B))))
    apks = build_apks(tmp_path, base, {"lib/arm64-v8a/libapp.so": library}, "app.apks")
    artifact = read_artifact(apks)
    assert artifact.kind == "apks" and artifact.errors == []
    (policy,) = artifact.policies
    assert policy.name.endswith("app.apks!base.apk!res/xml/network_security_config.xml")
    code = [p for p in artifact.pins if p.kind == "code"]
    assert [p.source.split("!", 1)[1] for p in code] == [
        "split_config.arm64_v8a.apk!lib/arm64-v8a/libapp.so"
    ]
    assert check(dataset, apks)["api.example.com"] == "pass"


def test_aab_reads_the_proto_format(tmp_path, dataset):
    anchors = '<trust-anchors><certificates src="@raw/company_ca"/></trust-anchors>'
    config = nsc(domain_config("example.com", (INTERMEDIATE, PIN_B), include="1", anchors=anchors))
    dex = dexbuild.build_dex(
        [*dexbuild.pinner_call("cdn.example.net", [f"sha256/{PIN_A}"]), ("return-void",)]
    )
    app = App(config, raw={"company_ca.pem": ROOT_PEM}, code={"classes.dex": dex})
    aab = build_aab(tmp_path, app)
    artifact = read_artifact(aab)
    assert artifact.kind == "aab" and artifact.errors == []
    policy, code_policy = artifact.policies
    assert policy.name.endswith("app.aab!base/res/xml/network_security_config.xml")
    assert code_policy.name.endswith("app.aab!base/dex/classes.dex")
    (rule,) = policy.rules
    assert rule.match == Match.SUBDOMAINS
    assert rule.anchors[0].pins[0].digest == spki_pin(pki.root().der)
    tied = [p for p in artifact.pins if p.kind == "code"]
    assert [(p.source.rpartition("!")[2], p.hosts) for p in tied] == [
        ("base/dex/classes.dex", ("cdn.example.net",))
    ]
    verdicts = check(dataset, aab)
    assert verdicts["www.example.com"] == "pass" and verdicts["cdn.example.net"] == "fail"


def test_an_app_without_a_config_has_no_policy(tmp_path):
    artifact = read_artifact(build_apk(tmp_path, App()))
    assert artifact.policies == [] and artifact.errors == []


def test_damaged_compiled_files_are_error_lines(tmp_path):
    apk = build_apk(tmp_path, App(nsc(domain_config("example.com"))))
    with zipfile.ZipFile(apk) as source:
        members = {name: source.read(name) for name in source.namelist()}
    for victim in ("res/xml/network_security_config.xml", "resources.arsc"):
        damaged = tmp_path / f"damaged-{victim.replace('/', '_')}.apk"
        with zipfile.ZipFile(damaged, "w") as out:
            for name, data in members.items():
                out.writestr(name, data[: len(data) // 2] if name == victim else data)
        artifact = read_artifact(damaged)
        assert artifact.policies == []
        assert len(artifact.errors) == 1 and victim in artifact.errors[0], artifact.errors


def test_decoders_never_raise_anything_but_value_error_on_hostile_bytes(tmp_path):
    # Every truncation and a byte flipped at every offset of real compiled files: an error
    # value or a result, never a panic across the FFI.
    anchors = '<trust-anchors><certificates src="@raw/ca"/></trust-anchors>'
    app = App(nsc(domain_config("example.com", anchors=anchors)), raw={"ca.pem": ROOT_PEM})
    apk, aab = build_apk(tmp_path, app), build_aab(tmp_path, app)
    dex = dexbuild.build_dex([*dexbuild.pinner_call("h", [f"sha256/{PIN_A}"]), ("return-void",)])
    with zipfile.ZipFile(apk) as a, zipfile.ZipFile(aab) as b:
        samples = [
            (_core.android_xml, a.read("res/xml/network_security_config.xml"), {}),
            (_core.android_xml, a.read("AndroidManifest.xml"), {}),
            (
                _core.android_xml,
                b.read("base/res/xml/network_security_config.xml"),
                {"proto": True},
            ),
            (
                lambda d, **k: _core.android_resource(d, 0x7F010000, **k),
                a.read("resources.arsc"),
                {},
            ),
            (
                lambda d, **k: _core.android_resource(d, 0x7F010000, **k),
                b.read("base/resources.pb"),
                {"proto": True},
            ),
            (lambda d: _core.dex_pins(d), dex, {}),
        ]
    for decode, data, options in samples:
        for cut in range(len(data)):
            for variant in (data[:cut], data[:cut] + bytes([data[cut] ^ 0xFF]) + data[cut + 1 :]):
                with contextlib.suppress(ValueError):
                    decode(variant, **options)


def test_load_policy_reads_the_apk(tmp_path):
    apk = build_apk(tmp_path, App(nsc(domain_config("example.com"))))
    (policy,) = pinscan.load_policies(apk)
    assert policy.rules[0].host == "example.com"


def test_dex_call_sites_are_judged_as_okhttp_judges_them(tmp_path, dataset):
    code = [
        *dexbuild.pinner_call("api.example.com", [f"sha256/{INTERMEDIATE}"]),
        *dexbuild.pinner_call("**.example.net", [f"sha256/{PIN_A}"], filled=True),
        ("return-void",),
    ]
    apk = build_apk(tmp_path, App(code={"classes2.dex": dexbuild.build_dex(code)}))
    (policy,) = pinscan.load_policies(apk)
    assert policy.format == "okhttp" and policy.name.endswith("app.apk!classes2.dex")
    assert [(r.host, r.match, r.location.line) for r in policy.rules] == [
        ("api.example.com", Match.EXACT, 1),
        ("example.net", Match.SUBDOMAINS, 2),
    ]
    verdicts = check(dataset, apk)
    assert verdicts["api.example.com"] == "pass" and verdicts["cdn.example.net"] == "fail"
    assert "www.example.com" not in verdicts or verdicts["www.example.com"] == "unpinned"


def test_a_pin_add_throws_on_is_the_policy_error(tmp_path):
    # OkHttp's add() throws on "SHA256/..." (upper case): the pinner is never built.
    code = [*dexbuild.pinner_call("api.example.com", [f"SHA256/{PIN_A}"]), ("return-void",)]
    apk = build_apk(tmp_path, App(code={"classes.dex": dexbuild.build_dex(code)}))
    artifact = read_artifact(apk)
    (policy,) = artifact.policies
    assert "throws" in policy.error and policy.error_location.line == 1
    assert artifact.pins == []  # not a pin OkHttp would compare


@pytest.mark.parametrize("debuggable", [False, True])
def test_debug_overrides_follow_the_manifest(tmp_path, debuggable):
    overrides = (
        '<debug-overrides><trust-anchors><certificates src="user" overridePins="true"/>'
        "</trust-anchors></debug-overrides>"
    )
    config = nsc(domain_config("example.com"), extra=overrides)
    apk = build_apk(tmp_path, App(config, debuggable=debuggable))
    (policy,) = read_artifact(apk).policies
    (rule,) = policy.rules
    assert rule.override_pins == ({"user"} if debuggable else set())


def test_overlapping_code_items_cannot_make_the_walk_quadratic(tmp_path):
    # 100,000 methods sharing one code item: refused once the code walked exceeds the file's
    # size, and the DEX is still searched for pin strings.
    code = [*dexbuild.pinner_call("api.example.com", [f"sha256/{PIN_A}"]), ("return-void",)]
    dex = dexbuild.build_dex(code, aliases=100_000)
    apk = build_apk(tmp_path, App(code={"classes.dex": dex}))
    artifact = read_artifact(apk)
    (error,) = artifact.errors
    assert "classes.dex" in error and "more code than the file" in error
    assert [(p.pin, p.hosts) for p in artifact.pins] == [(PIN_A, ())]


def test_a_comment_inside_a_domain_is_two_text_nodes_android_refuses(tmp_path):
    # aapt2 keeps the comment as a boundary between two text nodes; XmlConfigSource throws on
    # the second (issue 17): the config is an error, as on a device.
    config = nsc(domain_config("example.com")).replace(
        "example.com</domain>", "example<!-- c -->.com</domain>"
    )
    (policy,) = read_artifact(build_apk(tmp_path, App(config))).policies
    assert policy.error == "domain contains additional elements"


def test_override_pins_one_is_true_when_compiled(tmp_path):
    anchors = '<trust-anchors><certificates src="system" overridePins="1"/></trust-anchors>'
    apk = build_apk(tmp_path, App(nsc(domain_config("example.com", anchors=anchors))))
    (policy,) = read_artifact(apk).policies
    assert policy.rules[0].override_pins == {"system"} and policy.warnings == ()


def test_an_alias_resource_is_followed(tmp_path):
    # The manifest names @xml/pins, an alias of the real file (res/values/aliases.xml).
    app = App(
        nsc(domain_config("example.com")),
        config_name="real_pins",
        values={"aliases.xml": ALIAS},
        manifest_names="pins",
    )
    apk = build_apk(tmp_path, app)
    (policy,) = read_artifact(apk).policies
    assert policy.name.endswith("!res/xml/real_pins.xml")


ALIAS = '<resources><item type="xml" name="pins">@xml/real_pins</item></resources>'


def test_what_could_not_be_read_inside_the_app_is_a_finding(tmp_path, dataset):
    # A config that reads, beside a DEX that does not decode and a member the reader refuses.
    apk = build_apk(
        tmp_path,
        App(
            nsc(domain_config("example.com", (INTERMEDIATE, PIN_B))),
            code={"classes2.dex": b"dex\n035\0" + bytes(40), "../escape.txt": b"x"},
        ),
    )
    args = ["check", str(dataset.path), "--policy", str(apk), "--findings", "--format", "json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output  # warnings, as other findings: the pins pass
    rows = [r for r in json.loads(result.stdout) if r["kind"] == "artifact_error"]
    assert {(r["location"], r["severity"], r["policy"]) for r in rows} == {
        (f"{apk}!classes2.dex", "warning", str(apk)),
        (f"{apk}!../escape.txt", "warning", str(apk)),
    }
    assert all("not judged" in r["message"] for r in rows)
    library = pinscan.findings(dataset.path, apk)
    assert library.filter(kind="artifact_error").height == 2
    table = CliRunner().invoke(main, args[:-2])
    assert "artifact_error" in table.output and "classes2.dex" in table.output


def test_an_app_whose_config_cannot_be_read_says_why(tmp_path, dataset):
    apk = build_apk(tmp_path, App(nsc(domain_config("example.com"))))
    damaged = tmp_path / "damaged.apk"
    with zipfile.ZipFile(apk) as source, zipfile.ZipFile(damaged, "w") as out:
        for name in source.namelist():
            data = source.read(name)
            out.writestr(name, data[:10] if name == "resources.arsc" else data)
    result = CliRunner().invoke(main, ["check", str(dataset.path), "--policy", str(damaged)])
    assert result.exit_code == 2
    assert f"{damaged}: holds no pin policy pinscan could read: {damaged}!resources.arsc" in (
        result.output
    )


# --- one model for source and compiled configs (issue 17) -------------------------------------

BOOLEAN_SPELLINGS = ("1", "0x1", "0", "0x0", "-1", " 1 ", "01", "#fff", "#0000", "yes", "1.0",
                     "+1", "0X1", "TRUE", " true", "tRuE", "@null")  # fmt: skip


def test_source_and_compiled_configs_read_every_value_alike(tmp_path):
    # aapt2 types each value (XmlReferenceLinker.cpp, ResourceUtils::TryParseItemForAttribute);
    # XmlBlock.Parser.getAttributeBooleanValue reads the type: the source reader must agree with
    # the app aapt2 builds from the same file, for each spelling.
    domains = "".join(
        f'<domain includeSubdomains="{text}">d{i}.example.com</domain>'
        for i, text in enumerate(BOOLEAN_SPELLINGS)
    )
    anchors = "".join(
        f"<domain-config><domain>o{i}.example.com</domain><trust-anchors><certificates "
        f'src="system" overridePins="{text}"/></trust-anchors></domain-config>'
        for i, text in enumerate(BOOLEAN_SPELLINGS)
    )
    pins = f'<pin-set><pin digest="SHA-256">{PIN_A}</pin><pin digest="SHA-256">{PIN_B}</pin>'
    config = nsc(f"<domain-config>{domains}{pins}</pin-set>{anchors}</domain-config>")
    (compiled,) = read_artifact(build_apk(tmp_path, App(config))).policies
    source = android.parse(config.encode(), "network_security_config.xml")
    assert compiled.error is None and source.error is None

    def seen(policy):
        return [(r.host, r.match, r.override_pins) for r in policy.rules]

    assert seen(source) == seen(compiled)
    subdomains = {r.host for r in source.rules if r.match == Match.SUBDOMAINS}
    assert "d0.example.com" in subdomains and "d1.example.com" in subdomains  # "1", "0x1"
    assert source.rules[len(BOOLEAN_SPELLINGS)].override_pins == {"system"}  # overridePins="1"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("example<!-- c -->.com", "domain contains additional elements"),
        ("  <!-- c -->example.com<!-- c -->  ", None),
    ],
)
def test_comments_in_text_read_alike_compiled_and_in_source(tmp_path, text, error):
    # XmlDom.cpp: a comment ends the pending text; XmlFlattener.cpp drops whitespace-only text.
    config = nsc(domain_config("example.com")).replace(">example.com<", f">{text}<")
    (compiled,) = read_artifact(build_apk(tmp_path, App(config))).policies
    source = android.parse(config.encode(), "x")
    assert compiled.error == source.error == error
    assert [r.host for r in compiled.rules] == [r.host for r in source.rules] == ["example.com"]


def test_a_split_pin_is_refused_compiled_and_in_source(tmp_path):
    split = PIN_A[:20] + "<!-- c -->" + PIN_A[20:]
    config = nsc(domain_config("example.com")).replace(f">{PIN_A}<", f">{split}<")
    (compiled,) = read_artifact(build_apk(tmp_path, App(config))).policies
    assert compiled.error == android.parse(config.encode(), "x").error
    assert compiled.error.startswith("digest length 15 ")


def test_a_bare_doctype_builds_and_reads_alike(tmp_path, dataset):
    config = nsc(domain_config("example.com", (PIN_A, PIN_B))).replace(
        "<network-security-config>", "<!DOCTYPE network-security-config>\n<network-security-config>"
    )
    apk = build_apk(tmp_path, App(config))
    (compiled,) = read_artifact(apk).policies
    assert compiled.error is None and android.parse(config.encode(), "x").error is None
    assert check(dataset, apk)["www.example.com"] == "fail"


def test_an_android_namespace_attribute_does_not_build(tmp_path):
    # tools/aapt2/link/XmlReferenceLinker.cpp: a package-namespace attribute must resolve.
    config = nsc(domain_config("example.com", include=None)).replace(
        "<domain>", '<domain xmlns:android="http://schemas.android.com/apk/res/android" '
        'android:includeSubdomains="true">'
    )  # fmt: skip
    with pytest.raises(subprocess.CalledProcessError) as failed:
        build_apk(tmp_path, App(config))
    assert b"attribute android:includeSubdomains not found" in failed.value.stderr
    assert android.parse(config.encode(), "x").error.startswith(
        "attribute android:includeSubdomains not found"
    )


def test_a_missing_raw_anchor_does_not_build(tmp_path):
    # The source config's verdict (error: the app does not build) is aapt2 link's.
    anchors = '<trust-anchors><certificates src="@raw/missing_ca"/></trust-anchors>'
    with pytest.raises(subprocess.CalledProcessError) as failed:
        build_apk(tmp_path, App(nsc(domain_config("example.com", anchors=anchors))))
    assert b"resource raw/missing_ca" in failed.value.stderr
    assert b"not found" in failed.value.stderr


def test_anchors_and_override_judged_alike_compiled_and_in_source(tmp_path, dataset):
    # NetworkSecurityTrustManager: the chain is built on the config's anchors, then checkPins
    # unless isPinningEnforced is false (overridePins on the anchor the chain ends at). The
    # dataset's root is the scan's --ca-bundle, in the system store by default.
    cases = {
        '<certificates src="user"/>': "fail",  # trusts no anchor that verifies the chain
        '<certificates src="system"/>': "pass",
        '<certificates src="system" overridePins="1"/>': "unpinned",
    }
    for i, (certificates, expected) in enumerate(cases.items()):
        anchors = f"<trust-anchors>{certificates}</trust-anchors>"
        config = nsc(domain_config("example.com", (INTERMEDIATE, PIN_B), anchors=anchors))
        apk = build_apk(tmp_path, App(config), f"app{i}.apk")
        source = tmp_path / f"config{i}.xml"
        source.write_text(config)
        # `check` lists the names a rule pins: an unpinned one is left out.
        for policy in (apk, source):
            got = check(dataset, policy).get("www.example.com", "unpinned")
            assert got == expected, (certificates, policy)


@pytest.mark.parametrize(
    ("attribute", "error"),
    [
        ('src="\\u0073ystem"', None),  # aapt2 processes the escape: "system"
        ('src="sy\\stem"', None),  # an escaped character is itself
        ('src="\\@raw/x"', "Unknown certificates src. Should be one of system|user|@resourceVal"),
        ('src="system" overridePins="\\u0031"', None),  # a string "1", not an integer: false
    ],
)
def test_escapes_in_attribute_strings_read_alike(tmp_path, attribute, error):
    # XmlFlattener.cpp writes an untyped attribute through StringBuilder (escapes processed,
    # spaces kept); a typed one (a reference) is typed from the text as written, so "\@raw/x"
    # stays a string, which XmlConfigSource.parseCertificatesEntry refuses.
    anchors = f"<trust-anchors><certificates {attribute}/></trust-anchors>"
    config = nsc(domain_config("example.com", anchors=anchors))
    (compiled,) = read_artifact(build_apk(tmp_path, App(config))).policies
    source = android.parse(config.encode(), "x")
    assert compiled.error == source.error == error
    assert [r.override_pins for r in compiled.rules] == [r.override_pins for r in source.rules]
    if error is None:
        assert [a.source for a in source.rules[0].anchors] == ["system"]
