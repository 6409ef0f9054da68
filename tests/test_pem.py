# SPDX-License-Identifier: Apache-2.0
"""The strict PEM reader: bundles, lax whitespace, legacy headers, and errors with line numbers."""

from __future__ import annotations

import base64
import doctest

import certifi
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

import pinscan.certs.pem
from pinscan.certs.pem import PemBlock, is_pem, read_pem
from pinscan.errors import InputError


def pem(label: str, der: bytes) -> bytes:
    return PemBlock(label, der, 1).encode()


def test_single_block() -> None:
    der = bytes(range(200))
    [block] = read_pem(pem("CERTIFICATE", der), "a.pem")
    assert block == PemBlock("CERTIFICATE", der, 1)


def test_bundle_with_text_between_blocks_keeps_order_and_lines() -> None:
    data = (
        b"# Subject: CN=first\n"
        b"Certificate:\n    Data:\n        Version: 3 (0x2)\n        Issuer: CN=x\n\n"
        + pem("CERTIFICATE", b"first")
        + b"\nsome trailing commentary: with a colon\n"
        + pem("X509 CRL", b"second")
        + pem("NEW CERTIFICATE REQUEST", b"third")
    )
    blocks = read_pem(data, "bundle.pem")
    assert [(b.label, b.der, b.line) for b in blocks] == [
        ("CERTIFICATE", b"first", 7),
        ("X509 CRL", b"second", 12),
        ("NEW CERTIFICATE REQUEST", b"third", 15),
    ]


def test_certifi_bundle_lines_point_at_the_begin_lines() -> None:
    with open(certifi.where(), "rb") as f:
        data = f.read()
    lines = data.splitlines()
    blocks = read_pem(data, "cacert.pem")
    assert len(blocks) == data.count(b"-----BEGIN CERTIFICATE-----") > 100
    for block in blocks:
        assert lines[block.line - 1] == b"-----BEGIN CERTIFICATE-----"
        assert block.der[:1] == b"\x30"


@pytest.mark.parametrize("newline", [b"\r\n", b"\r"])
def test_crlf_and_cr_line_ends(newline: bytes) -> None:
    data = (b"comment\n\n" + pem("A", b"one") + pem("B", b"two")).replace(b"\n", newline)
    blocks = read_pem(data, "x.pem")
    assert [(b.label, b.der, b.line) for b in blocks] == [("A", b"one", 3), ("B", b"two", 6)]


def test_lax_whitespace_rfc7468() -> None:
    der = bytes(range(100))
    b64 = base64.b64encode(der)
    body = b"\n".join(b"\t " + b64[i : i + 10] + b"  " for i in range(0, len(b64), 10))
    spaced = b64[:20] + b" \t" + b64[20:]
    data = b"   -----BEGIN KEY-----  \n\n" + body + b"\n\n  -----END KEY-----\t\n"
    assert read_pem(data, "x.pem")[0].der == der
    data = b"-----BEGIN KEY-----\n" + spaced + b"\n-----END KEY-----"
    assert read_pem(data, "x.pem")[0].der == der


def test_empty_body_and_no_blocks() -> None:
    assert read_pem(b"-----BEGIN X-----\n-----END X-----", "x")[0].der == b""
    assert read_pem(b"just text\n----- a ruler -----\n", "x") == []
    assert read_pem(b"", "x") == []


def test_legacy_encrypted_key_keeps_its_headers() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.BestAvailableEncryption(b"secret"),
    )
    # Mangle the layout: CRLF and indented base64 still read, and encode() restores a PEM that
    # cryptography decrypts.
    lines = data.split(b"\n")
    mangled = b"\r\n".join(lines[:4] + [b"  " + line for line in lines[4:-2]] + lines[-2:])
    [block] = read_pem(b"key follows\r\n" + mangled, "key.pem")
    assert block.label == "EC PRIVATE KEY"
    assert block.line == 2
    assert dict(block.headers)["Proc-Type"] == "4,ENCRYPTED"
    assert dict(block.headers)["DEK-Info"].startswith("AES-256-CBC,")
    assert block.encode() == data
    loaded = serialization.load_pem_private_key(block.encode(), b"secret")
    assert loaded.private_numbers() == key.private_numbers()  # type: ignore[union-attr]


