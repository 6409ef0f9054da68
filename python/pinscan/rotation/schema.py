# SPDX-License-Identifier: Apache-2.0
"""The rotation tables' columns and the scenario vocabulary, stated once.

``lockout``: one row per (endpoint, policy, scenario) for every endpoint a policy's rule covers;
``headroom``: one row per such (endpoint, policy), how much margin its pins leave.
"""

from __future__ import annotations

import polars as pl

from pinscan.dataset.schema import VERDICT

#: Every kind of scenario, in the order the matrix shows them. A scenario is named by its kind,
#: plus ``:<CA>`` (``sibling``), ``:<family>`` (``switch``) or ``:<key>`` (``backup_key`` when
#: several spare keys are given).
KINDS = ("renew_same_key", "renew_new_key", "sibling", "switch", "backup_key", "root_removed")
#: The kinds that happen at a renewal without anyone choosing them: they gate by default.
ROUTINE = ("renew_new_key", "sibling")
#: What a scenario does to a pinned client: it ``survives`` (the pins accept the new chain; a
#: report-only rule that only reports survives too), ``locks_out`` (the pins reject it),
#: ``unpinned`` (no rule is enforced for the name: nothing to lock out) or ``untrusted`` (the new
#: chain does not build in the platform's store at all, so the client refuses it whatever its
#: pins say, e.g. a removed root with no cross-sign the catalog knows).
OUTCOMES = ("survives", "locks_out", "unpinned", "untrusted")
#: The worst outcome wins where several are folded into one (a matrix cell, a scenario): one
#: endpoint locked out is an app locked out.
SEVERITY = {"locks_out": 3, "untrusted": 2, "survives": 1, "unpinned": 0}
#: Each kind's place in :data:`KINDS`, to order scenarios as the matrix shows them.
KIND_RANK = {kind: rank for rank, kind in enumerate(KINDS)}
KIND = pl.Enum(list(KINDS))
OUTCOME = pl.Enum(list(OUTCOMES))
#: Where a matched pin sits in the chain.
PLACES = ("leaf", "intermediate", "root")

LOCKOUT_SCHEMA = pl.Schema(
    {
        "endpoint_id": pl.String,
        # Categorical like every column that repeats: the table has a row per scenario, and a
        # million endpoints' names once each, not ten times, keep it within memory.
        "target": pl.Categorical(),
        "name": pl.Categorical(),
        "policy": pl.Categorical(),
        "format": pl.Categorical(),
        # The store whose path judges the policy today, and whose path the scenario rebuilds.
        "store": pl.Categorical(),
        "rule": pl.Categorical(),
        "scenario": pl.Categorical(),
        "kind": KIND,
        "routine": pl.Boolean,
        "today": VERDICT,
        "verdict": VERDICT,
        "outcome": OUTCOME,
        "matched_pin": pl.Categorical(),
        "matched_position": pl.Int16,
        # The synthesized chain, leaf first, as CA names ("new leaf key > R11 > ISRG Root X1").
        "new_chain": pl.Categorical(),
    }
)

HEADROOM_SCHEMA = pl.Schema(
    {
        "endpoint_id": pl.String,
        "target": pl.String,
        "name": pl.String,
        "policy": pl.Categorical(),
        "format": pl.Categorical(),
        "store": pl.Categorical(),
        "today": VERDICT,
        # Distinct policy pins that match today's chain where their pin-sets allow.
        "pins_matched": pl.UInt32,
        "positions": pl.List(pl.Enum(list(PLACES))),
        "survives": pl.List(pl.Categorical()),
        "locks_out": pl.List(pl.Categorical()),
        # What ends today's pass first: the certificate carrying the last matching pin
        # ("leaf", "intermediate", "root") or the pin-set's own expiration ("pin-set").
        "carrier": pl.String,
        "pass_ends": pl.Datetime("us", "UTC"),
        "days_left": pl.Int32,
    }
)

__all__ = [
    "HEADROOM_SCHEMA",
    "KIND",
    "KINDS",
    "KIND_RANK",
    "LOCKOUT_SCHEMA",
    "OUTCOME",
    "OUTCOMES",
    "PLACES",
    "ROUTINE",
    "SEVERITY",
]
