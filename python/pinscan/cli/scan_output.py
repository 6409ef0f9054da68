# SPDX-License-Identifier: Apache-2.0
"""What ``pinscan scan`` prints: the progress of each endpoint (``--jsonl`` rows as they come), the
endpoints themselves when nothing is kept (no ``-o``), and the closing summary. Imported when the
command runs, not for its ``--help``."""

from __future__ import annotations

import contextlib
import json
import queue
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import click
import polars as pl
from rich.console import Console
from rich.markup import escape

from pinscan.certs.table import certificates
from pinscan.cli import exits
from pinscan.cli.scan_summary import json_value
from pinscan.dataset import ScanDataset
from pinscan.dataset.schema import ENDPOINTS_SCHEMA
from pinscan.records import TRUST_STORES, Endpoint

#: The leaf's columns that ``--jsonl`` rows and the printed endpoints add to the endpoint's.
_LEAF_COLUMNS = ("subject", "issuer", "not_after")


@contextlib.contextmanager
def nothing_to_resume() -> Iterator[None]:
    """Ctrl-C without -o: the CLI's usual advice, `--resume`, has nothing to resume."""
    try:
        yield
    except KeyboardInterrupt:
        click.echo("pinscan: interrupted; nothing was kept (without -o)", err=True)
        raise SystemExit(exits.INTERRUPTED) from None


class JsonLines:
    """``--jsonl``: one JSON object per endpoint on stdout, as it is scanned. A thread of its own
    parses the leaves (in the Rust core, a batch at a time) and encodes the rows, off the scan's
    event loop: when endpoints come faster than one at a time, they go out in batches."""

    #: Endpoints waiting at most: past it, the scan waits for stdout, as a write would.
    _QUEUED = 4096
    _BATCH = 1024

    def __init__(self) -> None:
        self._queue: queue.Queue[Endpoint | None] = queue.Queue(maxsize=self._QUEUED)
        self._error: Exception | None = None
        self._thread = threading.Thread(target=self._run, name="pinscan-jsonl", daemon=True)
        self._thread.start()

    def put(self, endpoint: Endpoint) -> None:
        if self._error is not None:
            raise self._error  # a closed pipe (`| head`), in the scan, which stops
        self._queue.put(endpoint)

    def close(self) -> None:
        """Writes what is queued; raises what writing raised."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while batch[-1] is not None and len(batch) < self._BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            endpoints = [e for e in batch if e is not None]
            # After an error the queue is still emptied, so that the scan never waits on it.
            if endpoints and self._error is None:
                try:
                    rows = json_rows(endpoints)
                    lines = (json.dumps(r, default=json_value) + "\n" for r in rows)
                    sys.stdout.write("".join(lines))
                    sys.stdout.flush()
                except Exception as exc:  # raised in the scan by the next put()
                    self._error = exc
            if batch[-1] is None:
                return


def json_rows(endpoints: list[Endpoint]) -> list[dict[str, Any]]:
    """``--jsonl`` rows: the ``endpoints`` table's columns, the leaf's subject, issuer and
    ``not_after``, and the presented and verified chains, and each store's path
    (``store_paths``: store, verified, chain), as ``cert_sha256`` and ``spki_sha256`` (the pin)
    of each certificate, leaf first. The certificates are read by the Rust core."""
    ders = list(
        dict.fromkeys(
            d
            for e in endpoints
            for d in (*e.presented, *e.verified_chain, *(d for p in e.store_paths for d in p[2]))
        )
    )
    columns = ("cert_sha256", "spki_sha256", *_LEAF_COLUMNS)
    parsed = certificates(ders).select(columns).iter_rows() if ders else ()
    info = dict(zip(ders, parsed, strict=True))
    rows = []
    for e in endpoints:
        leaf = info[e.presented[0]] if e.presented else (None,) * len(columns)
        row = {}
        for name in ENDPOINTS_SCHEMA.names():
            if name == "endpoint_id":
                row[name] = e.endpoint_id
            elif name == "leaf_sha256":
                row[name] = leaf[0]
            elif name == "spki_sha256":
                row[name] = leaf[1]
            elif name not in ("scan_id", "store_paths"):
                row[name] = getattr(e, name)
        row.update(zip(_LEAF_COLUMNS, leaf[2:], strict=True))

        def described(chain: Sequence[bytes]) -> list[dict[str, Any]]:
            return [{"cert_sha256": info[d][0], "spki_sha256": info[d][1]} for d in chain]

        row["presented"] = described(e.presented)
        row["verified_chain"] = described(e.verified_chain)
        row["store_paths"] = [
            {"store": store, "verified": ok, "chain": described(path)}
            for store, ok, path in e.store_paths
        ]
        rows.append(row)
    return rows


def endpoint_rows(ds: ScanDataset, results: pl.DataFrame | None) -> list[dict[str, Any]]:
    """The endpoints printed without -o, in inventory order: the ``endpoints`` table's columns,
    the leaf's subject, issuer and ``not_after``, and with policies the verdicts each got."""
    leaves = ds.certificates.select(
        pl.col("cert_sha256").alias("leaf_sha256"), *_LEAF_COLUMNS
    ).unique("leaf_sha256", keep="any")
    frame = ds.endpoints.drop("scan_id").join(leaves, on="leaf_sha256", how="left")
    if results is not None:
        verdicts = (
            results.lazy()
            .group_by("endpoint_id")
            .agg(pin_verdicts=pl.col("verdict").cast(pl.String).unique().sort())
        )
        frame = frame.join(verdicts, on="endpoint_id", how="left")
    return frame.sort("line", "port", "ip", nulls_last=True).collect().to_dicts()


