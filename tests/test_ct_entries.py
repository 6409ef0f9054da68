# SPDX-License-Identifier: Apache-2.0
"""The Rust core's CT entry parser against pyca/cryptography: the pin of a certificate and of a
precertificate's TBSCertificate, the shared dedupe hash, names, tiles, and bad input as rows."""

from __future__ import annotations

import base64
import hashlib
import struct

import polars as pl
from cryptography.hazmat.primitives.asymmetric import rsa

from pinscan.ct import entries
from pinscan.ct.merkle import leaf_hash

import ctfake


def _issuance(key=None, names=("a.example.com", "b.example.com"), cn=None) -> ctfake.Issuance:
    return ctfake.issue(ctfake.ca(), key or ctfake.key(40), list(names), cn=cn)


def test_certificate_and_precertificate_share_pin_and_tbs_hash() -> None:
    issuance = _issuance()
    pre, cert = ctfake.precert_entry(issuance), ctfake.x509_entry(issuance)
    rows = entries.parse_leaves([pre.leaf, cert.leaf], [pre.extra_data, cert.extra_data])
    assert rows["error"].null_count() == 2, rows["error"].to_list()
    assert rows["entry_type"].to_list() == ["precert", "x509"]
    assert rows["spki_sha256"].to_list() == [ctfake.pin(ctfake.key(40))] * 2
    assert rows["tbs_sha256"].to_list() == [ctfake.dedupe_hash(issuance)] * 2
    assert rows["cert_sha256"].to_list() == [
        hashlib.sha256(issuance.precert_der).hexdigest(),
        hashlib.sha256(issuance.cert_der).hexdigest(),
    ]
    assert rows["leaf_hash"].to_list() == [leaf_hash(pre.leaf), leaf_hash(cert.leaf)]
    assert rows["issuer_sha256"].to_list() == [hashlib.sha256(ctfake.ca().der).hexdigest()] * 2
    assert rows["dns_names"].to_list() == [["a.example.com", "b.example.com"]] * 2
    assert rows["common_name"].to_list() == ["a.example.com"] * 2
    assert rows["issuer"].to_list() == ["CN=Fake CT Test CA"] * 2
    assert rows["timestamp"].to_list() == [1_790_000_000_000] * 2
    assert rows["not_after"][0] == issuance.cert.not_valid_after_utc


def test_rsa_key_and_unicode_common_name() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    issuance = ctfake.issue(ctfake.ca(), key, ["rsa.example.com"], cn="ünïcode.example.com")
    cert = ctfake.x509_entry(issuance)
    rows = entries.parse_leaves([cert.leaf], [cert.extra_data])
    spki = key.public_key().public_bytes(
        ctfake.DER, ctfake.serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert rows["spki_sha256"][0] == base64.b64encode(hashlib.sha256(spki).digest()).decode()
    assert rows["common_name"][0] == "ünïcode.example.com"


def test_tiles_one_row_per_entry_with_leaf_index() -> None:
    issuance = _issuance()
    tile_entries = [ctfake.precert_entry(issuance, index=7), ctfake.x509_entry(issuance, index=8)]
    rows = entries.parse_tiles([b"".join(e.tile_leaf for e in tile_entries)])
    assert rows.height == 2 and rows["error"].null_count() == 2
    assert rows["leaf_index"].to_list() == [7, 8]
    assert rows["leaf_hash"].to_list() == [leaf_hash(e.leaf) for e in tile_entries]
    assert rows["cert_sha256"][0] == hashlib.sha256(issuance.precert_der).hexdigest()
    assert rows["tbs_sha256"].n_unique() == 1


def test_plain_certificates_recognize_precertificates() -> None:
    issuance = _issuance()
    rows = entries.parse_certificates([issuance.precert_der, issuance.cert_der])
    assert rows["entry_type"].to_list() == ["precert", "x509"]
    assert rows["tbs_sha256"].n_unique() == 1
    assert rows["leaf_hash"].null_count() == 2


def test_bad_input_is_a_row_with_an_error_never_an_exception() -> None:
    good = ctfake.x509_entry(_issuance())
    broken_tile = good.tile_leaf + good.tile_leaf[:20]
    leaves = [b"", b"\x00\x00" + struct.pack(">QH", 1, 9), good.leaf[:-5], good.leaf]
    rows = entries.parse_leaves(leaves, [b""] * 3 + [good.extra_data])
    assert rows.height == 4
    assert rows["error"].to_list()[3] is None
    assert rows["error"][0].startswith("merkle_tree_leaf: truncated")
    assert "unknown type 9" in rows["error"][1] and "truncated" in rows["error"][2]
    tile = entries.parse_tiles([broken_tile])
    assert tile.height == 2 and tile["error"][1].startswith("tile:")
    assert entries.parse_certificates([b"garbage"]).filter(pl.col("error").is_not_null()).height


def test_batches_beyond_one_chunk_keep_order() -> None:
    issuance = _issuance()
    entry = ctfake.x509_entry(issuance)
    leaves = [ctfake.x509_entry(issuance, timestamp=i).leaf for i in range(5000)]
    rows = entries.parse_leaves(leaves, [entry.extra_data] * len(leaves))
    assert rows["timestamp"].to_list() == list(range(5000))


def test_every_truncation_and_bit_flip_is_a_row() -> None:
    """Hostile logs: every prefix of a precert leaf and tile, and a flipped byte at every offset,
    parse to rows (one per leaf) without an exception or a panic."""
    entry = ctfake.precert_entry(_issuance(), index=3)
    leaves = [entry.leaf[:cut] for cut in range(len(entry.leaf))]
    leaves += [
        entry.leaf[:i] + bytes([entry.leaf[i] ^ 0xFF]) + entry.leaf[i + 1 :]
        for i in range(len(entry.leaf))
    ]
    rows = entries.parse_leaves(leaves, [entry.extra_data] * len(leaves))
    assert rows.height == len(leaves)
    assert rows["error"].drop_nulls().str.contains("internal").sum() == 0
    tiles = [entry.tile_leaf[:cut] for cut in range(1, len(entry.tile_leaf))]
    parsed = entries.parse_tiles(tiles)
    assert parsed["error"].drop_nulls().str.contains("internal").sum() == 0
