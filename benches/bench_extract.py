# SPDX-License-Identifier: Apache-2.0
"""Bulk extraction of pins from APKs (`pinscan extract`), next to `unzip -p` on the same files.

Corpus, built here: APKs of 10-50 MB as a real one is laid out. Each starts from an APK that
Debian's aapt compiles (the manifest, resources.arsc and a Network Security Config with a
pin-set), then gets what makes an app big: three to five ``classes*.dex`` (valid DEX files from
tests/dexbuild.py: a ``CertificatePinner.Builder.add`` call site and a string table of
identifiers mixed with random text, deflating about 3:1, with ``sha256/`` pin strings), native
libraries under ``lib/arm64-v8a/`` (random and repetitive halves, about 2:1, a pin string in
each), a React Native bundle in ``assets/`` with a pin string, and a few hundred small drawables
stored as they are (already compressed). Sizes and the mix vary per APK, from a fixed seed.

Measured, side by side in one run (the measurements take turns, round after round, each keeps
its best round):

- configs and manifests only (``code=False``): APKs a second, with 1 and 2 worker processes;
- every dex, native library and asset searched for pin strings (``code=True``): MB of APK a
  second, with 1 and 2 workers, against ``unzip -p APK > /dev/null`` over the same files, one
  at a time and two at a time (``xargs -P 2``): inflating every member is the floor both pay.

    .venv/bin/python -m benches.bench_extract [--apks 24] [--rounds 3] [--quick] [--markdown]

The corpus is kept in ``--corpus`` (default: a directory under /tmp) and rebuilt when its
parameters change. JSON of every round goes to benches/out/.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pinscan.policy.artifacts import bulk
from tests.dexbuild import build_dex, pinner_call

BENCHES = Path(__file__).resolve().parent
FRAMEWORK = Path("/usr/share/android-framework-res/framework-res.apk")
VERSION = 2  # of the corpus recipe: a change rebuilds the corpus

MANIFEST = """<?xml version="1.0" encoding="utf-8"?>
<manifest xmlns:android="http://schemas.android.com/apk/res/android" package="com.bench.app{i}">
  <application android:networkSecurityConfig="@xml/network_security_config"/>
</manifest>
"""
NSC = """<?xml version="1.0" encoding="utf-8"?>
<network-security-config>
  <domain-config>
    <domain includeSubdomains="true">api{i}.example.com</domain>
    <pin-set expiration="2030-01-01">
      <pin digest="SHA-256">{a}</pin>
      <pin digest="SHA-256">{b}</pin>
    </pin-set>
  </domain-config>
