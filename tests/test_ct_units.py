# SPDX-License-Identifier: Apache-2.0
"""The pieces of `pinscan.ct` on their own: Merkle hashing and compact ranges, signatures and
signed notes, tile paths, log lists, the watchlist and retries."""

from __future__ import annotations

import base64
import json
import struct
import subprocess
import sys

import httpx
import polars as pl
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

import pinscan.ct
from pinscan import errors
from pinscan.ct import Watchlist, parse_log_list
from pinscan.ct.fetch import Fetcher, FetchPolicy
from pinscan.ct.merkle import CompactRange, leaf_hash, subtrees, tree_root
from pinscan.ct.signatures import LogKey, tree_head_input, verify_checkpoint
from pinscan.ct.tiles import tile_path
from pinscan.ct.watch import pin_from_text, watched
from pinscan.errors import FetchError, InputError, SignatureError

import ctfake


@pytest.mark.parametrize("size", [*range(0, 40), 255, 256, 257, 1000])
def test_compact_range_root_equals_tree_root(size: int) -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    rng = CompactRange()
    rng.extend(leaves)
    assert rng.root() == tree_root(leaves)
    assert [length for _, length in subtrees(size)] == [
        1 << b for b in reversed(range(size.bit_length())) if size >> b & 1
    ]
    assert CompactRange.from_json(rng.to_json()) == rng
    if size:
        last = CompactRange.from_last_leaf_proof(
            size, leaves[-1], ctfake.audit_path(leaves, size - 1)
        )
        assert last == rng


def test_compact_range_rejects_a_bad_state() -> None:
    with pytest.raises(ValueError):
        CompactRange.from_json({"size": 3, "hashes": ["00" * 32]})


def test_empty_tree_root_is_the_hash_of_nothing() -> None:
    assert CompactRange().root().hex().startswith("e3b0c442")


def test_rsa_tree_head_signature() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signed = tree_head_input(5, 10, b"r" * 32)
    sig = key.sign(signed, padding.PKCS1v15(), hashes.SHA256())
    LogKey(der).verify(signed, struct.pack(">BBH", 4, 1, len(sig)) + sig)
    with pytest.raises(SignatureError):
        LogKey(der).verify(signed[:-1] + b"x", struct.pack(">BBH", 4, 1, len(sig)) + sig)
    with pytest.raises(SignatureError, match="does not match"):
        LogKey(der).verify(signed, struct.pack(">BBH", 4, 3, len(sig)) + sig)


def test_checkpoint_verification() -> None:
    key = ctfake.key(5)
    log_key = LogKey(ctfake.spki(key))
    note = ctfake.checkpoint(key, "log.example/x", 7, b"\x01" * 32, 1234)
    head = verify_checkpoint(note, log_key, "log.example/x")
    assert (head.size, head.root, head.timestamp) == (7, b"\x01" * 32, 1234)
    with pytest.raises(SignatureError, match="origin"):
        verify_checkpoint(note, log_key, "other.example/x")
    with pytest.raises(SignatureError, match="no signature by the log"):
        verify_checkpoint(note, LogKey(ctfake.spki(ctfake.key(6))), None)
    tampered = note.replace("\n7\n", "\n8\n")
    with pytest.raises(SignatureError, match="does not verify"):
        verify_checkpoint(tampered, log_key, None)
    with pytest.raises(SignatureError, match="signed note"):
        verify_checkpoint("log.example/x\n7\n", log_key, None)


def test_tile_paths() -> None:
    assert tile_path(0, 1234067) == "tile/0/x001/x234/067"
    assert tile_path("data", 5, 17) == "tile/data/005.p/17"
    assert tile_path(1, 1000) == "tile/1/x001/000"


