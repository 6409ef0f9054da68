# SPDX-License-Identifier: Apache-2.0
"""Certificate Transparency monitoring: find certificates for your names whose key you did not
authorize, in RFC 6962 and static-ct-api logs, verified before trusted. See docs/ct.md.

>>> import pinscan.ct as ct                                            # doctest: +SKIP
>>> result = ct.monitor(["example.com"], "ct-state", allowed={"base64pin..."})
>>> result.alerts  # polars.DataFrame of new alerts; result.errors names failing logs
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import anyio

from pinscan.ct.fetch import FetchPolicy
from pinscan.ct.loglist import Log, load_log_list, parse_log_list
from pinscan.ct.monitor import LogReport, Options, RunResult, run
from pinscan.ct.signatures import LogKey
from pinscan.ct.state import StateDir
from pinscan.ct.watch import ALERT_SCHEMA, Watchlist

# Defined in pinscan.errors with every public exception; named here too, where they always were.
from pinscan.errors import LogError, SignatureError, StateError

#: Chrome's list of logs it trusts or trusted (v3 format, RFC 6962 and tiled logs).
DEFAULT_LOG_LIST = "https://www.gstatic.com/ct/log_list/v3/log_list.json"


def monitor(
    watch: Iterable[str],
    state: str | Path,
    *,
    allowed: Iterable[str] = (),
    logs: Sequence[Log] | None = None,
    log_list: str = DEFAULT_LOG_LIST,
    start_at_end: bool = False,
    fetch: FetchPolicy | None = None,
    crtsh_url: str | None = None,
) -> RunResult:
    """One monitoring run over ``logs`` (by default every monitored log of ``log_list``).

    ``watch`` items are as on the command line (``example.com``, ``=host.example.com``);
    ``allowed`` holds base64 SHA-256 SPKI pins. Returns the alerts no earlier run in ``state``
    reported; they are also appended to the state's alerts table.
    """
    options = Options(
        watchlist=Watchlist.parse(watch),
        allowed=frozenset(allowed),
        start_at_end=start_at_end,
        fetch=fetch or FetchPolicy(),
        crtsh_url=crtsh_url,
    )
    chosen = list(logs) if logs is not None else load_log_list(log_list)
    with StateDir(Path(state)) as opened:
        return anyio.run(run, chosen, opened, options)


__all__ = [
    "ALERT_SCHEMA",
    "DEFAULT_LOG_LIST",
    "FetchPolicy",
    "Log",
    "LogError",
    "LogKey",
    "LogReport",
    "Options",
    "RunResult",
    "SignatureError",
    "StateDir",
    "StateError",
    "Watchlist",
    "load_log_list",
    "monitor",
    "parse_log_list",
    "run",
]
