# SPDX-License-Identifier: Apache-2.0
"""The scan's writer builds its parts with pyarrow alone, from the Arrow schemas polars gives the
tables (python/pinscan/dataset/schemas/, built by scripts/build_part_schemas.py): the shipped
files are a fresh build, the parts read back in polars with the tables' own types (enums as
enums), and pyarrow, its datasets and DuckDB-style readers read and filter every table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives.serialization import Encoding

import pinscan
from pinscan.config import ScanConfig, Timeouts
from pinscan.dataset import _integrity
from pinscan.dataset.schema import CERTIFICATES, CHAINS, ENDPOINTS, SCAN_TABLES
from pinscan.dataset.writer import SCHEMA_FILES

from fleet import pki, servers

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset from a real TLS server, its root as the CA bundle (verified chains too), and a
    refused port, flushed every two endpoints (one part or more a table: the flush running when
    rows come takes them with the next)."""
    out = tmp_path_factory.mktemp("parts") / "scan"
    bundle = out.with_name("root.pem")
    bundle.write_bytes(pki.root().cert.public_bytes(Encoding.PEM))
    config = ScanConfig(retries=0, timeouts=Timeouts(2, 2, 5), flush_rows=2, ca_bundle=bundle)
    with servers.good() as good, servers.closed_port() as closed:
        names = ("a.test", "b.test", "default.test")
        lines = [*(f"127.0.0.1:{good.port} {n}" for n in names), f"127.0.0.1:{closed.port}"]
        pinscan.scan(lines, out, config=config)
    return out


SCRIPT = ROOT / "scripts" / "build_part_schemas.py"
#: The script's --check with one table's shipped schema file replaced by another file.
CHECK_WITH = (
    "import runpy, sys; from pathlib import Path; import pinscan.dataset.writer as w; "
    "w.SCHEMA_FILES[sys.argv[1]] = Path(sys.argv[2]); sys.argv = [sys.argv[3], '--check']; "
    "runpy.run_path(sys.argv[0], run_name='__main__')"
)


def test_the_shipped_part_schemas_are_a_fresh_build() -> None:
    """The script's own check: each shipped file is what polars makes of the table's polars
    schema today, field metadata included."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert set(SCHEMA_FILES) == {ENDPOINTS, CHAINS}


def test_a_stale_part_schema_is_found(tmp_path: Path) -> None:
    """The check is not vacuous: a schema file that lost a column is reported, exit 1."""
    schema = pa.ipc.open_file(SCHEMA_FILES[CHAINS]).schema
    stale = tmp_path / "chains.arrow"
    with pa.ipc.new_file(str(stale), schema.remove(schema.get_field_index("position"))):
        pass
    command = [sys.executable, "-c", CHECK_WITH, CHAINS, str(stale), str(SCRIPT)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and f"stale (run scripts/build_part_schemas.py):\n  {stale}" in (
        done.stderr
    ), done.stderr


def test_the_enum_columns_carry_what_polars_reads_them_by() -> None:
    """Each enum column holds indices into its values in order, with polars' field metadata:
    without it polars reads a dictionary column as Categorical and refuses it as the enum."""
    for table, column in ((ENDPOINTS, "status"), (CHAINS, "source")):
        field = pa.ipc.open_file(SCHEMA_FILES[table]).schema.field(column)
        assert pa.types.is_dictionary(field.type) and field.type.ordered
        assert field.metadata  # polars' enum values


def test_every_part_reads_back_with_the_tables_types(scanned: Path) -> None:
    parts = {t: sorted((scanned / t).glob("part-*.parquet")) for t in SCAN_TABLES}
    assert all(parts.values()), parts
    for table, paths in parts.items():
        for path in paths:
            assert pl.read_parquet_schema(path) == _integrity.schema_of(table), path
    ds = pinscan.open(scanned, verify=True)
    endpoints = ds.endpoints.collect()
    assert sorted(endpoints["status"].cast(pl.String)) == ["ok", "ok", "ok", "refused"]
    assert isinstance(endpoints.schema["status"], pl.Enum)
    assert set(ds.chains.collect()["source"].cast(pl.String)) == {"presented", "verified"}
    certs = ds.certificates.collect()
    assert certs["cert_sha256"].n_unique() == certs.height > 0
    assert all(len(d) > 100 for d in certs["der"])


@pytest.mark.parametrize("table", SCAN_TABLES)
def test_pyarrow_reads_and_filters_every_table(scanned: Path, table: str) -> None:
    """Plain string and binary columns (not the views the Rust core hands over, which pyarrow
    cannot take rows of): a pyarrow dataset over the table, filtered, as notebooks do it."""
    whole = pads.dataset(scanned / table, format="parquet").to_table()
    for field in whole.schema:
        assert not pa.types.is_string_view(field.type), field
        assert not pa.types.is_binary_view(field.type), field
    column = {ENDPOINTS: "target", CHAINS: "cert_sha256", CERTIFICATES: "cert_sha256"}[table]
    first = whole.column(column)[0]
    picked = whole.filter(pads.field(column) == first)
    assert 0 < picked.num_rows <= whole.num_rows
    assert picked.take([0]).num_rows == 1
    for part in sorted((scanned / table).glob("part-*.parquet")):
        assert pq.ParquetFile(part).metadata.num_rows > 0
