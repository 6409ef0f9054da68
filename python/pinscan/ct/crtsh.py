# SPDX-License-Identifier: Apache-2.0
"""Optional backfill from crt.sh: what was issued before the monitor started watching.

crt.sh has no proofs, lags behind the logs, caps answers at 10,000 rows and often times out, so
its results are alerts with ``verified = false``, fetched behind the same retries as the logs; a
failure is reported and leaves the log results alone. Its JSON carries no key, so each new
certificate is downloaded (``?d=<id>``) and parsed by the Rust core like a log entry.
"""

from __future__ import annotations

import polars as pl

from pinscan.certs.keys import read_certificates
from pinscan.ct import entries
from pinscan.ct.fetch import Fetcher
from pinscan.ct.watch import Watchlist, alerts
from pinscan.errors import FetchError, PinscanError

DEFAULT_URL = "https://crt.sh/"


def queries(watchlist: Watchlist) -> list[str]:
    """crt.sh identity queries covering the watchlist: a subtree needs the apex and ``%.``."""
    out = []
    for domain in watchlist.subtrees:
        out += [domain, f"%.{domain}"]
    return out + list(watchlist.exact)


async def backfill(
    fetcher: Fetcher,
    base_url: str,
    watchlist: Watchlist,
    allowed: frozenset[str],
    seen: set[int],
) -> tuple[pl.DataFrame, set[int]]:
    """Alerts for certificates crt.sh knows and ``seen`` does not hold, and the ids looked at."""
    ids: set[int] = set()
    for query in queries(watchlist):
        response = await fetcher.get(base_url, {"q": query, "output": "json", "exclude": "expired"})
        assert response is not None
        try:
            rows = response.json()
            ids.update(int(row["id"]) for row in rows)
        except (ValueError, KeyError, TypeError) as exc:
            raise FetchError(f"{base_url}?q={query}: not crt.sh JSON: {exc}") from exc
    new = sorted(ids - seen)
    ders, found = [], []
    for crtsh_id in new:
        response = await fetcher.get(base_url, {"d": crtsh_id})
        assert response is not None
        try:
            ders.append(read_certificates(response.content)[0])
        except PinscanError as exc:
            raise FetchError(f"{base_url}?d={crtsh_id}: {exc}") from exc
        found.append(crtsh_id)
    rows = entries.parse_certificates(ders).with_columns(index=pl.Series(found, dtype=pl.Int64))
    found_alerts = alerts(rows, watchlist, allowed, "crt.sh", base_url, verified=False)
    return found_alerts, seen | set(found)
