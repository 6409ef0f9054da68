# SPDX-License-Identifier: Apache-2.0
"""The platform root stores pinscan ships: Mozilla's, Android's (AOSP), Apple's, Microsoft's and
Java's (OpenJDK), each as its vendor published it at a version and date recorded in the file.

``trust_stores.parquet``, next to this module, is built by ``scripts/build_trust_stores.py`` from
the vendored data (``data/ca-sources.tar.xz``: trust_stores_observatory's lists and certificates;
sources, commits and licences in its ``data/README.md``); a test rebuilds it and compares. One row
per (store, certificate): trusted roots, and the certificates a store lists as blocked
(``blocked``: Microsoft's disallowed list, OpenJDK's blocked certificates), which are never
anchors. Nothing here reads ``data/`` at run time.

Java is OpenJDK's ``cacerts`` (jdk-17.0.2, fetched 2022-01-23) rather than Oracle's (jdk-13.0.2,
2020-01-16): it is the newer of the two, and the JVMs that run OkHttp off Android (Temurin,
Corretto, Debian's and Red Hat's OpenJDK builds) ship OpenJDK's root program since JDK 10.
Microsoft's list is the CCADB report of the roots Windows includes, for any purpose: Windows
trusts some of them for other uses than TLS servers, which the list does not say.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pinscan.errors import ConfigError, InputError
from pinscan.records import TRUST_STORES

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

FILE = Path(__file__).with_name("trust_stores.parquet")
#: The file's metadata (its footer's ``METADATA_KEY``) beside it, as the same JSON: what a scan
#: records before its first connection, read without pyarrow.
ABOUT_FILE = FILE.with_suffix(".json")
#: The key of the parquet's metadata that holds the sources and each store's version and date.
METADATA_KEY = "pinscan.trust_stores"
#: The columns of the file, in order.
COLUMNS = (
    "store",
    "store_version",
    "store_date",
    "cert_sha256",
    "blocked",
    "subject_name",
    "der",
)


def roots(store: str) -> tuple[bytes, ...]:
    """The DER of every root ``store`` trusts (its blocked certificates left out)."""
    return _roots()[known(store)]


def info() -> dict[str, Any]:
    """Where the stores come from and what each is: ``source`` (repository, commit, date),
    ``tarball_sha256``, ``built`` (the build date) and ``stores`` (per store: its file,
    platform, ``version`` (None when the vendor gives none), ``date``, ``url``, and how many
    certificates it lists as ``trusted`` and ``blocked``)."""
    return json.loads(json.dumps(_read()[1]))  # a copy the caller may change


def describe(store: str) -> str:
    """One line for a store: ``android 17.0.0_r1 (2026-06-21)``."""
    about = _about()["stores"][known(store)]
    version = f" {about['version']}" if about.get("version") else ""
    return f"{store}{version} ({about['date']})"


def trust_stores(stores: Sequence[str] | None = None) -> pl.DataFrame:
    """The shipped stores as a polars DataFrame: one row per (store, certificate) with the file's
    columns (``store``, ``store_version``, ``store_date``, ``cert_sha256``, ``blocked``,
    ``subject_name``, ``der``) and, from pinscan's core, the certificate's ``spki_sha256`` (its
    pin), ``subject`` and ``not_after`` (null for the few blocked certificates the sources list
    by fingerprint only). ``stores`` picks some of them by name.

    Examples
    --------
    >>> roots = pinscan.trust_stores(["android"]).filter(~pl.col("blocked"))  # doctest: +SKIP
    """
    import polars as pl  # lazy for start-up time: a scan reads the stores' DER alone

    from pinscan.certs.table import certificates

    wanted = list(TRUST_STORES) if stores is None else [known(s) for s in stores]
    frame = pl.from_arrow(_read()[0])
    assert isinstance(frame, pl.DataFrame)
    frame = frame.filter(pl.col("store").is_in(wanted))
    with_der = frame.filter(pl.col("der").is_not_null())
    parsed = certificates(with_der["der"].to_list()).select(
        "cert_sha256", "spki_sha256", "subject", "not_after"
    )
    return frame.join(parsed.unique("cert_sha256"), on="cert_sha256", how="left")


def known(store: str) -> str:
    """``store``, when pinscan ships a store of that name; `ConfigError` naming them if not."""
    if store not in TRUST_STORES:
        shipped = ", ".join(TRUST_STORES)
        raise ConfigError("trust store", f"no store named {store!r}; pinscan ships {shipped}")
    return store


@functools.cache
def _about() -> dict[str, Any]:
    """The file's metadata alone (`ABOUT_FILE`): what a scan records before its first
    connection, without pyarrow or the certificates."""
    try:
        meta = json.loads(ABOUT_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        reason = f"the trust stores shipped with pinscan cannot be read ({exc}); reinstall pinscan"
        raise InputError(str(ABOUT_FILE), reason) from None
    if not isinstance(meta, dict) or set(meta.get("stores", ())) != set(TRUST_STORES):
        raise InputError(str(ABOUT_FILE), "not the trust stores this pinscan expects; reinstall it")
    return meta


@functools.cache
def _read() -> tuple[pa.Table, dict[str, Any]]:
    import pyarrow.parquet as pq  # lazy for start-up time: a scan's verification child reads it

    try:
        table = pq.ParquetFile(FILE).read()  # not read_table: no pyarrow.dataset to import
        meta = json.loads(table.schema.metadata[METADATA_KEY.encode()])
    except (OSError, KeyError, TypeError, ValueError) as exc:
        reason = f"the trust stores shipped with pinscan cannot be read ({exc}); reinstall pinscan"
        raise InputError(str(FILE), reason) from None
    if tuple(table.column_names) != COLUMNS or set(meta.get("stores", ())) != set(TRUST_STORES):
        raise InputError(str(FILE), "not the trust stores this pinscan expects; reinstall it")
    return table, meta


@functools.cache
def _roots() -> dict[str, tuple[bytes, ...]]:
    table = _read()[0]
    out: dict[str, list[bytes]] = {name: [] for name in TRUST_STORES}
    rows = zip(*(table.column(c).to_pylist() for c in ("store", "blocked", "der")), strict=True)
    for store, blocked, der in rows:
        if not blocked and der is not None:
            out[store].append(der)
    return {name: tuple(ders) for name, ders in out.items()}


__all__ = ["COLUMNS", "FILE", "METADATA_KEY", "describe", "info", "roots", "trust_stores"]
