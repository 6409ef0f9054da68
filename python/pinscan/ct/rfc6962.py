# SPDX-License-Identifier: Apache-2.0
"""The RFC 6962 read API: ``get-sth`` (signature verified), ``get-entries`` looping on what the
log actually returns (logs cap batches, and say so only by returning fewer), and
``get-entry-and-proof`` for a first run that starts at the end of the log.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import AsyncIterator
from typing import Any

import polars as pl

from pinscan.ct import entries
from pinscan.ct.fetch import Fetcher, gather
from pinscan.ct.loglist import Log
from pinscan.ct.merkle import CompactRange, leaf_hash
from pinscan.ct.signatures import TreeHead, verify_sth
from pinscan.errors import FetchError


class Rfc6962Client:
    """Reads one RFC 6962 log through a :class:`Fetcher`."""

    def __init__(self, log: Log, fetcher: Fetcher) -> None:
        self.log = log
        self.fetcher = fetcher
        # The largest batch the log has been seen to return; parallel chunks use it so that each
        # request can be answered in full.
        self.batch = log.batch_size

    async def _json(self, path: str, params: dict[str, int | str] | None = None) -> Any:
        response = await self.fetcher.get(self.log.url + path, params)
        assert response is not None
        try:
            return response.json()
        except ValueError as exc:
            raise FetchError(f"{response.url}: not JSON: {exc}") from exc

    async def tree_head(self) -> TreeHead:
        sth = await self._json("ct/v1/get-sth")
        try:
            size, timestamp = int(sth["tree_size"]), int(sth["timestamp"])
            root = _b64(sth["sha256_root_hash"])
            signature = _b64(sth["tree_head_signature"])
        except (KeyError, TypeError, ValueError) as exc:
            raise FetchError(f"{self.log.url}ct/v1/get-sth: malformed: {exc}") from exc
        return verify_sth(self.log.key, size, timestamp, root, signature)

    async def _range(self, start: int, end: int) -> tuple[list[bytes], list[bytes]]:
        """Entries ``[start, end)``, in as many requests as the log's cap needs."""
        leaves: list[bytes] = []
        extras: list[bytes] = []
        position = start
        while position < end:
            want = min(end, position + self.batch)
            body = await self._json("ct/v1/get-entries", {"start": position, "end": want - 1})
            got = body.get("entries") if isinstance(body, dict) else None
            if not isinstance(got, list) or not got:
                raise FetchError(f"{self.log.url}: get-entries {position}-{want - 1} gave nothing")
            got = got[: want - position]
            try:
                leaves.extend(_b64(e["leaf_input"]) for e in got)
                extras.extend(_b64(e["extra_data"]) for e in got)
            except (KeyError, TypeError, ValueError) as exc:
                raise FetchError(f"{self.log.url}: get-entries: malformed entry: {exc}") from exc
            if len(got) < want - position:
                self.batch = max(1, min(self.batch, len(got)))
            position += len(got)
        return leaves, extras

    async def entries(self, start: int, end: int) -> AsyncIterator[tuple[int, pl.DataFrame]]:
        """Parsed entries of ``[start, end)`` in order, as ``(first index, rows)`` chunks. Up to
        ``parallel`` chunks are fetched at once; they are handed over in log order."""
        position = start
        while position < end:
            size = self.batch
            bounds = []
            for _ in range(self.fetcher.policy.parallel):
                if position >= end:
                    break
                bounds.append((position, min(end, position + size)))
                position = bounds[-1][1]
            results = await gather([functools.partial(self._range, lo, hi) for lo, hi in bounds])
            for (lo, _), (leaves, extras) in zip(bounds, results, strict=True):
                yield lo, entries.parse_leaves(leaves, extras)

    async def range_at(self, head: TreeHead) -> CompactRange:
        """The compact range of ``[0, head.size)`` from the proof of the tree's last leaf."""
        if head.size == 0:
            return CompactRange()
        body = await self._json(
            "ct/v1/get-entry-and-proof", {"leaf_index": head.size - 1, "tree_size": head.size}
        )
        try:
            leaf = _b64(body["leaf_input"])
            path = [_b64(h) for h in body["audit_path"]]
            return CompactRange.from_last_leaf_proof(head.size, leaf_hash(leaf), path)
        except (KeyError, TypeError, ValueError) as exc:
            raise FetchError(f"{self.log.url}: get-entry-and-proof: malformed: {exc}") from exc


def _b64(value: Any) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, TypeError) as exc:
        raise ValueError(f"not base64: {exc}") from exc
