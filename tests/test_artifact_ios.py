# SPDX-License-Identifier: Apache-2.0
"""iOS apps as they ship: IPAs and .app directories built here (a zip with Payload/X.app/, the
Info.plist written binary by plistlib, certificates of the test PKI bundled as .cer/.pem, a
Mach-O executable and framework holding pin strings), read by `pinscan pins` and judged by
`pinscan check --policy App.ipa` on datasets of tests/policyfleet.py."""

from __future__ import annotations

import io
import json
import plistlib
import random
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

import pinscan
from pinscan.policy.artifacts import read_artifact
from pinscan.policy.artifacts.model import FoundPin

from cliresult import run
from fleet import pki
from policyfleet import Served, pin_of, write_dataset

#: The first bytes of a 64-bit little-endian Mach-O file (MH_MAGIC_64 as stored on arm64).
MACH_O = b"\xcf\xfa\xed\xfe\x0c\x00\x00\x01"


def info_plist(*, ats: dict | None = None, trustkit: dict | None = None) -> bytes:
    plist: dict = {
        "CFBundleIdentifier": "com.example.app",
        "CFBundleExecutable": "App",
        "CFBundleName": "App",
    }
    if ats is not None:
        plist["NSAppTransportSecurity"] = {"NSPinnedDomains": ats}
    if trustkit is not None:
        plist["TSKConfiguration"] = trustkit
    return plistlib.dumps(plist, fmt=plistlib.FMT_BINARY)


def executable(*strings: str) -> bytes:
    """A Mach-O-looking binary whose __cstring section holds ``strings`` among other text."""
    body = b"\x00".join(s.encode() for s in ("NSURLSession", *strings, "didReceiveChallenge"))
    return MACH_O + b"\x00" * 56 + body + b"\x00" * 64


def ipa_members() -> dict[str, bytes]:
    """An app pinning api.test's issuing CA in ATS, bundling the root (DER) and the leaf (PEM),
    with pin strings in its executable and in an embedded framework."""
    leaf = pki.leaf("api.test")
    app = "Payload/App.app/"
    return {
        app + "Info.plist": info_plist(
            ats={
                "api.test": {
                    "NSIncludesSubdomains": True,
                    "NSPinnedCAIdentities": [{"SPKI-SHA256-BASE64": pin_of(pki.intermediate())}],
                }
            }
        ),
        app + "App": executable(f"sha256/{pin_of(leaf)}", "some other text"),
        app + "Frameworks/Net.framework/Net": executable(pin_of(pki.root())),
        app + "Frameworks/Net.framework/Info.plist": info_plist(),
        app + "certs/root.cer": pki.root().der,
        app + "api.pem": leaf.cert.public_bytes(Encoding.PEM),
        app + "Assets.car": b"not a certificate, not code",
    }


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    path.write_bytes(buffer.getvalue())
    return path


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> pinscan.ScanDataset:
    served = [
        Served("api.test", pki.leaf("api.test")),
        Served("www.api.test", pki.leaf("www.api.test")),
        Served("api.example.com", pki.leaf("api.example.com")),
        Served("other.test", pki.unknown_root_leaf("other.test"), verified=False),
    ]
    return write_dataset(tmp_path_factory.mktemp("ios") / "ds", served)


def by_kind(pins: list[FoundPin]) -> dict[str, list[tuple[str, tuple[str, ...], str]]]:
    found: dict[str, list[tuple[str, tuple[str, ...], str]]] = {}
    for p in pins:
        found.setdefault(p.kind, []).append((p.pin, p.hosts, p.source.split("!", 1)[1]))
    return found


def test_an_ipa_gives_its_ats_policy_bundled_keys_and_code_pins(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "App.ipa", ipa_members())
    artifact = read_artifact(path)
    assert artifact.kind == "ipa" and artifact.errors == []
    (policy,) = artifact.policies
    assert policy.name == f"{path}!Payload/App.app/Info.plist" and policy.format == "ios"
    found = by_kind(artifact.pins)
    assert found["config"] == [
        (pin_of(pki.intermediate()), ("api.test",), "Payload/App.app/Info.plist")
    ]
    assert sorted(found["bundled_certificate"]) == sorted([
        (pin_of(pki.leaf("api.test")), (), "Payload/App.app/api.pem"),
        (pin_of(pki.root()), (), "Payload/App.app/certs/root.cer"),
    ])  # fmt: skip
    assert sorted(found["code"]) == sorted([
        (pin_of(pki.leaf("api.test")), (), "Payload/App.app/App"),
        (pin_of(pki.root()), (), "Payload/App.app/Frameworks/Net.framework/Net"),
    ])  # fmt: skip
    bare = next(p for p in artifact.pins if p.source.endswith("Net"))
    assert "candidate" in (bare.note or "")


