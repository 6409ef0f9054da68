# SPDX-License-Identifier: Apache-2.0
"""The report's lockout section, from a lockout table (:func:`pinscan.rotation.analyse`): the
matrix of hosts (registrable domains when there are many) by scenario, riskiest rows first and
capped, the riskiest pin-sets, and per scenario how many (endpoint, policy) pairs end in each
outcome.

A report is read by people: the matrix keeps :data:`MATRIX_ROWS` rows and says how many it left
out; ``pinscan check --scenarios`` and :func:`pinscan.lockout` have every row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from pinscan.rotation.matrix import matrix, riskiest

#: Matrix rows a report keeps, the riskiest: the page's heat map stays readable, and a fleet
#: with more hosts than this is shown by registrable domain.
MATRIX_ROWS = 50
#: Outcomes from worst to best: a matrix cell is the worst among its row's endpoints.
WORST_FIRST = ("locks_out", "untrusted", "survives", "unpinned")


@dataclass(frozen=True)
class Lockout:
    """What the report shows of a lockout analysis. Frames hold plain strings, not enums, so
    that they print and serialise as they read."""

    #: What a matrix row is: ``name`` (a host) or ``domain`` (a registrable domain).
    by: str
    #: The scenarios judged, in the matrix's column order: scenario, kind, routine, detail,
    #: endpoints.
    scenarios: pl.DataFrame
    #: Per scenario and outcome, the (endpoint, policy) pairs: the whole fleet, uncapped.
    outcomes: pl.DataFrame
    #: ``by``, policy, one column per scenario (its worst outcome; null where the scenario does
    #: not apply), ``locked_out`` and ``routine_locked_out`` (how many scenarios, and routine
    #: ones, lock the row out): the riskiest rows first, at most :data:`MATRIX_ROWS`.
    matrix: pl.DataFrame
    #: Rows the whole matrix has.
    matrix_total: int
    #: Per (policy, rule), worst first (:func:`pinscan.rotation.matrix.riskiest`), capped at the
    #: report's ``top``; ``pin_sets`` exist.
    riskiest: pl.DataFrame
    pin_sets: int
    #: Endpoints that a routine scenario locks out under at least one policy.
    routine_locked: int

    @property
    def left_out(self) -> int:
        return self.matrix_total - self.matrix.height

    @property
    def scenario_names(self) -> list[str]:
        return self.scenarios["scenario"].to_list()

    def to_dict(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "routine_locked": self.routine_locked,
            "scenarios": self.scenarios.to_dicts(),
            "outcomes": self.outcomes.to_dicts(),
            "matrix": self.matrix.to_dicts(),
            "matrix_rows": self.matrix_total,
            "left_out": self.left_out,
            "riskiest": self.riskiest.to_dicts(),
            "pin_sets": self.pin_sets,
        }


def lockout_section(
    lockout: pl.DataFrame, scenarios: pl.DataFrame, *, rows: int = MATRIX_ROWS, top: int = 10
) -> Lockout:
    """The section from an analysis's ``lockout`` and ``scenarios`` frames: rows by host when
    the fleet has at most ``rows`` hosts, else by registrable domain; the ``rows`` riskiest
    (most routine scenarios locking out, then most scenarios, then most untrusted) kept."""
    by = "name" if lockout["name"].n_unique() <= rows else "domain"
    # The matrix calls its rows "name" either way; the section says which they are.
    full = matrix(lockout, by=by).rename({"name": by})
    # The matrix's columns are in KINDS order: its scenario columns are the order shown.
    judged = set(scenarios["scenario"].cast(pl.String))
    names = [c for c in full.columns if c in judged]
    routine = set(scenarios.filter(pl.col("routine"))["scenario"].cast(pl.String))
    cells = full.select(by, "policy", *(pl.col(n).cast(pl.String) for n in names))

    def count(outcome: str, among: list[str]) -> pl.Expr:
        hits = [(pl.col(n) == outcome).fill_null(False) for n in among]
        return pl.sum_horizontal(hits).cast(pl.UInt32) if hits else pl.lit(0, pl.UInt32)

    ranked = cells.with_columns(
        locked_out=count("locks_out", names),
        routine_locked_out=count("locks_out", [n for n in names if n in routine]),
        untrusted=count("untrusted", names),
    ).sort(
        "routine_locked_out", "locked_out", "untrusted", by, "policy",
        descending=[True, True, True, False, False],
    )  # fmt: skip
    shown = scenarios.with_columns(pl.col("scenario", "kind").cast(pl.String))
    order = {name: i for i, name in enumerate(names)}
    shown = shown.filter(pl.col("scenario").is_in(names)).sort(
        pl.col("scenario").replace_strict(order, return_dtype=pl.UInt32)
    )
    outcomes = (
        lockout.group_by(pl.col("scenario").cast(pl.String), pl.col("outcome").cast(pl.String))
        .agg(pairs=pl.len())
        .sort(
            pl.col("scenario").replace_strict(order, default=len(order), return_dtype=pl.UInt32),
            pl.col("outcome").replace_strict(
                {o: i for i, o in enumerate(WORST_FIRST)}, return_dtype=pl.UInt8
            ),
        )
    )
    risky = riskiest(lockout)
    routine_locked = lockout.filter(
        pl.col("routine") & (pl.col("outcome").cast(pl.String) == "locks_out")
    )["endpoint_id"].n_unique()
    return Lockout(
        by=by,
        scenarios=shown,
        outcomes=outcomes,
        matrix=ranked.drop("untrusted").head(rows),
        matrix_total=ranked.height,
        riskiest=_plain(risky.head(top)),
        pin_sets=risky.height,
        routine_locked=routine_locked,
    )


def _plain(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with enums and categoricals as strings, lists of them as lists of strings."""
    out = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Enum | pl.Categorical):
            out.append(pl.col(name).cast(pl.String))
        elif isinstance(dtype, pl.List) and isinstance(dtype.inner, pl.Enum | pl.Categorical):
            out.append(pl.col(name).cast(pl.List(pl.String)))
    return frame.with_columns(out) if out else frame


__all__ = ["MATRIX_ROWS", "WORST_FIRST", "Lockout", "lockout_section"]
