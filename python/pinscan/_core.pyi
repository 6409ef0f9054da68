# SPDX-License-Identifier: Apache-2.0
"""Type stubs of the Rust extension ``pinscan._core`` (rust/pinscan-py)."""

from collections.abc import Iterable
from typing import Any, Literal

__version__: str
#: Rows per Arrow record batch produced by :func:`parse_certificates`.
CHUNK_ROWS: int
#: Every value of the ``error_kind`` column (a stable snake_case slug), with what it means.
ERROR_KINDS: dict[str, str]

class CertificateBatch:
    """Parsed certificates as Arrow record batches (Arrow PyCapsule stream producer)."""

    @property
    def num_batches(self) -> int: ...
    @property
    def column_names(self) -> list[str]: ...
    def __len__(self) -> int: ...
    def __arrow_c_schema__(self) -> object: ...
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...

def parse_certificates(
    ders: Iterable[bytes | bytearray | None] | Any,
    *,
    threads: int | None = None,
    sha1: bool = False,
) -> CertificateBatch:
    """One row per input certificate, in order; never raises for a malformed certificate."""

def locate_spki(der: bytes) -> tuple[Literal["certificate", "csr", "public_key"], bytes]:
    """The SubjectPublicKeyInfo, exactly as encoded, in a DER certificate, CSR or bare SPKI.

    Raises ``ValueError`` saying what is wrong when ``der`` is none of these.
    """

#: An attribute of a compiled Android XML element: ``(namespace, name, resource_id, raw, kind,
#: value)``; ``kind`` is ``"string"``, ``"reference"``, ``"attribute"``, ``"int_dec"``,
#: ``"int_hex"``, ``"boolean"``, ``"color"``, ``"float"``, ``"null"`` or ``"other"``.
AndroidAttribute = tuple[str, str, int, str | None, str, str | int | bool | float | None]
#: A compiled Android XML element: ``(namespace, name, line, end_line, attributes, content)``,
#: content holding text (str) and elements in document order.
AndroidElement = tuple[str, str, int, int, list[AndroidAttribute], list[Any]]

def android_xml(data: bytes, *, proto: bool = False) -> AndroidElement:
    """The root element of compiled Android XML: binary XML (an APK's), or aapt2's ``XmlNode``
    protocol buffer (an ``.aab``'s) when ``proto``. Raises ``ValueError`` saying what is wrong
    and at which byte."""

def android_resource(
    table: bytes, id: int, *, proto: bool = False
) -> tuple[str, str, list[tuple[str, str, str | int | bool | float | None]]] | None:
    """What resource ``id`` is in ``resources.arsc`` (``resources.pb`` when ``proto``):
    ``(type, name, [(configuration, kind, value)])``, configuration ``""`` for the default; a
    file resource's value is its path. None when the table has no such resource; raises
    ``ValueError`` for a table that does not decode."""

def dex_pins(data: bytes) -> tuple[list[tuple[str, list[str]]], list[str], int]:
    """``(calls, strings, untied)`` of one DEX file: the ``(host, pins)`` of each
    ``CertificatePinner.Builder.add`` call site the bytecode ties, every ``sha256/`` and
    ``sha1/`` string of its string table, and how many call sites it does not tie. Raises
    ``ValueError`` for a file that does not decode."""

def pin_strings(
    data: bytes, *, bare: bool = False
) -> list[tuple[int, Literal["sha256", "sha1"], str, bool]]:
    """Pin strings in arbitrary bytes: ``(offset, algorithm, base64_digest, prefixed)`` for each
    ``sha256/``/``sha1/`` pin (ASCII or UTF-16LE) and, with ``bare``, each lone padded base64
    string of a SHA-256's length (``prefixed`` false: a candidate). Never raises."""

def parse_ct_entries(
    kind: Literal["leaf", "tile", "certificate"],
    data: Iterable[bytes | bytearray | None] | Any,
    extra: Iterable[bytes | bytearray | None] | Any | None = None,
    *,
    threads: int | None = None,
) -> CertificateBatch:
    """Certificate Transparency entries as rows (see ``pinscan.ct.entries``), in input order.

    ``kind="leaf"``: RFC 6962 ``leaf_input``s, ``extra`` their ``extra_data``; ``"tile"``:
    static-ct-api data tiles, one row per entry; ``"certificate"``: DER certificates and
    precertificates. Never raises for a malformed entry; raises ``ValueError`` for a bad ``kind``.
    """

class TlsEngine:
    """The rustls configuration a scan's connections share: TLS 1.3 and 1.2, X25519 first,
    ``alpn`` offered in order, no resumption, no client certificate. Build it once per scan."""

    def __init__(self, alpn: list[bytes] = ...) -> None: ...

class TlsClient:
    """One sans-IO rustls client handshake: ``output()`` the ClientHello, then ``receive`` each
    read from the server (``b""`` at its end of stream), sending what it returns, until
    ``handshaking`` is false or ``failure`` is set. Raises ``ValueError`` only when built with an
    SNI rustls cannot send."""

    def __init__(self, engine: TlsEngine, sni: str | None, address: str) -> None: ...
    def output(self) -> bytes: ...
    def receive(self, data: bytes) -> bytes: ...
    def close(self) -> bytes: ...
    @property
    def handshaking(self) -> bool: ...
    @property
    def failure(
        self,
    ) -> tuple[Literal["alert", "too_large", "incompatible", "protocol"], int | None, str] | None:
        """``(kind, alert code or None, message)`` once the handshake failed."""
    @property
    def eof(self) -> bool: ...
    @property
    def app_data(self) -> bool: ...
    @property
    def chain(self) -> list[bytes]:
        """The presented chain, leaf first, as DER, recorded when the server's Certificate
        message was processed: it survives a later alert or client-certificate demand."""
    @property
    def cert_requested(self) -> bool: ...
    @property
    def version(self) -> str | None: ...
    @property
    def cipher(self) -> str | None:
        """OpenSSL's name of the suite, as the OpenSSL engine records it."""
    @property
    def alpn(self) -> str | None: ...
