# SPDX-License-Identifier: Apache-2.0
"""Certificates to a polars DataFrame, through the Rust core and the Arrow C stream interface."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import polars as pl

from pinscan import _core

#: The columns of :func:`certificates`, in order (``spki_sha1`` only with ``sha1=True``).
COLUMNS: tuple[str, ...] = tuple(_core.parse_certificates([], sha1=True).column_names)


def certificates(
    ders: Iterable[bytes | None] | Any,
    *,
    threads: int | None = None,
    sha1: bool = False,
) -> pl.DataFrame:
    """Parse DER certificates into one row each, in input order.

    A malformed certificate never raises: its row has ``error`` set and every field that could not
    be read is null. The fingerprint (``cert_sha256``) is always present, and the pin
    (``spki_sha256``) survives broken names and extensions, since the key is found by the
    certificate's framing alone.

    Parameters
    ----------
    ders
        DER certificates: a list (or any iterable) of ``bytes``, or an Arrow binary column such as
        a ``polars.Series`` of dtype ``Binary`` or a ``pyarrow`` binary array. ``None`` (or an
        Arrow null) gives a row whose ``error`` is ``"input: null"``.
    threads
        Worker threads; by default one per core. The work runs with the GIL released.
    sha1
        Also compute ``spki_sha1``, the legacy ``sha1/`` pin OkHttp still accepts.

    Returns
    -------
    polars.DataFrame
        Columns ``cert_sha256`` (hex SHA-256 of the DER), ``spki_sha256`` (base64 SHA-256 of the
        SubjectPublicKeyInfo exactly as encoded: the pin), ``subject``, ``issuer`` (RFC 4514),
        ``serial`` (hex), ``not_before``, ``not_after`` (UTC), ``key_type``, ``key_bits``,
        ``curve``, ``sig_alg``, ``is_ca``, ``path_len``, ``dns_names``, ``ip_addresses``, ``ski``,
        ``aki``, ``sct_count``, ``error`` (null when the row is complete) and ``error_kind`` (the
        first problem's stable slug, one of ``pinscan._core.ERROR_KINDS``).

    Examples
    --------
    >>> import certifi, pinscan
    >>> ders = pinscan.read_certificates(certifi.where())
    >>> df = pinscan.certificates(ders)
    >>> df.height == len(ders) and df["error"].null_count() == df.height
    True
    """
    return pl.DataFrame(_core.parse_certificates(ders, threads=threads, sha1=sha1))
