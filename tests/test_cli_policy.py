# SPDX-License-Identifier: Apache-2.0
"""`pinscan check`, `pinscan suggest` and `pinscan scan --policy` end to end, against a scan of
the real nginx fleet: every suggested file, in every format, parses back with pinscan's own
reader and passes `check` against the same scan."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import serialization

import pinscan
from pinscan.cli import main
from pinscan.policy import SUGGEST_FORMATS
from pinscan.policy.formats import write
from pinscan.policy.suggest import BackupKey, suggest

from fleet import pki, servers
from policyfleet import Served, write_dataset

DOMAIN = "shared.test"  # a.shared.test and b.shared.test, on nginx's SNI port


@pytest.fixture(scope="module")
def fleet(nginx, tmp_path_factory) -> tuple[Path, Path]:
    """(inventory, CA bundle) for nginx's sites, each with the name it serves as SNI."""
    tmp = tmp_path_factory.mktemp("policy-fleet")

    def name(key: str) -> str:
        subject = nginx.issued[key].cert.subject
        return subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value

    lines = [f"127.0.0.1:{port} {name(key)}" for key, port in nginx.ports.items()]
    for name in ("a.shared.test", "b.shared.test", "shared.default.test"):
        lines.append(f"127.0.0.1:{nginx.shared_port} {name}")
    inventory = tmp / "inventory.txt"
    inventory.write_text("\n".join(lines) + "\n")
    bundle = tmp / "root.pem"
    bundle.write_bytes(pki.root().cert.public_bytes(serialization.Encoding.PEM))
    return inventory, bundle


@pytest.fixture(scope="module")
def scanned(fleet, tmp_path_factory) -> Path:
    inventory, bundle = fleet
    out = tmp_path_factory.mktemp("scan") / "out"
    result = CliRunner().invoke(
        main, ["scan", str(inventory), "-o", str(out), "--ca-bundle", str(bundle), "-q"]
    )
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def spare(tmp_path_factory) -> Path:
    """A spare key that no server uses: the backup pin."""
    path = tmp_path_factory.mktemp("spare") / "spare.pem"
    key = pki.leaf("spare.invalid").key
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("fmt", [f for f in SUGGEST_FORMATS if f != "trustkit"])
def test_suggest_round_trips_and_passes_check(scanned, spare, tmp_path, fmt):
    written = tmp_path / f"policy.{fmt}"
    code, _, err = run(
        "suggest", str(scanned), "--domain", DOMAIN, "--policy-format", fmt,
        "--backup-key", str(spare), "-o", str(written),
    )  # fmt: skip
    assert code == 0, err
    assert "NO BACKUP KEY" not in err
    policy = pinscan.load_policy(written)
    assert policy.error is None, policy.error
    spare_pin = pinscan.spki_pin(spare.read_bytes())
    assert spare_pin in {p.digest for r in policy.rules for p in r.pins}
    assert len({p.digest for r in policy.rules for p in r.pins}) >= 2

    code, out, err = run("check", str(scanned), "--policy", str(written), "--format", "json")
    assert code == 0, out + err
    rows = json.loads(out)
    names = {r["name"]: r for r in rows}
    assert {"a.shared.test", "b.shared.test"} <= set(names)
    assert {r["verdict"] for r in rows} == {"pass"}
    # Nothing outside the domain is pinned.
    assert "shared.default.test" not in names
    expected_position = 0 if fmt == "curl" else 1
    assert {r["matched_position"] for r in rows} == {expected_position}


