# SPDX-License-Identifier: Apache-2.0
"""`pinscan scan` as people type it first: targets instead of a file, no dataset directory,
`-p` for ports, `--jsonl` rows a person or jq can use, and settings out of range refused."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import polars as pl
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.serialization import Encoding

import pinscan
from pinscan.cli import main
from pinscan.cli.scan import scan_command
from pinscan.config import ScanConfig, Timeouts
from pinscan.errors import ConfigError

from fleet import pki, servers

# Every scan test, on each TLS engine (issue 16).
pytestmark = pytest.mark.usefixtures("each_engine")

FAST = ["--retries", "0", "--deadline", "4"]


def scan(*args: str, input: str | None = None) -> click.testing.Result:
    return CliRunner().invoke(main, ["scan", *args], input=input, env={"COLUMNS": "300"})


@pytest.fixture
def no_temporary_left(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The temporary directory a scan without -o uses, checked empty afterwards."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    yield
    assert list(directory.iterdir()) == []


def test_one_host_prints_its_endpoint_and_keeps_nothing(no_temporary_left: None) -> None:
    leaf = pki.leaf("a.test", key="rsa")
    with servers.good() as good, servers.closed_port() as closed:
        result = scan(f"127.0.0.1:{good.port} a.test", f"127.0.0.1:{closed.port}", *FAST)
    assert result.exit_code == 0, result.output
    ok, refused = blocks(result.stdout)
    *head, version = ok[0].split()
    assert head == [f"127.0.0.1:{good.port}", "a.test", f"127.0.0.1:{good.port}", "ok"]
    assert version.startswith("TLSv1.")
    # The whole pin on one line, for a copy and paste; the subject, the expiry, the verdict.
    expires = leaf.cert.not_valid_after_utc
    assert ok[1:] == [
        f"  leaf pin  {pinscan.spki_pin(leaf.der)}",
        "  subject   CN=a.test,O=Pinscan Test Fleet",
        f"  expires   {expires:%Y-%m-%d} ({(expires - dt.datetime.now(dt.UTC)).days} days)",
        ok[4],
    ]
    assert ok[4].startswith("  verified  no: ")  # the test CA is in no trust store
    assert refused == [f"127.0.0.1:{closed.port}  refused: Connection refused"]
    assert "scanned 2 targets, 2 endpoints" in result.stderr and "nothing kept" in result.stderr


def blocks(text: str) -> list[list[str]]:
    """The printed endpoints: a block of lines each, separated by blank lines."""
    return [block.splitlines() for block in text.strip().split("\n\n")]


def test_without_out_format_json_prints_the_endpoints(no_temporary_left: None) -> None:
    leaf = pki.leaf("b.test", "www.b.test")
    with servers.good() as good:
        result = scan(f"127.0.0.1:{good.port} b.test", "--format", "json", "-q", *FAST)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["dataset"] is None and document["endpoints"] == 1
    (row,) = document["results"]
    assert row["spki_sha256"] == pinscan.spki_pin(leaf.der)
    assert row["subject"] == "CN=b.test,O=Pinscan Test Fleet"
    assert dt.datetime.fromisoformat(row["not_after"]) == leaf.cert.not_valid_after_utc
    assert "T" in row["scanned_at"] and "T" in row["not_after"]


def test_jsonl_rows_carry_the_leaf_and_iso_times(tmp_path: Path) -> None:
    leaf = pki.leaf("b.test", "www.b.test")
    inventory = tmp_path / "inventory.txt"
    with servers.good() as good, servers.closed_port() as closed:
        inventory.write_text(f"127.0.0.1:{good.port} b.test\n127.0.0.1:{closed.port}\n")
        result = scan(str(inventory), "-o", str(tmp_path / "out"), "--jsonl", *FAST)
    assert result.exit_code == 0, result.output
    rows = {r["status"]: r for r in map(json.loads, result.stdout.splitlines())}
    ok, refused = rows["ok"], rows["refused"]
    # What the endpoints table says of the same endpoint, row for row.
    table = pinscan.open(tmp_path / "out").endpoints.collect()
    stored = table.filter(pl.col("endpoint_id") == ok["endpoint_id"]).row(0, named=True)
    for column in ("leaf_sha256", "spki_sha256", "verified", "days_to_expiry", "target"):
        assert ok[column] == stored[column], column
    assert ok["spki_sha256"] == pinscan.spki_pin(leaf.der)
    assert ok["subject"] == "CN=b.test,O=Pinscan Test Fleet"
    assert ok["issuer"] == "CN=Pinscan Test Intermediate,O=Pinscan Test Fleet"
    assert dt.datetime.fromisoformat(ok["not_after"]) == leaf.cert.not_valid_after_utc
    assert dt.datetime.fromisoformat(ok["scanned_at"]) == stored["scanned_at"]
    assert ok["scanned_at"][10] == "T"  # ISO 8601, as everywhere else; not a space
    assert [c["spki_sha256"] for c in ok["presented"]] == [
        pinscan.spki_pin(der) for der in leaf.chain_der
    ]
    assert refused["spki_sha256"] is None and refused["subject"] is None
    assert refused["presented"] == []


def test_jsonl_without_out_streams_and_keeps_nothing(no_temporary_left: None) -> None:
    with servers.good() as good:
        result = scan("127.0.0.1", "-p", str(good.port), "--jsonl", *FAST)
    assert result.exit_code == 0, result.output
    (row,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert row["status"] == "ok" and row["port"] == good.port and row["subject"]
    assert "nothing kept" in result.stderr


def test_port_option_scans_each_target_on_each_port(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.txt"
    with servers.good() as good, servers.closed_port() as closed:
        inventory.write_text(f"127.0.0.1\n127.0.0.2:{closed.port}\n")
        ports = f"{good.port},{closed.port}"
        result = scan(str(inventory), "-o", str(tmp_path / "out"), "-p", ports, "-q", *FAST)
    assert result.exit_code == 0, result.output
    rows = pinscan.open(tmp_path / "out").endpoints.collect()
    got = sorted(rows.select("ip", "port", "status").iter_rows())
    assert got == sorted(
        [
            ("127.0.0.1", good.port, "ok"),
            ("127.0.0.1", closed.port, "refused"),
            ("127.0.0.2", closed.port, "refused"),  # its own port, not -p's
        ]
    )


def test_p_is_the_port_in_scan_and_says_so_to_a_policy_file(tmp_path: Path) -> None:
    policy = tmp_path / "pins.toml"
    policy.write_text("")
    result = scan("127.0.0.1", "-p", str(policy))
    assert result.exit_code == 2
    assert "is not a port (1-65535); -p is the port here: give a pin policy as --policy" in (
        result.stderr
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give an inventory file (- for stdin), or targets"),
        (["hosts.txt"], "pinscan: hosts.txt: no such file\n"),
        (["lists/hosts"], "pinscan: lists/hosts: no such file\n"),
        (["127.0.0.1", "example.com:99999"], "pinscan: target 2: `example.com:99999`: port 99999"),
        (["127.0.0.1", "-p", "0"], "'0' is not a port (1-65535)"),
        (["127.0.0.1", "--resume"], "--resume, --shard and --dask go with a dataset: give -o OUT"),
        (["127.0.0.1", "--inventory-format", "csv"], "--inventory-format is for an inventory file"),
    ],
)
def test_arguments_that_are_neither_a_file_nor_targets_exit_2(
    no_temporary_left: None, args: list[str], message: str
) -> None:
    result = scan(*args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.stderr


def test_a_file_and_targets_together_exit_2(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.txt"
    inventory.write_text("127.0.0.1\n")
    result = scan(str(inventory), "127.0.0.2", "-o", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "is an inventory file: give one inventory file, or targets" in result.stderr
    assert not (tmp_path / "out").exists()


def test_stdin_is_still_an_inventory(tmp_path: Path) -> None:
    with servers.closed_port() as closed:
        result = scan(
            "-", "-o", str(tmp_path / "out"), "-q", *FAST, input=f"127.0.0.1:{closed.port}\n"
        )
    assert result.exit_code == 0, result.output
    assert pinscan.open(tmp_path / "out").meta["arguments"]["inventory"] == "-"


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--deadline", "nan", "'nan' is not a finite number"),
        ("--deadline", "0", "0.0 is not in the range x>=0.01"),
        ("--connect-timeout", "inf", "'inf' is not a finite number"),
        ("--handshake-timeout", "-1", "-1.0 is not in the range x>=0.01"),
        ("--rate", "inf", "'inf' is not a finite number"),
        ("--rate", "0", "0.0 is not in the range x>=0.1"),
        ("--flush-seconds", "nan", "'nan' is not a finite number"),
        ("--concurrency", "0", "0 is not in the range 1<=x<=100000"),
        ("--retries", "-1", "-1 is not in the range 0<=x<=10"),
        ("--per-address", "0", "0 is not in the range x>=1"),
        ("--flush-rows", "0", "0 is not in the range x>=1"),
        ("--verify-processes", "65", "65 is not in the range 0<=x<=64"),
    ],
)
def test_a_setting_out_of_range_exits_2_before_anything_is_written(
    tmp_path: Path, option: str, value: str, message: str
) -> None:
    inventory = tmp_path / "inventory.txt"
    inventory.write_text("127.0.0.1:1\n")
    result = scan(str(inventory), "-o", str(tmp_path / "out"), option, value)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}'" in result.stderr or option in result.stderr
    assert message in result.stderr
    assert not (tmp_path / "out").exists()


def test_the_options_take_their_bounds_and_defaults_from_the_config() -> None:
    options = {p.name: p for p in scan_command.params}
    defaults = ScanConfig()
    names = {
        **{name: (ScanConfig.BOUNDS[name], getattr(defaults, name)) for name in ScanConfig.BOUNDS},
        **{
            f"{name}_timeout" if name != "deadline" else name: (
                Timeouts.BOUNDS[name],
                getattr(defaults.timeouts, name),
            )
            for name in Timeouts.BOUNDS
        },
    }
    for name, (bounds, default) in names.items():
        option = options[name]
        if name == "processes":  # checked by the config's bounds, so that a bad one is one line
            assert option.callback(None, option, 4) == 4 and option.default == default
            with pytest.raises(ConfigError, match="--processes: must be an integer from 1 to"):
                option.callback(None, option, 0)
            continue
        assert (option.type.min, option.type.max) == (bounds.minimum, bounds.maximum), name
        assert option.default == default, name
    assert "-p" in options["ports"].opts and "-p" not in options["policies"].opts
    assert options["output"].help  # --format says what it does


def test_no_password_reaches_the_dataset_or_the_terminal(tmp_path: Path) -> None:
    secret = "s3cr3t-pw"
    inventory = tmp_path / "inventory.txt"
    csv = tmp_path / "inventory.csv"
    with servers.good() as good:
        url = f"https://admin:{secret}@127.0.0.1:{good.port}/login"
        inventory.write_text(f"{url} a.test\ngopher://admin:{secret}@127.0.0.1/\n")
        csv.write_text(f"target,sni\n{url},b.test\n")
        runs = {
            "file": scan(str(inventory), "-o", str(tmp_path / "file"), "--jsonl", *FAST),
            "csv": scan(str(csv), "-o", str(tmp_path / "csv"), *FAST),
            "argument": scan(url, "-o", str(tmp_path / "argument"), *FAST),
            "printed": scan(url, "--format", "json", *FAST),
        }
    for name, result in runs.items():
        assert result.exit_code == 0, (name, result.output)
        assert secret not in result.stdout + result.stderr, name
    for name in ("file", "csv", "argument"):
        out = tmp_path / name
        ds = pinscan.open(out)
        assert secret not in (out / "scan.json").read_text(), name
        tables = [ds.endpoints, ds.chains, ds.certificates]
        for frame in pl.collect_all(tables):
            for column in frame.select(pl.col(pl.String)).iter_columns():
                assert not column.str.contains(secret, literal=True).any(), (name, column.name)
        targets = ds.endpoints.collect()["target"].to_list()
        assert f"https://127.0.0.1:{good.port}/login a.test" in targets or any(
            t.startswith(f"https://127.0.0.1:{good.port}/login") for t in targets
        )
    bad = pinscan.open(tmp_path / "file").endpoints.filter(pl.col("status") == "bad_target")
    assert bad.collect()["target"].to_list() == ["gopher://127.0.0.1/"]


def test_the_summary_counts_endpoints_and_says_so(tmp_path: Path) -> None:
    # One expired certificate served for three names: three endpoints, one certificate.
    with servers.tls(pki.leaf("old.test", expired=True)) as server:
        targets = [f"127.0.0.1:{server.port} {name}.test" for name in ("x", "y", "z")]
        result = scan(*targets, "-o", str(tmp_path / "out"), *FAST)
    assert result.exit_code == 0, result.output
    assert "endpoints whose certificate has expired or expires within 30 days: 3" in result.stdout
    meta = pinscan.open(tmp_path / "out").meta
    assert meta["counts"]["expiring_within_30_days"] == 3
    assert meta["arguments"]["targets"] == targets


def test_without_out_a_policy_judges_each_printed_endpoint(
    tmp_path: Path, no_temporary_left: None
) -> None:
    root = tmp_path / "root.pem"
    root.write_bytes(pki.root().cert.public_bytes(Encoding.PEM))
    pinned, other = pki.leaf("b.test", "www.b.test"), pki.leaf("a.test", key="rsa")
    policy = tmp_path / "pins.toml"
    with servers.good() as good:
        for leaf, verdict, code in ((pinned, "pass", 0), (other, "fail", 1)):
            policy.write_text(
                '[[pin-set]]\ndomain = "b.test"\npositions = "leaf"\n'
                f'pins = ["sha256/{pinscan.spki_pin(leaf.der)}", "sha256/{"A" * 43}="]\n'
            )
            result = scan(
                f"127.0.0.1:{good.port} b.test", "--ca-bundle", str(root), "--policy", str(policy),
                *FAST,
            )  # fmt: skip
            assert result.exit_code == code, result.output
            [endpoint] = blocks(result.stdout)
            assert endpoint[-2:] == ["  verified  yes (ca_bundle)", f"  pins      {verdict}"]


def test_ctrl_c_without_out_says_nothing_was_kept(tmp_path: Path) -> None:
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    with servers.blackhole() as hole:
        process = subprocess.Popen(
            [sys.executable, "-m", "pinscan", "scan", f"127.0.0.1:{hole.port}", "--deadline", "60"],
            env={**os.environ, "TMPDIR": str(temporary)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(600):  # bounded wait until the scan has begun
            if any((temporary / d / "scan" / "scan.json").exists() for d in os.listdir(temporary)):
                break
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert err == "pinscan: interrupted; nothing was kept (without -o)\n"
    assert out == "" and list(temporary.iterdir()) == []


def test_anchor_store_places_the_bundle_roots_for_android_trust_anchors(tmp_path: Path) -> None:
    # Issue 17: Android builds the chain on the config's <trust-anchors> only
    # (NetworkSecurityTrustManager.checkServerTrusted, before checkPins): a chain to a root the
    # config does not list fails whatever the pins say. --anchor-store says which store the
    # --ca-bundle root is in on the device, and the scan records it.
    root = tmp_path / "root.pem"
    root.write_bytes(pki.root().cert.public_bytes(Encoding.PEM))
    leaf = pki.leaf("b.test", "www.b.test")
    pin = pinscan.spki_pin(leaf.der)
    configs = {}
    for src in ("system", "user"):
        configs[src] = tmp_path / f"{src}.xml"
        configs[src].write_text(
            "<network-security-config><domain-config><domain>b.test</domain>"
            f'<trust-anchors><certificates src="{src}"/></trust-anchors>'
            f'<pin-set><pin digest="SHA-256">{pin}</pin><pin digest="SHA-256">{"A" * 43}=</pin>'
            "</pin-set></domain-config></network-security-config>"
        )
    with servers.good() as good:
        for store in ("system", "user"):
            out = tmp_path / f"out-{store}"
            result = scan(
                f"127.0.0.1:{good.port} b.test", "--ca-bundle", str(root), "--anchor-store",
                store, "-o", str(out), *FAST,
            )  # fmt: skip
            assert result.exit_code == 0, result.output
            assert pinscan.open(out).meta["arguments"]["anchor_store"] == store
            for src, config in configs.items():
                (row,) = pinscan.evaluate(out, config).to_dicts()
                if src == store:
                    assert row["verdict"] == "pass", row
                else:
                    assert row["verdict"] == "fail", row
                    assert "trusts no anchor that verifies the chain" in row["note"]
                    assert f"placed in the {store} store" in row["note"]
        # The Python API says the same with ScanConfig.anchor_store, checked where it is set.
        config = ScanConfig(
            retries=0, ca_bundle=root, anchor_store="user", timeouts=Timeouts(2, 3, 5)
        )
        api = pinscan.scan([f"127.0.0.1:{good.port} b.test"], tmp_path / "api", config=config)
        assert api.meta["arguments"]["anchor_store"] == "user"
        assert pinscan.evaluate(api, configs["user"])["verdict"].to_list() == ["pass"]
    with pytest.raises(ConfigError, match=r"ScanConfig\.anchor_store: must be one of system, user"):
        ScanConfig(anchor_store="keystore")
