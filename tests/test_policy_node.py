# SPDX-License-Identifier: Apache-2.0
"""Node.js: a PEM bundle given as ``ca`` (https.Agent, tls.connect) judged as the anchors it
allows and nothing else, and ``checkServerIdentity`` callbacks that pin, read out of real-looking
JavaScript and TypeScript (the https documentation's example, an agent module, a callback by
name)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import given, settings
from hypothesis import strategies as st

import pinscan
from pinscan.dataset.writer import DatasetWriter
from pinscan.errors import PolicyError
from pinscan.policy import ca_bundle, formats
from pinscan.policy import node as node_reader
from pinscan.policy.evaluate import evaluate
from pinscan.policy.model import CERT_SHA256, Match, Pin, Policy, Position
from pinscan.records import Endpoint

from cliresult import run
from fleet import pki
from policyfleet import Served, pin_of, write_dataset


def pem(*issued: pki.Issued) -> bytes:
    return b"".join(i.cert.public_bytes(Encoding.PEM) for i in issued)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> pinscan.ScanDataset:
    served = [
        Served("api.test", pki.leaf("api.test")),
        Served("self.test", pki.leaf("self.test", self_signed=True), store_paths=[]),
        Served("other.test", pki.unknown_root_leaf("other.test"), verified=False),
    ]
    return write_dataset(tmp_path_factory.mktemp("node") / "ds", served)


def verdicts(dataset: pinscan.ScanDataset, bundle: bytes, *hosts: str) -> dict[str, str]:
    policy = ca_bundle.parse(bundle, "ca.pem", hosts)
    result = evaluate(dataset, policy)
    return dict(zip(result["target"], result["verdict"], strict=True))


def test_a_bundle_of_ca_certificates_is_told_from_content() -> None:
    assert formats.sniff(pem(pki.root(), pki.intermediate())) == ["ca-bundle"]
    assert formats.sniff(pem(pki.leaf("self.test", self_signed=True))) == ["ca-bundle"]
    # A server's chain (a leaf that is no CA) or a key beside the certificates is no bundle.
    assert formats.sniff(pem(pki.leaf("api.test"), pki.intermediate())) == []
    key = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    assert formats.sniff(pem(pki.root()) + key) == []
    with pytest.raises(PolicyError, match="not only certificates"):
        ca_bundle.parse(pem(pki.root()) + key, "ca.pem")


def test_the_path_must_end_at_or_pass_through_a_key_of_the_bundle(dataset) -> None:
    both = ("api.test", "other.test")
    assert verdicts(dataset, pem(pki.root()), *both) == {
        "api.test": "pass",
        "self.test": "unpinned",
        "other.test": "fail",  # its chain does not verify: Node refuses it
    }
    assert verdicts(dataset, pem(pki.intermediate()), "api.test")["api.test"] == "pass"
    assert verdicts(dataset, pem(pki.other_root()), "api.test")["api.test"] == "fail"
    # The leaf's own key is no anchor when a CA issued it.
    assert verdicts(dataset, pem(pki.root()), "api.test") == verdicts(
        dataset, pem(pki.root(), pki.root()), "api.test"
    )
    policy = ca_bundle.parse(pem(pki.intermediate()), "ca.pem", ["api.test"])
    assert any("no self-signed certificate" in w.message for w in policy.warnings)
    assert policy.rules[0].pin_sets[0].positions is Position.ANCHOR


def self_signed_dataset(directory: Path, own: pki.Issued) -> pinscan.ScanDataset:
    """One server presenting a self-signed leaf that the scan's --ca-bundle holds: its verified
    path is that certificate alone (policyfleet's paths always end at the test root)."""
    writer = DatasetWriter.create(directory, scan_id="test", arguments={}, version="test")
    endpoint = Endpoint(
        target_id="0" * 16, line=1, target="self.test", host="self.test", ip="127.0.0.1",
        port=443, sni=None, status="ok", presented=[own.der], verified_chain=[own.der],
        verified=True, trust_store="ca_bundle", store_paths=[],
    )  # fmt: skip
    writer.write([endpoint])
    writer.finish({})
    return pinscan.open(directory)


def test_anchor_position_takes_the_leaf_only_when_it_is_the_whole_path(
    dataset, tmp_path: Path
) -> None:
    own = pki.leaf("self.test", self_signed=True)
    assert verdicts(self_signed_dataset(tmp_path / "ds", own), pem(own), "self.test") == {
        "self.test": "pass"
    }
    # A leaf with a CA above it is no anchor, even when the bundle holds its key.
    leaf = pki.leaf("api.test")
    policy = ca_bundle.parse(pem(pki.other_root()), "ca.pem", ["api.test"])
    rule = policy.rules[0]
    forged = replace(rule, pin_sets=(replace(rule.pin_sets[0], pins=(Pin.sha256(pin_of(leaf)),)),))
    result = evaluate(dataset, replace(policy, rules=(forged,)))
    assert result.filter(target="api.test")["verdict"][0] == "fail"


def test_check_takes_the_hosts_with_host(dataset, tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(pem(pki.root()))
    args = ("check", str(dataset.path), "--policy", str(bundle), "--format", "json")
    result = run(*args, "--host", "api.test", "--host", "other.test")
    assert result.exit_code == 1, result.output
    rows = {r["target"]: r for r in json.loads(result.stdout)}
    assert rows["api.test"]["verdict"] == "pass" and rows["api.test"]["format"] == "ca-bundle"
    assert rows["other.test"]["verdict"] == "fail"
    assert "self.test" not in rows
    # Without --host the bundle covers nothing, and the findings say why.
    result = run("check", str(dataset.path), "--policy", str(bundle))
    assert "names no host" in result.output, result.output


def test_toml_states_anchor_positions(dataset) -> None:
    root = pinscan.spki_pin(pki.root().der)
    text = f'[[pin-set]]\ndomain = "api.test"\npositions = "anchor"\npins = ["sha256/{root}"]\n'
    policy = pinscan.load_policy(text.encode(), "toml")
    assert policy.valid and policy.rules[0].pin_sets[0].positions is Position.ANCHOR
    assert evaluate(dataset, policy).filter(target="api.test")["verdict"][0] == "pass"


# --- checkServerIdentity callbacks ---------------------------------------------------------------


def fingerprint256(issued: pki.Issued) -> str:
    """Node's ``cert.fingerprint256``: colon-separated upper-case hex of the DER's SHA-256."""
    digest = hashlib.sha256(issued.der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, 64, 2))


def docs_example(host: str, pubkey: str, cert256: str) -> str:
    """The pinning example of the Node.js https documentation, with our keys: the public key
    and the certificate of the leaf must both match; the loop over the chain only prints."""
    return f"""const tls = require('node:tls');
const https = require('node:https');
const crypto = require('node:crypto');

function sha256(s) {{
  return crypto.createHash('sha256').update(s).digest('base64');
}}
const options = {{
  hostname: '{host}',
  port: 443,
  path: '/',
  method: 'GET',
  checkServerIdentity: function(host, cert) {{
    // Make sure the certificate is issued to the host we are connected to
    const err = tls.checkServerIdentity(host, cert);
    if (err) {{
      return err;
    }}
    // Pin the public key, similar to HPKP pin-sha256 pinning
    const pubkey256 = '{pubkey}';
    if (sha256(cert.pubkey) !== pubkey256) {{
      const msg = 'Certificate verification error: ' +
        `The public key of '${{cert.subject.CN}}' ` +
        'does not match our pinned fingerprint';
      return new Error(msg);
    }}
    // Pin the exact certificate, rather than the pub key
    const cert256 = '{cert256[:38]}' +
      '{cert256[38:]}';
    if (cert.fingerprint256 !== cert256) {{
      return new Error('Certificate verification error');
    }}
    // This loop is informational only.
    let lastprint256;
    do {{
      console.log('Subject Common Name:', cert.subject.CN);
      console.log('  Public key ping-sha256:', sha256(cert.pubkey));
      lastprint256 = cert.fingerprint256;
      cert = cert.issuerCertificate;
    }} while (cert.fingerprint256 !== lastprint256);
  }},
}};
https.request(options, (res) => res.resume()).end();
"""


# A TypeScript module: pins per host in a constant object, the chain walked, an arrow function.
PINNED_AGENT_TS = """import * as crypto from 'crypto';
import https from 'https';
import tls, {{ PeerCertificate, DetailedPeerCertificate }} from 'tls';

/** SPKI pins per host: the issuing CA and a spare key kept offline. */
const PINS: Record<string, string[]> = {{
  'api.test': [
    'sha256/{issuer}', // Pinscan Test Intermediate
    'sha256/{spare}',  // backup
  ],
}};

const spki = (cert: PeerCertificate): string =>
  crypto.createHash('sha256').update(cert.pubkey).digest('base64');

export const agent = new https.Agent({{
  checkServerIdentity: (host: string, peer: PeerCertificate): Error | undefined => {{
    const err = tls.checkServerIdentity(host, peer);
    if (err) return err;
    let cert = peer as DetailedPeerCertificate;
    const seen = new Set<string>();
    while (cert && !seen.has(cert.fingerprint256)) {{
      if (PINS[host]?.includes(`sha256/${{spki(cert)}}`)) return undefined;
      seen.add(cert.fingerprint256);
      cert = cert.issuerCertificate;
    }}
    return new Error(`no pinned key in the chain of ${{host}}`);
  }},
}});
"""

RUNTIME_PIN_JS = """const tls = require('tls');
const pinned = process.env.API_CERT_SHA256;
tls.connect({
  host: 'api.test',
  port: 443,
  checkServerIdentity(host, cert) {
    const err = tls.checkServerIdentity(host, cert);
    if (err) return err;
    if (cert.fingerprint256 !== pinned) return new Error('pin mismatch');
  },
});
"""


def node(text: str, *hosts: str) -> Policy:
    data = text.encode()
    assert formats.sniff(data) == ["node"]
    return node_reader.parse(data, "client.js", hosts)


def test_the_node_docs_example_pins_the_leaf_key_and_certificate(tmp_path: Path) -> None:
    leaf = pki.leaf("api.test", key="rsa")  # RSA: Node's cert.pubkey is the SPKI
    other = pki.leaf("api.test", key="rsa", expired=True)  # another key and certificate
    policy = node(docs_example("api.test", pin_of(leaf), fingerprint256(leaf)))
    (rule,) = policy.rules
    assert rule.host == "api.test" and rule.match is Match.EXACT
    # Both checks must pass, each on the leaf only (the loop over the chain only prints).
    assert sorted((s.positions, s.pins[0].algorithm) for s in rule.pin_sets) == [
        (Position.LEAF, CERT_SHA256),
        (Position.LEAF, "sha256"),
    ]
    assert policy.warnings == ()
    served = [Served("api.test", leaf), Served("other.test", leaf)]
    assert evaluate(write_dataset(tmp_path / "a", served), policy)["verdict"].to_list() == [
        "pass",
        "unpinned",
    ]
    result = evaluate(write_dataset(tmp_path / "b", [Served("api.test", other)]), policy)
    assert result["verdict"].to_list() == ["fail"]
    # The same key in a renewed certificate: the fingerprint pin breaks.
    renewed = pki.Issued(leaf.key, other.cert, other.chain)
    assert pin_of(renewed) != pin_of(leaf)


def test_a_typescript_agent_walking_the_chain_with_pins_per_host(dataset) -> None:
    text = PINNED_AGENT_TS.format(issuer=pin_of(pki.intermediate()), spare=pin_of(pki.root()))
    policy = node(text)
    (rule,) = policy.rules
    assert (rule.host, [s.positions for s in rule.pin_sets]) == ("api.test", [Position.ANY])
    assert len(rule.pins) == 2
    verdicts = dict(zip(*evaluate(dataset, policy)[["target", "verdict"]], strict=True))
    assert verdicts["api.test"] == "pass"


def test_a_pin_built_at_run_time_is_said_not_guessed() -> None:
    policy = node(RUNTIME_PIN_JS)
    assert policy.rules == ()
    messages = [w.message for w in policy.warnings]
    assert any("pinned: a pin built at run time" in m for m in messages), messages
    assert any("no pin this reader can resolve" in m for m in messages), messages


def test_pins_without_a_host_take_the_hosts_given(dataset, tmp_path: Path) -> None:
    leaf = pki.leaf("api.test")
    text = f"""const tls = require("tls");
const PINNED = ["{fingerprint256(leaf)}", "{fingerprint256(pki.leaf("spare.test"))}"];
module.exports = {{
  checkServerIdentity(host, cert) {{
    return tls.checkServerIdentity(host, cert) ||
      (PINNED.includes(cert.fingerprint256) ? undefined : new Error("not pinned"));
  }},
}};
"""
    policy = node(text)
    assert policy.rules == () and "say which hosts" in policy.warnings[-1].message
    path = tmp_path / "pinning.js"
    path.write_text(text)
    args = ("check", str(dataset.path), "--policy", str(path), "--format", "json")
    result = run(*args, "--host", "api.test")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert (row["format"], row["verdict"], row["matched_position"]) == ("node", "pass", 0)
    digest = base64.b64encode(hashlib.sha256(leaf.der).digest()).decode()
    assert row["matched_pin"] == f"cert-sha256/{digest}"


def test_a_host_compared_in_the_callback_and_a_callback_by_name() -> None:
    root = pin_of(pki.root())
    text = f"""import tls from 'node:tls';
const ROOT_PIN = '{root}';
function pinned(hostname, cert) {{
  if (hostname === 'api.test' || 'www.api.test' === hostname) {{
    for (let c = cert; c; c = c.issuerCertificate === c ? null : c.issuerCertificate) {{
      if (sha256(c.pubkey) === ROOT_PIN) return tls.checkServerIdentity(hostname, cert);
    }}
    return new Error('pin');
  }}
  return tls.checkServerIdentity(hostname, cert);
}}
export const options = {{ checkServerIdentity: pinned }};
"""
    policy = node(text)
    assert [(r.host, r.pin_sets[0].positions) for r in policy.rules] == [
        ("api.test", Position.ANY),
        ("www.api.test", Position.ANY),
    ]
    assert [p.digest for p in policy.rules[0].pins] == [root]


def test_a_callback_that_skips_the_host_name_check_is_said() -> None:
    text = f"""const https = require('https');
const agent = new https.Agent({{
  checkServerIdentity: (host, cert) => cert.fingerprint256 === '{fingerprint256(pki.root())}'
    ? undefined : new Error('bad'),
}});
"""
    policy = node(text, "api.test")
    assert [r.host for r in policy.rules] == ["api.test"]
    assert "does not call tls.checkServerIdentity" in policy.warnings[0].message


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400) | st.text(max_size=300).map(str.encode))
def test_garbage_gives_a_policy_or_policy_error(data: bytes) -> None:
    for blob in (data, b"x = {checkServerIdentity: (h, cert) => " + data):
        with contextlib.suppress(PolicyError):
            assert isinstance(node_reader.parse(blob, "fuzz.js", ["a.test"]), Policy)
    blob = b"-----BEGIN CERTIFICATE-----\n" + data + b"\n-----END CERTIFICATE-----\n"
    ca_bundle.sniff(blob)
    with contextlib.suppress(PolicyError):
        ca_bundle.parse(blob, "ca.pem", ["a.test"])


def test_constants_nested_past_the_recursion_limit_are_one_clear_error() -> None:
    chain = "\n".join(f"const a{i} = a{i + 1};" for i in range(5000))
    text = f"{chain}\nconst a5000 = 'sha256/{pin_of(pki.root())}';\n"
    text += "o = {checkServerIdentity: (h, cert) => cert.pubkey === a0};\n"
    with pytest.raises(PolicyError, match="nested too deeply"):
        node_reader.parse(text.encode(), "deep.js")
