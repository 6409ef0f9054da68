# SPDX-License-Identifier: Apache-2.0
"""What to flag: entries naming a watched domain whose key is not an allowed one.

Allowed keys come from pin files, pin policies and scan datasets (the keys the fleet was seen
serving); each is a base64 SHA-256 of a SubjectPublicKeyInfo, the same digest the Rust core
computes for log entries, so the check is one polars anti-join.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pinscan.errors import InputError

#: The alerts table: one row per issuance (certificate and precertificate share a TBS hash).
ALERT_SCHEMA = {
    "log": pl.String,
    "log_url": pl.String,
    "index": pl.Int64,
    "entry_type": pl.String,
    "timestamp": pl.Datetime("ms", "UTC"),
    "names": pl.List(pl.String),
    "common_name": pl.String,
    "issuer": pl.String,
    "not_before": pl.Datetime("us", "UTC"),
    "not_after": pl.Datetime("us", "UTC"),
    "spki_sha256": pl.String,
    "cert_sha256": pl.String,
    "tbs_sha256": pl.String,
    "issuer_sha256": pl.String,
    "watch": pl.String,
    "verified": pl.Boolean,
}


@dataclass(frozen=True)
class Watchlist:
    """``example.com`` watches the domain and everything under it; ``=host.example.com`` exactly
    that name (and a wildcard certificate covering it)."""

    subtrees: tuple[str, ...]
    exact: tuple[str, ...]

    @classmethod
    def parse(cls, items: Iterable[str]) -> Watchlist:
        subtrees, exact = [], []
        for item in items:
            name = _normalize(item.removeprefix("="))
            if not name or "/" in name or " " in name:
                raise InputError("--watch", f"{item!r} is not a domain name")
            (exact if item.startswith("=") else subtrees).append(name)
        return cls(tuple(subtrees), tuple(exact))

    def prefilter(self) -> str:
        """A multi-line regex over all of an entry's names joined by newlines: cheap to run on
        every row, true for every row :meth:`match_expr` can match (and a few more)."""
        parts = [rf"(^|\.){re.escape(d)}" for d in self.subtrees]
        for host in self.exact:
            parts += [rf"^{re.escape(host)}", rf"^\*\.{re.escape(host.partition('.')[2])}"]
        return rf"(?mi)({'|'.join(parts)})\.?$"

    def match_expr(self, name: pl.Expr) -> pl.Expr:
        """The watch item a (normalized) name matches, or null."""
        expr = pl.lit(None, pl.String)
        for host in reversed(self.exact):
            parent = host.partition(".")[2]
            hit = (name == host) | (name == f"*.{parent}")
            expr = pl.when(hit).then(pl.lit(f"={host}")).otherwise(expr)
        for domain in reversed(self.subtrees):
            hit = (name == domain) | name.str.ends_with(f".{domain}")
            expr = pl.when(hit).then(pl.lit(domain)).otherwise(expr)
        return expr


def _normalize(name: str) -> str:
    return name.strip().lower().rstrip(".")


def watched(rows: pl.DataFrame, watchlist: Watchlist) -> pl.DataFrame:
    """Rows with a SAN DNS name or subject CN under the watchlist, with ``names`` (all of them)
    and ``watch`` (the first item that matched)."""
    names = pl.concat_list(
        pl.col("dns_names").fill_null(pl.lit([], pl.List(pl.String))),
        pl.col("common_name").cast(pl.String),
    ).list.drop_nulls()
    framed = (
        rows.with_row_index("_row")
        .with_columns(names.alias("names"))
        .filter(pl.col("names").list.join("\n").str.contains(watchlist.prefilter()))
    )
    hits = (
        framed.select("_row", pl.col("names").alias("_name"))
        .explode("_name")
        .with_columns(
            watchlist.match_expr(pl.col("_name").str.to_lowercase().str.strip_chars_end(".")).alias(
                "watch"
            )
        )
        .filter(pl.col("watch").is_not_null())
        .group_by("_row", maintain_order=True)
        .agg(pl.col("watch").first())
    )
    return (
        framed.join(hits, on="_row")
        .sort("_row")
        .drop("_row")
        .with_columns(pl.col("names").list.unique(maintain_order=True))
    )


def alerts(
    rows: pl.DataFrame,
    watchlist: Watchlist,
    allowed: frozenset[str],
    log: str,
    log_url: str,
    *,
    verified: bool = True,
) -> pl.DataFrame:
    """Alerts for entries ``rows`` (parsed, with an ``index`` column): watched, key not allowed,
    one per TBS hash (the first entry of an issuance wins)."""
    hits = watched(rows, watchlist).filter(
        pl.col("spki_sha256").is_not_null() & ~pl.col("spki_sha256").is_in(list(allowed))
    )
    return (
        # An entry whose TBSCertificate cannot be re-framed is deduplicated by its own hash.
        hits.with_columns(tbs_sha256=pl.coalesce("tbs_sha256", "cert_sha256"))
        .unique("tbs_sha256", keep="first", maintain_order=True)
        .with_columns(
            log=pl.lit(log),
            log_url=pl.lit(log_url),
            timestamp=pl.from_epoch(pl.col("timestamp"), "ms").dt.replace_time_zone("UTC"),
            verified=pl.lit(verified),
        )
        .select([pl.col(c).cast(t) for c, t in ALERT_SCHEMA.items()])
    )


# --- allowed keys ---------------------------------------------------------------------------


def pin_from_text(text: str) -> str:
    """A pin in base64 (``sha256/`` prefix optional) or hex, as canonical base64."""
    text = text.strip().removeprefix("sha256/").removeprefix("pin-sha256=").strip('"')
    try:
        raw = bytes.fromhex(text) if len(text) == 64 else base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        raw = b""
    if len(raw) != 32:
        raise ValueError(f"{text!r} is not a SHA-256 pin (44 base64 or 64 hex characters)")
    return base64.b64encode(raw).decode()


def pins_from_file(path: Path) -> set[str]:
    """One pin per line; blank lines and ``#`` comments are skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), f"cannot read: {exc}") from exc
    pins = set()
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if text:
            try:
                pins.add(pin_from_text(text))
            except ValueError as exc:
                raise InputError(f"{path}:{number}", str(exc)) from exc
    return pins


def pins_from_policy(path: Path) -> set[str]:
    """Every SHA-256 pin of every rule of a policy file, in any format pinscan reads."""
    # Lazy for start-up time, as in pins_from_dataset: the policy readers and the dataset code
    # (pyarrow) load only for the allowed keys they give; `import pinscan.ct` does without them.
    from pinscan.policy import load_policies

    return {
        pin.digest
        for policy in load_policies(path)
        for rule in policy.rules
        for pin in rule.pins
        if pin.algorithm == "sha256"
    }


def pins_from_dataset(path: Path) -> set[str]:
    """Every key a scan saw served (the ``certificates`` table of a dataset)."""
    from pinscan.dataset import open as open_dataset  # lazy for start-up time: see above

    frame = open_dataset(path).certificates.select("spki_sha256").drop_nulls().unique().collect()
    return set(frame["spki_sha256"].to_list())
