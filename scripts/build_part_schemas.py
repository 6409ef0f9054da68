#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Builds the Arrow schemas the scan's writer gives the ``endpoints`` and ``chains`` parts,
python/pinscan/dataset/schemas/<table>.arrow: each an Arrow IPC file with no rows, holding what
polars' ``DataFrame.to_arrow()`` makes of the table's polars schema (pinscan.dataset.schema), enum
columns included with the field metadata polars reads them back as enums by.

The writer builds its parts with pyarrow alone from these files, so that a scan never imports
polars (a tenth of a second of every run); the parts it writes are those polars would write. A
test rebuilds them and compares (tests/test_part_schemas.py).

    make part-schemas   (or: .venv/bin/python scripts/build_part_schemas.py [--check])
"""

from __future__ import annotations

import argparse
import sys

import polars as pl
import pyarrow as pa

from pinscan.dataset.schema import CHAINS_SCHEMA, ENDPOINTS_SCHEMA
from pinscan.dataset.writer import SCHEMA_FILES

SCHEMAS = {"endpoints": ENDPOINTS_SCHEMA, "chains": CHAINS_SCHEMA}


def build() -> dict[str, pa.Schema]:
    """Each table's Arrow schema, as polars converts its polars schema."""
    return {
        table: pl.DataFrame(schema=schema).to_arrow().schema for table, schema in SCHEMAS.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args()
    stale = []
    for table, schema in build().items():
        path = SCHEMA_FILES[table]
        if args.check:
            if not path.exists() or not pa.ipc.open_file(path).schema.equals(schema, True):
                stale.append(str(path))
            continue
        with pa.ipc.new_file(path, schema):
            pass
        print(f"wrote {path}")
    if stale:
        print("stale (run scripts/build_part_schemas.py):", *stale, sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
