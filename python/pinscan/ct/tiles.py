# SPDX-License-Identifier: Apache-2.0
"""The static-ct-api read path (C2SP tlog-tiles): the signed checkpoint, data tiles (partial ones
too), hash tiles for a first run that starts at the end, and ``issuer/`` lookups.

Tiles are immutable and 256 entries wide; the rightmost ones are partial (``.p/<W>``), exist only
for checkpointed sizes and may vanish once the full tile exists, so a missing partial tile falls
back to the full one (and uses its first W entries).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import AsyncIterator

import polars as pl

from pinscan.ct import entries
from pinscan.ct.fetch import Fetcher, gather
from pinscan.ct.loglist import Log
from pinscan.ct.merkle import CompactRange, subtrees, tree_root
from pinscan.ct.signatures import TreeHead, verify_checkpoint
from pinscan.errors import FetchError

WIDTH = 256


def tile_path(level: int | str, index: int, width: int = WIDTH) -> str:
    """``tile/<L>/<N>[.p/<W>]`` with N in 3-digit groups, ``x``-prefixed but the last:
    1234067 -> ``x001/x234/067``."""
    groups = [f"{index % 1000:03d}"]
    index //= 1000
    while index:
        groups.append(f"x{index % 1000:03d}")
        index //= 1000
    path = f"tile/{level}/{'/'.join(reversed(groups))}"
    return path if width == WIDTH else f"{path}.p/{width}"


class StaticClient:
    """Reads one static-ct-api log through a :class:`Fetcher`."""

    def __init__(self, log: Log, fetcher: Fetcher) -> None:
        self.log = log
        self.fetcher = fetcher

    async def tree_head(self) -> TreeHead:
        response = await self.fetcher.get(self.log.url + "checkpoint")
        assert response is not None
        return verify_checkpoint(response.text, self.log.key, self.log.origin)

    async def _tile(self, level: int | str, index: int, width: int) -> bytes:
        """A tile of ``width`` entries (data) or hashes; a vanished partial tile is read from the
        full one."""
        if width < WIDTH:
            response = await self.fetcher.get(
                self.log.url + tile_path(level, index, width), missing_ok=True
            )
            if response is not None:
                return response.content
        response = await self.fetcher.get(self.log.url + tile_path(level, index))
        assert response is not None
        return response.content

    async def entries(
        self, start: int, end: int, size: int
    ) -> AsyncIterator[tuple[int, pl.DataFrame]]:
        """Parsed entries of ``[start, end)`` of a tree of ``size``, in order, as
        ``(first index, rows)``: ``parallel`` data tiles fetched at once and parsed in one call."""
        first, last = start // WIDTH, (end - 1) // WIDTH
        index = first
        while index <= last:
            batch = list(range(index, min(last + 1, index + self.fetcher.policy.parallel)))
            index = batch[-1] + 1
            widths = [min(WIDTH, size - n * WIDTH) for n in batch]
            blobs = await gather(
                [
                    functools.partial(self._tile, "data", n, w)
                    for n, w in zip(batch, widths, strict=True)
                ]
            )
            rows = entries.parse_tiles(blobs)
            if rows.height != sum(widths) or rows["error"].str.starts_with("tile:").any():
                # A full tile read for a vanished partial one, or a broken tile: one at a time.
                rows = pl.concat(
                    [self._tile_rows(n, w, b) for n, w, b in zip(batch, widths, blobs, strict=True)]
                )
            lo, hi = max(start, batch[0] * WIDTH), min(end, batch[-1] * WIDTH + widths[-1])
            yield lo, rows.slice(lo - batch[0] * WIDTH, hi - lo)

    def _tile_rows(self, n: int, width: int, blob: bytes) -> pl.DataFrame:
        """The first ``width`` entries of data tile ``n``, all of which must read."""
        rows = entries.parse_tiles([blob]).head(width)
        if rows.height < width or rows["error"].str.starts_with("tile:").any():
            raise FetchError(
                f"{self.log.url}{tile_path('data', n, width)}: "
                f"{rows.height} readable entries, {width} expected"
            )
        return rows

    async def range_at(self, head: TreeHead) -> CompactRange:
        """The compact range of ``[0, head.size)`` from hash tiles: a subtree of 2^k leaves is
        the root of 2^(k - 8L) consecutive hashes of a level-L tile, L = k // 8."""
        tiles: dict[tuple[int, int], list[bytes]] = {}
        hashes = []
        for start, length in subtrees(head.size):
            level = (length.bit_length() - 1) // 8
            unit = WIDTH**level
            first, count = start // unit, length // unit
            n = first // WIDTH
            if (level, n) not in tiles:
                full = head.size // (unit * WIDTH)
                width = WIDTH if n < full else (head.size // unit) % WIDTH
                blob = await self._tile(level, n, width)
                if len(blob) < 32 * width:
                    raise FetchError(f"{self.log.url}{tile_path(level, n, width)}: too short")
                tiles[level, n] = [blob[i : i + 32] for i in range(0, 32 * width, 32)]
            offset = first - n * WIDTH
            hashes.append(tree_root(tiles[level, n][offset : offset + count]))
        return CompactRange(head.size, hashes)

    async def issuer(self, sha256_hex: str) -> bytes:
        """The issuing certificate with that fingerprint, checked to hash to it."""
        response = await self.fetcher.get(f"{self.log.url}issuer/{sha256_hex}")
        assert response is not None
        if hashlib.sha256(response.content).hexdigest() != sha256_hex:
            raise FetchError(f"{self.log.url}issuer/{sha256_hex}: content has another hash")
        return response.content
