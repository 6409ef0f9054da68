# SPDX-License-Identifier: Apache-2.0
"""HTTP for one log: retries with backoff on 429, 5xx and timeouts, a request rate limit and a cap
on requests in flight. Logs and crt.sh rate-limit hard (certspotter #108); a monitor that hammers
them falls further behind, so politeness is part of correctness here.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import anyio
import httpx

from pinscan.errors import FetchError

T = TypeVar("T")
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class FetchPolicy:
    """How hard to try: ``retries`` after the first attempt, exponential backoff from
    ``backoff`` seconds (capped at ``max_backoff``, and at a server's ``Retry-After``),
    ``rate`` requests per second (0 = unlimited) and ``parallel`` requests in flight."""

    retries: int = 5
    backoff: float = 1.0
    max_backoff: float = 60.0
    timeout: float = 30.0
    rate: float = 0.0
    parallel: int = 4


class Fetcher:
    """GETs against one server with the policy applied; shared by all requests to that server."""

    def __init__(self, client: httpx.AsyncClient, policy: FetchPolicy) -> None:
        self.client = client
        self.policy = policy
        self._slots = anyio.Semaphore(policy.parallel)
        self._spacing = anyio.Lock()
        self._next_start = 0.0

    async def _wait_for_rate(self) -> None:
        if self.policy.rate <= 0:
            return
        async with self._spacing:
            now = anyio.current_time()
            start = max(now, self._next_start)
            self._next_start = start + 1.0 / self.policy.rate
        await anyio.sleep(start - now)

    async def get(
        self, url: str, params: dict[str, int | str] | None = None, *, missing_ok: bool = False
    ) -> httpx.Response | None:
        """The response to ``GET url``; ``None`` for a 404 when ``missing_ok``. Anything else that
        is not 200 after the retries raises :class:`FetchError` naming the URL."""
        attempt = 0
        while True:
            await self._wait_for_rate()
            delay: float | None = None
            try:
                async with self._slots:
                    response = await self.client.get(
                        url, params=params, timeout=self.policy.timeout
                    )
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    return response
                if response.status_code == 404 and missing_ok:
                    return None
                problem = f"HTTP {response.status_code}"
                if response.status_code not in RETRY_STATUS:
                    raise FetchError(f"{response.url}: {problem}")
                delay = _retry_after(response)
            if attempt >= self.policy.retries:
                raise FetchError(f"{url}: {problem} (after {attempt + 1} attempts)")
            backoff = min(self.policy.backoff * 2**attempt, self.policy.max_backoff)
            await anyio.sleep(backoff if delay is None else min(delay, self.policy.max_backoff))
            attempt += 1


def _retry_after(response: httpx.Response) -> float | None:
    try:
        value = float(response.headers.get("retry-after", ""))
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


async def gather(calls: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
    """Runs the calls concurrently and returns their results in call order (the first failure
    cancels the rest and propagates)."""
    results: list[T | None] = [None] * len(calls)

    async def one(i: int) -> None:
        results[i] = await calls[i]()

    try:
        async with anyio.create_task_group() as tg:
            for i in range(len(calls)):
                tg.start_soon(one, i)
    except BaseExceptionGroup as group:
        raise group.exceptions[0] from None
    return results  # type: ignore[return-value]
