# SPDX-License-Identifier: Apache-2.0
"""Folding the finished shards of one machine's scan (``pinscan scan --processes N``) into one
plain dataset in the same directory, as a scan in one process would have written it.

Each shard's parts move up into ``OUT/<table>/`` under new sequence numbers: shard ``i``'s batch
``s`` becomes batch ``offset(i) + s``, where ``offset(i)`` is the number of batches of the shards
before it (each batch has one endpoints part, so a complete shard's ``scan.json`` says how many).
Endpoints and chains parts are renamed; a certificates part keeps only the certificates no earlier
part has (a certificate served in two shards is kept once, as one process keeps it), written
whole and then its shard's copy deleted. Then ``OUT/scan.json`` is written, complete, and the
sharded layout is deleted, its manifest last.

Every step can be killed and run again: a part still in its shard is not moved yet (the same
numbers say where it goes), one gone from it is; the certificates already in ``OUT`` are read
first, so a part written before the kill is not written twice. While the manifest is there, the
directory is a sharded scan to everything else (``--resume`` finishes the fold).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pinscan import atomic
from pinscan.dataset import _integrity, outputs
from pinscan.dataset import shards as layout
from pinscan.dataset.meta import read_meta
from pinscan.dataset.schema import CERTIFICATES, ENDPOINTS, META_FILE, SCAN_TABLES
from pinscan.dataset.writer import _seq_of, _write, id_bits
from pinscan.errors import DatasetError


def fold(root: Path, *, seconds: float | None = None) -> dict[str, Any]:
    """Makes the complete sharded scan in ``root`` one plain dataset; returns its ``scan.json``.
    ``seconds``, when given, is the scan's time as its counts say it (the shards' own times add
    up to more than the scan took)."""
    if (root / META_FILE).is_file():  # killed after the fold wrote scan.json: only clean-up left
        meta = read_meta(root)
        if meta.get("complete"):
            layout.remove_sharding(root)
            return meta
    manifest = layout.read_manifest(root)
    count = manifest["count"]
    done = layout.finished(root, manifest)
    if len(done) != count:
        missing = [i for i in range(count) if i not in done]
        raise DatasetError(str(root), f"cannot fold a scan whose shards {missing} are not done")
    with outputs.writing(root):
        for table in SCAN_TABLES:
            (root / table).mkdir(exist_ok=True)
            atomic.remove_temporaries(root / table)
        seen = {
            id_bits(s)
            for s in _integrity.read_column(
                _integrity.parts(root / CERTIFICATES), "cert_sha256", CERTIFICATES
            )
        }
        offset = 0
        for i in range(count):
            shard = layout.shard_dir(root, layout.Shard(i, count))
            for table in SCAN_TABLES:
                for part in _integrity.parts(shard / table):
                    target = root / table / f"part-{offset + _seq_of(part):06d}.parquet"
                    if table == CERTIFICATES:
                        _certificates(part, target, seen)
                    else:
                        part.rename(target)
            offset += done[i]["parts"][ENDPOINTS]
        for table in SCAN_TABLES:
            atomic.fsync_dir(root / table)
        meta = layout.merged_meta(manifest, done)
        meta.pop("shards")
        meta["processes"] = count
        if seconds is not None:
            meta["counts"]["seconds"] = round(seconds, 3)
        meta["parts"] = {t: len(_integrity.parts(root / t)) for t in SCAN_TABLES}
        atomic.atomic_write_json(root / META_FILE, meta)
        layout.remove_sharding(root)
    return meta


def _certificates(part: Path, target: Path, seen: set[int]) -> None:
    """A shard's certificates part, as ``target``, without the certificates already kept."""
    table = pq.ParquetFile(part).read()  # its columns' types as the shard wrote them
    bits = [id_bits(s) for s in table.column("cert_sha256").to_pylist()]
    new = [b not in seen for b in bits]
    if any(new):
        _write(table.filter(pa.array(new)), target, arrow_schema=False)
        seen.update(bits)
    part.unlink()


__all__ = ["fold"]
