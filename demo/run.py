# SPDX-License-Identifier: Apache-2.0
"""`make demo`: start a local demo fleet, scan it, show what every endpoint serves, judge it by a
suggested pin-set and a stale one and by the pins of an Android and an iOS app built on the spot,
and write the HTML report.

    .venv/bin/python -m demo.run   # from the repository root

The fleet runs on loopback only: in-process TLS servers from the local fleet the tests use too
(`fleet/` at the root: good, expired, self-signed, wrongly named, client certificate required,
and hostile ones that stay silent, speak another protocol, reset or alert), `openssl s_server` as
a TLS 1.0-only legacy endpoint, and nginx when it is installed (`make test` installs it).
"""

from __future__ import annotations

import contextlib
import plistlib
import shutil
import ssl
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import polars as pl
from cryptography.hazmat.primitives.serialization import Encoding

import pinscan

from fleet import pki, real, servers

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "demo-out"


def main() -> int:
    OUT.mkdir(exist_ok=True)
    dataset = OUT / "scan"
    shutil.rmtree(dataset, ignore_errors=True)
    ca_bundle = OUT / "fleet-ca.pem"
    ca_bundle.write_bytes(pki.root().cert.public_bytes(Encoding.PEM))

    with contextlib.ExitStack() as fleet, tempfile.TemporaryDirectory() as tmp:
        lines = start_fleet(fleet, Path(tmp))
        inventory = OUT / "inventory.txt"
        inventory.write_text("# The demo fleet: host:port, then the SNI name to send\n" + lines)
        rel = [p.relative_to(ROOT) for p in (inventory, dataset, ca_bundle)]
        command = scan_command(*rel)
        print("$ " + " ".join(command), flush=True)
        subprocess.run([sys.executable, "-m", "pinscan", *command[1:]], cwd=ROOT, check=True)

    ds = pinscan.open(dataset)
    served = ds.endpoints.filter(pl.col("spki_sha256").is_not_null())
    failed = ds.endpoints.filter(pl.col("spki_sha256").is_null())
    with pl.Config(
        tbl_hide_dataframe_shape=True, tbl_rows=60, tbl_width_chars=170, fmt_str_lengths=48
    ):
        print("\nThe key every endpoint serves (spki_sha256 is the pin):")
        columns = ["target", "status", "spki_sha256", "verified", "hostname_match"]
        print(served.select(*columns, "days_to_expiry").sort("target").collect())
        print("\nAnd the ones that served none:")
        print(failed.select("target", "status", "error").sort("status").collect())
    show_policies(dataset, domain="nginx.test" if real.find("nginx") else "b.test")
    print(
        f"\nThe dataset is in {dataset.relative_to(ROOT)}/. In a notebook:\n"
        f"  import pinscan; ds = pinscan.open({str(dataset.relative_to(ROOT))!r})\n"
        "  ds.endpoints, ds.chains, ds.certificates (polars LazyFrames), ds.served()"
    )
    return 0


def scan_command(inventory: Path, dataset: Path, ca_bundle: Path) -> list[str]:
    """The demo's scan (tests/test_terminal.py runs it in a terminal)."""
    command = ["pinscan", "scan", str(inventory), "-o", str(dataset), "--ca-bundle", str(ca_bundle)]
    return [*command, "--connect-timeout", "2", "--handshake-timeout", "3", "--deadline", "5"]


def show_policies(dataset: Path, domain: str) -> None:
    """Suggest an Android pin-set for the domain with the sample spare key as its backup, then
    judge the fleet by it and by a pin-set that forgot a rotation."""
    out = dataset.parent
    spare = ROOT / "demo" / "sample" / "backup-key.csr"
    stale = out / "stale-pins.toml"
    spare_pin = pinscan.spki_pin(spare.read_bytes())
    stale.write_text(
        "# a.test pinned to a key it no longer serves: only the spare key's pin is left\n"
        f'[[pin-set]]\ndomain = "a.test"\npins = ["sha256/{spare_pin}"]\n'
    )
    nsc = out / "network_security_config.xml"

    def pinscan_cli(*args: Path | str) -> int:
        command = [str(a.relative_to(ROOT)) if isinstance(a, Path) else a for a in args]
        print("\n$ pinscan " + " ".join(command), flush=True)
        return subprocess.run([sys.executable, "-m", "pinscan", *command], cwd=ROOT).returncode

    suggest = ("suggest", dataset, "--domain", domain, "--policy-format", "android")
    if pinscan_cli(*suggest, "--backup-key", spare, "-o", nsc) == 0:
        print(nsc.read_text())
    status = pinscan_cli("check", dataset, "--policy", nsc, "--policy", stale)
    print(f"(exit status {status}: 1 says a pinned endpoint fails, for cron and CI)")
    show_lockout(dataset, pinscan_cli)
    show_apps(dataset, pinscan_cli)
    page = out / "report.html"
    if pinscan_cli("report", dataset, "--policy", nsc, "--html", page, "-q") == 0:
        print(f"The fleet at a glance, in one self-contained page: {page.relative_to(ROOT)}")


