# SPDX-License-Identifier: Apache-2.0
"""Thousands of artifacts into one Parquet table, in parallel and resumable (``pinscan extract``,
:func:`pinscan.extract_pins`).

Layout of ``OUT/``::

    extract.json                 what ran: version, inputs, times, counts, complete or not
    pins/part-000001.parquet     one row per (artifact, pin, source), and one per artifact

A part holds whole artifacts, each with its own row (``pin`` null: its kind, counts and
errors) and the rows of its pins; a part is written whole or not at all (a temporary name,
then one rename), so an artifact is done exactly when its row is in a part, and ``--resume``
reads the rest. Each artifact is read in a worker process (reading is Python and zlib, held by
the GIL), which ignores Ctrl-C: the parent writes what is done and stops them. An artifact that
cannot be read, or that kills its process, is one row with its error, never the end of the run.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import json
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from pinscan import atomic
from pinscan.dataset import _lock, outputs
from pinscan.errors import DatasetError, InputError
from pinscan.policy.artifacts import ZIP_MAGIC, read_artifact
from pinscan.policy.artifacts.archive import DirectoryArchive

FORMAT = 1
META_FILE = "extract.json"
PINS = "pins"
_OURS = frozenset({META_FILE, PINS, _lock.LOCK_FILE})
#: Names that are artifacts whatever they hold (a damaged one is an error row, not skipped).
SUFFIXES = (".apk", ".aab", ".apks", ".xapk", ".ipa")

SCHEMA = pl.Schema(
    {
        "artifact": pl.String,
        "artifact_kind": pl.String,
        "pin": pl.String,
        "algorithm": pl.String,
        "hosts": pl.List(pl.String),
        "source": pl.String,
        "kind": pl.String,
        "note": pl.String,
        "pins": pl.UInt32,
        "policies": pl.UInt32,
        "errors": pl.List(pl.String),
        "size": pl.Int64,
        "seconds": pl.Float64,
    }
)
"""``artifact`` is the path as listed. A pin's row: ``pin`` (canonical base64), ``algorithm``,
``hosts`` (empty: not known), ``source`` (``app.apk!classes2.dex``), ``kind`` (config, code,
bundled_certificate), ``note``. The artifact's row (``pin`` null): ``artifact_kind`` (null when
unreadable), ``pins`` and ``policies`` found, ``errors`` (one line each; an unreadable artifact
has exactly one), ``size`` in bytes and the ``seconds`` reading took."""

Rows = list[dict[str, Any]]


# --- which artifacts ---------------------------------------------------------------------------


def artifact_paths(inputs: Iterable[str | os.PathLike[str]]) -> Iterator[str]:
    """The artifacts the inputs name, each once: an artifact itself (an APK, AAB, IPA, split
    APKs, any zip, an ``.app`` directory); a directory, searched for them (files named
    :data:`SUFFIXES` or holding a zip, ``.app`` directories; a symlink to a file is read, one
    to a directory not entered); or a text
    file listing paths, one a line (``#`` comments; relative to the list's directory).
    Raises :class:`InputError` for an input that is none of these."""
    seen: set[str] = set()
    for item in inputs:
        for path in map(os.path.normpath, _expand(os.fspath(item))):
            if path not in seen:
                seen.add(path)
                yield path


def _expand(item: str) -> Iterator[str]:
    if os.path.isdir(item):
        if _is_bundle(item):
            yield item
            return
        for root, dirs, files in os.walk(item, onerror=_raise):
            dirs.sort()
            bundles = [d for d in dirs if _is_bundle(os.path.join(root, d))]
            dirs[:] = [d for d in dirs if d not in bundles]
            found = [f for f in files if _is_artifact_file(os.path.join(root, f))]
            yield from (os.path.join(root, name) for name in sorted(found + bundles))
        return
    if not os.path.exists(item):
        raise InputError(item, "no such file or directory")
    if _is_artifact_file(item):
        yield item
        return
    try:
        text = Path(item).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(item, "neither an app artifact nor a list of paths") from None
    except OSError as exc:
        raise InputError(item, exc.strerror or str(exc)) from None
    base = os.path.dirname(item)
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            yield os.path.join(base, line)


def _raise(exc: OSError) -> None:
    raise InputError(exc.filename or "?", exc.strerror or str(exc))


def _is_bundle(path: str) -> bool:
    return path.rstrip("/").endswith(".app") and os.path.isfile(os.path.join(path, "Info.plist"))


def _is_artifact_file(path: str) -> bool:
    if not os.path.isfile(path):
        return False
    if path.lower().endswith(SUFFIXES):
        return True
    try:
        with open(path, "rb") as file:
            return file.read(4) in ZIP_MAGIC
    except OSError:
        return True  # unreadable: its row says why


# --- one artifact ------------------------------------------------------------------------------


def extract_one(path: str, code: bool = True) -> Rows:
    """The rows of one artifact: its pins, deduplicated per (pin, source, kind) with their
    hosts united, then its own row. Never raises: what goes wrong is in the row's ``errors``."""
    started = time.perf_counter()
    size = _size(path)
    try:
        artifact = read_artifact(path, code=code)
    except InputError as exc:  # ArtifactError among them
        return [_artifact_row(path, None, 0, 0, [str(exc)], size, started)]
    except Exception as exc:  # a reader's bug costs this artifact, not the run
        what = f"{type(exc).__name__}: {exc}".rstrip(": ")
        error = f"{path}: internal error ({what})"
        return [_artifact_row(path, None, 0, 0, [error], size, started)]
    merged: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for found in artifact.pins:
        key = (found.algorithm, found.pin, found.source, found.kind)
        row = merged.get(key)
        if row is None:
            merged[key] = {"artifact": path, "artifact_kind": artifact.kind, **found.to_dict()}
        else:
            row["hosts"] = sorted({*row["hosts"], *found.hosts})
    rows = list(merged.values())
    rows.append(
        _artifact_row(
            path, artifact.kind, len(rows), len(artifact.policies), artifact.errors, size, started
        )
    )
    return rows


def _artifact_row(
    path: str,
    kind: str | None,
    pins: int,
    policies: int,
    errors: list[str],
    size: int | None,
    started: float,
) -> dict[str, Any]:
    return {
        "artifact": path,
        "artifact_kind": kind,
        "pins": pins,
        "policies": policies,
        "errors": list(errors),
        "size": size,
        "seconds": round(time.perf_counter() - started, 6),
    }


def _size(path: str) -> int | None:
    try:
        if os.path.isdir(path):
            return sum(m.size for m in DirectoryArchive(path).members())
        return os.path.getsize(path)
    except (OSError, InputError):
        return None


def frame(rows: Rows) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=SCHEMA)


