# SPDX-License-Identifier: Apache-2.0
"""Hostile and malformed input: every input gives exactly one row, never an exception, a panic
or a hang; a row without a pin always says why."""

from __future__ import annotations

import base64
import hashlib

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pinscan
from pinscan import _core

from corpora import certifi_certificates, vector_certificates

SEEDS = [der for _, der in certifi_certificates()[:8]] + [
    der for name, der in vector_certificates() if "custom/" in name
][:24]


def check_rows(inputs: list[bytes]) -> pl.DataFrame:
    df = pinscan.certificates(inputs)
    assert df.height == len(inputs)
    assert df["cert_sha256"].to_list() == [hashlib.sha256(d).hexdigest() for d in inputs]
    no_pin = df.filter(pl.col("spki_sha256").is_null())
    assert no_pin["error"].null_count() == 0, "a row without a pin must say why"
    return df


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from(SEEDS), data=st.data())
def test_truncated(seed: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(min_value=0, max_value=len(seed) - 1))
    df = check_rows([seed[:cut]])
    assert df["error"][0] is not None, "a truncated certificate is never complete"


@settings(max_examples=300, deadline=None)
@given(seed=st.sampled_from(SEEDS), data=st.data())
def test_bit_flipped(seed: bytes, data: st.DataObject) -> None:
    flips = data.draw(st.lists(st.integers(0, len(seed) * 8 - 1), min_size=1, max_size=8))
    mutated = bytearray(seed)
    for bit in flips:
        mutated[bit // 8] ^= 1 << (bit % 8)
    check_rows([bytes(mutated)])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=2048), max_size=20))
def test_random_bytes(inputs: list[bytes]) -> None:
    check_rows(inputs)


@settings(max_examples=100, deadline=None)
@given(
    st.recursive(
        st.binary(max_size=8).map(lambda b: b"\x04" + bytes([len(b)]) + b),
        lambda inner: st.lists(inner, max_size=3).map(lambda kids: _tlv(0x30, b"".join(kids))),
        max_leaves=30,
    )
)
def test_random_der_shapes(der: bytes) -> None:
    check_rows([der])


def _tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    length = bytes([n]) if n < 0x80 else bytes([0x84]) + n.to_bytes(4, "big")
    return bytes([tag]) + length + content


def test_deep_nesting_and_huge_lengths() -> None:
    deep = b""
    for _ in range(20_000):
        deep = _tlv(0x30, deep)
    inputs = [
        deep,
        b"\x30\x84\xff\xff\xff\xff" + b"\x30" * 64,
        b"\x30\x80\x30\x80\x00\x00\x00\x00",
        b"",
        b"\x30",
        b"\xff" * 10_000,
    ]
    df = check_rows(inputs)
    assert df["spki_sha256"].null_count() == len(inputs)


def test_truncation_after_the_key_keeps_the_pin() -> None:
    der = certifi_certificates()[0][1]
    whole = pinscan.certificates([der]).row(0, named=True)
    cut = pinscan.certificates([der[: len(der) - 40]]).row(0, named=True)
    assert cut["spki_sha256"] == whole["spki_sha256"]
    assert "truncated" in cut["error"]
    assert pinscan.certificates([der + b"\x00\x00"])["error"][0] == (
        "certificate: 2 unexpected trailing bytes"
    )


def test_nulls_and_arrow_inputs_give_the_same_rows() -> None:
    ders = [der for _, der in certifi_certificates()[:50]]
    expected = pinscan.certificates(ders)
    series = pl.Series("der", ders, dtype=pl.Binary)
    assert pinscan.certificates(series).equals(expected)
    for arrow_type in (pa.binary(), pa.large_binary(), pa.binary_view()):
        assert pinscan.certificates(pa.array(ders, type=arrow_type)).equals(expected)
    chunked = pa.chunked_array([ders[:20], ders[20:]], type=pa.binary())
    assert pinscan.certificates(chunked).equals(expected)
    assert pinscan.certificates(iter(ders)).equals(expected)
    with_null = pinscan.certificates(pa.array([ders[0], None], type=pa.binary()))
    assert with_null["error"].to_list() == [None, "input: null"]
    assert with_null["cert_sha256"][1] is None


def test_threads_change_nothing_but_speed() -> None:
    ders = [der for _, der in vector_certificates()] * 20
    assert len(ders) > 2 * _core.CHUNK_ROWS
    one = pinscan.certificates(ders, threads=1)
    two = pinscan.certificates(ders, threads=2)
    assert one.equals(two)


def test_sha1_pins_on_request() -> None:
    ders = [der for _, der in certifi_certificates()]
    df = pinscan.certificates(ders, sha1=True)
    assert df.columns == list(pinscan.COLUMNS)
    assert "spki_sha1" not in pinscan.certificates(ders).columns
    spki = _core.locate_spki(ders[0])[1]
    assert df["spki_sha1"][0] == base64.b64encode(hashlib.sha1(spki).digest()).decode()


def test_misuse_raises_type_errors() -> None:
    with pytest.raises(TypeError, match="one bytes object"):
        pinscan.certificates(b"\x30\x00")
    with pytest.raises(TypeError, match=r"`ders\[1\]` is str"):
        pinscan.certificates([b"", "PEM text"])
    with pytest.raises(TypeError, match="Arrow binary column"):
        pinscan.certificates(pl.Series([1, 2]))
    with pytest.raises(ValueError, match="at least 1"):
        pinscan.certificates([], threads=0)


def test_empty_input_has_the_schema() -> None:
    df = pinscan.certificates([])
    assert df.height == 0
    assert df.columns == [c for c in pinscan.COLUMNS if c != "spki_sha1"]
