# SPDX-License-Identifier: Apache-2.0
"""The TOML overlay that maps the pins an app holds without a host (pin strings in DEX, a
certificate bundled in an IPA) to hosts: `pinscan check --overlay`, `pinscan pins --overlay`,
and the overlay file's validation."""

from __future__ import annotations

import json
import plistlib
import zipfile

import dexbuild
import pytest
from android_apps import PIN_A, App, build_apk
from click.testing import CliRunner

from pinscan.certs.keys import spki_pin
from pinscan.cli import main
from pinscan.errors import PolicyError
from pinscan.policy.artifacts import read_artifact
from pinscan.policy.artifacts.overlay import apply, read_overlay
from pinscan.policy.model import Match

from fleet import pki
from policyfleet import Served, write_dataset

INTERMEDIATE = spki_pin(pki.intermediate().der)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    names = ("api.example.com", "www.example.com", "cdn.example.net")
    return write_dataset(tmp_path_factory.mktemp("ds"), [Served(n, pki.leaf(n)) for n in names])


@pytest.fixture
def apk(tmp_path):
    """An app without a Network Security Config whose DEX holds two pin strings outside any
    CertificatePinner call (hosts unknown)."""
    dex = dexbuild.build_dex(
        [("return-void",)], strings=(f"sha256/{INTERMEDIATE}", f"sha256/{PIN_A}")
    )
    return build_apk(tmp_path, App(code={"classes2.dex": dex}))


def ipa(tmp_path):
    """An IPA whose Info.plist pins nothing and that bundles the fleet's issuing CA."""
    path = tmp_path / "App.ipa"
    with zipfile.ZipFile(path, "w") as archive:
        info = {"CFBundleIdentifier": "com.example.app", "CFBundleExecutable": "App"}
        plist = plistlib.dumps(info, fmt=plistlib.FMT_BINARY)
        archive.writestr("Payload/App.app/Info.plist", plist)
        archive.writestr("Payload/App.app/ca.cer", pki.intermediate().der)
    return path


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def verdicts(result) -> dict[tuple[str, str], str]:
    assert result.exit_code in (0, 1), result.output
    return {(r["name"], r["policy"]): r["verdict"] for r in json.loads(result.stdout)}


def test_code_pins_mapped_by_source_and_by_pin_become_an_okhttp_policy(tmp_path, dataset, apk):
    refused = run("check", dataset.path, "--policy", apk)
    assert refused.exit_code == 2 and "--overlay" in refused.output
    overlay = tmp_path / "map.toml"
    overlay.write_text(
        "# classes2.dex pins the example.com API\n"
        '[[map]]\nsource = "classes2.dex"\nhosts = ["example.com"]\nmatch = "subdomains"\n\n'
        f'[[map]]\npins = ["sha256/{PIN_A}"]\nhosts = ["cdn.example.net"]\n'
    )
    result = run("check", dataset.path, "--policy", apk, "--overlay", overlay, "--format", "json")
    policy = f"{apk}!overlay"
    assert verdicts(result) == {
        ("api.example.com", policy): "pass",
        ("www.example.com", policy): "pass",
        ("cdn.example.net", policy): "fail",
    }
    artifact = read_artifact(apk)
    apply([read_overlay(overlay)], [artifact])
    (mapped,) = artifact.policies
    assert mapped.name == policy and mapped.format == "okhttp"
    assert [(r.host, r.match, r.pattern, r.location.line) for r in mapped.rules] == [
        ("example.com", Match.SUBDOMAINS, "**.example.com", 2),
        ("cdn.example.net", Match.EXACT, "cdn.example.net", 7),
    ]
    assert {p.location.path for r in mapped.rules for p in r.pins} == {f"{apk}!classes2.dex"}
    listed = run("pins", apk, "--overlay", overlay)
    assert listed.exit_code == 0, listed.output
    assert f"sha256/{PIN_A}  code  example.com,cdn.example.net  {apk}!classes2.dex" in (
        listed.output
    )
    assert f"sha256/{INTERMEDIATE}  code  example.com  {apk}!classes2.dex" in listed.output


def test_a_bundled_certificate_mapped_is_a_toml_policy(tmp_path, dataset):
    app = ipa(tmp_path)
    overlay = tmp_path / "map.toml"
    overlay.write_text(f'[[map]]\npins = ["sha256/{INTERMEDIATE}"]\nhosts = ["api.example.com"]\n')
    result = run("check", dataset.path, "--policy", app, "--overlay", overlay, "--format", "json")
    assert verdicts(result) == {("api.example.com", f"{app}!overlay"): "pass"}
    listed = json.loads(run("pins", app, "--overlay", overlay, "--format", "json").stdout)
    assert {"name": f"{app}!overlay", "format": "toml", "rules": 1, "error": None} in listed[0][
        "policies"
    ]
    (found,) = listed[0]["pins"]
    assert found["hosts"] == ["api.example.com"] and "map[1]" in found["note"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[map]]\nsource = 'classes2.dex'\nhost = ['a.test']\n", "map[1]: unknown key 'host'"),
        ("[map]\nsource = 'x'\n", "no [[map]] table"),
        ("[[mapping]]\nsource = 'x'\n", "unknown key 'mapping'"),
        ("[[map]]\nhosts = ['a.test']\n", "map[1]: names neither a source nor pins"),
        ("[[map]]\npins = ['sha256/AAAA']\nhosts = ['a.test']\n", "map[1].pins: 'sha256/AAAA'"),
        ("[[map]]\nsource = 'classes2.dex'\nhosts = ['a b']\n", "map[1].hosts: 'a b'"),
        ("[[map]]\nsource = 'classes2.dex'\nhosts = []\n", "map[1].hosts"),
        (
            "[[map]]\nsource = 'classes2.dex'\nhosts = ['a.test']\nmatch = 'one-level'\n",
            "map[1].match = 'one-level'",
        ),
        ("[[map]]\nsource = 'classes2.dex'\nhosts = ['a.test']\nmatch = []\n", "map[1].match"),
        ("[[map]]\npins = [1]\nhosts = ['a.test']\n", "map[1].pins: 1: not 'sha256/"),
        ("[[map]]\nsource = 'classes2.dex'\nhosts = 'a.test'\n", "map[1].hosts"),
        ("map = [1]\n", "map[1]: must be a table"),
        ("[[map]\n", "not TOML"),
        (
            f"[[map]]\nsource = 'classes2.dex'\nhosts = ['a.test']\n\n[[map]]\n"
            f"pins = ['sha256/{spki_pin(pki.root().der)}']\nhosts = ['a.test']\n",
            "map.toml:5: map[2].pins: sha256/",
        ),
        ("[[map]]\nsource = 'classes.dex'\nhosts = ['a.test']\n", "map[1].source: no pin"),
    ],
)
def test_an_overlay_it_cannot_use_is_one_line_naming_file_and_key(
    tmp_path, dataset, apk, text, message
):
    overlay = tmp_path / "map.toml"
    overlay.write_text(text)
    for command in (("check", dataset.path, "--policy", apk), ("pins", apk)):
        result = run(*command, "--overlay", overlay)
        assert result.exit_code == 2, result.output
        (line,) = result.output.splitlines()
        assert line.startswith(f"pinscan: {overlay}") and message in line, line


def test_an_overlay_needs_the_app(tmp_path):
    overlay = tmp_path / "map.toml"
    overlay.write_text(f'[[map]]\npins = ["sha256/{PIN_A}"]\nhosts = ["a.test"]\n')
    with pytest.raises(PolicyError, match=r"map\[1\]\.pins: .* no app"):
        apply([read_overlay(overlay)], [])
