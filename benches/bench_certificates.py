# SPDX-License-Identifier: Apache-2.0
"""How fast `pinscan.certificates` is, next to the references it should be judged against.

Every figure comes from one run: the measurements take turns, round after round, and each keeps
its best round, so ratios are between numbers taken under the same machine load (a shared 2-core
machine is noisy; absolute numbers drift, ratios less). docs/benchmarks.md reports a run.

    .venv/bin/python -m benches.bench_certificates [--quick] [--markdown] [--out DIR]

Corpus: every certificate pyca/cryptography can load from cryptography_vectors' x509 tree (PEM and
DER, PKITS_data and custom included) and certifi, repeated. Each copy gets its own bytes by
changing the end of the signature BIT STRING: the length and the SPKI stay the same, so every
copy costs what the original does, and no cache of repeats could help.

Measured: (a) pinscan with 1 and 2 threads, wall and CPU time, with and without building the
DataFrame, and on non-certificates (its floor: one hash and an empty row); (b) the single-core
SHA-256 limit (`openssl speed` at the mean certificate size) and Python's hashlib over the same
list; (c) pyca/cryptography building the same row from Python; (d) the openssl shell pipeline
people paste for a pin; (e) the 2-thread speedup; (f) peak memory of a 1,000,000-certificate
batch, in a child process so its high-water mark is its own. A table goes to stdout, JSON to
benches/out/.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import gc
import hashlib
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import certifi
import cryptography
import cryptography_vectors
import polars as pl
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtensionOID

import pinscan
import pinscan._core

ROOT = Path(__file__).resolve().parent.parent
PEM_CERT = re.compile(rb"-----BEGIN (?:X509 |TRUSTED )?CERTIFICATE-----(.+?)-----END", re.S)
DER_SUFFIXES = {".der", ".crt", ".cer"}
# Signature bytes changed per copy: 8 give 2**64 distinct copies of each certificate.
TAIL = 8

FULL = {
    "corpus": 200_000,
    "repeats": 5,
    "pyca_sample": 20_000,
    "pipeline_certs": 30,
    "openssl_seconds": 3,
    "million": 1_000_000,
}
QUICK = {
    "corpus": 20_000,
    "repeats": 2,
    "pyca_sample": 1_000,
    "pipeline_certs": 5,
    "openssl_seconds": 1,
    "million": 50_000,
}
TARGETS = {"sha256_limit_pct": 50.0, "vs_pyca": 40.0, "vs_openssl_pipeline": 10_000.0}


# Corpus --------------------------------------------------------------------------------------


def header(data: bytes, at: int) -> tuple[int, int]:
    """(header length, content length) of the DER element at `at`."""
    first = data[at + 1]
    if first < 0x80:
        return 2, first
    n = first & 0x7F
    return 2 + n, int.from_bytes(data[at + 2 : at + 2 + n], "big")


def signature_tail_ok(der: bytes) -> bool:
    """True when the certificate ends with its signature BIT STRING and it has room for `TAIL`
    changed bytes (outer SEQUENCE, then TBS, AlgorithmIdentifier, BIT STRING, nothing after)."""
    try:
        outer_h, outer_n = header(der, 0)
        if outer_h + outer_n != len(der):
            return False
        at = outer_h
        for _ in range(2):  # tbsCertificate, signatureAlgorithm
            h, n = header(der, at)
            at += h + n
        h, n = header(der, at)
    except IndexError:
        return False
    # n counts the unused-bits octet too, so the changed bytes never touch it.
    return der[at] == 0x03 and at + h + n == len(der) and n > TAIL + 1


def spki_size(der: bytes) -> int:
    """Length of the SPKI, found by framing: the second hash pinscan computes per certificate."""
    outer_h, _ = header(der, 0)
    tbs_h, _ = header(der, outer_h)
    at = outer_h + tbs_h
    if der[at] == 0xA0:  # [0] version
        h, n = header(der, at)
        at += h + n
    for _ in range(5):  # serial, signature, issuer, validity, subject
        h, n = header(der, at)
        at += h + n
    h, n = header(der, at)
    return h + n


def base_certificates() -> list[bytes]:
    """Distinct certificates pyca can load, from cryptography_vectors' x509 tree and certifi."""
    x509_dir = Path(cryptography_vectors.__file__).parent / "x509"
    found: list[bytes] = []
    for path in sorted(x509_dir.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if path.suffix == ".pem":
            found.extend(base64.b64decode(b"".join(m.split())) for m in PEM_CERT.findall(data))
        elif path.suffix in DER_SUFFIXES:
            found.append(data)
    found.extend(
        base64.b64decode(b"".join(m.split()))
        for m in PEM_CERT.findall(Path(certifi.where()).read_bytes())
    )
    out, seen = [], set()
    for der in found:
        if der in seen or not signature_tail_ok(der) or not pyca_loads(der):
            continue
        seen.add(der)
        out.append(der)
    return out


def pyca_loads(der: bytes) -> bool:
    try:
        x509.load_der_x509_certificate(der)
    except Exception:
        return False
    return True


def unique_copies(base: list[bytes], count: int) -> list[bytes]:
    """`count` certificates cycling through `base`, copy k of each with `TAIL` signature bytes
    before the last XORed with k (copy 0 is the original)."""
    out = []
    for i in range(count):
        k, der = divmod(i, len(base))
        der = base[der]
        if k:
            # The last octet is left alone: DER wants unused bits zero, and pyca checks it.
            tail = int.from_bytes(der[-TAIL - 1 : -1], "big") ^ k
            der = der[: -TAIL - 1] + tail.to_bytes(TAIL, "big") + der[-1:]
        out.append(der)
    return out


# Measuring -----------------------------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds of the whole process, all threads included, result)."""
    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    result = fn()
    t1, c1 = time.perf_counter(), time.process_time()
    return t1 - t0, c1 - c0, result


def record(name: str, n: int, wall: float, cpu: float, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "certs": n,
        "wall_s": wall,
        "cpu_s": cpu,
        "certs_per_s": n / wall,
        "certs_per_cpu_s": n / cpu if cpu > 0 else None,
        **extra,
    }


def best_of(rounds: int, measures: dict[str, Callable[[], dict[str, Any]]]) -> dict[str, Any]:
    """Runs every measure once per round, interleaved, so all of them meet the same background
    load, and keeps each one's fastest round: on a shared machine noise only ever slows down."""
    seen: dict[str, list[dict[str, Any]]] = {name: [] for name in measures}
    for _ in range(rounds):
        for name, measure in measures.items():
            seen[name].append(measure())
    best = {}
    for name, results in seen.items():
        rates = [r["certs_per_s"] for r in results]
        best[name] = {
            **max(results, key=lambda r: r["certs_per_s"]),
            "rounds_certs_per_s": rates,
            "median_certs_per_s": statistics.median(rates),
        }
    return best


def pinscan_measure(name: str, fn: Callable[[], Any], n: int) -> Callable[[], dict[str, Any]]:
    def measure() -> dict[str, Any]:
        wall, cpu, result = timed(fn)
        assert len(result) == n
        return record(name, n, wall, cpu)

    return measure


def pinscan_measures(ders: list[bytes]) -> dict[str, Callable[[], dict[str, Any]]]:
    """`certificates` is what users call; `_core.parse_certificates` is the same work without
    building the polars DataFrame, to show what that costs."""
    n = len(ders)
    # The same bytes with the first one changed are no certificate: pinscan hashes them, fails at
    # the first tag and writes a row of nulls. That is the floor of its per-row cost.
    not_certs = [b"\x04" + d[1:] for d in ders]
    core = pinscan._core.parse_certificates
    calls: dict[str, Callable[[], Any]] = {
        "certificates_1t": lambda: pinscan.certificates(ders, threads=1),
        "certificates_2t": lambda: pinscan.certificates(ders, threads=2),
        "core_1t": lambda: core(ders, threads=1),
        "core_2t": lambda: core(ders, threads=2),
        "floor_1t": lambda: pinscan.certificates(not_certs, threads=1),
    }
    names = {
        "certificates_1t": "pinscan.certificates, threads=1",
        "certificates_2t": "pinscan.certificates, threads=2",
        "core_1t": "pinscan._core.parse_certificates (no DataFrame), threads=1",
        "core_2t": "pinscan._core.parse_certificates (no DataFrame), threads=2",
        "floor_1t": "pinscan.certificates on non-certificates (hash + empty row), threads=1",
    }
    return {key: pinscan_measure(names[key], fn, n) for key, fn in calls.items()}


def openssl_sha256(size: int, seconds: int) -> dict[str, Any]:
    """OpenSSL's single-core SHA-256 rate on `size`-byte messages, one EVP digest each."""
    cmd = ["openssl", "speed", "-evp", "sha256", "-bytes", str(size), "-seconds", str(seconds)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    # Last line: "sha256  123456.78k", thousands of bytes per second.
    match = re.search(r"^sha256\s+([\d.]+)k\s*$", out, re.M)
    if match is None:
        msg = f"cannot read `openssl speed` output:\n{out}"
        raise RuntimeError(msg)
    bytes_per_s = float(match.group(1)) * 1000
    return {
        "name": f"SHA-256 limit: openssl speed -evp sha256 -bytes {size}",
        "command": " ".join(cmd),
        "bytes_per_s": bytes_per_s,
        "certs_per_s": bytes_per_s / size,
    }


def bench_hashlib(ders: list[bytes]) -> dict[str, Any]:
    sha256 = hashlib.sha256

    def run() -> None:
        for der in ders:
            sha256(der).digest()

    wall, cpu, _ = timed(run)
    return record("hashlib.sha256 per certificate (Python loop)", len(ders), wall, cpu)


def pyca_row(der: bytes) -> dict[str, Any]:
    """The fields of a pinscan row, the way a Python user gets them from pyca/cryptography.
    The SPKI is re-encoded by `public_bytes`: the closest pyca has to the raw SPKI slice."""
    row: dict[str, Any] = {}
    cert = x509.load_der_x509_certificate(der)
    row["cert_sha256"] = cert.fingerprint(hashes.SHA256()).hex()
    key = None
    try:
        key = cert.public_key()
        spki = key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        row["spki_sha256"] = base64.b64encode(hashlib.sha256(spki).digest()).decode()
    except Exception:
        row["spki_sha256"] = None
    for field, get in (
        ("subject", lambda: cert.subject.rfc4514_string()),
        ("issuer", lambda: cert.issuer.rfc4514_string()),
        ("serial", lambda: format(cert.serial_number, "x")),
        ("not_before", lambda: cert.not_valid_before_utc),
        ("not_after", lambda: cert.not_valid_after_utc),
        ("key_type", lambda: type(key).__name__),
        ("key_bits", lambda: getattr(key, "key_size", None)),
        ("curve", lambda: getattr(getattr(key, "curve", None), "name", None)),
        ("sig_alg", lambda: cert.signature_algorithm_oid.dotted_string),
    ):
        try:
            row[field] = get()
        except Exception:
            row[field] = None
    try:
        extensions = cert.extensions
    except Exception:
        return row
    for field, oid, get in (
        ("basic_constraints", ExtensionOID.BASIC_CONSTRAINTS, lambda v: (v.ca, v.path_length)),
        (
            "san",
            ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
            lambda v: (
                v.get_values_for_type(x509.DNSName),
                [str(ip) for ip in v.get_values_for_type(x509.IPAddress)],
            ),
        ),
        ("ski", ExtensionOID.SUBJECT_KEY_IDENTIFIER, lambda v: v.digest.hex()),
        ("aki", ExtensionOID.AUTHORITY_KEY_IDENTIFIER, lambda v: (v.key_identifier or b"").hex()),
        ("sct_count", ExtensionOID.PRECERT_SIGNED_CERTIFICATE_TIMESTAMPS, len),
    ):
        try:
            row[field] = get(extensions.get_extension_for_oid(oid).value)
        except Exception:
            row[field] = None
    return row


def bench_pyca(ders: list[bytes]) -> dict[str, Any]:
    wall, cpu, rows = timed(lambda: [pyca_row(d) for d in ders])
    spki_found = sum(r["spki_sha256"] is not None for r in rows)
    return record("pyca/cryptography row from Python", len(ders), wall, cpu, spki_found=spki_found)


PIPELINE = (
    "openssl x509 -pubkey -noout | openssl pkey -pubin -outform DER"
    " | openssl dgst -sha256 -binary | base64"
)


def bench_pipeline(ders: list[bytes]) -> dict[str, Any]:
    """One shell pipeline per certificate, fed PEM as it would be from a file. Its CPU time is in
    child processes, so wall time is what counts."""
    pems = [
        b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(d) + b"-----END CERTIFICATE-----\n"
        for d in ders
    ]
    pins: list[str] = []

    def run() -> None:
        for pem in pems:
            out = subprocess.run(PIPELINE, shell=True, input=pem, capture_output=True)
            pins.append(out.stdout.decode().strip())

    wall, _, _ = timed(run)
    # The pipeline re-encodes keys (as pyca does), so a few certificates may legitimately differ.
    ours = pinscan.certificates(ders)["spki_sha256"].to_list()
    agree = sum(a == b for a, b in zip(pins, ours, strict=True))
    return record(f"shell pipeline: {PIPELINE}", len(ders), wall, 0.0, agree_with_pinscan=agree)


# The 1,000,000-certificate batch, in a child process -----------------------------------------


def current_rss() -> int:
    """Resident set size now, in bytes (Linux)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss() -> int:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def million_child(count: int, core_only: bool) -> None:
    """Builds `count` unique certificates, parses them in one call, prints JSON on stdout. With
    `core_only`, stops at the Arrow batches (no DataFrame), sized through a zero-copy pyarrow
    import, which splits the cost between the Rust side and polars."""
    ders = unique_copies(base_certificates(), count)
    gc.collect()
    payload = sum(len(d) for d in ders)
    objects = sys.getsizeof(ders) + sum(sys.getsizeof(d) for d in ders)
    rss_before, peak_before = current_rss(), peak_rss()
    if core_only:
        wall, cpu, batch = timed(lambda: pinscan._core.parse_certificates(ders))
        peak_after = peak_rss()
        import pyarrow as pa  # imported late: its own pages must not count in the peak

        table = pa.table(batch)
        output, rows, errors = table.nbytes, table.num_rows, table["error"].null_count
        errors = rows - errors
    else:
        wall, cpu, df = timed(lambda: pinscan.certificates(ders))
        peak_after = peak_rss()
        output, rows = df.estimated_size(), df.height
        errors = int(df["error"].is_not_null().sum())
    result = {
        "certs": count,
        "wall_s": wall,
        "cpu_s": cpu,
        "input_payload_bytes": payload,
        "input_python_bytes": objects,
        "output_bytes": output,
        "rss_before_parse_bytes": rss_before,
        "peak_rss_before_parse_bytes": peak_before,
        "peak_rss_bytes": peak_after,
        "rows": rows,
        "rows_with_error": errors,
    }
    print(json.dumps(result))


def bench_million(count: int, core_only: bool) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--million-child", str(count)]
    out = subprocess.run(
        [*cmd, "--core-only"] if core_only else cmd, capture_output=True, text=True, check=True
    )
    m = json.loads(out.stdout)
    # What the call needed beyond the process as it stood (interpreter, modules, input) plus what
    # it returned. Valid only if the call set a new high-water mark, which the flag records.
    m["peak_is_the_call"] = m["peak_rss_bytes"] > m["peak_rss_before_parse_bytes"]
    m["overhead_bytes"] = m["peak_rss_bytes"] - m["rss_before_parse_bytes"]
    m["overhead_beyond_output_bytes"] = m["overhead_bytes"] - m["output_bytes"]
    what = "_core.parse_certificates (Arrow only)" if core_only else "certificates"
    m["name"] = f"pinscan.{what}, {count:,} certificates, all threads (child process)"
    m["certs_per_s"] = count / m["wall_s"]
    return m


# Machine and report ---------------------------------------------------------------------------


def sha256_path(flags: set[str]) -> str:
    """How pinscan-core hashes on this CPU, by the rule of its `hash::simd::Kernel::detect`."""
    if platform.machine() not in {"x86_64", "AMD64"} or "sha_ni" in flags:
        return "ring, one message at a time"
    if {"avx512f", "avx512bw"} <= flags:
        return "multi-buffer AVX-512, 16 messages at a time"
    if "avx2" in flags:
        return "multi-buffer AVX2, 8 messages at a time"
    return "ring, one message at a time"


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    flags = re.search(r"^flags\s*:\s*(.+)$", cpuinfo, re.M)
    flag_set = set(flags.group(1).split()) if flags else set()
    core = Path(pinscan._core.__file__)
    openssl = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout
    git = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True
    ).stdout
    return {
        "cpu": model.group(1) if model else platform.processor(),
        "cores": os.cpu_count(),
        "sha_ni": "sha_ni" in flag_set,
        "avx2": "avx2" in flag_set,
        "avx512": {"avx512f", "avx512bw"} <= flag_set,
        "sha256_path": sha256_path(flag_set),
        "python": platform.python_version(),
        "pinscan": pinscan.__version__,
        "pinscan_core_so": {
            "sha256": hashlib.sha256(core.read_bytes()).hexdigest()[:16],
            "mtime": dt.datetime.fromtimestamp(core.stat().st_mtime, dt.UTC).isoformat(),
        },
        "git": git.strip(),
        "polars": pl.__version__,
        "cryptography": cryptography.__version__,
        "openssl": openssl.strip(),
        "loadavg_start": os.getloadavg(),
    }


def table(rows: list[dict[str, Any]]) -> str:
    def cell(value: float | None, spec: str) -> str:
        return format(value, spec) if value else "-"

    lines = [
        f"{'measurement':<62} {'certs':>9} {'wall s':>7} {'CPU s':>7} {'certs/s':>10} "
        f"{'certs/CPU-s':>11}",
    ]
    for r in rows:
        lines.append(
            f"{r['name'][:62]:<62} {cell(r.get('certs'), ','):>9} {cell(r.get('wall_s'), '.3f'):>7}"
            f" {cell(r.get('cpu_s'), '.3f'):>7} {cell(r.get('certs_per_s'), ',.0f'):>10}"
            f" {cell(r.get('certs_per_cpu_s'), ',.0f'):>11}"
        )
    return "\n".join(lines)


MIB = 1 << 20


def verdict(value: float, target: float) -> str:
    return "meets target" if value >= target else "MISSES target"


def summary(
    ratios: dict[str, float],
    pipe: dict[str, Any],
    million: dict[str, Any],
    million_core: dict[str, Any],
) -> str:
    r, t = ratios, TARGETS
    return "\n".join(
        [
            f"(b) pinscan 1 thread = {r['pinscan_1t_pct_of_sha256_limit']:.0f}% of one SHA-256 "
            f"per certificate at OpenSSL speed; target >= {t['sha256_limit_pct']:.0f}%: "
            f"{verdict(r['pinscan_1t_pct_of_sha256_limit'], t['sha256_limit_pct'])}",
            f"    floor (hash + empty row) = {r['floor_1t_pct_of_sha256_limit']:.0f}% of it; "
            f"pinscan 1 thread / Python hashlib loop = {r['pinscan_1t_over_hashlib']:.2f}x",
            f"(c) pinscan 1 thread / pyca, per CPU-second = "
            f"{r['pinscan_1t_over_pyca_per_cpu_s']:.1f}x; target >= {t['vs_pyca']:.0f}x: "
            f"{verdict(r['pinscan_1t_over_pyca_per_cpu_s'], t['vs_pyca'])}",
            f"(d) pinscan / openssl pipeline = {r['pinscan_1t_over_openssl_pipeline']:,.0f}x "
            f"(1 thread), {r['pinscan_2t_over_openssl_pipeline']:,.0f}x (2 threads); target >= "
            f"{t['vs_openssl_pipeline']:,.0f}x: "
            f"{verdict(r['pinscan_1t_over_openssl_pipeline'], t['vs_openssl_pipeline'])} "
            f"with 1 thread; pins agreeing: {pipe['agree_with_pinscan']}/{pipe['certs']}",
            f"(e) 2 threads / 1 thread = {r['speedup_2t_over_1t']:.2f}x "
            f"({r['speedup_2t_over_1t_core_only']:.2f}x without the DataFrame; "
            f"{r['cpu_busy_2t']:.2f} cores busy)",
            f"(f) {million['certs']:,} certificates: input "
            f"{million['input_payload_bytes'] / MIB:,.0f} MiB of DER "
            f"({million['input_python_bytes'] / MIB:,.0f} MiB as Python bytes), DataFrame "
            f"{million['output_bytes'] / MIB:,.0f} MiB; RSS "
            f"{million['rss_before_parse_bytes'] / MIB:,.0f} MiB before the call, peak "
            f"{million['peak_rss_bytes'] / MIB:,.0f} MiB: "
            f"{r['million_overhead_beyond_input_output_mib']:,.0f} MiB beyond input and output",
            f"    Arrow only (no DataFrame): output {million_core['output_bytes'] / MIB:,.0f} MiB, "
            f"peak {million_core['peak_rss_bytes'] / MIB:,.0f} MiB: "
            f"{million_core['overhead_beyond_output_bytes'] / MIB:,.0f} MiB beyond input and "
            f"output",
        ]
    )


def markdown(report: dict[str, Any]) -> str:
    """The run's table as Markdown, for docs/benchmarks.md."""

    def cell(value: float | None, spec: str) -> str:
        return format(value, spec) if value else "-"

    lines = [
        "| measurement | certs | wall s | CPU s | certs/s | certs/CPU-s |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for r in report["results"]:
        name = r["name"].replace("|", "\\|")  # the shell pipeline's bars
        lines.append(
            f"| {name} | {cell(r.get('certs'), ',')} | {cell(r.get('wall_s'), '.3f')} | "
            f"{cell(r.get('cpu_s'), '.3f')} | {cell(r.get('certs_per_s'), ',.0f')} | "
            f"{cell(r.get('certs_per_cpu_s'), ',.0f')} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run (<30 s)")
    parser.add_argument("--out", type=Path, default=ROOT / "benches" / "out")
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    parser.add_argument("--million-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--core-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # pyca warns on the vectors' negative serials and the like
    if args.million_child:
        million_child(args.million_child, args.core_only)
        return 0

    size = QUICK if args.quick else FULL
    info = machine()
    started = time.perf_counter()
    base = base_certificates()
    ders = unique_copies(base, size["corpus"])
    assert len(set(ders)) == len(ders), "copies must be unique"
    mean = sum(map(len, ders)) / len(ders)
    mean_spki = sum(map(spki_size, ders)) / len(ders)
    print(
        f"corpus: {len(ders):,} certificates from {len(base)} distinct ones, mean {mean:.0f} B "
        f"(SPKI {mean_spki:.0f} B); "
        f"{info['cpu']}, {info['cores']} cores, sha_ni={info['sha_ni']}; "
        f"SHA-256: {info['sha256_path']}",
        flush=True,
    )

    pinscan.certificates(ders[:5000], threads=1)  # warm-up: page in the code and allocator
    pyca_sample = ders[: size["pyca_sample"]]
    best = best_of(
        size["repeats"],
        {
            **pinscan_measures(ders),
            "sha256_limit": lambda: openssl_sha256(round(mean), size["openssl_seconds"]),
            "hashlib": lambda: bench_hashlib(ders),
            "pyca": lambda: bench_pyca(pyca_sample),
        },
    )
    # Spread over the corpus so the few certificates cover different key types.
    step = max(1, len(base) // size["pipeline_certs"])
    pipe = bench_pipeline(base[::step][: size["pipeline_certs"]])
    million = bench_million(size["million"], core_only=False)
    million_core = bench_million(size["million"], core_only=True)

    one, two = best["certificates_1t"], best["certificates_2t"]
    core1, core2, floor = best["core_1t"], best["core_2t"], best["floor_1t"]
    limit, hl, pyca = best["sha256_limit"], best["hashlib"], best["pyca"]
    ratios = {
        "pinscan_1t_pct_of_sha256_limit": 100 * one["certs_per_s"] / limit["certs_per_s"],
        "floor_1t_pct_of_sha256_limit": 100 * floor["certs_per_s"] / limit["certs_per_s"],
        "pinscan_1t_over_hashlib": one["certs_per_s"] / hl["certs_per_s"],
        "pinscan_1t_over_pyca_per_cpu_s": one["certs_per_cpu_s"] / pyca["certs_per_cpu_s"],
        "pinscan_1t_over_openssl_pipeline": one["certs_per_s"] / pipe["certs_per_s"],
        "pinscan_2t_over_openssl_pipeline": two["certs_per_s"] / pipe["certs_per_s"],
        "speedup_2t_over_1t": one["wall_s"] / two["wall_s"],
        "speedup_2t_over_1t_core_only": core1["wall_s"] / core2["wall_s"],
        "cpu_busy_2t": two["cpu_s"] / two["wall_s"],
        "million_overhead_beyond_input_output_mib": million["overhead_beyond_output_bytes"] / MIB,
    }
    rows = [one, two, core1, core2, floor, limit, hl, pyca, pipe, million, million_core]
    print()
    print(table(rows))
    print()
    print(summary(ratios, pipe, million, million_core))
    info["loadavg_end"] = os.getloadavg()
    report = {
        "mode": "quick" if args.quick else "full",
        "machine": info,
        "corpus": {
            "certs": len(ders),
            "distinct": len(base),
            "mean_bytes": mean,
            "mean_spki_bytes": mean_spki,
        },
        "sizes": size,
        "results": rows,
        "ratios": ratios,
        "targets": TARGETS,
        "elapsed_s": time.perf_counter() - started,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = args.out / f"bench_certificates-{report['mode']}-{stamp}.json"
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    if args.markdown:
        print()
        print(markdown(report))
    print(f"\nJSON: {path}  ({report['elapsed_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