def test_suggest_trustkit_round_trips_on_a_public_suffix(tmp_path, spare):
    # TrustKit refuses a domain without a known public suffix (the fleet's `.test`), so this one
    # runs on a dataset of real certificates for names under `.com`.
    served = [Served(n, pki.leaf(n)) for n in ("api.example.com", "www.example.com")]
    dataset = write_dataset(tmp_path / "ds", served)
    written = tmp_path / "Info.plist"
    code, _, err = run(
        "suggest", str(dataset.path), "-d", "example.com", "--policy-format", "trustkit",
        "-b", str(spare), "-o", str(written),
    )  # fmt: skip
    assert code == 0, err
    policy = pinscan.load_policy(written)
    assert policy.format == "trustkit" and policy.error is None, policy.error
    code, out, _ = run("check", str(dataset.path), "-p", str(written), "--format", "json")
    assert code == 0, out
    assert {r["verdict"] for r in json.loads(out)} == {"pass"}


def test_trustkit_refuses_a_domain_without_public_suffix(scanned, spare, tmp_path):
    # suggest does not write what TrustKit would refuse at launch: it says why instead.
    written = tmp_path / "Info.plist"
    code, out, err = run(
        "suggest", str(scanned), "-d", DOMAIN, "--policy-format", "trustkit", "-b", str(spare),
        "-o", str(written),
    )  # fmt: skip
    assert code == 2 and not out and not written.exists()
    assert "the trustkit client would refuse this pin-set for shared.test" in err
    assert "public suffix" in err
    # check says the same of such a file, written without suggest's proof.
    dataset = pinscan.open(scanned)
    suggestion, _ = suggest(dataset, DOMAIN, backup_keys=[BackupKey.read(spare)])
    policy = pinscan.load_policy(write(suggestion, "trustkit").encode(), "trustkit")
    rows = pinscan.evaluate(dataset, policy).filter(pl.col("verdict") != "unpinned")
    assert set(rows["verdict"]) == {"error"}
    assert "public suffix" in rows["note"][0]


def test_suggest_without_a_backup_key_says_so_loudly(scanned):
    code, out, err = run("suggest", str(scanned), "--domain", DOMAIN, "--policy-format", "toml")
    assert code == 0
    assert "NO BACKUP KEY" in err
    assert "NO BACKUP KEY" in out  # the file says it too
    policy = pinscan.load_policy(out)
    roles = {p.digest for r in policy.rules for p in r.pins}
    assert pinscan.spki_pin(pki.root().der) in roles
    assert pinscan.spki_pin(pki.intermediate().der) in roles


def test_check_fails_with_exit_1_and_json_names_the_failure(scanned, tmp_path):
    toml = tmp_path / "wrong.toml"
    wrong = pinscan.spki_pin(pki.leaf("spare.invalid").der)
    toml.write_text('[[pin-set]]\ndomain = "rsa.nginx.test"\npins = ["sha256/' + wrong + '"]\n')
    code, out, _ = run("check", str(scanned), "--policy", str(toml), "--format", "json")
    assert code == 1
    (row,) = json.loads(out)
    assert row["target"].startswith("127.0.0.1:")
    assert row["verdict"] == "fail"
    assert row["matched_pin"] is None and row["matched_position"] is None
    # Text, and quiet: the failure is printed, and nothing else.
    code, out, _ = run("check", str(scanned), "--policy", str(toml), "--quiet")
    assert code == 1 and "fail" in out and "findings" not in out


def test_check_as_of_after_expiry_and_text_report(scanned, tmp_path, spare):
    toml = tmp_path / "expiring.toml"
    code, _, _ = run(
        "suggest", str(scanned), "--domain", DOMAIN, "--backup-key", str(spare),
        "--expires", "2030-01-01", "-o", str(toml),
    )  # fmt: skip
    assert code == 0
    code, out, _ = run("check", str(scanned), "--policy", str(toml))
    assert code == 0
    assert "pass" in out and "pinset_expiring" not in out
    code, out, _ = run(
        "check", str(scanned), "--policy", str(toml), "--as-of", "2030-01-02", "--format", "json"
    )
    assert code == 0
    assert {r["verdict"] for r in json.loads(out)} == {"expired"}
    code, out, _ = run("check", str(scanned), "--policy", str(toml), "--as-of", "2029-12-20")
    assert code == 0 and "pinset_expiring" in out


