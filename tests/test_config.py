# SPDX-License-Identifier: Apache-2.0
"""Scan settings are checked once, where they are defined: a bad value is a clear error from
`ScanConfig` and `Timeouts` themselves, and a bad argument to `pinscan.scan` stops it before
anything is written."""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path

import anyio
import pytest
from cryptography.hazmat.primitives.serialization import Encoding

import pinscan
from pinscan.config import ScanConfig, Timeouts
from pinscan.errors import ConfigError, InputError, PinscanError

from fleet import pki, servers


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        # 0 workers scanned nothing and called the scan complete.
        ({"concurrency": 0}, "ScanConfig.concurrency: must be an integer from 1 to 100000, not 0"),
        ({"concurrency": 100_001}, "ScanConfig.concurrency: must be an integer from 1 to 100000"),
        (
            {"concurrency": "5"},
            "ScanConfig.concurrency: must be an integer from 1 to 100000, not '5' (str)",
        ),
        (
            {"concurrency": 5.0},
            "ScanConfig.concurrency: must be an integer from 1 to 100000, not 5.0",
        ),
        (
            {"concurrency": True},
            "ScanConfig.concurrency: must be an integer from 1 to 100000, not True",
        ),
        ({"per_address": 0}, "ScanConfig.per_address: must be an integer of at least 1, not 0"),
        ({"retries": -1}, "ScanConfig.retries: must be an integer from 0 to 10, not -1"),
        ({"retries": 11}, "ScanConfig.retries: must be an integer from 0 to 10, not 11"),
        ({"rate": 0}, "ScanConfig.rate: must be a finite number of at least 0.1, not 0"),
        ({"rate": math.nan}, "ScanConfig.rate: must be a finite number of at least 0.1, not nan"),
        ({"rate": math.inf}, "ScanConfig.rate: must be a finite number of at least 0.1, not inf"),
        ({"rate": "fast"}, "ScanConfig.rate: must be a finite number of at least 0.1, not 'fast'"),
        ({"flush_rows": 0}, "ScanConfig.flush_rows: must be an integer of at least 1, not 0"),
        ({"flush_seconds": 0}, "ScanConfig.flush_seconds: must be a finite number of at least 0.1"),
        ({"verify_processes": 65}, "ScanConfig.verify_processes: must be an integer from 0 to 64"),
        ({"verify_processes": -1}, "ScanConfig.verify_processes: must be an integer from 0 to 64"),
        ({"first_address": 1}, "ScanConfig.first_address: must be True or False, not 1"),
        ({"system_store": "no"}, "ScanConfig.system_store: must be True or False, not 'no' (str)"),
        ({"alpn": "h2"}, "ScanConfig.alpn: must be a tuple of protocol names"),
        ({"alpn": ("h2", "")}, "ScanConfig.alpn: protocol names are 1 to 255 ASCII characters"),
        ({"alpn": ("h2", 2)}, "ScanConfig.alpn: protocol names are 1 to 255 ASCII characters"),
        ({"timeouts": {"deadline": 5}}, "ScanConfig.timeouts: must be a Timeouts, not {'deadline'"),
        ({"ca_bundle": 3}, "ScanConfig.ca_bundle: must be a path or None, not 3"),
        ({"ca_bundle": "/no/such/ca.pem"}, "ScanConfig.ca_bundle: no such file: /no/such/ca.pem"),
        ({"trust_stores": ()}, "ScanConfig.trust_stores: must name one store or more"),
        ({"trust_stores": None}, "ScanConfig.trust_stores: must name one store or more"),
        (
            {"trust_stores": ("android", "chrome")},
            "ScanConfig.trust_stores: no store named 'chrome'; pinscan has mozilla, android, "
            "apple, microsoft, java",
        ),
        ({"trust_stores": ("ca_bundle",)}, "ScanConfig.trust_stores: no store named 'ca_bundle'"),
        ({"trust_stores": ("apple", "apple")}, "ScanConfig.trust_stores: 'apple' is given twice"),
        ({"trust_stores": ("apple", 3)}, "ScanConfig.trust_stores: store names are strings"),
        (
            {"trust_stores": ("android=/no/such.pem",)},
            "ScanConfig.trust_stores: android: no such file: /no/such.pem",
        ),
    ],
)
def test_a_bad_scan_setting_is_a_config_error(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        ScanConfig(**settings)
    assert str(info.value).startswith(message)
    # One error for every caller: a ValueError to Python, a PinscanError (exit 2) to the CLI.
    assert isinstance(info.value, ValueError) and isinstance(info.value, PinscanError)
    assert info.value.setting == message.split(":")[0]


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"connect": 0}, "connect"),  # every good server would have been marked failed
        ({"handshake": -1}, "handshake"),
        ({"deadline": 0}, "deadline"),
        ({"deadline": math.nan}, "deadline"),
        ({"deadline": math.inf}, "deadline"),
        ({"connect": None}, "connect"),
        ({"handshake": False}, "handshake"),
    ],
)
def test_a_bad_timeout_is_a_config_error(settings: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=rf"^Timeouts\.{field}: must be a finite number of at "):
        Timeouts(**settings)


