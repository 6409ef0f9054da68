# SPDX-License-Identifier: Apache-2.0
"""Log entries to rows, through the Rust core (``pinscan._core.parse_ct_entries``) in batches,
with the GIL released and Arrow handed to polars without a Python object per entry.

Columns (:data:`SCHEMA`): ``leaf_hash`` (the Merkle leaf hash the root is recomputed from),
``entry_type`` (``x509`` or ``precert``), ``timestamp`` (ms), ``leaf_index`` (static-ct-api's SCT
extension), ``cert_sha256`` (hex; of the precertificate when the log gave it), ``tbs_sha256`` (hex
SHA-256 of the TBSCertificate without the poison and SCT list extensions: certificate and
precertificate of one issuance share it), ``spki_sha256`` (the base64 pin, from the certificate
or the precertificate's TBSCertificate), ``subject``, ``common_name``, ``dns_names``, ``issuer``,
``not_before``, ``not_after``, ``issuer_sha256`` (hex, first certificate of the submitted chain)
``error`` (null when the entry read completely) and ``error_kind`` (the first problem's slug,
one of ``pinscan._core.ERROR_KINDS``).
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from pinscan import _core


def _frame(kind: str, data: Sequence[bytes], extra: Sequence[bytes] | None = None) -> pl.DataFrame:
    return pl.DataFrame(_core.parse_ct_entries(kind, data, extra))


#: Column names and types of every function here.
SCHEMA: dict[str, pl.DataType] = dict(_frame("leaf", []).schema)


def parse_leaves(leaf_inputs: Sequence[bytes], extra_data: Sequence[bytes]) -> pl.DataFrame:
    """RFC 6962 ``get-entries`` results: one row per ``leaf_input``, with its ``extra_data``."""
    return _frame("leaf", leaf_inputs, extra_data)


def parse_tiles(tiles: Sequence[bytes]) -> pl.DataFrame:
    """static-ct-api data tiles: one row per entry. A tile that does not read to its end gets a
    last row whose ``error`` starts with ``tile:``."""
    return _frame("tile", tiles)


def parse_certificates(ders: Sequence[bytes]) -> pl.DataFrame:
    """DER certificates or precertificates (crt.sh): no leaf hash, timestamp or chain."""
    return _frame("certificate", ders)