def test_folded_header() -> None:
    data = b"-----BEGIN X-----\nComment: one\n  two\nName:v\n\nAQID\n-----END X-----\n"
    [block] = read_pem(data, "x")
    assert block.headers == (("Comment", "one two"), ("Name", "v"))
    assert block.der == b"\x01\x02\x03"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"x\n-----BEGIN A-----\nAQID\n", "line 2: BEGIN A has no matching END A"),
        (b"-----BEGIN A-----\nAQID\n-----END B-----\n", "line 3: END B does not match BEGIN A"),
        (
            b"-----BEGIN A-----\nAQID\nAQ!D\n-----END A-----\n",
            "line 3: invalid base64 character '!'",
        ),
        (b"-----BEGIN A-----\nAQID\nAQ\xffD\n-----END A-----\n", "line 3: invalid base64"),
        (b"a\nb\n-----END A-----\n", "line 3: END A without a BEGIN"),
        (
            b"-----BEGIN A-----\nAQID\n-----BEGIN A-----\nAQID\n-----END A-----\n",
            "line 1: BEGIN A has no END before the BEGIN on line 3",
        ),
        (b"-----BEGIN A-----\nAQ==\nAQID\n-----END A-----\n", "line 2: base64 goes on after"),
        (b"-----BEGIN A-----\nAQI\n-----END A-----\n", "line 1: the base64 of A is truncated"),
        (b"-----BEGIN A-----\nAQ==\n==\n-----END A-----\n", "line 1: the base64 of A ends in"),
        (b"\n-----BEGIN A----\nAQID\n-----END A-----\n", "line 2: malformed PEM boundary"),
        (b"-----BEGIN A-----\nAQID\n-----END  A-----\n", "line 3: malformed PEM boundary"),
        (b"-----BEGIN A-----\nK: v\nAQID\n-----END A-----\n", "line 3: expected an empty line"),
        (b"-----BEGIN A-----\r\n\r\nAQID\r\nA-B=\r\n-----END A-----\r\n", "line 4: invalid"),
    ],
)
def test_errors_name_the_line(data: bytes, message: str) -> None:
    with pytest.raises(InputError) as info:
        read_pem(data, "bad.pem")
    assert info.value.source == "bad.pem"
    assert info.value.message.startswith(message), info.value.message
    assert str(info.value).startswith(f"bad.pem: {message}")


def test_is_pem() -> None:
    assert is_pem(pem("CERTIFICATE", b"x"))
    assert is_pem(b"text first\r  -----BEGIN X-----\r")
    assert not is_pem(b"no boundary here\n")
    assert not is_pem(
        base64.b64decode("MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=")
    )
    assert not is_pem(b"mid-line -----BEGIN X-----\n")


@given(
    st.lists(
        st.tuples(
            st.from_regex(r"[A-Z0-9]{1,8}( [A-Z0-9]{1,8}){0,2}", fullmatch=True), st.binary()
        ),
        max_size=5,
    ),
    st.sampled_from([b"\n", b"\r\n", b"\r"]),
)
def test_encode_then_read_round_trips(blocks: list[tuple[str, bytes]], newline: bytes) -> None:
    data = b"".join(b"text\n" + pem(label, der) for label, der in blocks)
    found = read_pem(data.replace(b"\n", newline), "x")
    assert [(b.label, b.der) for b in found] == blocks


@given(st.text(alphabet="AQIDw+/=\n\r\t \x0b!é", max_size=200).map(str.encode))
def test_any_body_decodes_exactly_or_fails_with_a_line(body: bytes) -> None:
    data = b"-----BEGIN A-----\n" + body + b"\n-----END A-----\n"
    try:
        blocks = read_pem(data, "x")
    except InputError as exc:
        assert exc.message.startswith("line ")
    else:
        compact = body.translate(None, b" \t\n\r\x0b")
        assert [b.der for b in blocks] == [base64.b64decode(compact, validate=True)]


def test_docstring_examples() -> None:
    assert doctest.testmod(pinscan.certs.pem).failed == 0