def test_log_list_states_and_errors() -> None:
    doc = ctfake.log_list(
        ("https://a.example/", ctfake.key(1)),
        ("https://m.example/", "https://s.example/p/", ctfake.key(2)),
    )
    logs = parse_log_list(doc, "list.json")
    assert [(log.kind, log.state, log.origin) for log in logs] == [
        ("rfc6962", "usable", None),
        ("static", "qualified", "s.example/p"),
    ]
    assert len(parse_log_list(doc, "x", frozenset({"retired"}))) == 1
    with pytest.raises(InputError, match="not a v3 log list"):
        parse_log_list({"logs": []}, "bad.json")
    doc["operators"][0]["logs"][0]["key"] = "not base64!"
    with pytest.raises(InputError, match="Fake RFC 6962 log"):
        parse_log_list(doc, "bad.json")


def test_watchlist_matching() -> None:
    watchlist = Watchlist.parse(["Example.COM.", "=host.other.test"])
    rows = pl.DataFrame(
        {
            "dns_names": [
                ["example.com"],
                ["a.b.example.com"],
                ["*.example.com"],
                ["badexample.com", "example.com.evil"],
                ["host.other.test"],
                ["*.other.test"],
                ["x.host.other.test"],
                None,
            ],
            "common_name": [None, None, None, None, None, None, None, "WWW.Example.com"],
        }
    )
    hits = watched(rows, watchlist)
    assert hits["watch"].to_list() == [
        "example.com",
        "example.com",
        "example.com",
        "=host.other.test",
        "=host.other.test",
        "example.com",
    ]
    with pytest.raises(InputError):
        Watchlist.parse(["bad name"])


def test_pins_in_any_spelling() -> None:
    pin = base64.b64encode(bytes(range(32))).decode()
    assert pin_from_text(bytes(range(32)).hex()) == pin
    assert pin_from_text(f"sha256/{pin}") == pin
    assert pin_from_text(f'pin-sha256="{pin}"') == pin
    with pytest.raises(ValueError):
        pin_from_text("abcd")


@pytest.mark.anyio
async def test_retries_then_gives_up_naming_the_url() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url)
        if len(calls) < 3:
            return httpx.Response(429, headers={"Retry-After": "0"})
        if len(calls) == 3:
            return httpx.Response(200, text="ok")
        return httpx.Response(500)

    policy = FetchPolicy(retries=2, backoff=0.001, rate=1000.0)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        fetcher = Fetcher(client, policy)
        response = await fetcher.get("http://log.test/a")
        assert response is not None and response.text == "ok"
        with pytest.raises(FetchError, match=r"log.test/b: HTTP 500 \(after 3 attempts\)"):
            await fetcher.get("http://log.test/b")
    assert len(calls) == 6


def test_log_list_from_a_url_and_a_missing_file(tmp_path) -> None:
    from pinscan.ct import load_log_list

    doc = ctfake.log_list(
        ("https://a.example/", ctfake.key(1)),
        ("https://m.example/", "https://s.example/p/", ctfake.key(2)),
    )
    body = json.dumps(doc).encode()
    with ctfake.serve(lambda path, query: (200, {}, body)) as url:
        assert len(load_log_list(url + "log_list.json")) == 2
    with pytest.raises(InputError, match="cannot read the log list"):
        load_log_list(str(tmp_path / "missing.json"))


def test_the_ct_exceptions_are_pinscans_and_still_where_ct_named_them() -> None:
    for name in ("LogError", "SignatureError", "StateError"):
        assert getattr(pinscan.ct, name) is getattr(errors, name)
    for error in (errors.FetchError, errors.LogError, errors.SignatureError, errors.StateError):
        assert issubclass(error, errors.PinscanError)


def test_importing_ct_loads_neither_the_policy_readers_nor_the_dataset_code() -> None:
    # Allowed keys from a policy or a dataset import those layers when asked (ct/watch.py).
    layers = ("pinscan.policy", "pinscan.dataset")
    script = (
        f"import sys, pinscan.ct\nprint(sorted(m for m in sys.modules if m.startswith({layers})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