</network-security-config>
"""
WORDS = [
    "Landroid/os/Bundle;", "Lokhttp3/CertificatePinner$Builder;", "getInstance", "onCreate",
    "Ljava/lang/String;", "toString", "access$000", "this$0", "Lkotlin/jvm/internal/Intrinsics;",
    "checkNotNullParameter", "Lcom/example/app/MainActivity;", "<init>", "V", "Z", "I",
    "Landroidx/lifecycle/ViewModel;", "setContentView", "findViewById", "invoke", "value",
]  # fmt: skip


def _pin(rng: random.Random) -> str:
    return base64.b64encode(rng.randbytes(32)).decode()


def _code_like(rng: random.Random, size: int, pins: int) -> bytes:
    """Identifiers and random text, deflating about 3:1 as a JS bundle does, with pin strings."""
    parts: list[bytes] = []
    total = 0
    while total < size:
        if rng.random() < 0.3:
            chunk = rng.randbytes(rng.randint(16, 128)).hex().encode()
        else:
            chunk = " ".join(rng.choices(WORDS, k=rng.randint(4, 16))).encode()
        parts.append(chunk)
        total += len(chunk) + 1
    for _ in range(pins):
        parts.insert(rng.randrange(len(parts)), f"sha256/{_pin(rng)}".encode())
    return b"\n".join(parts)


def _dex(rng: random.Random, size: int) -> bytes:
    """A valid DEX of about ``size`` bytes: one pinning call site and a large string table."""
    count = 60_000  # const-string indexes are 16 bits: the call's strings must stay below
    length = max(size // count, 24)
    strings = [
        (rng.randbytes(length // 4).hex() + " " + " ".join(rng.choices(WORDS, k=3)))[:length]
        for _ in range(count)
    ]
    strings += [f"sha256/{_pin(rng)}" for _ in range(2)]
    call = pinner_call(f"api{rng.randint(0, 99)}.example.com", [f"sha256/{_pin(rng)}"])
    return build_dex(call, tuple(strings))


def _native(rng: random.Random, size: int) -> bytes:
    half = size // 2
    pin = f"sha256/{_pin(rng)}".encode()
    return rng.randbytes(half) + pin + bytes(rng.choices(range(16), k=size - half))


def build_apk(path: Path, i: int, rng: random.Random) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-apk-"))
    try:
        (work / "res" / "xml").mkdir(parents=True)
        (work / "AndroidManifest.xml").write_text(MANIFEST.format(i=i))
        nsc = NSC.format(i=i, a=_pin(rng), b=_pin(rng))
        (work / "res" / "xml" / "network_security_config.xml").write_text(nsc)
        subprocess.run(
            ["aapt", "package", "-f", "-M", work / "AndroidManifest.xml", "-S", work / "res",
             "-I", FRAMEWORK, "-F", path],
            check=True, capture_output=True,
        )  # fmt: skip
    finally:
        shutil.rmtree(work)
    target = rng.randint(10, 50) << 20  # bytes of APK, roughly
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as apk:
        dexes = rng.randint(3, 5)
        for n in range(dexes):
            name = "classes.dex" if n == 0 else f"classes{n + 1}.dex"
            apk.writestr(name, _dex(rng, int(target * 0.9 / dexes)))
        for lib in ("libapp.so", "libflutter.so"):
            apk.writestr(f"lib/arm64-v8a/{lib}", _native(rng, int(target * 0.45)))
        bundle = _code_like(rng, target // 20, pins=1)
        apk.writestr("assets/index.android.bundle", bundle)
        for n in range(rng.randint(200, 600)):
            info = zipfile.ZipInfo(f"res/drawable-xxhdpi/i{n}.png")
            apk.writestr(info, rng.randbytes(rng.randint(1_000, 20_000)))  # stored


def corpus(root: Path, count: int, seed: int = 15) -> list[Path]:
    stamp = root / "corpus.json"
    recipe = {"version": VERSION, "count": count, "seed": seed}
    if stamp.exists() and json.loads(stamp.read_text()) == recipe:
        return sorted(root.glob("*.apk"))
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    rng = random.Random(seed)
    for i in range(count):
        build_apk(root / f"app{i:03d}.apk", i, rng)
    stamp.write_text(json.dumps(recipe))
    return sorted(root.glob("*.apk"))


def _timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def _extract(paths: list[str], workers: int, code: bool) -> Callable[[], object]:
    def go() -> None:
        rows: list[dict[str, Any]] = []
        bulk.run(paths, rows.extend, workers=workers, code=code)
        bad = [r["errors"] for r in rows if r.get("pin") is None and r["errors"]]
        if bad:
            raise SystemExit(f"extract reported errors: {bad[:3]}")

    return go


def _unzip(paths: list[str], parallel: int) -> Callable[[], object]:
    def go() -> None:
        script = 'for f in "$@"; do unzip -p "$f" > /dev/null || exit 1; done'
        if parallel == 1:
            subprocess.run(["sh", "-c", script, "sh", *paths], check=True)
        else:
            subprocess.run(
                ["xargs", "-0", "-n", "1", "-P", str(parallel), "sh", "-c",
                 'unzip -p "$0" > /dev/null'],
                input="\0".join(paths).encode(), check=True,
            )  # fmt: skip

    return go


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apks", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="6 APKs, one round")
    parser.add_argument("--markdown", action="store_true", help="print a table for the docs")
    parser.add_argument(
        "--corpus", type=Path, default=Path(tempfile.gettempdir()) / "pinscan-bench-apks"
    )
    args = parser.parse_args()
    if args.quick:
        args.apks, args.rounds = 6, 1
    started = time.monotonic()
    files = corpus(args.corpus, args.apks)
    built = time.monotonic() - started
    paths = [str(p) for p in files]
    size = sum(p.stat().st_size for p in files)
    inflated = 0
    for p in files:
        with zipfile.ZipFile(p) as z:
            inflated += sum(i.file_size for i in z.infolist())
    for p in files:  # into the page cache, for every contender alike
        p.read_bytes()

    # Configs are quick: the corpus is read several times over (as several APKs), so that the
    # pool's start-up (spawned workers importing pinscan, once a run) weighs as in a bulk job.
    repeat = max(1, 480 // len(paths))
    many = paths * repeat
    contenders: dict[str, tuple[Callable[[], object], int]] = {
        "pool start-up, 2 workers": (_extract(paths[:1] * 2, 2, code=False), 0),
        "configs, 1 worker": (_extract(many, 1, code=False), len(many)),
        "configs, 2 workers": (_extract(many, 2, code=False), len(many)),
        "code searched, 1 worker": (_extract(paths, 1, code=True), len(paths)),
        "code searched, 2 workers": (_extract(paths, 2, code=True), len(paths)),
        "unzip -p, one at a time": (_unzip(paths, 1), len(paths)),
        "unzip -p, two at a time": (_unzip(paths, 2), len(paths)),
    }
    rounds: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.rounds):
        for name, (run, _count) in contenders.items():
            rounds[name].append(_timed(run))
    best = {name: min(times) for name, times in rounds.items()}

    mb = size / 1e6
    rows = []
    for name, (_run, count) in contenders.items():
        seconds = best[name]
        apks = count / seconds if count else None
        rows.append((name, seconds, apks, apks * size / len(files) / 1e6 if apks else None))
    ratio_1 = best["unzip -p, one at a time"] / best["code searched, 1 worker"]
    ratio_2 = best["unzip -p, two at a time"] / best["code searched, 2 workers"]
    started_2 = best["code searched, 2 workers"] - best["pool start-up, 2 workers"]
    ratio_2_warm = best["unzip -p, two at a time"] / started_2
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.processor(),
    )  # fmt: skip
    print(f"corpus: {len(files)} APKs, {mb:,.0f} MB ({inflated / 1e6:,.0f} MB inflated), "
          f"built or found in {built:.1f} s; configs read {repeat} times over; CPU {cpu}, "
          f"{os.cpu_count()} cores; best of {args.rounds} rounds")  # fmt: skip
    if args.markdown:
        print("\n| run | seconds | APKs/s | MB of APK/s |\n|---|---:|---:|---:|")
        for name, seconds, per_second, mbs in rows:
            rate = f"{per_second:,.1f} | {mbs:,.0f}" if per_second else "- | -"
            print(f"| {name} | {seconds:.2f} | {rate} |")
    else:
        for name, seconds, per_second, mbs in rows:
            rate = f"{per_second:8.1f} APKs/s {mbs:8.0f} MB/s" if per_second else ""
            print(f"{name:28} {seconds:8.2f} s {rate}")
    print(
        f"\ncode searched / unzip -p: {ratio_1:.0%} one at a time, {ratio_2:.0%} two at a time "
        f"({ratio_2_warm:.0%} once the pool has started)"
    )

    out = BENCHES / "out"
    out.mkdir(exist_ok=True)
    record = {
        "apks": len(files), "bytes": size, "inflated": inflated, "cpu": cpu,
        "cores": os.cpu_count(), "python": sys.version, "rounds": rounds,
        "ratio_one": ratio_1, "ratio_two": ratio_2, "ratio_two_started": ratio_2_warm,
        "config_repeat": repeat,
    }  # fmt: skip
    (out / f"extract-{int(time.time())}.json").write_text(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
