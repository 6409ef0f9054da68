# SPDX-License-Identifier: Apache-2.0
"""One monitoring run: every log in parallel, each verified before anything it says is used.

Per log: verify the tree head's signature; refuse a tree smaller than the verified one, or of the
same size with another root; fetch the new entries in order, hashing them into the compact range
and collecting alerts; compare the recomputed root with the signed one; only then record the
alerts and the new position (alerts first, see :mod:`pinscan.ct.state`).

A long catch-up saves its unverified progress (compact range, target tree head, alerts held back)
now and then and when the log stops answering, so the next run continues where it stopped rather
than fetching everything again; those alerts are reported only once the target's root is
recomputed. A failed verification drops the progress and leaves the verified position where it
was, so the next run fetches those entries again.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import anyio
import httpx
import polars as pl

from pinscan.ct import crtsh
from pinscan.ct.fetch import Fetcher, FetchPolicy
from pinscan.ct.loglist import RFC6962, Log
from pinscan.ct.merkle import EMPTY_ROOT, CompactRange
from pinscan.ct.rfc6962 import Rfc6962Client
from pinscan.ct.signatures import TreeHead
from pinscan.ct.state import Progress, StateDir, Verified
from pinscan.ct.tiles import StaticClient
from pinscan.ct.watch import ALERT_SCHEMA, Watchlist, alerts
from pinscan.errors import FetchError, LogError, PinscanError

#: Rows collected before the watchlist is matched against them.
MATCH_ROWS = 8192
#: A catch-up saves its unverified progress after this many entries or seconds, whichever comes
#: first: a killed run loses at most that much download work.
PROGRESS_ENTRIES = 100_000
PROGRESS_SECONDS = 60.0


@dataclass(frozen=True)
class Options:
    """What to look for and how politely."""

    watchlist: Watchlist
    allowed: frozenset[str]
    start_at_end: bool = False
    fetch: FetchPolicy = field(default_factory=FetchPolicy)
    crtsh_url: str | None = None


@dataclass
class LogReport:
    """What one log's run did: the verified range ``[start, end)``, entries the core could not
    read, new alerts, or the error that stopped it."""

    log: Log
    start: int = 0
    end: int = 0
    unreadable: int = 0
    alerts: int = 0
    error: str | None = None


@dataclass
class RunResult:
    """New alerts of the run (not seen by any earlier run), per-log reports, errors."""

    alerts: pl.DataFrame
    reports: list[LogReport]
    errors: list[str]


class _Committer:
    """Serializes commits so that one issuance seen in two logs (or as precertificate and
    certificate) makes one alert. A part being rewritten after an interrupted run does not count
    as known: its alerts are reported again, since that run never finished."""

    def __init__(self, state: StateDir) -> None:
        self.state = state
        self.lock = anyio.Lock()
        self.parts = {name: set(frame["tbs_sha256"]) for name, frame in state.alert_parts().items()}
        self.new: list[pl.DataFrame] = []

    def fresh(self, part: str, found: pl.DataFrame) -> pl.DataFrame:
        known = set().union(*(tbs for name, tbs in self.parts.items() if name != part))
        return found.filter(~pl.col("tbs_sha256").is_in(list(known)))

    def record(self, part: str, found: pl.DataFrame) -> None:
        if not found.is_empty():
            self.state.write_alerts(part, found)
            self.parts[part] = set(found["tbs_sha256"])
            self.new.append(found)


async def run(logs: Sequence[Log], state: StateDir, options: Options) -> RunResult:
    """Monitors every log once, up to its current signed tree head."""
    committer = _Committer(state)
    reports = [LogReport(log) for log in logs]
    errors: list[str] = []
    async with httpx.AsyncClient(follow_redirects=True) as client:

        async def one(report: LogReport) -> None:
            try:
                await _monitor_log(
                    report, Fetcher(client, options.fetch), state, options, committer
                )
            except PinscanError as exc:
                report.error = f"{report.log.label}: {exc}"
                errors.append(report.error)

        async def backfill(url: str) -> None:
            try:
                previous = state.crtsh_seen()
                found, seen = await crtsh.backfill(
                    Fetcher(client, options.fetch),
                    url,
                    options.watchlist,
                    options.allowed,
                    previous,
                )
            except PinscanError as exc:
                errors.append(f"crt.sh ({url}): {exc}")
                return
            async with committer.lock:
                part = f"crtsh-{len(previous):012d}"
                committer.record(part, committer.fresh(part, found))
                state.save_crtsh_seen(seen)

        async with anyio.create_task_group() as tg:
            for report in reports:
                tg.start_soon(one, report)
            if options.crtsh_url:
                tg.start_soon(backfill, options.crtsh_url)
    new = pl.concat(committer.new) if committer.new else pl.DataFrame(schema=ALERT_SCHEMA)
    return RunResult(new, reports, errors)


async def _monitor_log(
    report: LogReport, fetcher: Fetcher, state: StateDir, options: Options, committer: _Committer
) -> None:
    log = report.log
    client: Rfc6962Client | StaticClient = (
        Rfc6962Client(log, fetcher) if log.kind == RFC6962 else StaticClient(log, fetcher)
    )
    head = await client.tree_head()
    saved, progress = state.load_log(log)
    if saved is None and options.start_at_end:
        rng = await client.range_at(head)
        _check_root(rng, head, "the tree head's own entries")
        state.save_verified(log, Verified(head.size, head.root, head.timestamp, rng))
        report.start = report.end = head.size
        return
    report.start = report.end = saved.size if saved else 0
    if progress is not None and progress.matching != _matching(options):
        progress = None  # other watch items or allowed keys: its alerts would be wrong
    if progress is not None:
        try:
            _check_extends(progress.target.size, progress.target.root, head)
        except LogError:
            state.forget_progress(log, saved)
            raise
        if progress.target.size < head.size:
            # Finish verifying against the older target first: its entries are half fetched.
            saved = await _catch_up(
                report, client, state, options, committer, saved, progress, progress.target
            )
            progress = None
    if saved is not None:
        _check_extends(saved.size, saved.root, head)
    if head.size > (saved.size if saved else 0):
        await _catch_up(report, client, state, options, committer, saved, progress, head)


def _check_extends(size: int, root: bytes, head: TreeHead) -> None:
    """The new tree head must not contradict a tree head already trusted."""
    if head.size < size:
        raise LogError(f"tree shrank from {size} to {head.size} entries")
    if head.size == size and head.root != root:
        raise LogError(f"two different roots signed for tree size {head.size}")


def _matching(options: Options) -> str:
    """A fingerprint of what decides which entries are alerts."""
    what = [sorted(options.watchlist.subtrees), sorted(options.watchlist.exact)]
    what.append(sorted(options.allowed))
    return hashlib.sha256(json.dumps(what).encode()).hexdigest()


async def _catch_up(
    report: LogReport,
    client: Rfc6962Client | StaticClient,
    state: StateDir,
    options: Options,
    committer: _Committer,
    saved: Verified | None,
    progress: Progress | None,
    goal: TreeHead,
) -> Verified:
    """Fetches and hashes the entries from the verified position ``saved`` (or the saved progress)
    up to ``goal``, saving progress every :data:`PROGRESS_ENTRIES` entries or
    :data:`PROGRESS_SECONDS` seconds and when a fetch fails for good; only once the recomputed
    root equals the signed one are the alerts recorded and the position moved to ``goal``."""
    log = report.log
    verified = saved or Verified(0, EMPTY_ROOT, 0, CompactRange())
    rng = progress.range.copy() if progress else verified.range.copy()
    found: list[pl.DataFrame] = [progress.alerts] if progress else []
    pending: list[pl.DataFrame] = []
    last_saved, last_time = rng.size, time.monotonic()

    def match_pending() -> None:
        # Watchlist matching per few thousand rows, not per request: polars' cost is per call.
        if pending:
            rows = pl.concat(pending)
            pending.clear()
            found.append(alerts(rows, options.watchlist, options.allowed, log.description, log.url))

    def save_progress() -> None:
        nonlocal last_saved, last_time
        match_pending()
        unreported = _unique(found)
        found[:] = [unreported]
        state.save_progress(log, saved, Progress(goal, rng.copy(), unreported, _matching(options)))
        last_saved, last_time = rng.size, time.monotonic()

    if rng.size < goal.size:
        chunks = (
            client.entries(rng.size, goal.size)
            if isinstance(client, Rfc6962Client)
            else client.entries(rng.size, goal.size, goal.size)
        )
        try:
            async for first, rows in chunks:
                if first != rng.size:
                    raise LogError(f"entries out of order: got {first}, expected {rng.size}")
                indexed = rows.with_columns(
                    index=pl.int_range(first, first + rows.height, dtype=pl.Int64)
                )
                misplaced = indexed.filter(
                    pl.col("leaf_index").is_not_null() & (pl.col("leaf_index") != pl.col("index"))
                )
                if not misplaced.is_empty():
                    raise LogError(f"entry {misplaced['index'][0]} says it is at another index")
                rng.extend(rows["leaf_hash"].to_list())
                report.unreadable += rows["spki_sha256"].null_count()
                pending.append(indexed)
                if sum(p.height for p in pending) >= MATCH_ROWS:
                    match_pending()
                if (
                    rng.size - last_saved >= PROGRESS_ENTRIES
                    or time.monotonic() - last_time >= PROGRESS_SECONDS
                ):
                    save_progress()
        except FetchError:
            # The log stopped answering: keep what was fetched for the next run.
            if rng.size > last_saved:
                save_progress()
            raise
    match_pending()
    try:
        _check_root(rng, goal, f"entries {verified.size} to {goal.size - 1}")
    except LogError:
        state.forget_progress(log, saved)
        raise

    async with committer.lock:
        part = f"{log.id_hex[:16]}-{verified.size:012d}"
        fresh = committer.fresh(part, _unique(found))
        if isinstance(client, StaticClient):
            for sha in fresh["issuer_sha256"].drop_nulls().unique().to_list():
                if state.issuer(sha) is None:
                    state.save_issuer(sha, await client.issuer(sha))
        committer.record(part, fresh)
        now = Verified(goal.size, goal.root, goal.timestamp, rng)
        state.save_verified(log, now)
    report.end = goal.size
    report.alerts += fresh.height
    return now


def _unique(found: list[pl.DataFrame]) -> pl.DataFrame:
    """One row per issuance, the first seen (a precertificate and its certificate share it)."""
    if not found:
        return pl.DataFrame(schema=ALERT_SCHEMA)
    return pl.concat(found).unique("tbs_sha256", keep="first", maintain_order=True)


def _check_root(rng: CompactRange, head: TreeHead, what: str) -> None:
    if rng.root() != head.root:
        raise LogError(
            f"root mismatch: {what} hash to {rng.root().hex()}, the log signed "
            f"{head.root.hex()} for size {head.size}"
        )
