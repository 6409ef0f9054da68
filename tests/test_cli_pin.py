# SPDX-License-Identifier: Apache-2.0
"""``pinscan pin``: output on real bundles and keys, errors per file, exit statuses."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import certifi
import polars as pl
import pytest
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import pinscan
from pinscan.certs.pem import PemBlock
from pinscan.cli import main

Encoding = serialization.Encoding
PASSWORD = "s3cret"

KEY = ec.generate_private_key(ec.SECP256R1())
SUBJECT = x509.Name(
    [
        x509.NameAttribute(NameOID.COMMON_NAME, "pin.example"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Pinscan Tests"),
    ]
)
SPKI = KEY.public_key().public_bytes(Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
SPKI_PEM = KEY.public_key().public_bytes(
    Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)
PIN = base64.b64encode(hashlib.sha256(SPKI).digest()).decode()
PIN_SHA1 = base64.b64encode(hashlib.sha1(SPKI).digest()).decode()
NOW = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
CERT = (
    x509.CertificateBuilder()
    .subject_name(SUBJECT)
    .issuer_name(SUBJECT)
    .public_key(KEY.public_key())
    .serial_number(0x1234)
    .not_valid_before(NOW)
    .not_valid_after(NOW + dt.timedelta(days=90))
    .add_extension(x509.SubjectAlternativeName([x509.DNSName("pin.example")]), critical=False)
    .sign(KEY, hashes.SHA256())
)
# RFC 4514 writes the last RDN first.
SUBJECT_TEXT = "O=Pinscan Tests,CN=pin.example"
CSR = x509.CertificateSigningRequestBuilder().subject_name(SUBJECT).sign(KEY, hashes.SHA256())
CERT_PEM = CERT.public_bytes(Encoding.PEM)


def run(*args: str, input: bytes | None = None, env: dict[str, str] | None = None) -> Result:
    result = CliRunner().invoke(main, list(args), input=input, env=env)
    # A clean exit is SystemExit or nothing; any other exception would be a traceback.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


def write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


@pytest.fixture(scope="module")
def certifi_table() -> pl.DataFrame:
    return pinscan.certificates(pinscan.read_certificates(certifi.where()))


def begin_lines(path: str) -> list[int]:
    lines = Path(path).read_bytes().splitlines()
    return [n for n, line in enumerate(lines, start=1) if line.startswith(b"-----BEGIN")]


def test_text_on_certifi(certifi_table: pl.DataFrame) -> None:
    where = certifi.where()
    result = run("pin", where)
    assert result.exit_code == 0
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == certifi_table.height > 100
    expected = [
        f"sha256/{row['spki_sha256']}  {row['subject']}  {where}:{line}"
        for row, line in zip(certifi_table.iter_rows(named=True), begin_lines(where), strict=True)
    ]
    assert lines == expected


def test_json_on_certifi(certifi_table: pl.DataFrame) -> None:
    where = certifi.where()
    result = run("pin", "--format", "json", where)
    assert result.exit_code == 0
    records = json.loads(result.stdout)
    assert isinstance(records, list)
    # Every root appears, by an independent fingerprint.
    fingerprints = {hashlib.sha256(der).hexdigest() for der in pinscan.read_certificates(where)}
    assert {r["cert_sha256"] for r in records} == fingerprints
    assert len(records) == certifi_table.height
    for record, row, line in zip(
        records, certifi_table.iter_rows(named=True), begin_lines(where), strict=True
    ):
        assert list(record) == ["source", "kind", *certifi_table.columns]
        assert record["source"] == f"{where}:{line}"
        assert record["kind"] == "certificate"
        for column, value in row.items():
            if isinstance(value, dt.datetime):
                assert dt.datetime.fromisoformat(record[column]) == value
                assert record[column].endswith("+00:00")
            else:
                assert record[column] == value, column


def test_stdin() -> None:
    result = run("pin", "-", input=b"# from a pipe\n" + CERT_PEM)
    assert result.exit_code == 0
    assert result.stdout == f"sha256/{PIN}  {SUBJECT_TEXT}  <stdin>:2\n"


def test_keys_csrs_and_der_files(tmp_path: Path) -> None:
    pkcs8 = KEY.private_bytes(
        Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    files = [
        write(tmp_path / "cert.der", CERT.public_bytes(Encoding.DER)),
        write(tmp_path / "req.pem", CSR.public_bytes(Encoding.PEM)),
        write(tmp_path / "key.der", pkcs8),
        write(tmp_path / "pub.pem", SPKI_PEM),
    ]
    result = run("pin", *files)
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        f"sha256/{PIN}  {SUBJECT_TEXT}  {files[0]}",
        f"sha256/{PIN}  {SUBJECT_TEXT}  {files[1]}:1",
        f"sha256/{PIN}  -  {files[2]}",
        f"sha256/{PIN}  -  {files[3]}:1",
    ]
    records = json.loads(run("pin", "--format=json", *files).stdout)
    assert [r["kind"] for r in records] == ["certificate", "csr", "private_key", "public_key"]
    assert [r["spki_sha256"] for r in records] == [PIN] * 4
    assert records[0]["cert_sha256"] == hashlib.sha256(CERT.public_bytes(Encoding.DER)).hexdigest()
    assert records[0]["dns_names"] == ["pin.example"]
    assert records[0]["not_after"] == "2025-04-01T00:00:00+00:00"
    assert [r["cert_sha256"] for r in records[1:]] == [None] * 3
    assert [r["subject"] for r in records] == [SUBJECT_TEXT] * 2 + [None] * 2
    assert all(set(r) == set(records[0]) for r in records)


def test_broken_inputs_are_reported_and_the_rest_still_printed(tmp_path: Path) -> None:
    good = write(tmp_path / "good.pem", CERT_PEM)
    garbage = write(tmp_path / "garbage.bin", b"\x00\x01 not a certificate at all")
    missing = str(tmp_path / "missing.pem")
    bad_base64 = write(tmp_path / "bad.pem", CERT_PEM.replace(b"\n", b"\n!", 3))
    result = run("pin", good, garbage, missing, str(tmp_path), bad_base64)
    assert result.exit_code == 2
    assert result.stdout == f"sha256/{PIN}  {SUBJECT_TEXT}  {good}:1\n"
    assert result.stderr.splitlines() == [
        f"pinscan: {garbage}: no certificate, key or CSR found: neither PEM nor DER",
        f"pinscan: {missing}: no such file or directory",
        f"pinscan: {tmp_path}: is a directory",
        f"pinscan: {bad_base64}: line 2: invalid base64 character '!'",
    ]


def test_certificate_with_an_error_but_a_pin_is_a_warning(tmp_path: Path) -> None:
    damaged = CERT.public_bytes(Encoding.DER) + b"\x00\x00"
    path = write(tmp_path / "x.pem", b"\n" + PemBlock("CERTIFICATE", damaged, 1).encode())
    result = run("pin", path)
    assert result.exit_code == 0
    assert result.stdout.startswith(f"sha256/{PIN}  ")
    assert result.stderr.startswith(f"pinscan: {path}:2: warning: ")
    assert "trailing" in result.stderr
    quiet = run("pin", "--quiet", path)
    assert (quiet.exit_code, quiet.stdout, quiet.stderr) == (0, result.stdout, "")


def test_certificate_without_a_pin_is_an_error(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.pem", PemBlock("CERTIFICATE", b"\x30\x03\x02\x01\x00", 1).encode())
    good = write(tmp_path / "good.pem", CERT_PEM)
    result = run("pin", bad, good)
    assert result.exit_code == 2
    assert result.stdout == f"sha256/{PIN}  {SUBJECT_TEXT}  {good}:1\n"
    assert result.stderr.startswith(f"pinscan: {bad}:1: ")
    assert "warning" not in result.stderr


@pytest.fixture
def encrypted_key(tmp_path: Path) -> str:
    data = KEY.private_bytes(
        Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.BestAvailableEncryption(PASSWORD.encode()),
    )
    return write(tmp_path / "key.pem", data)


def test_encrypted_key(encrypted_key: str, tmp_path: Path) -> None:
    expected = f"sha256/{PIN}  -  {encrypted_key}:1\n"
    result = run("pin", encrypted_key)
    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"pinscan: {encrypted_key}: line 1: the private key is encrypted"
    )
    assert run("pin", "--password", PASSWORD, encrypted_key).stdout == expected
    assert run("pin", encrypted_key, env={"PINSCAN_PASSWORD": PASSWORD}).stdout == expected
    wrong = run("pin", "--password", "nope", encrypted_key)
    assert wrong.exit_code == 2
    assert "wrong password" in wrong.stderr
    password_file = write(tmp_path / "pw", PASSWORD.encode() + b"\n")
    by_file = run(
        "pin", "--password-file", password_file, encrypted_key, env={"PINSCAN_PASSWORD": "nope"}
    )
    assert by_file.stdout == expected
    both = run("pin", "--password", PASSWORD, "--password-file", password_file, encrypted_key)
    assert both.exit_code == 2
    assert "not both" in both.stderr


def test_sha1(tmp_path: Path) -> None:
    cert = write(tmp_path / "c.pem", CERT_PEM)
    key = write(tmp_path / "k.pem", SPKI_PEM)
    result = run("pin", "--sha1", cert, key)
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        f"sha256/{PIN}  sha1/{PIN_SHA1}  {SUBJECT_TEXT}  {cert}:1",
        f"sha256/{PIN}  sha1/{PIN_SHA1}  -  {key}:1",
    ]
    records = json.loads(run("pin", "--sha1", "--format", "json", cert, key).stdout)
    assert [r["spki_sha1"] for r in records] == [PIN_SHA1, PIN_SHA1]
    assert "spki_sha1" not in json.loads(run("pin", "--format", "json", cert).stdout)[0]


def test_version_and_usage_errors() -> None:
    version = run("--version")
    assert (version.exit_code, version.stdout) == (0, f"pinscan, version {pinscan.__version__}\n")
    assert run("pin").exit_code == 2
    assert run("pin", "--format", "xml", "x").exit_code == 2


def test_real_process(tmp_path: Path, certifi_table: pl.DataFrame) -> None:
    missing = str(tmp_path / "missing.pem")
    done = subprocess.run(
        [sys.executable, "-m", "pinscan", "pin", "--format", "json", certifi.where(), missing],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr == f"pinscan: {missing}: no such file or directory\n"
    records = json.loads(done.stdout)
    assert [r["spki_sha256"] for r in records] == certifi_table["spki_sha256"].to_list()
    help_text = subprocess.run(
        [sys.executable, "-m", "pinscan", "pin", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert help_text.startswith("Usage: pinscan pin [OPTIONS] FILE...")