# --- many artifacts ----------------------------------------------------------------------------


def _ignore_interrupts() -> None:
    # Ctrl-C reaches the whole process group: the parent alone decides what is kept.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _pool(workers: int) -> cf.ProcessPoolExecutor:
    # spawn, not fork: the parent runs polars' and rich's threads, which fork would copy mid-lock.
    return cf.ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=_ignore_interrupts
    )


def run(
    paths: Sequence[str],
    on_done: Callable[[Rows], None],
    *,
    workers: int | None = None,
    code: bool = True,
) -> None:
    """Reads every artifact, ``workers`` at a time (``None``: one per CPU; 1: in this process),
    calling ``on_done`` with each one's rows as it finishes, in any order.

    A worker that dies (killed, out of memory) breaks the pool: the artifacts it was reading are
    read again one at a time in a pool of their own, so that only the one that kills a process
    gets the error row that says so."""
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(paths) <= 1:
        for path in paths:
            on_done(extract_one(path, code))
        return
    suspects: list[str] = []
    todo = iter(paths)
    pool = _pool(min(workers, len(paths)))
    try:
        running: dict[cf.Future[Rows], str] = {}
        while True:
            while len(running) < 4 * workers and (path := next(todo, None)) is not None:
                try:
                    running[pool.submit(extract_one, path, code)] = path
                except cf.process.BrokenProcessPool:
                    suspects.append(path)
            if not running:
                break
            done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
            broken = False
            for future in done:
                path = running.pop(future)
                try:
                    on_done(future.result())
                except cf.process.BrokenProcessPool:
                    suspects.append(path)
                    broken = True
            if broken:
                pool.shutdown(wait=True, cancel_futures=True)
                suspects.extend(running.values())
                running.clear()
                pool = _pool(workers)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    for path in suspects:
        on_done(_alone(path, code))