def test_good_settings_are_kept_and_normalised(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    config = ScanConfig(
        concurrency=1, rate=1, retries=10, timeouts=Timeouts(1, 2, 3), ca_bundle=str(bundle),
        verify_processes=0, alpn=["h2"], flush_seconds=1,
    )  # fmt: skip
    assert config.rate == 1.0 and isinstance(config.rate, float)
    assert config.flush_seconds == 1.0 and isinstance(config.flush_seconds, float)
    assert config.timeouts == Timeouts(1.0, 2.0, 3.0)
    assert isinstance(config.timeouts.connect, float)
    assert config.ca_bundle == bundle and isinstance(config.ca_bundle, Path)
    assert config.alpn == ("h2",)
    assert ScanConfig(rate=None, verify_processes=None, alpn=()).alpn == ()
    # Every shipped store by default, Mozilla's first; a comma list (as the command line and
    # the audit file give it) or a sequence; NAME=FILE for a bundle under a platform's name.
    assert ScanConfig().trust_stores == ("mozilla", "android", "apple", "microsoft", "java")
    assert ScanConfig(trust_stores="java, apple").trust_stores == ("java", "apple")
    given = ScanConfig(trust_stores=["apple", f"android = {bundle}"]).trust_stores
    assert given == ("apple", f"android={bundle}")


def test_every_bound_and_default_is_stated_once() -> None:
    # The defaults themselves are within the bounds (the dataclasses check them when made).
    defaults = ScanConfig()
    for name, bounds in ScanConfig.BOUNDS.items():
        assert bounds.check(name, getattr(defaults, name)) == getattr(defaults, name)
    for name, bounds in Timeouts.BOUNDS.items():
        assert bounds.check(name, getattr(defaults.timeouts, name)) == getattr(
            defaults.timeouts, name
        )


@pytest.mark.parametrize(
    ("inventory", "message"),
    [
        (None, "inventory: must be a path, an Inventory (pinscan.read_inventory) or an iterable "
         "of lines or Targets, not NoneType"),
        (42, "not int"),
        (b"hosts.txt", "not bytes"),
        (["127.0.0.1:1", None], "inventory: item 2 is NoneType, not a line (str) or a Target"),
    ],
)  # fmt: skip
def test_a_bad_inventory_object_writes_nothing(
    tmp_path: Path, inventory: object, message: str
) -> None:
    with pytest.raises(InputError) as info:
        pinscan.scan(inventory, tmp_path / "out")  # type: ignore[arg-type]
    assert message in str(info.value)
    with pytest.raises(InputError):
        pinscan.scan(inventory, history=tmp_path / "history")  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists() and not (tmp_path / "history").exists()


def test_a_bad_config_object_writes_nothing(tmp_path: Path) -> None:
    for kwargs in ({"out": tmp_path / "out"}, {"history": tmp_path / "history"}):
        with pytest.raises(ConfigError, match=r"^config: must be a pinscan\.config\.ScanConfig"):
            pinscan.scan(["127.0.0.1:1"], config={"concurrency": 5}, **kwargs)
        with pytest.raises(ConfigError, match=r"^config: must be a pinscan\.config\.ScanConfig"):
            anyio.run(partial(pinscan.scan_async, ["127.0.0.1:1"], config=object(), **kwargs))
    assert not (tmp_path / "out").exists() and not (tmp_path / "history").exists()


def test_unreadable_inputs_fail_before_the_dataset_is_created(tmp_path: Path) -> None:
    # The inventory, then the trust stores: both are read before the dataset is made.
    with pytest.raises(InputError, match=r"nowhere\.txt"):
        pinscan.scan(tmp_path / "nowhere.txt", tmp_path / "out")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    config = ScanConfig(ca_bundle=garbage, retries=0)
    with pytest.raises(PinscanError, match=r"garbage\.pem"):
        pinscan.scan(["127.0.0.1:1"], tmp_path / "out", config=config)
    assert not (tmp_path / "out").exists()
    # ...and a good bundle still works: the check is not in the way.
    good = tmp_path / "ca.pem"
    good.write_bytes(pki.root().cert.public_bytes(Encoding.PEM))
    fast = ScanConfig(ca_bundle=good, retries=0, timeouts=Timeouts(1, 1, 2))
    with servers.closed_port() as closed:
        ds = pinscan.scan([f"127.0.0.1:{closed.port}"], tmp_path / "out", config=fast)
    assert ds.meta["complete"] and ds.endpoints.collect()["status"].to_list() == ["refused"]
