# SPDX-License-Identifier: Apache-2.0
"""What a suggested pin-set survives: a lockout analysis folded to one row per scenario, for
``pinscan suggest`` to print under the file it wrote."""

from __future__ import annotations

import polars as pl

from pinscan.rotation.lockout import Analysis
from pinscan.rotation.schema import KIND_RANK, OUTCOME, OUTCOMES, SEVERITY

_COUNTED = ("locks_out", "untrusted", "unpinned")

SURVIVAL_SCHEMA = pl.Schema(
    {
        "scenario": pl.String,
        "kind": pl.String,
        "routine": pl.Boolean,
        "outcome": OUTCOME,
        "endpoints": pl.UInt32,
        # Endpoints with each outcome but ``survives``: what to read when it is not the only one.
        "locks_out": pl.UInt32,
        "untrusted": pl.UInt32,
        "unpinned": pl.UInt32,
        "detail": pl.String,
        # The chain the scenario would serve, for an endpoint with the worst outcome.
        "new_chain": pl.String,
    }
)


def survival(analysis: Analysis) -> pl.DataFrame:
    """One row per scenario of ``analysis``, in :data:`SURVIVAL_SCHEMA`, kinds in
    :data:`~pinscan.rotation.schema.KINDS` order then by name: its worst ``outcome`` among the
    endpoints (``locks_out`` > ``untrusted`` > ``survives`` > ``unpinned``) and how many
    endpoints had each."""
    rows = analysis.lockout
    if rows.is_empty():
        return pl.DataFrame(schema=SURVIVAL_SCHEMA)
    # On the enum's indices: a cast of every row to text costs more than the fold.
    by_index = {OUTCOMES.index(outcome): rank for outcome, rank in SEVERITY.items()}
    rank = pl.col("outcome").to_physical().replace_strict(by_index, return_dtype=pl.Int8)
    worst = rank == rank.max()
    count = {o: (pl.col("outcome") == o).sum().cast(pl.UInt32) for o in _COUNTED}
    folded = rows.group_by("scenario", "kind").agg(
        routine=pl.col("routine").first(),
        outcome=pl.col("outcome").filter(worst).first(),
        endpoints=pl.col("endpoint_id").n_unique().cast(pl.UInt32),
        new_chain=pl.col("new_chain").filter(worst).first(),
        **count,
    )
    folded = folded.with_columns(pl.col("scenario", "kind", "new_chain").cast(pl.String))
    details = analysis.scenarios.select("scenario", "detail")
    return (
        folded.join(details, on="scenario", how="left")
        .sort(pl.col("kind").replace_strict(KIND_RANK, return_dtype=pl.Int8), "scenario")
        .select(SURVIVAL_SCHEMA.names())
        .cast(dict(SURVIVAL_SCHEMA))
    )


__all__ = ["SURVIVAL_SCHEMA", "survival"]