def print_endpoints(rows: list[dict[str, Any]], verdicts: bool) -> None:
    """The endpoints on stdout, a few lines each, which read at any width: a line with the
    target, address, status and TLS version, then the leaf's pin (whole, for a copy and paste),
    subject, expiry, verification and, with policies, the verdicts."""
    # soft_wrap: long lines are the terminal's to wrap; a pin is never cut.
    console = Console(highlight=False, soft_wrap=True)
    for i, r in enumerate(rows):
        style = "green" if r["status"] == "ok" else "red"
        status = f"[{style}]{r['status']}[/]" + (f": {escape(r['error'])}" if r["error"] else "")
        address = _address(r)
        if address == r["target"]:
            address = ""  # `ip:port` said twice
        if r.get("starttls") and not r["target"].startswith(f"{r['starttls']}://"):
            # --starttls: the protocol the target does not say
            address = f"{address} ({r['starttls']})".strip()
        head = [f"[bold]{escape(r['target'])}[/]", address, status, r["tls_version"] or ""]
        console.print(("\n" if i else "") + "  ".join(part for part in head if part))
        details = {
            "leaf pin": r["spki_sha256"],
            "subject": r["subject"],
            "expires": _expires(r),
            "verified": _verified(r),
            "pins": ", ".join(r["pin_verdicts"] or []) if verdicts else None,
        }
        for label, value in details.items():
            if value:
                console.print(f"  {label:<9} {escape(value)}")


def _address(r: dict[str, Any]) -> str:
    ip = r["ip"]
    if ip is None:  # not resolved, or not a target at all
        return ""
    return f"[{ip}]:{r['port']}" if ":" in ip else f"{ip}:{r['port']}"


def _expires(r: dict[str, Any]) -> str:
    if r["not_after"] is None:
        return ""
    days = r["days_to_expiry"]
    if days is None:
        return f"{r['not_after']:%Y-%m-%d}"
    left = f"{days} days" if days >= 0 else f"expired {-days} days ago"
    return f"{r['not_after']:%Y-%m-%d} ({left})"


def _verified(r: dict[str, Any]) -> str:
    if r["verified"] is None:
        return ""
    if not r["verified"]:
        return f"no: {r['verify_error']}" if r["verify_error"] else "no"
    if r["hostname_match"] is False:
        return "no: the certificate does not match the name"
    verdict = f"yes ({r['trust_store']})" if r["trust_store"] else "yes"
    # A public chain that a platform's store does not anchor fails on that platform (a private
    # one, anchored by --ca-bundle only, is in no platform's store, as expected).
    refusing = [p["store"] for p in r.get("store_paths") or () if not p["verified"]]
    if r["trust_store"] in TRUST_STORES and refusing:
        return f"{verdict}; not in {', '.join(refusing)}"
    return verdict