def _alone(path: str, code: bool) -> Rows:
    started = time.perf_counter()
    with _pool(1) as pool:
        try:
            return pool.submit(extract_one, path, code).result()
        except cf.process.BrokenProcessPool:
            error = f"{path}: reading it killed the process (out of memory, or a crash)"
            return [_artifact_row(path, None, 0, 0, [error], _size(path), started)]


# --- the output directory ----------------------------------------------------------------------


class Output:
    """``OUT/``, locked for this run, taking rows and writing them as parts."""

    def __init__(self, root: Path, *, resume: bool, inputs: list[str], version: str) -> None:
        self.root = root
        outputs.check_output(root, _OURS, "-o")
        meta_path = root / META_FILE
        if resume and not meta_path.is_file():
            raise DatasetError(str(root), f"no extract to resume here ({META_FILE} is missing)")
        with outputs.writing(root):
            root.mkdir(parents=True, exist_ok=True)
        self._lock = _lock.acquire(root, scan_id=None, what="pinscan extract")
        try:
            if resume:
                self.meta = _read_meta(root)
            elif meta_path.exists() or (root / PINS).exists():
                msg = "already holds an extract; use --resume to finish it, or another directory"
                raise DatasetError(str(root), msg)
            else:
                self.meta = {
                    "format": FORMAT,
                    "pinscan_version": version,
                    "inputs": inputs,
                    "started_at": _now(),
                    "finished_at": None,
                    "complete": False,
                    "counts": {},
                }
            with outputs.writing(root):
                (root / PINS).mkdir(exist_ok=True)
                atomic.remove_temporaries(root / PINS)
            self.parts = sorted((root / PINS).glob("part-[0-9][0-9][0-9][0-9][0-9][0-9].parquet"))
            self.done = _done(self.parts)
            if resume:
                self.meta["resumed_at"] = [*self.meta.get("resumed_at", []), _now()]
                self.meta["complete"] = False
            with outputs.writing(root):
                atomic.atomic_write_json(meta_path, self.meta)
        except BaseException:
            self._lock.release()
            raise
        self._rows: Rows = []
        self._pending = 0
        self._flushed = time.monotonic()

    def add(self, rows: Rows, *, flush_artifacts: int = 500, flush_seconds: float = 10.0) -> None:
        self._rows.extend(rows)
        self._pending += 1
        if self._pending >= flush_artifacts or time.monotonic() - self._flushed >= flush_seconds:
            self.flush()

    def flush(self) -> None:
        if self._rows:
            seq = max((int(p.name[5:11]) for p in self.parts), default=0) + 1
            path = self.root / PINS / f"part-{seq:06d}.parquet"
            table = frame(self._rows)
            with outputs.writing(path):
                atomic.atomic_write(path, lambda tmp: table.write_parquet(tmp, compression="zstd"))
            self.parts.append(path)
            self._rows, self._pending = [], 0
        self._flushed = time.monotonic()

    def finish(self, *, complete: bool) -> dict[str, Any]:
        """Writes what is left and records the run; returns the counts of the whole extract."""
        try:
            self.flush()
            counts = summarize(pl.scan_parquet(self.parts).collect() if self.parts else frame([]))
            self.meta.update(finished_at=_now(), complete=complete, counts=counts)
            with outputs.writing(self.root):
                atomic.atomic_write_json(self.root / META_FILE, self.meta)
            return counts
        finally:
            self._lock.release()