def test_scan_with_policy_writes_pin_results(fleet, tmp_path, spare, scanned):
    inventory, bundle = fleet
    policy = tmp_path / "p.toml"
    assert run("suggest", str(scanned), "-d", DOMAIN, "-b", str(spare), "-o", str(policy))[0] == 0
    out = tmp_path / "out"
    code, stdout, err = run(
        "scan", str(inventory), "-o", str(out), "--ca-bundle", str(bundle),
        "--policy", str(policy), "--format", "json",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(stdout)["pin_verdicts"]["pass"] == 2
    results = pinscan.open(out).pin_results.collect()
    assert results.filter(pl.col("verdict") == "pass")["name"].sort().to_list() == [
        "a.shared.test",
        "b.shared.test",
    ]
    assert results.height == pinscan.open(out).endpoints.collect().height


def test_unreadable_and_bad_policies_exit_2_without_traceback(scanned, tmp_path):
    garbage = tmp_path / "garbage.txt"
    garbage.write_text("this is not a policy\n")
    code, _, err = run("check", str(scanned), "--policy", str(garbage))
    assert code == 2
    assert "garbage.txt" in err and "Traceback" not in err
    assert run("check", str(scanned))[0] == 2  # no --policy
    assert run("check", str(scanned), "--policy", str(tmp_path / "missing.xml"))[0] == 2
    assert run("suggest", str(scanned), "--domain", "nothing.invalid")[0] == 2
    # A broken policy stops `scan --policy` before anything is sent or written.
    out = tmp_path / "never"
    assert run("scan", "-", "-o", str(out), "--policy", str(garbage))[0] == 2
    assert not out.exists()


def android_config(path: Path, pin_set: str, extra: str = "") -> Path:
    """A network security config pinning shared.test (and its subdomains) to the test CA."""
    pin = pinscan.spki_pin(pki.intermediate().der)
    path.write_text(
        "<network-security-config>\n"
        "  <domain-config>\n"
        '    <domain includeSubdomains="true">shared.test</domain>\n'
        + pin_set.format(pin=f'<pin digest="SHA-256">{pin}</pin>')
        + "  </domain-config>\n"
        + extra
        + "</network-security-config>\n"
    )
    return path


def check_json(scanned: Path, policy: Path, *options: str) -> tuple[int, list[dict]]:
    code, out, _ = run("check", str(scanned), "--policy", str(policy), *options, "--format", "json")
    return code, json.loads(out)


def test_android_rejection_is_a_verdict_not_a_crash(scanned, tmp_path):
    # Line 4: Android wants yyyy-MM-dd, and refuses the whole file otherwise.
    xml = android_config(tmp_path / "nsc.xml", '    <pin-set expiration="2030/01/01">\n'
                         "      {pin}\n    </pin-set>\n")  # fmt: skip
    code, rows = check_json(scanned, xml)
    assert code == 1
    assert {r["verdict"] for r in rows} == {"error"}
    assert all("nsc.xml:4" in r["note"] for r in rows)


def test_android_debug_reads_debug_overrides_as_a_debuggable_build(scanned, tmp_path):
    xml = android_config(
        tmp_path / "nsc.xml", "    <pin-set>{pin}</pin-set>\n",
        extra="  <debug-overrides><pin-set/></debug-overrides>\n",
    )  # fmt: skip
    # A release build skips <debug-overrides>: the pins hold.
    code, rows = check_json(scanned, xml)
    assert code == 0
    assert {r["verdict"] for r in rows} == {"pass"}
    # A debuggable build reads it, and refuses the whole file for the pin-set in it.
    code, rows = check_json(scanned, xml, "--android-debug")
    assert code == 1
    assert {r["verdict"] for r in rows} == {"error"}
    assert all("pin-set element not allowed in debug-overrides" in r["note"] for r in rows)
    assert pinscan.load_policy(xml, android_debug=True).error == (
        "pin-set element not allowed in debug-overrides"
    )


# --- suggest on a fleet whose chains do not all verify ----------------------------------------

BROKEN = {
    "self.example.com": ("self-signed certificate", pki.leaf("self.example.com", self_signed=True)),
    "nointer.example.com": (
        "incomplete chain (missing intermediate)",
        pki.leaf_only(pki.leaf("nointer.example.com")),
    ),
}
EXPIRED = "old.shop.example.com"  # its chain holds the pinned intermediate: passes check


def scan_of(tmp: Path, issued: list[pki.Issued], names: list[str], *options: str) -> Path:
    """A `pinscan scan` of real in-process servers: ``issued`` chains chosen by SNI."""
    tmp.mkdir(exist_ok=True)
    out = tmp / "out"
    with servers.tls(*issued) as server:
        inventory = tmp / "inventory.txt"
        inventory.write_text("".join(f"127.0.0.1:{server.port} {n}\n" for n in names))
        code, _, err = run("scan", str(inventory), "-o", str(out), *options, "-q")
    assert code == 0, err
    return out


def bundle_of(tmp: Path, root: pki.Issued) -> str:
    path = tmp / "root.pem"
    path.write_bytes(root.cert.public_bytes(serialization.Encoding.PEM))
    return str(path)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Path:
    """example.com, scanned with --ca-bundle: api, www and shop verify; old.shop serves an
    expired leaf of the test intermediate; self.example.com and nointer.example.com serve chains
    no client can verify (the issue's two hosts)."""
    tmp = tmp_path_factory.mktemp("mixed")
    good = ["api.example.com", "www.example.com", "shop.example.com"]
    issued = [pki.leaf(n) for n in good] + [pki.leaf(EXPIRED, expired=True)]
    issued += [chain for _, chain in BROKEN.values()]
    names = [*good, EXPIRED, *BROKEN]
    return scan_of(tmp, issued, names, "--ca-bundle", bundle_of(tmp, pki.root()))


@pytest.mark.parametrize("fmt", SUGGEST_FORMATS)
def test_suggest_never_writes_a_pin_set_that_locks_out_broken_chains(mixed, spare, tmp_path, fmt):
    written = tmp_path / "policy"
    code, out, err = run(
        "suggest", str(mixed), "-d", "example.com", "--policy-format", fmt, "-b", str(spare),
        "-o", str(written),
    )  # fmt: skip
    assert code == 2 and not out and not written.exists()
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "of example.com would be locked out: their chains do not verify" in err
    for name, (why, _) in BROKEN.items():
        assert f"{name}: {why}" in err
    assert "Fix their chains and scan again" in err
    assert "so no client builds a chain to pin them by" in err


@pytest.mark.parametrize("fmt", SUGGEST_FORMATS)
def test_suggest_names_a_chain_that_does_not_verify_and_still_passes_check(
    mixed, spare, tmp_path, fmt
):
    written = tmp_path / "policy"
    code, _, err = run(
        "suggest", str(mixed), "-d", "shop.example.com", "--policy-format", fmt,
        "-b", str(spare), "-o", str(written),
    )  # fmt: skip
    if fmt == "curl":
        # curl checks the leaf it is served: the expired one's key is in no verified chain.
        assert code == 2 and not written.exists()
        assert f"{EXPIRED}: expired certificate" in err
        return
    assert code == 0, err
    assert "1 endpoint did not verify against the scan's trust stores, so clients refuse it " in err
    assert f"{EXPIRED}: expired certificate" in err
    assert "--ca-bundle" not in err  # the scan had one
    code, out, _ = run("check", str(mixed), "-p", str(written), "--format", "json")
    assert code == 0, out
    verdicts = {r["name"]: r["verdict"] for r in json.loads(out)}
    assert verdicts == {"shop.example.com": "pass", EXPIRED: "pass"}


def test_the_warning_about_unverified_chains_is_true_of_the_scan(tmp_path, spare):
    names = ["api.example.com", "www.example.com"]
    issued = [pki.leaf(n) for n in names]
    # No CA bundle: nothing verifies, and the private CA may be why.
    bare = scan_of(tmp_path / "bare", issued, names)
    code, _, err = run("suggest", str(bare), "-d", "example.com", "-b", str(spare))
    assert code == 0, err
    assert "no chain of the domain verified against the scan's trust stores" in err
    assert "www.example.com: unknown root (issuer not in the trust store)" in err
    assert (
        "; if an issuer they lack is a private CA, scan again with its root in --ca-bundle" in err
    )
    # A CA bundle of another root: the advice to pass one would be false.
    other = tmp_path / "other"
    other.mkdir()
    wrong = scan_of(other, issued, names, "--ca-bundle", bundle_of(other, pki.other_root()))
    code, _, err = run("suggest", str(wrong), "-d", "example.com", "-b", str(spare))
    assert code == 0, err
    assert "the issuers they lack are in neither the scan's CA bundle nor the public stores" in err
    assert "--ca-bundle" not in err


@pytest.mark.parametrize("fmt", ["android", "ios", "trustkit"])
def test_xml_comments_hold_no_double_dash_and_no_mangled_flag(tmp_path, fmt):
    names = ["api.example.com", "www.example.com"]
    bare = scan_of(tmp_path, [pki.leaf(n) for n in names], names)
    # No backup key and no verified chain: both warnings that name flags on the terminal.
    code, text, err = run("suggest", str(bare), "-d", "example.com", "--policy-format", fmt)
    assert code == 0, err
    assert "--backup-key spare.key" in err and "--ca-bundle" in err
    comments = [c.split("-->")[0] for c in text.split("<!--")[1:]]
    assert comments and not any("--" in c for c in comments)
    assert "- -" not in text
    assert "suggest again with spare.key as a backup key" in text
    assert "if an issuer they lack is a private CA, scan again with its root as a CA bundle" in text


def test_suggest_format_is_the_old_name_of_policy_format(scanned, spare):
    code, out, err = run(
        "suggest", str(scanned), "-d", DOMAIN, "--format", "android", "-b", str(spare)
    )
    assert code == 0 and "<network-security-config>" in out
    assert "suggest --format is now --policy-format" in err
    code, _, err = run(
        "suggest", str(scanned), "-d", DOMAIN, "--format", "android", "--policy-format", "ios"
    )
    assert code == 2 and "--format is the old name of --policy-format: give one" in err
    # --format now says text or json, as every other command's does; its old values still work.
    help_text = run("suggest", "--help")[1]
    assert "--policy-format" in help_text and "--format [text|json]" in help_text


def test_an_unknown_policy_names_the_flag_that_exists(scanned, tmp_path):
    garbage = tmp_path / "garbage.txt"
    garbage.write_text("this is not a policy\n")
    code, _, err = run("check", str(scanned), "--policy", str(garbage))
    assert code == 2
    assert "say which it is with --policy-format" in err


@pytest.mark.parametrize("fmt", ["toml", "curl"])
def test_an_endpoint_that_served_no_certificate_is_not_said_to_fail_verification(tmp_path, fmt):
    pin = pinscan.spki_pin(pki.intermediate().der)
    spare = pinscan.spki_pin(pki.leaf("spare.invalid").der)
    policy = tmp_path / "pins"
    if fmt == "curl":
        policy.write_text(
            "".join(
                f"curl --pinnedpubkey 'sha256//{pin};sha256//{spare}' https://{n}/\n"
                for n in ("refused.example.com", "ssh.example.com")
            )
        )
    else:
        policy.write_text(
            f'[[pin-set]]\ndomain = "example.com"\ninclude-subdomains = true\n'
            f'pins = ["sha256/{pin}", "sha256/{spare}"]\n'
        )
    with servers.closed_port() as closed, servers.garbage("ssh") as ssh:
        inventory = tmp_path / "inventory.txt"
        inventory.write_text(
            f"127.0.0.1:{closed.port} refused.example.com\n127.0.0.1:{ssh.port} ssh.example.com\n"
        )
        out = tmp_path / "out"
        assert run("scan", str(inventory), "-o", str(out), "-q")[0] == 0
    code, text, _ = run("check", str(out), "-p", str(policy), "--format", "json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(text)}
    assert {n: (r["verdict"], r["chain"], r["note"]) for n, r in rows.items()} == {
        "refused.example.com": ("no_chain", None, "no certificate was served: refused"),
        "ssh.example.com": ("no_chain", None, "no certificate was served: not_tls"),
    }


NODE_PIN = """
const tls = require("tls"), crypto = require("crypto");
const [port, name] = process.argv.slice(2);
const socket = tls.connect({host: "127.0.0.1", port: +port, servername: name,
                            rejectUnauthorized: false}, () => {
  const cert = socket.getPeerCertificate();
  console.log(crypto.createHash("sha256").update(cert.pubkey).digest("base64"));
  socket.end();
});
socket.setTimeout(10000, () => socket.destroy(new Error("timeout")));
"""


def test_node_pubkey_is_said_of_a_pin_node_computed_and_only_then(tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    leaf = pki.leaf("api.example.com")
    with servers.tls(leaf) as server:
        # The Node docs' recipe, run by Node against the server: sha256(cert.pubkey).
        script = tmp_path / "pin.js"
        script.write_text(NODE_PIN)
        done = subprocess.run(
            [node, str(script), str(server.port), "api.example.com"],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        node_pin = done.stdout.strip()
        inventory = tmp_path / "inventory.txt"
        inventory.write_text(f"127.0.0.1:{server.port} api.example.com\n")
        out = tmp_path / "out"
        assert run("scan", str(inventory), "-o", str(out), "-q")[0] == 0
    spki = pinscan.spki_pin(leaf.der)
    assert node_pin != spki
    ca = pinscan.spki_pin(pki.intermediate().der)

    def node_findings(*policy_pins: str) -> list[dict]:
        policy = tmp_path / "pins.toml"
        pins = ", ".join(f'"sha256/{p}"' for p in policy_pins)
        policy.write_text(f'[[pin-set]]\ndomain = "api.example.com"\npins = [{pins}]\n')
        _, text, _ = run("check", str(out), "-p", str(policy), "--findings", "--format", "json")
        return [f for f in json.loads(text) if f["kind"] == "node_pubkey"]

    # SPKI pins of an EC leaf and its CA: Node plays no part.
    assert node_findings(spki, ca) == []
    (found,) = node_findings(node_pin, ca)
    assert found["severity"] == "warning" and found["endpoints"] == 1
    assert found["location"].endswith("pins.toml:1")
    assert f"sha256/{node_pin} is Node's sha256(cert.pubkey)" in found["message"]
    assert f"the SPKI pin is sha256/{spki}" in found["message"]


def test_check_findings_in_text_and_iso_times_in_json(scanned, spare, tmp_path):
    policy = tmp_path / "pins.toml"
    code, _, err = run(
        "suggest", str(scanned), "-d", DOMAIN, "-b", str(spare), "--expires", "2030-01-01",
        "-o", str(policy),
    )  # fmt: skip
    assert code == 0, err
    # --findings in text: the findings table instead of the verdicts, not silence.
    code, out, _ = run("check", str(scanned), "-p", str(policy), "--findings", "--days", "36500")
    assert code == 0
    assert "findings" in out and "pinset_expiring" in out and "pin verdicts" not in out
    code, out, _ = run("check", str(scanned), "-p", str(policy), "--findings")
    assert code == 0 and out.strip() == "no findings"
    assert run("check", str(scanned), "-p", str(policy), "--findings", "-q")[1] == ""
    # JSON times are ISO 8601, with a T.
    code, out, _ = run("check", str(scanned), "-p", str(policy), "--format", "json")
    assert code == 0
    assert {r["expires"] for r in json.loads(out)} == {"2030-01-01T00:00:00+00:00"}
