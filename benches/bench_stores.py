# SPDX-License-Identifier: Apache-2.0
"""What verifying every chain against each platform's store costs (issue 14, section 2).

CPU per distinct chain of ``Verifier.build`` (the work a scan does once per distinct chain, in
its verification child when it has one), best of several interleaved rounds, for:

- a private chain (a test PKI, its root given as ``--ca-bundle``): with Mozilla's shipped store
  only (the stores before issue 14), and with the five shipped stores (the default now);
- a public chain, the test root added to every store as a public root is in all of them: one
  store, five stores;
- the worst case: five stores, each reaching another root through a cross-signed intermediate,
  so five paths are built;
- a real chain (cryptography.io's certificate of 2018 under Let's Encrypt Authority X3 and ISRG
  Root X1), verified at a date it was valid: Mozilla's store only, the five stores.

Then the cost of loading the stores (``Verifier.for_scan``), the size of what a verification
child is sent, and its start-up, with Mozilla's store and with the five; and a whole scan of
the distinct private chains on a loopback server (in-process verification, so that the scan's
own CPU holds it all), with Mozilla's store and with the five.

    .venv/bin/python -m benches.bench_stores [--chains 300] [--rounds 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import pickle
import tarfile
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import cryptography_vectors
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

import pinscan
from pinscan.catalog import stores as shipped
from pinscan.config import ScanConfig
from pinscan.records import TRUST_STORES
from pinscan.scanner.verify import Verifier
from pinscan.scanner.verify_pool import VerifyProcess

from fleet import pki, servers

ROOT = Path(__file__).resolve().parent.parent


def _roots(name: str) -> list[x509.Certificate]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [x509.load_der_x509_certificate(der) for der in shipped.roots(name)]


def _best(rounds: int, chains: list[list[bytes]], verifier: Callable[[], Verifier]) -> float:
    """Milliseconds of CPU per chain, the best round (noise only ever slows a round down)."""
    best = float("inf")
    for _ in range(rounds):
        v = verifier()
        start = time.process_time()
        for chain in chains:
            v.build(chain)
        best = min(best, (time.process_time() - start) * 1000 / len(chains))
    return best


def _real_chain() -> list[bytes]:
    vectors = Path(cryptography_vectors.__file__).parent / "x509"
    leaf = pinscan.read_certificates(vectors / "cryptography-scts.pem")[0]
    with tarfile.open(ROOT / "data" / "ca-sources.tar.xz", "r:xz") as tar:
        member = tar.extractfile("data/letsencrypt/letsencryptauthorityx3.pem")
        assert member is not None
        x3 = pinscan.read_certificates(member.read())
    return [leaf, *x3]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=300, help="distinct chains per case")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    names = list(TRUST_STORES)
    real = {name: _roots(name) for name in names}
    root = pki.root().cert
    private = [
        pki._issue(
            f"h{i}.test", pki._key("ec"), pki.intermediate(), ca=False, names=(f"h{i}.test",)
        )
        for i in range(args.chains)
    ]
    private_chains = [p.chain_der for p in private]
    # Five roots certifying one intermediate: each store reaches its own root.
    others = [
        pki._issue(f"Pinscan Bench Root {i}", pki._key("ec"), None, ca=True) for i in range(5)
    ]
    key = pki._key("ec")
    cross = [pki._issue("Pinscan Bench Cross", key, r, ca=True) for r in others]
    worst_chains = []
    for i in range(args.chains):
        leaf = pki._issue(f"w{i}.test", pki._key("ec"), cross[0], ca=False, names=(f"w{i}.test",))
        worst_chains.append([leaf.der, *(c.der for c in cross)])
    real_chain = [_real_chain()] * args.chains  # built each time: build() keeps no cache
    in_2018 = dt.datetime(2018, 10, 15, tzinfo=dt.UTC)

    cases = {
        "private chain, Mozilla's store + --ca-bundle (before)": (
            private_chains,
            lambda: Verifier.of_certificates([("mozilla", real["mozilla"]), ("ca_bundle", [root])]),
        ),
        "private chain, five stores + --ca-bundle (default now)": (
            private_chains,
            lambda: Verifier.of_certificates(
                [*((n, real[n]) for n in names), ("ca_bundle", [root])]
            ),
        ),
        "public chain, one store": (
            private_chains,
            lambda: Verifier.of_certificates([("mozilla", [*real["mozilla"], root])]),
        ),
        "public chain, five stores (one root in all)": (
            private_chains,
            lambda: Verifier.of_certificates([(n, [*real[n], root]) for n in names]),
        ),
        "worst case: five stores, five roots, five paths": (
            worst_chains,
            lambda: Verifier.of_certificates(
                [(n, [*real[n], others[i].cert]) for i, n in enumerate(names)]
            ),
        ),
        "real chain (Let's Encrypt, 2018), Mozilla's store": (
            real_chain,
            lambda: Verifier.of_certificates([("mozilla", real["mozilla"])], now=in_2018),
        ),
        "real chain (Let's Encrypt, 2018), five stores": (
            real_chain,
            lambda: Verifier.of_certificates([(n, real[n]) for n in names], now=in_2018),
        ),
    }
    results = {label: float("inf") for label in cases}
    for _ in range(args.rounds):  # interleaved: every case sees the same machine load
        for label, (chains, make) in cases.items():
            results[label] = min(results[label], _best(1, chains, make))
    print(f"CPU per distinct chain, best of {args.rounds} rounds of {args.chains} chains:")
    for label, ms in results.items():
        print(f"  {label:58s} {ms:6.3f} ms")

    print("loading the stores, and a verification child:")
    for label, chosen in (("Mozilla's store", ["mozilla"]), ("five stores", names)):
        shipped._read.cache_clear()  # each measure reads the file, as a scan's first does
        shipped._roots.cache_clear()
        start = time.perf_counter()
        verifier = Verifier.for_scan(chosen)
        loaded = time.perf_counter() - start
        spec = len(pickle.dumps(verifier.spec, pickle.HIGHEST_PROTOCOL))
        start = time.perf_counter()
        child = VerifyProcess()
        child.load(verifier.spec, verifier.now)
        started = time.perf_counter() - start
        child.close()
        print(
            f"  {label:16s} Verifier.for_scan {loaded * 1000:5.0f} ms (the file read and parsed), "
            f"spec {spec / 1024:5.0f} KiB, child ready in {started * 1000:4.0f} ms"
        )
    scans = {"Mozilla's store": ("mozilla",), "five stores": tuple(names)}
    cpu = dict.fromkeys(scans, float("inf"))
    with tempfile.TemporaryDirectory(prefix="pinscan-bench-stores-") as tmp:
        bundle = Path(tmp) / "root.pem"
        bundle.write_bytes(root.public_bytes(Encoding.PEM))
        with servers.tls(*private) as server:
            lines = [f"127.0.0.1:{server.port} h{i}.test" for i in range(args.chains)]
            for r in range(args.rounds):
                for label, chosen in scans.items():
                    config = ScanConfig(
                        trust_stores=chosen, ca_bundle=bundle, verify_processes=0, retries=0,
                        concurrency=50,
                    )  # fmt: skip
                    start = time.process_time()
                    pinscan.scan(lines, Path(tmp) / f"{r}-{len(chosen)}", config=config)
                    cpu[label] = min(cpu[label], time.process_time() - start)
    print(f"a scan of {args.chains} distinct private chains (CPU of the scanning process):")
    for label, seconds in cpu.items():
        print(f"  {label:16s} {seconds * 1000 / args.chains:5.2f} ms per endpoint")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