def summarize(rows: pl.DataFrame) -> dict[str, int]:
    """Artifacts, those read, unreadable, read with errors, and pin rows."""
    artifacts = rows.filter(pl.col("pin").is_null())
    unreadable = artifacts.filter(pl.col("artifact_kind").is_null()).height
    with_errors = artifacts.filter(
        pl.col("artifact_kind").is_not_null() & (pl.col("errors").list.len() > 0)
    ).height
    return {
        "artifacts": artifacts.height,
        "read": artifacts.height - unreadable,
        "unreadable": unreadable,
        "read_with_errors": with_errors,
        "pins": rows.height - artifacts.height,
    }


def _read_meta(root: Path) -> dict[str, Any]:
    path = root / META_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(str(root), f"no extract here ({META_FILE} is missing)") from None
    except (OSError, ValueError) as exc:
        raise DatasetError(str(path), f"unreadable: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DatasetError(str(path), f"not an extract of format {FORMAT}")
    return meta


def _done(parts: list[Path]) -> set[str]:
    if not parts:
        return set()
    try:
        done = pl.scan_parquet(parts).filter(pl.col("pin").is_null()).select("artifact").collect()
    except pl.exceptions.PolarsError as exc:
        raise DatasetError(str(parts[0].parent), f"a part cannot be read: {exc}") from None
    return set(done["artifact"])


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


# --- the two ways in ---------------------------------------------------------------------------


def extract(
    inputs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    resume: bool = False,
    workers: int | None = None,
    code: bool = True,
    version: str = "",
    on_done: Callable[[Rows], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Every artifact of ``inputs`` (see :func:`artifact_paths`; with ``resume``, none: those of
    the interrupted run) into ``out``; returns the counts. ``on_start`` gets how many artifacts
    are left to read, ``on_done`` each one's rows. Interrupted (Ctrl-C), it writes what is done
    and raises :class:`KeyboardInterrupt`."""
    root = Path(out)
    listed = [os.fspath(i) for i in inputs]
    if resume and not listed:
        listed = list(_read_meta(root)["inputs"])
    paths = list(artifact_paths(listed))  # every input checked before OUT is touched
    output = Output(root, resume=resume, inputs=listed, version=version)
    left = [p for p in paths if p not in output.done]
    if on_start is not None:
        on_start(len(left))

    def done(rows: Rows) -> None:
        output.add(rows)
        if on_done is not None:
            on_done(rows)

    try:
        run(left, done, workers=workers, code=code)
    except BaseException:
        output.finish(complete=False)
        raise
    return output.finish(complete=True)


def extract_pins(
    paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    workers: int | None = None,
    code: bool = True,
) -> pl.DataFrame:
    """One row per (artifact, pin, source), and one per artifact (``pin`` null) with its kind,
    counts and errors: see :data:`SCHEMA`. ``paths`` are artifacts, directories of them or
    lists of paths (see :func:`artifact_paths`); ``code=False`` reads configurations and
    bundled certificates only. An artifact that cannot be read is its row's ``errors``.

    The workers are spawned processes, which import the calling script again: call this under
    ``if __name__ == "__main__":`` in a script (a notebook needs nothing), or pass
    ``workers=1``."""
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    rows: Rows = []
    run(list(artifact_paths(paths)), rows.extend, workers=workers, code=code)
    return frame(rows)


__all__ = [
    "FORMAT",
    "META_FILE",
    "PINS",
    "SCHEMA",
    "SUFFIXES",
    "artifact_paths",
    "extract",
    "extract_one",
    "extract_pins",
    "run",
    "summarize",
]
