# SPDX-License-Identifier: Apache-2.0
"""Real Android apps for the tests, compiled as an app build compiles them: Debian's ``aapt2``
(package ``aapt``) against the framework's resources (``android-framework-res``) turns a
manifest and ``res/`` into an APK (``aapt2 optimize`` obfuscates names and shortens paths as
release builds do), or into the protocol-buffer form an ``.aab`` holds (``link
--proto-format``, laid out under ``base/`` as bundletool does). Code (DEX from
:mod:`dexbuild`, assets, native libraries) is added to the zip as the build's packager would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

FRAMEWORK = Path("/usr/share/android-framework-res/framework-res.apk")
PACKAGE = "com.example.pins"

PIN_A = "7HIpactkIAq2Y49orFOOQKurWxmmSFZhBCoQYcRhJ3Y="
PIN_B = "fwza0LRMXouZHRC8Ei+4PyuldPDcf3UKgO/04cDM1oE="


def aapt2() -> str:
    """The aapt2 program; skips the test when it or the framework is missing, except on CI,
    where ``make test`` installed them and a skip would hide a broken install step."""
    program = shutil.which("aapt2")
    if program and FRAMEWORK.exists():
        return program
    reason = (
        "aapt2 or the Android framework resources are not installed (Debian packages aapt and "
        "android-framework-res; `make system-deps` installs them)"
    )
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def nsc(*domain_configs: str, extra: str = "") -> str:
    """A network security config holding ``domain_configs`` (XML fragments)."""
    body = "\n".join(domain_configs)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f"<network-security-config>\n{body}\n{extra}</network-security-config>\n"
    )


def domain_config(
    host: str,
    pins: tuple[str, ...] = (PIN_A, PIN_B),
    *,
    include: str | None = "true",
    expiration: str | None = None,
    anchors: str = "",
) -> str:
    attr = f' includeSubdomains="{include}"' if include is not None else ""
    expiry = f' expiration="{expiration}"' if expiration else ""
    pin_lines = "".join(f'<pin digest="SHA-256">{pin}</pin>' for pin in pins)
    return (
        f"<domain-config><domain{attr}>{host}</domain>"
        f"<pin-set{expiry}>{pin_lines}</pin-set>{anchors}</domain-config>"
    )


@dataclass
class App:
    """What goes into the app: the config (None: the manifest names none), files in
    ``res/raw/``, and code members added as they are (``classes.dex``, ``assets/...``,
    ``lib/arm64-v8a/libapp.so``)."""

    config: str | None = None
    config_name: str = "network_security_config"
    raw: dict[str, bytes] = field(default_factory=dict)
    code: dict[str, bytes] = field(default_factory=dict)
    debuggable: bool = False
    #: Files of ``res/values/`` (name to XML text), e.g. an alias of the config.
    values: dict[str, str] = field(default_factory=dict)
    #: The ``@xml/`` resource the manifest names, when not ``config_name`` (an alias).
    manifest_names: str | None = None


def _manifest(app: App, split: str | None = None) -> str:
    named = app.manifest_names or app.config_name
    attribute = f' android:networkSecurityConfig="@xml/{named}"' if app.config else ""
    split_attr = f' split="{split}"' if split else ""
    if app.debuggable:
        attribute += ' android:debuggable="true"'
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<manifest xmlns:android="http://schemas.android.com/apk/res/android" '
        f'package="{PACKAGE}"{split_attr}>\n'
        '    <uses-sdk android:minSdkVersion="24" android:targetSdkVersion="34"/>\n'
        f'    <application android:label="pins"{attribute}/>\n'
        "</manifest>\n"
    )


def _link(work: Path, app: App, out: Path, *options: str, split: str | None = None) -> None:
    tool = aapt2()
    res = work / "res"
    res.mkdir(parents=True, exist_ok=True)
    if app.config is not None:
        (res / "xml").mkdir(exist_ok=True)
        (res / "xml" / f"{app.config_name}.xml").write_text(app.config)
    if app.values:
        (res / "values").mkdir(exist_ok=True)
        for name, text in app.values.items():
            (res / "values" / name).write_text(text)
    if app.raw:
        (res / "raw").mkdir(exist_ok=True)
        for name, data in app.raw.items():
            (res / "raw" / name).write_bytes(data)
    manifest = work / "AndroidManifest.xml"
    manifest.write_text(_manifest(app, split))
    compiled = work / "compiled.zip"
    inputs = []
    if any(res.iterdir()):
        subprocess.run(
            [tool, "compile", "--dir", str(res), "-o", str(compiled)],
            check=True,
            capture_output=True,
        )
        inputs.append(str(compiled))
    link = [tool, "link", "-o", str(out), "-I", str(FRAMEWORK), "--manifest", str(manifest)]
    subprocess.run(
        [*link, *options, *inputs],
        check=True,
        capture_output=True,
    )


def _add(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def build_apk(directory: Path, app: App, name: str = "app.apk", *, optimize: bool = False) -> Path:
    """An APK; ``optimize`` obfuscates resource names and shortens their paths
    (``aapt2 optimize``), as R8/AGP release builds do."""
    work = directory / f"{name}.build"
    work.mkdir(parents=True)
    out = directory / name
    if optimize:
        plain = work / "plain.apk"
        _link(work, app, plain)
        subprocess.run(
            [
                aapt2(),
                "optimize",
                "--enable-resource-obfuscation",
                "--enable-resource-path-shortening",
                "-o",
                str(out),
                str(plain),
            ],
            check=True,
            capture_output=True,
        )
    else:
        _link(work, app, out)
    _add(out, app.code)
    return out


def build_aab(directory: Path, app: App, name: str = "app.aab") -> Path:
    """An Android App Bundle: aapt2's proto output laid out as ``base/`` (``manifest/``,
    ``res/``, ``resources.pb``, ``dex/``, ``assets/``, ``lib/``)."""
    work = directory / f"{name}.build"
    work.mkdir(parents=True)
    proto = work / "proto.zip"
    _link(work, app, proto, "--proto-format")
    out = directory / name
    with zipfile.ZipFile(proto) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as aab:
        for member in source.namelist():
            target = "manifest/AndroidManifest.xml" if member == "AndroidManifest.xml" else member
            aab.writestr(f"base/{target}", source.read(member))
        for member, data in app.code.items():
            target = f"dex/{member}" if member.endswith(".dex") else member
            aab.writestr(f"base/{target}", data)
    return out


def build_apks(directory: Path, base: App, split_code: dict[str, bytes], name: str) -> Path:
    """Split APKs as bundletool or an app store ships them: ``base.apk`` and a config split
    holding ``split_code`` (native libraries for one ABI)."""
    work = directory / f"{name}.build"
    work.mkdir(parents=True)
    base_apk = build_apk(work, base, "base.apk")
    split_apk = work / "split_config.arm64_v8a.apk"
    split_work = work / "split"
    split_work.mkdir()
    _link(split_work, App(), split_apk, split="config.arm64_v8a")
    _add(split_apk, split_code)
    out = directory / name
    with zipfile.ZipFile(out, "w") as apks:
        apks.write(base_apk, "base.apk")
        apks.write(split_apk, "split_config.arm64_v8a.apk")
    return out