def a_test_pin(dataset: Path) -> str | None:
    """The key a.test serves, as the scan saw it; None when its server did not answer."""
    leaf = (
        pinscan.open(dataset)
        .endpoints.filter(pl.col("sni") == "a.test")
        .select("spki_sha256")
        .collect()
    )
    return None if leaf.is_empty() else leaf.item()


def show_lockout(dataset: Path, pinscan_cli) -> None:
    """Will the pins survive the next certificate? a.test pinned by its leaf key alone, and by
    its issuing CA, judged under every rotation scenario; the demo CA's two issuing
    intermediates come in as a private catalog, so a renewal from the other one is a scenario."""
    out = dataset.parent
    cas = out / "demo-ca.pem"
    cas.write_bytes(
        b"".join(
            issued.cert.public_bytes(Encoding.PEM)
            for issued in (pki.root(), pki.intermediate(), pki.second_intermediate())
        )
    )
    leaf = a_test_pin(dataset)
    if leaf is None:
        return
    issuer = pinscan.spki_pin(pki.intermediate().der)
    pins = out / "renewal-pins.toml"
    pins.write_text(
        "# a.test by its leaf key (certbot makes a new one at every renewal), b.test by its CA\n"
        f'[[pin-set]]\ndomain = "a.test"\npins = ["sha256/{leaf}"]\n'
        f'[[pin-set]]\ndomain = "b.test"\npins = ["sha256/{issuer}"]\n'
    )
    status = pinscan_cli(
        "check", dataset, "--policy", pins, "--scenarios", "all", "--ca-catalog", cas
    )
    print(f"(exit status {status}: 1 says a routine renewal locks a pinned client out)")


def show_apps(dataset: Path, pinscan_cli) -> None:
    """The pins as they ship: an APK (its Network Security Config pins a.test by its leaf key
    and b.test by its CA, each with the spare key) and an IPA (NSPinnedDomains pins b.test by
    its CA; a bundled certificate, and a.test's key as a pin string in code, without a host),
    read out of the built artifacts and judged against the fleet, the code pin mapped to a.test
    by an overlay."""
    out = dataset.parent
    leaf = a_test_pin(dataset)
    if leaf is None:
        return
    spare = pinscan.spki_pin((ROOT / "demo" / "sample" / "backup-key.csr").read_bytes())
    issuer = pinscan.spki_pin(pki.intermediate().der)
    apps = [build_ipa(out / "Demo.ipa", issuer, leaf)]
    apk = build_apk(out / "demo.apk", {"a.test": (leaf, spare), "b.test": (issuer, spare)})
    if apk is None:
        print(
            "\n(no APK: aapt2 or the Android framework resources are missing; "
            "`make system-deps` installs them)"
        )
    else:
        apps.insert(0, apk)
    overlay = out / "hosts.toml"
    overlay.write_text(
        "# The pin string in Demo's executable guards a.test (its code says so, not its config)\n"
        '[[map]]\nsource = "Payload/Demo.app/Demo"\nhosts = ["a.test"]\n'
    )
    pinscan_cli("pins", *apps, "--overlay", overlay)
    policies = [a for app in apps for a in ("--policy", app)]
    status = pinscan_cli("check", dataset, *policies, "--overlay", overlay)
    print(f"(exit status {status}: the pins the apps ship, judged against the fleet)")


#: Where Debian's android-framework-res puts the framework's resources aapt2 links against.
FRAMEWORK = Path("/usr/share/android-framework-res/framework-res.apk")


