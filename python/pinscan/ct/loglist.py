# SPDX-License-Identifier: Apache-2.0
"""Chrome's v3 log list (``operators[].logs`` for RFC 6962, ``operators[].tiled_logs`` for
static-ct-api) from a file or URL, and single logs given on the command line.

Only what the monitor needs is kept: where to read, the key that signs, and the state. Logs that
are pending, rejected or retired are skipped by default: they are not trusted by browsers, so a
certificate only they hold does not work in an attack.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from pinscan.ct.signatures import LogKey
from pinscan.errors import InputError, PinscanError

#: Log states worth monitoring: browsers accept (or accepted, for readonly) their SCTs.
MONITORED_STATES = frozenset({"qualified", "usable", "readonly"})
RFC6962, STATIC = "rfc6962", "static"


@dataclass(frozen=True)
class Log:
    """One log. ``url`` is the RFC 6962 base URL or the static-ct-api monitoring prefix;
    ``origin`` is the checkpoint origin line (the submission prefix without scheme), when known."""

    description: str
    kind: str
    url: str
    key: LogKey
    state: str = "usable"
    origin: str | None = None
    batch_size: int = 1000

    @property
    def id_hex(self) -> str:
        return self.key.log_id.hex()

    @property
    def label(self) -> str:
        return f"{self.description} ({self.url})"


def origin_of(submission_url: str) -> str:
    """``https://log.example/2026h1/`` -> ``log.example/2026h1``: static-ct-api's origin line."""
    return submission_url.split("://", 1)[-1].rstrip("/")


def parse_log_list(data: Any, source: str, states: frozenset[str] = MONITORED_STATES) -> list[Log]:
    """The logs of a v3 log list whose state is in ``states``, RFC 6962 and tiled alike."""
    if not isinstance(data, dict) or not isinstance(data.get("operators"), list):
        raise InputError(source, "not a v3 log list (no 'operators' array)")
    logs = []
    for operator in data["operators"]:
        for kind, section in ((RFC6962, "logs"), (STATIC, "tiled_logs")):
            for entry in operator.get(section) or []:
                try:
                    log = _log_entry(entry, kind)
                except (KeyError, TypeError, ValueError, PinscanError) as exc:
                    name = entry.get("description", "?") if isinstance(entry, dict) else "?"
                    raise InputError(source, f"log {name!r}: {exc}") from exc
                if log.state in states:
                    logs.append(log)
    return logs


def _log_entry(entry: dict[str, Any], kind: str) -> Log:
    state = next(iter(entry.get("state") or {"usable": {}}))
    key = LogKey.from_base64(entry["key"])
    submission = entry.get("submission_url")
    url = entry["url"] if kind == RFC6962 else entry["monitoring_url"]
    return Log(
        description=str(entry.get("description") or url),
        kind=kind,
        url=url.rstrip("/") + "/",
        key=key,
        state=state,
        origin=origin_of(submission) if submission else None,
        batch_size=int(entry.get("certspotter_download_size") or 1000),
    )


def load_log_list(location: str, states: frozenset[str] = MONITORED_STATES) -> list[Log]:
    """Reads a v3 log list from a path or an ``http(s)://`` URL."""
    try:
        if location.startswith(("http://", "https://")):
            response = httpx.get(location, timeout=30.0, follow_redirects=True)
            response.raise_for_status()
            text = response.text
        else:
            text = Path(location).read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, httpx.HTTPError, ValueError) as exc:
        raise InputError(location, f"cannot read the log list: {exc}") from exc
    return parse_log_list(data, location, states)
