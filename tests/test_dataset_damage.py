# SPDX-License-Identifier: Apache-2.0
"""Damaged datasets are input errors, not decoder tracebacks: a part truncated, empty,
bit-flipped, not Parquet, of another table's columns, a stray file in a table, a table or a part
gone from a committed scan. Each is one line ``pinscan: <file>: ...`` and exit 2 from `report`,
`diff`, `check`, `scan --resume` and `ct`, and a DatasetError from the Python API, in plain,
history and sharded datasets scanned from real servers on loopback; `--resume` on a damaged
dataset deletes nothing."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

import pinscan
from pinscan.config import ScanConfig, Timeouts
from pinscan.errors import DatasetError

from cliresult import refused, run
from fleet import pki, servers

# Several flushes, so that every table has several parts.
FAST = ScanConfig(
    concurrency=8, retries=0, timeouts=Timeouts(connect=2, handshake=2, deadline=4), flush_rows=2
)
KINDS = ("plain", "history", "sharded")
FAULTS = ("truncated", "empty", "bit_flipped", "not_parquet", "stray_file", "wrong_columns")
# The table each fault is put in, so that every table meets several faults.
TABLE_OF = {
    "truncated": "endpoints",
    "empty": "chains",
    "bit_flipped": "certificates",
    "not_parquet": "endpoints",
    "stray_file": "chains",
    "wrong_columns": "endpoints",
}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fleet scanned from loopback into a plain dataset, a history of two scans and a sharded
    dataset (two shards), an inventory to resume with, and a policy for `check`."""
    base = tmp_path_factory.mktemp("pristine")
    with servers.good() as good, servers.closed_port() as closed:
        names = ("a.test", "b.test", "default.test", "www.b.test")
        lines = [*(f"127.0.0.1:{good.port} {n}" for n in names), f"127.0.0.1:{closed.port}"]
        (base / "inventory.txt").write_text("".join(f"{line}\n" for line in lines))
        pinscan.scan(lines, base / "plain", config=FAST)
        for _ in range(2):
            pinscan.scan(lines, history=base / "history", config=FAST)
        for shard in ("0/2", "1/2"):
            pinscan.scan(lines, base / "sharded", shard=shard, config=FAST)
    pin = pinscan.spki_pin(pki.leaf("a.test", key="rsa").der)
    (base / "pins.toml").write_text(f'[[pin-set]]\ndomain = "a.test"\npins = ["sha256/{pin}"]\n')
    yield base


@pytest.fixture
def copies(pristine: Path, tmp_path: Path) -> Path:
    """A copy of the pristine datasets this test may damage."""
    for entry in pristine.iterdir():
        if entry.is_dir():
            shutil.copytree(entry, tmp_path / entry.name)
        else:
            shutil.copy(entry, tmp_path / entry.name)
    return tmp_path


def parts(root: Path, kind: str, table: str) -> list[Path]:
    """The parts of ``table`` that `pinscan report` reads: the history's latest scan, the first
    shard that has such parts."""
    if kind == "history":
        latest = pinscan.open(root).meta["scan_id"]
        return sorted(root.glob(f"{table}/*/scan_id={latest}/part-*.parquet"))
    if kind == "sharded":
        found = [sorted(d.glob(f"{table}/part-*.parquet")) for d in sorted(root.glob("shards/*"))]
        return next(p for p in found if p)
    return sorted(root.glob(f"{table}/part-*.parquet"))


def data_region(part: Path) -> tuple[int, int]:
    """Where a part's pages are: between the magic number and the footer."""
    data = part.read_bytes()
    return 4, len(data) - 8 - int.from_bytes(data[-8:-4], "little")


def flip_bit(part: Path, offset: int, bit: int = 0) -> None:
    data = bytearray(part.read_bytes())
    data[offset] ^= 1 << bit
    part.write_bytes(bytes(data))