def build_apk(path: Path, pins: dict[str, tuple[str, ...]]) -> Path | None:
    """An APK whose Network Security Config pins each host (exactly) to its pins, compiled by
    Debian's aapt2 as an app build compiles it; None when aapt2 or the framework is missing."""
    aapt2 = shutil.which("aapt2")
    if aapt2 is None or not FRAMEWORK.exists():
        return None
    configs = "".join(
        f'  <domain-config><domain includeSubdomains="false">{host}</domain><pin-set>'
        + "".join(f'<pin digest="SHA-256">{pin}</pin>' for pin in host_pins)
        + "</pin-set></domain-config>\n"
        for host, host_pins in pins.items()
    )
    manifest = (
        '<manifest xmlns:android="http://schemas.android.com/apk/res/android" '
        'package="test.pinscan.demo">\n'
        '  <uses-sdk android:minSdkVersion="24" android:targetSdkVersion="34"/>\n'
        '  <application android:label="demo" '
        'android:networkSecurityConfig="@xml/network_security_config"/>\n</manifest>\n'
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "res" / "xml").mkdir(parents=True)
        (work / "res" / "xml" / "network_security_config.xml").write_text(
            f"<network-security-config>\n{configs}</network-security-config>\n"
        )
        compiled, manifest_file = work / "res.zip", work / "AndroidManifest.xml"
        manifest_file.write_text(manifest)
        commands = (
            [aapt2, "compile", "--dir", work / "res", "-o", compiled],
            [aapt2, "link", "-o", path, "-I", FRAMEWORK, "--manifest", manifest_file, compiled],
        )
        for command in commands:
            subprocess.run(command, check=True, capture_output=True)
    return path


def build_ipa(path: Path, ca_pin: str, code_pin: str) -> Path:
    """An IPA as the App Store receives one: ``Payload/Demo.app/`` with a binary Info.plist
    pinning b.test by its CA (NSPinnedDomains), the demo CA's certificate bundled as an
    Alamofire app would bundle it, and an executable holding a pin string."""
    info = {
        "CFBundleIdentifier": "test.pinscan.demo",
        "CFBundleExecutable": "Demo",
        "NSAppTransportSecurity": {
            "NSPinnedDomains": {
                "b.test": {"NSPinnedCAIdentities": [{"SPKI-SHA256-BASE64": ca_pin}]}
            }
        },
    }
    # A Mach-O header is enough for pinscan to search the executable for pin strings.
    executable = b"\xcf\xfa\xed\xfe" + bytes(60) + f"sha256/{code_pin}\0".encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as ipa:
        ipa.writestr("Payload/Demo.app/Info.plist", plistlib.dumps(info, fmt=plistlib.FMT_BINARY))
        ipa.writestr("Payload/Demo.app/demo-ca.cer", pki.intermediate().der)
        ipa.writestr("Payload/Demo.app/Demo", executable)
    return path


def start_fleet(stack: contextlib.ExitStack, tmp: Path) -> str:
    """Starts every demo server; returns the inventory lines that reach them."""
    lines = []

    def serve(cm, sni: str | None = None, note: str = "") -> None:
        server = stack.enter_context(cm)
        line = f"{server.host}:{server.port}" + (f" {sni}" if sni else "")
        lines.append(f"{line:<32} # {note or server.kind}")

    serve(servers.good(), "a.test", "RSA leaf, chain from the demo CA")
    serve(servers.good(), "b.test", "ECDSA leaf by SNI")
    serve(servers.good(), "elsewhere.test", "unknown SNI: default certificate, wrong name")
    serve(servers.tls(pki.leaf("old.test", expired=True)), "old.test", "expired")
    serve(servers.tls(pki.leaf("self.test", self_signed=True)), "self.test", "self-signed")
    serve(servers.client_cert(ssl.TLSVersion.TLSv1_3), "mtls.test", "client certificate required")
    serve(servers.silent(), None, "accepts, never answers")
    serve(servers.garbage("ssh"), None, "speaks SSH")
    serve(servers.reset(), None, "resets the connection")
    serve(servers.alert(), None, "answers with a TLS alert")
    serve(servers.closed_port(), None, "nothing listening")
    lines.append(f"{'nosuchhost.invalid':<32} # does not resolve")
    lines.append(f"{'this is: not a target':<32} # a broken inventory line")
    if real.find("openssl"):
        options = ("-tls1", "-cipher", "DEFAULT@SECLEVEL=0")
        legacy_leaf = pki.legacy_leaf("legacy.test")
        legacy = stack.enter_context(real.openssl_s_server(legacy_leaf, tmp / "legacy", *options))
        lines.append(f"{f'127.0.0.1:{legacy.port}':<32} # openssl s_server, TLS 1.0 only")
    if real.find("nginx"):
        sites = [real.Site(f"site{i}", pki.leaf(f"site{i}.nginx.test")) for i in range(4)]
        nginx = stack.enter_context(real.nginx(sites, tmp / "nginx"))
        for key, port in nginx.ports.items():
            lines.append(f"{f'127.0.0.1:{port} {key}.nginx.test':<32} # nginx")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
