# SPDX-License-Identifier: Apache-2.0
"""`make demo`: pin a bundled sample, build a certificate dataset, show what it says.

Until `pinscan scan` lands this runs on certificates bundled in demo/sample/ and the Mozilla roots
from certifi, instead of a live fleet.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import certifi
import polars as pl

import pinscan

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "demo" / "sample"
OUT = ROOT / "demo-out"


def main() -> int:
    files = sorted(str(p.relative_to(ROOT)) for p in SAMPLE.iterdir())
    print(f"$ pinscan pin {' '.join(files)}", flush=True)
    subprocess.run([sys.executable, "-m", "pinscan", "pin", *files], cwd=ROOT, check=True)

    ders = pinscan.read_certificates(certifi.where())
    for path in sorted(SAMPLE.glob("*.pem")):
        if not path.name.endswith(".pub.pem"):
            ders += pinscan.read_certificates(path)
    df = pinscan.certificates(ders)
    OUT.mkdir(exist_ok=True)
    dataset = OUT / "certificates.parquet"
    df.with_columns(der=pl.Series(ders, dtype=pl.Binary)).write_parquet(dataset)

    print(f"\n{df.height} certificates -> {dataset.relative_to(ROOT)}")
    with pl.Config(
        tbl_hide_dataframe_shape=True, tbl_rows=20, tbl_width_chars=140, fmt_str_lengths=50
    ):
        print(
            df.group_by("key_type", "key_bits", "curve")
            .len("certificates")
            .sort("certificates", descending=True)
        )
        soonest = df.sort("not_after").select("subject", "not_after", "spki_sha256").head(3)
        print("\nExpiring first:")
        print(soonest)
    print(
        "\nRead it in a notebook:\n"
        f"  import polars as pl; pl.read_parquet({str(dataset.relative_to(ROOT))!r})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