def damage(root: Path, kind: str, fault: str) -> Path:
    """Damages one part of the dataset; returns the file the error must name."""
    table = TABLE_OF[fault]
    part = parts(root, kind, table)[0]
    if fault == "truncated":
        part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])
    elif fault == "empty":
        part.write_bytes(b"")
    elif fault == "bit_flipped":
        start, end = data_region(part)
        flip_bit(part, (start + end) // 2, 3)
    elif fault == "not_parquet":
        part = part.with_name("part-000099.parquet")
        part.write_text("these are not the rows you are looking for\n")
    elif fault == "stray_file":
        part = part.with_name("notes.txt")
        part.write_text("copied here by mistake\n")
    elif fault == "wrong_columns":
        shutil.copy(parts(root, kind, "chains")[0], part)
    return part


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("kind", KINDS)
def test_a_damaged_part_is_an_input_error_everywhere(
    pristine: Path, copies: Path, kind: str, fault: str
) -> None:
    root = copies / kind
    bad = damage(root, kind, fault)
    refused(run("report", str(root)), bad)
    refused(run("check", str(root), "--policy", str(copies / "pins.toml")), bad)
    if kind == "history":
        refused(run("diff", str(root)), bad)  # its two latest scans
    else:
        refused(run("diff", str(pristine / kind), str(root)), bad)


def test_the_python_api_raises_dataset_errors(copies: Path) -> None:
    for kind in KINDS:
        for fault in FAULTS:
            root = copies / f"{kind}-{fault}"
            shutil.copytree(copies / kind, root)
            bad = damage(root, kind, fault)
            if fault == "bit_flipped":
                # Opening reads footers only; the flipped bit is inside a page.
                ds = pinscan.open(root)
                with pytest.raises(DatasetError, match="checksum") as caught:
                    ds.verify()
                assert caught.value.path == str(bad)
                with pytest.raises(DatasetError, match="checksum"):
                    pinscan.open(root, verify=True)
            else:
                with pytest.raises(DatasetError) as caught:
                    pinscan.open(root)
                assert caught.value.path == str(bad), (kind, fault, caught.value)


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("kind", ["plain", "sharded"])
def test_resume_on_a_damaged_dataset_deletes_nothing(copies: Path, kind: str) -> None:
    root = copies / kind
    # A killed flush's leftover, which a resume would delete, and a damaged committed part.
    leftover = parts(root, kind, "chains")[0].with_name("part-000099.parquet")
    shutil.copy(parts(root, kind, "chains")[0], leftover)
    bad = damage(root, kind, "truncated")
    before = snapshot(root)
    shard = ["--shard", "0/2"] if kind == "sharded" else []
    inventory = str(copies / "inventory.txt")
    refused(run("scan", inventory, "-o", str(root), "--resume", "-q", *shard), bad)
    assert snapshot(root) == before, "nothing deleted, nothing written"


def test_a_committed_scan_missing_a_table_or_a_part_is_an_error(copies: Path) -> None:
    history = copies / "history"
    latest = pinscan.open(history).meta["scan_id"]
    (chains,) = history.glob(f"chains/*/scan_id={latest}")
    shutil.rmtree(chains)
    line = refused(run("diff", str(history)), chains, latest)
    assert "missing" in line and "chains" in line
    with pytest.raises(DatasetError, match="missing") as caught:
        pinscan.open(history)
    assert caught.value.path == str(chains)
    # The scan before it reads, and a diff of two scans that are whole still works.
    assert run("diff", f"{history}@-2", f"{history}@-2").exit_code == 0

    plain = copies / "plain"
    shutil.rmtree(plain / "certificates")
    refused(run("report", str(plain)), plain / "certificates", "missing")
    sharded = copies / "sharded"
    gone = parts(sharded, "sharded", "endpoints")[-1]
    gone.unlink()
    refused(run("report", str(sharded)), gone.parent, "part files")


def test_a_decoder_error_in_a_part_without_a_checksum_names_the_part(copies: Path) -> None:
    """Parts written before pinscan wrote checksums: a page the decoder cannot read is found by
    the command line, which names the part (the `report` of the issue died with a ComputeError
    traceback and exit 1)."""
    root = copies / "plain"
    part = parts(root, "plain", "endpoints")[0]
    pl.read_parquet(part).write_parquet(part)  # as pinscan wrote it before: no checksum
    column = pq.read_metadata(part).row_group(0)
    status = next(column.column(i) for i in range(column.num_columns)
                  if column.column(i).path_in_schema == "status")  # fmt: skip
    data = bytearray(part.read_bytes())
    data[status.data_page_offset : status.data_page_offset + 16] = b"\xff" * 16  # its page header
    part.write_bytes(bytes(data))
    refused(run("report", str(root)), part, "damaged")
    # Found by the command line after the decoder failed: the footer is whole, and there is no
    # checksum to check; ScanDataset.verify decodes such parts.
    ds = pinscan.open(root, verify=True)
    with pytest.raises(DatasetError, match="damaged") as caught:
        ds.verify()
    assert caught.value.path == str(part)


def test_served_has_the_endpoint_chain_and_certificate_columns(pristine: Path) -> None:
    for kind in KINDS:
        ds = pinscan.open(pristine / kind)
        served = ds.served().collect()
        endpoint = [c for c in ds.endpoints.collect_schema() if c != "spki_sha256"]
        chain = ["source", "position", "cert_sha256"]
        certificate = [
            "cert_error" if c == "error" else c
            for c in ds.certificates.collect_schema()
            if c not in ("der", "scan_id", "scan_date", "cert_sha256")
        ]
        assert served.columns == [*endpoint, *chain, *certificate], kind
        assert served.height and served["subject"].null_count() == 0, "every certificate joined"
        leaves = served.filter(pl.col("position") == 0)
        assert leaves["spki_sha256"].to_list() == (
            ds.endpoints.filter(pl.col("status") == "ok").sort("scan_id", "endpoint_id")
            .collect()["spki_sha256"].to_list()
        )  # fmt: skip
