# SPDX-License-Identifier: Apache-2.0
"""The tables of a scan dataset and their column types, fixed here so that every part file of a
scan, and every scan, reads back with the same schema."""

from __future__ import annotations

import polars as pl

from pinscan.certs.table import certificates
from pinscan.dataset.names import (
    ADDED_LATER,
    CERTIFICATES,
    CHAIN_SOURCES,
    CHAINS,
    ENDPOINTS,
    FORMAT,
    META_FILE,
    PIN_RESULTS,
    SCAN_TABLES,
    TABLES,
)
from pinscan.records import STATUSES

UTC_TIME = pl.Datetime("us", "UTC")
STATUS = pl.Enum(list(STATUSES))
CHAIN_SOURCE = pl.Enum(list(CHAIN_SOURCES))
#: One trust store's answer for an endpoint's chain: whether it verifies it, and the path it
#: builds (``cert_sha256`` of each certificate, leaf first): null when that path is the
#: endpoint's verified chain (the ``chains`` table's ``verified`` rows: most stores build the
#: same one), empty when the store does not verify the chain.
STORE_PATH = pl.Struct({"store": pl.String, "verified": pl.Boolean, "chain": pl.List(pl.String)})

ENDPOINTS_SCHEMA = pl.Schema(
    {
        "endpoint_id": pl.String,
        "target_id": pl.String,
        "line": pl.Int64,
        "target": pl.String,
        "host": pl.String,
        "ip": pl.String,
        "port": pl.Int32,
        "sni": pl.String,
        "status": STATUS,
        "error": pl.String,
        # The protocol spoken before TLS (pinscan.records.STARTTLS: smtp, imap, ...); null for
        # plain TLS, and in datasets written before pinscan spoke STARTTLS.
        "starttls": pl.String,
        "attempts": pl.Int16,
        "tls_version": pl.String,
        "cipher": pl.String,
        "alpn": pl.String,
        # The TLS engine that gave the result (rustls, openssl); null where no handshake was
        # tried, and in datasets written before pinscan had two.
        "engine": pl.String,
        "resolve_ms": pl.Float64,
        "connect_ms": pl.Float64,
        "handshake_ms": pl.Float64,
        # The leaf the endpoint presented: its fingerprint and its pin, for joins without chains.
        "leaf_sha256": pl.String,
        "spki_sha256": pl.String,
        "verified": pl.Boolean,
        # A kind of pinscan.records.VERIFY_ERRORS (free text in datasets written before it), and
        # the certificate at fault with pyca's message (null in those datasets).
        "verify_error": pl.String,
        "verify_detail": pl.String,
        "trust_store": pl.String,
        "hostname_match": pl.Boolean,
        "days_to_expiry": pl.Int32,
        "scan_id": pl.String,
        "scanned_at": UTC_TIME,
        # Every store the scan verified against, in its order (``trust_store`` is the first
        # that verifies); null in datasets written before pinscan kept them, and for endpoints
        # whose chain no path was built for (none served, malformed, no usable name).
        "store_paths": pl.List(STORE_PATH),
    }
)

CHAINS_SCHEMA = pl.Schema(
    {
        "endpoint_id": pl.String,
        "source": CHAIN_SOURCE,
        "position": pl.Int16,
        "cert_sha256": pl.String,
        "scan_id": pl.String,
    }
)


#: Pin verdicts, in the order reports list them (see ``pinscan.policy.evaluate``).
VERDICTS = ("pass", "fail", "report-only", "expired", "error", "no_chain", "unpinned")
VERDICT = pl.Enum(list(VERDICTS))

PIN_RESULTS_SCHEMA = pl.Schema(
    {
        "endpoint_id": pl.String,
        "target": pl.String,
        "name": pl.String,
        "ip": pl.String,
        "port": pl.Int32,
        "policy": pl.String,
        "format": pl.String,
        "rule": pl.String,
        "rule_location": pl.String,
        "verdict": VERDICT,
        "matched_pin": pl.String,
        "matched_position": pl.Int16,
        "matched_sent": pl.Boolean,
        "chain": pl.String,
        "expires": UTC_TIME,
        "enforce": pl.Boolean,
        "note": pl.String,
        # The trust store whose path judged the verdict (see pinscan.policy.evaluate); null when
        # no chain was judged (unpinned, no_chain, a rejected policy) and in older datasets.
        "store": pl.String,
    }
)


def certificates_schema() -> pl.Schema:
    """The Rust core's columns, the DER itself, and the scan that first saw the certificate."""
    core = certificates([]).schema
    return pl.Schema({**core, "der": pl.Binary, "scan_id": pl.String})


def empty(schema: pl.Schema) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


__all__ = [
    "ADDED_LATER",
    "CERTIFICATES",
    "CHAINS",
    "CHAINS_SCHEMA",
    "ENDPOINTS",
    "ENDPOINTS_SCHEMA",
    "FORMAT",
    "META_FILE",
    "PIN_RESULTS",
    "PIN_RESULTS_SCHEMA",
    "SCAN_TABLES",
    "STORE_PATH",
    "TABLES",
    "VERDICT",
    "VERDICTS",
    "certificates_schema",
    "empty",
]
