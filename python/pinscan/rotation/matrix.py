# SPDX-License-Identifier: Apache-2.0
"""The lockout table folded for reading: hosts (or domains) by scenarios, and the riskiest rules
first. Both take :data:`~pinscan.rotation.schema.LOCKOUT_SCHEMA` rows and nothing else."""

from __future__ import annotations

import polars as pl

from pinscan.policy._public_suffix import registry_length
from pinscan.rotation.schema import KIND_RANK, OUTCOMES, SEVERITY

_BY_SEVERITY = {rank: outcome for outcome, rank in SEVERITY.items()}


def matrix(lockout: pl.DataFrame, by: str = "name") -> pl.DataFrame:
    """One row per host (``by="name"``) or registrable domain (``by="domain"``) and policy, one
    column per scenario (kinds in :data:`KINDS` order, then by name), each cell the worst
    outcome among that row's endpoints (``locks_out`` > ``untrusted`` > ``survives`` >
    ``unpinned``; null where the scenario does not apply), plus ``locked_out``: how many
    scenarios lock it out. Rows that lock out most come first."""
    if by not in ("name", "domain"):
        msg = f"by must be 'name' or 'domain', not {by!r}"
        raise ValueError(msg)
    frame = lockout.with_columns(
        pl.col("scenario").cast(pl.String),
        rank=pl.col("outcome").cast(pl.String).replace_strict(SEVERITY, return_dtype=pl.Int8),
    )
    if by == "domain":
        frame = frame.with_columns(
            name=pl.col("name").map_elements(_registrable, return_dtype=pl.String)
        )
    kind_rank = pl.col("kind").cast(pl.String).replace_strict(KIND_RANK, return_dtype=pl.Int8)
    order = frame.select("scenario", "kind").unique().sort(kind_rank, "scenario")["scenario"]
    worst = frame.group_by("name", "policy", "scenario").agg(rank=pl.col("rank").max())
    if worst.is_empty():
        return pl.DataFrame(
            schema={"name": pl.String, "policy": pl.String, "locked_out": pl.UInt32}
        )
    wide = worst.pivot("scenario", index=["name", "policy"], values="rank")
    outcome = pl.Enum(list(OUTCOMES))
    return (
        wide.with_columns(
            locked_out=pl.sum_horizontal(pl.col(s) == SEVERITY["locks_out"] for s in order).cast(
                pl.UInt32
            ),
            **{s: pl.col(s).replace_strict(_BY_SEVERITY, return_dtype=outcome) for s in order},
        )
        .sort("locked_out", "name", "policy", descending=[True, False, False])
        .select("name", "policy", *order, "locked_out")
    )


def _registrable(name: str) -> str:
    """The public suffix and one label more (``api.example.co.uk`` -> ``example.co.uk``)."""
    suffix = registry_length(name)
    if suffix == 0 or suffix >= len(name):
        return name
    head = name[: len(name) - suffix - 1]
    return f"{head.rsplit('.', 1)[-1]}.{name[-suffix:]}"


def riskiest(lockout: pl.DataFrame) -> pl.DataFrame:
    """One row per (policy, rule): ``endpoints`` it covers, ``passing`` today, ``locked_out``
    (endpoints passing today that some scenario locks out), ``scenarios`` that do, and
    ``routine_share``: the share of the routine scenarios applying to its passing endpoints
    that lock them out. Worst first."""
    passing = lockout.filter(pl.col("today") == "pass")
    locked = pl.col("outcome") == "locks_out"
    per_rule = lockout.group_by("policy", "rule").agg(
        endpoints=pl.col("endpoint_id").n_unique().cast(pl.UInt32)
    )
    risk = passing.group_by("policy", "rule").agg(
        passing=pl.col("endpoint_id").n_unique().cast(pl.UInt32),
        locked_out=pl.col("endpoint_id").filter(locked).n_unique().cast(pl.UInt32),
        scenarios=pl.col("scenario").cast(pl.String).filter(locked).unique().sort(),
        routine_share=(locked & pl.col("routine")).sum() / pl.col("routine").sum().clip(1),
    )
    return (
        per_rule.join(risk, on=["policy", "rule"], how="left", nulls_equal=True)
        .with_columns(
            pl.col("passing", "locked_out").fill_null(0),
            pl.col("routine_share").fill_null(0.0),
            pl.col("scenarios").fill_null([]),
        )
        .sort("routine_share", "locked_out", "policy", descending=[True, True, False])
    )


__all__ = ["matrix", "riskiest"]
