# SPDX-License-Identifier: Apache-2.0
"""Node.js: a PEM bundle given as ``ca`` (https.Agent, tls.connect) judged as the anchors it
allows and nothing else."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

import pinscan
from pinscan.dataset.writer import DatasetWriter
from pinscan.errors import PolicyError
from pinscan.policy import ca_bundle, formats
from pinscan.policy.evaluate import evaluate
from pinscan.policy.model import Pin, Position
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
