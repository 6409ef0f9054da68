# SPDX-License-Identifier: Apache-2.0
"""The dataset writer and reader: whole files only, exactly-once targets on resume, one row per
distinct certificate."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

import pinscan
from pinscan.dataset import DatasetWriter
from pinscan.dataset.schema import CERTIFICATES, CHAINS, ENDPOINTS
from pinscan.errors import DatasetError
from pinscan.records import Endpoint, Target

from corpora import certifi_certificates

CERTS = [der for _, der in certifi_certificates()]


def endpoint(i: int, status: str = "ok", ip: str = "127.0.0.1") -> Endpoint:
    t = Target(i, f"h{i}.test:443", f"h{i}.test", 443, f"h{i}.test")
    chain = CERTS[i % 50 : i % 50 + 2] if status == "ok" else []
    return Endpoint(
        t.target_id, t.line, t.target, t.host, ip, t.port, t.sni, status,
        attempts=1, presented=chain, verified_chain=chain[:1],
    )  # fmt: skip


def test_round_trip(tmp_path: Path) -> None:
    w = DatasetWriter.create(tmp_path, scan_id="s1", arguments={"inventory": "x"}, version="9")
    w.write([endpoint(i) for i in range(1, 11)])
    w.write([endpoint(i) for i in range(11, 21)] + [endpoint(21, status="refused")])
    w.finish({"endpoints": 21})

    ds = pinscan.open(tmp_path)
    assert ds.meta["complete"] is True and ds.meta["arguments"] == {"inventory": "x"}
    eps = ds.endpoints.collect()
    assert eps.height == 21
    assert eps["endpoint_id"].n_unique() == 21
    refused = eps.filter(pl.col("status") == "refused")
    assert refused["leaf_sha256"].to_list() == [None]
    certs = ds.certificates.collect()
    # Each distinct certificate once, though several endpoints and both batches served it.
    assert certs["cert_sha256"].n_unique() == certs.height
    assert set(certs["der"].to_list()) == {d for i in range(1, 21) for d in endpoint(i).presented}
    chains = ds.chains.collect()
    assert chains.filter(pl.col("source") == "presented").height == 40
    assert chains.filter(pl.col("source") == "verified").height == 20
    served = ds.served().collect()
    assert served.height == 40
    ok = eps.filter(pl.col("status") == "ok")
    assert (ok["spki_sha256"].is_not_null()).all()


def test_refuses_to_overwrite_a_scan(tmp_path: Path) -> None:
    DatasetWriter.create(tmp_path, scan_id="s1", arguments={}, version="9").finish({})
    with pytest.raises(DatasetError, match="already holds a scan"):
        DatasetWriter.create(tmp_path, scan_id="s2", arguments={}, version="9")


def test_resume_drops_what_a_killed_flush_left(tmp_path: Path) -> None:
    w = DatasetWriter.create(tmp_path, scan_id="s1", arguments={}, version="9")
    w.write([endpoint(i) for i in range(1, 6)])
    # A flush killed after its certificates and chains parts, before its endpoints part.
    w.write([endpoint(i) for i in range(6, 9)])
    (tmp_path / ENDPOINTS / "part-000002.parquet").unlink()
    (tmp_path / CHAINS / ".part-000003.parquet.tmp-deadbeef").write_bytes(b"half")
    w.close()  # the kill: its lock goes with it

    r = DatasetWriter.resume(tmp_path)
    assert not (tmp_path / CHAINS / "part-000002.parquet").exists()
    assert not (tmp_path / CERTIFICATES / "part-000002.parquet").exists()
    assert not list((tmp_path / CHAINS).glob(".*"))
    assert len(r.done) == 5
    r.write([endpoint(i) for i in range(6, 9)])
    r.finish({})
    ds = pinscan.open(tmp_path)
    assert sorted(ds.endpoints.collect()["line"]) == list(range(1, 9))
    certs = ds.certificates.collect()
    assert certs["cert_sha256"].n_unique() == certs.height
    assert len(ds.meta["resumed_at"]) == 1


def test_open_errors_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"scan\.json is missing"):
        pinscan.open(tmp_path)
    (tmp_path / "scan.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(DatasetError, match="format 99"):
        pinscan.open(tmp_path)
    (tmp_path / "scan.json").write_text("{not json")
    with pytest.raises(DatasetError, match="unreadable"):
        pinscan.open(tmp_path)


def test_an_empty_scan_reads_with_its_schema(tmp_path: Path) -> None:
    DatasetWriter.create(tmp_path, scan_id="s1", arguments={}, version="9").finish({})
    ds = pinscan.open(tmp_path)
    assert ds.endpoints.collect().height == 0
    assert "status" in ds.endpoints.collect_schema()
    assert ds.served().collect().height == 0