def test_check_judges_the_fleet_by_the_ipa(dataset, tmp_path: Path) -> None:
    path = write_zip(tmp_path / "App.ipa", ipa_members())
    args = ("check", str(dataset.path), "--policy", str(path), "--format", "json")
    result = run(*args)
    rows = {r["target"]: r for r in json.loads(result.stdout)}
    # NSIncludesSubdomains: api.test and one label below; the CA identity is the intermediate.
    assert rows["api.test"]["verdict"] == "pass"
    assert rows["www.api.test"]["verdict"] == "pass"
    assert rows["api.test"]["policy"].endswith("App.ipa!Payload/App.app/Info.plist")
    assert "other.test" not in rows  # no rule covers it: check lists the pinned endpoints
    # The same through Python.
    policies = pinscan.load_policy(path)
    assert [p.format for p in policies] == ["ios"]


def test_an_app_directory_and_trustkit_in_an_xml_plist(dataset, tmp_path: Path) -> None:
    app = tmp_path / "Build" / "App.app"
    (app / "Frameworks" / "libswiftNet.dylib").parent.mkdir(parents=True)
    trustkit = {
        "TSKSwizzleNetworkDelegates": False,
        "TSKPinnedDomains": {
            # TrustKit refuses a domain without a public suffix (api.test).
            "api.example.com": {
                "TSKEnforcePinning": True,
                "TSKPublicKeyHashes": [pin_of(pki.root()), pin_of(pki.leaf("spare.test"))],
            }
        },
    }
    plist = plistlib.loads(info_plist(trustkit=trustkit))
    (app / "Info.plist").write_bytes(plistlib.dumps(plist, fmt=plistlib.FMT_XML))
    (app / "App").write_bytes(executable(f"sha256/{pin_of(pki.leaf('api.test'))}"))
    (app / "Frameworks" / "libswiftNet.dylib").write_bytes(executable("nothing pinned"))
    artifact = read_artifact(app)
    assert artifact.kind == "app" and artifact.errors == []
    (policy,) = artifact.policies
    assert (policy.format, policy.name) == ("trustkit", f"{app}!Info.plist")
    assert {p.kind for p in artifact.pins} == {"config", "code"}
    result = run("check", str(dataset.path), "--policy", str(app), "--format", "json")
    rows = {r["target"]: r["verdict"] for r in json.loads(result.stdout)}
    assert rows == {"api.example.com": "pass"}


def test_pins_lists_what_the_ipa_holds(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "App.ipa", ipa_members())
    result = run("pins", str(path), "--format", "json")
    assert result.exit_code == 0, result.output
    (document,) = json.loads(result.stdout)
    assert document["kind"] == "ipa"
    kinds = sorted({p["kind"] for p in document["pins"]})
    assert kinds == ["bundled_certificate", "code", "config"]
    result = run("pins", str(path), "--no-code")
    assert result.exit_code == 0
    assert " code " not in result.stdout and "bundled_certificate" in result.stdout


def test_broken_members_are_error_lines_and_the_rest_is_read(tmp_path: Path) -> None:
    members = ipa_members()
    members["Payload/App.app/broken.cer"] = b"0\x82\x01\x00 not DER"
    members["Payload/App.app/garbage.pem"] = b"-----BEGIN CERTIFICATE-----\n!!\n"
    members["Payload/App.app/client.pem"] = b"-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRI"
    path = write_zip(tmp_path / "App.ipa", members)
    artifact = read_artifact(path)
    assert len(artifact.policies) == 1 and len(artifact.pins) == 5
    assert len(artifact.errors) == 2
    assert all("Payload/App.app/" in e for e in artifact.errors), artifact.errors
    # An Info.plist that is no plist: one error line, the certificates are still read.
    members = ipa_members()
    members["Payload/App.app/Info.plist"] = b"bplist00\xff\xff garbage"
    artifact = read_artifact(write_zip(tmp_path / "Bad.ipa", members))
    assert artifact.policies == [] and "not a readable plist" in artifact.errors[0]
    # The main executable is found by the bundle's name, Xcode's default.
    assert {p.kind for p in artifact.pins} == {"bundled_certificate", "code"}
    assert any(p.source.endswith("Payload/App.app/App") for p in artifact.pins)


def test_a_pin_across_a_chunk_boundary_of_a_large_executable(tmp_path: Path) -> None:
    """Executables are streamed in 1 MiB chunks, never held whole: a pin string that straddles
    two chunks is still found, once."""
    pin = f"sha256/{pin_of(pki.leaf('api.test'))}"
    # Machine code is no run of zeros: one would be refused as a zip bomb by its ratio.
    code = random.Random(15).randbytes((1 << 20) - len(MACH_O) - 20)
    body = MACH_O + code + pin.encode() + b"\x00" * 100
    members = ipa_members()
    members["Payload/App.app/App"] = body + b"\x00" + pin.encode()
    artifact = read_artifact(write_zip(tmp_path / "Big.ipa", members))
    assert artifact.errors == []
    found = [p for p in artifact.pins if p.source.endswith("Payload/App.app/App")]
    assert [(p.pin, p.kind) for p in found] == [(pin_of(pki.leaf("api.test")), "code")]
