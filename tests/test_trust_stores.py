# SPDX-License-Identifier: Apache-2.0
"""The platform root stores pinscan ships, and each policy judged on the path its own platform's
store builds.

The shipped file is a fresh build of the vendored data; real chains verify against the real
stores; a store of the test's own under a platform's name (``--trust-store android=FILE``)
stands for a root only that platform trusts, since no test can add a root to the shipped ones.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import importlib.util
import json
import tarfile
from pathlib import Path

import cryptography_vectors
import polars as pl
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.serialization import Encoding

import pinscan
from pinscan.audit.config import load_config
from pinscan.catalog import stores
from pinscan.cli import main
from pinscan.config import ScanConfig, Timeouts
from pinscan.errors import ConfigError
from pinscan.policy import FORMATS as ALL_FORMATS
from pinscan.policy.evaluate import PLATFORM_STORES, UNPLACED_FORMATS, evaluate, platform_stores
from pinscan.policy.findings import findings
from pinscan.policy.model import ChainSource, Combine, Location, Match, Pin, PinSet, Policy, Rule
from pinscan.records import TRUST_STORES
from pinscan.scanner.path_builder import PathBuilder
from pinscan.scanner.verify import Verifier

from fleet import pki, servers
from policyfleet import Served, write_dataset

#: The formats of policies: an app artifact is none, it holds policies of these.
FORMATS = tuple(f for f in ALL_FORMATS if f != "artifact")

ROOT = Path(__file__).resolve().parent.parent
TARBALL = ROOT / "data" / "ca-sources.tar.xz"
VECTORS = Path(cryptography_vectors.__file__).parent / "x509"
STORES = tuple(TRUST_STORES)
CONFIG = ScanConfig(retries=0, timeouts=Timeouts(2, 2, 5), verify_processes=0)


@functools.cache
def builder():
    """scripts/build_trust_stores.py, imported from its file."""
    path = ROOT / "scripts" / "build_trust_stores.py"
    spec = importlib.util.spec_from_file_location("build_trust_stores", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def vendored(name: str) -> bytes:
    """A file of the vendored tarball (``data/...``)."""
    with tarfile.open(TARBALL, "r:xz") as tar:
        member = tar.extractfile(name)
        assert member is not None
        return member.read()


# --- what ships -------------------------------------------------------------------------------


def test_the_shipped_stores_are_a_fresh_build_of_the_vendored_data() -> None:
    script = builder()
    fresh = script.build(TARBALL)
    shipped = pq.read_table(stores.FILE)
    assert script._comparable(shipped) == script._comparable(fresh)
    meta = stores.info()
    assert meta["tarball_sha256"] == hashlib.sha256(TARBALL.read_bytes()).hexdigest()
    readme = vendored("data/README.md").decode()
    assert meta["source"]["commit"] == "5be93b9522946efd1d857e610a00f677ef619e1d"
    assert meta["source"]["commit"] in readme
    # The command line says the same, and writes nothing with --check.
    assert script.main(["--check"]) == 0


def test_each_store_is_as_its_vendor_lists_it() -> None:
    table = pinscan.trust_stores()
    meta = stores.info()["stores"]
    assert set(meta) == set(TRUST_STORES)
    # The versions and dates the sources give, and every certificate they list.
    assert (meta["android"]["version"], meta["android"]["date"]) == ("17.0.0_r1", "2026-06-21")
    assert (meta["java"]["file"], meta["java"]["version"]) == ("openjdk.yaml", "jdk-17.0.2")
    assert meta["microsoft"]["version"] is None
    for store, about in meta.items():
        rows = table.filter(pl.col("store") == store)
        assert rows.filter(~pl.col("blocked")).height == about["trusted"]
        assert rows.filter(pl.col("blocked")).height == about["blocked"]
        assert set(rows["store_date"].cast(pl.String)) == {about["date"]}
        roots = stores.roots(store)
        assert len(roots) == about["trusted"]  # every trusted one has its certificate
        blocked = set(rows.filter(pl.col("blocked"))["cert_sha256"])
        assert not blocked & {hashlib.sha256(der).hexdigest() for der in roots}
    assert (meta["microsoft"]["blocked"], meta["java"]["blocked"]) == (218, 38)
    # 19 of OpenJDK's blocked certificates are listed by fingerprint only.
    assert meta["java"]["blocked_without_certificate"] == 19
    with_der = table.filter(pl.col("der").is_not_null())
    assert (
        with_der["der"]
        .map_elements(lambda der: hashlib.sha256(der).hexdigest(), return_dtype=pl.String)
        .equals(with_der["cert_sha256"], check_names=False)
    )


def test_known_differences_between_the_stores() -> None:
    table = pinscan.trust_stores()

    def holding(subject: str, blocked: bool = False) -> set[str]:
        rows = table.filter((pl.col("subject_name") == subject) & (pl.col("blocked") == blocked))
        return set(rows["store"])

    assert holding("ISRG Root X1") == set(TRUST_STORES)
    # OpenJDK 17.0.2 predates ISRG Root X2; it still has GeoTrust Global CA, which Microsoft
    # lists as blocked, as it lists DST Root CA X3.
    assert holding("ISRG Root X2") == {"mozilla", "android", "apple", "microsoft"}
    assert holding("GeoTrust Global CA") == {"java"}
    assert holding("GeoTrust Global CA", blocked=True) == {"microsoft"}
    assert holding("DST Root CA X3", blocked=True) == {"microsoft"}
    assert holding("DST Root CA X3") == set()
    # The pins come from pinscan's core, over the certificate's own bytes.
    isrg = pinscan.read_certificates(vendored("data/letsencrypt/isrgrootx1.pem"))[0]
    x1 = table.filter(pl.col("subject_name") == "ISRG Root X1")
    assert set(x1["spki_sha256"]) == {pinscan.spki_pin(isrg)}
    with pytest.raises(ConfigError, match="no store named 'chrome'"):
        stores.roots("chrome")


# --- real chains against the real stores -------------------------------------------------------


def lets_encrypt_2018(cross_signed: bool) -> list[bytes]:
    """cryptography.io's certificate of 2018 and Let's Encrypt Authority X3, under ISRG Root X1
    or (``cross_signed``) under DST Root CA X3."""
    leaf = pinscan.read_certificates(VECTORS / "cryptography-scts.pem")[0]
    name = "lets-encrypt-x3-cross-signed.pem" if cross_signed else "letsencryptauthorityx3.pem"
    return [leaf, *pinscan.read_certificates(vendored(f"data/letsencrypt/{name}"))]


def test_a_real_chain_builds_one_path_in_every_store_holding_its_root(monkeypatch) -> None:
    verifier = Verifier.for_scan(now=dt.datetime(2018, 10, 15, tzinfo=dt.UTC))
    built = []
    build_one = PathBuilder._build_one
    monkeypatch.setattr(
        PathBuilder, "_build_one", lambda self, *a: built.append(a[0]) or build_one(self, *a)
    )
    chain = lets_encrypt_2018(cross_signed=False)
    verdict = verifier.verify(chain, "cryptography.io")
    isrg = pinscan.read_certificates(vendored("data/letsencrypt/isrgrootx1.pem"))[0]
    assert (verdict.verified, verdict.trust_store) == (True, "mozilla")
    assert verdict.store_paths == tuple((s, True, (*chain, isrg)) for s in TRUST_STORES)
    assert len(built) == 1  # the five stores hold the same root: one path built for all
    # Under DST Root CA X3, which no store trusts (Microsoft lists it as blocked, and a blocked
    # certificate is never an anchor): no store verifies it.
    refused = verifier.verify(lets_encrypt_2018(cross_signed=True), "cryptography.io")
    assert (refused.verified, refused.verify_error) == (False, "unknown_root")
    assert [ok for _, ok, _ in refused.store_paths] == [False] * 5


def test_only_the_store_holding_a_root_reaches_it() -> None:
    """www.cryptography.io in 2016, under GeoTrust Global CA, which only OpenJDK still ships:
    Java's store reaches the root (pyca then refuses it, for a root without keyUsage), the
    others have nothing to build on."""
    chain = pinscan.read_certificates(VECTORS / "cryptography.io.chain.pem")
    verdict = Verifier.for_scan(now=dt.datetime(2016, 1, 1, tzinfo=dt.UTC)).verify(
        chain, "cryptography.io"
    )
    assert verdict.verified is False
    assert "java: validation failed: candidates exhausted: invalid extension: keyUsage" in (
        verdict.verify_detail
    )
    assert "mozilla, android, apple, microsoft: validation failed" in verdict.verify_detail


# --- a store of the test's own, under a platform's name ----------------------------------------


def pem(tmp_path: Path, issued: pki.Issued, name: str) -> Path:
    path = tmp_path / f"{name}.pem"
    path.write_bytes(issued.cert.public_bytes(Encoding.PEM))
    return path


def test_stores_that_reach_other_roots_build_other_paths() -> None:
    leaf = pki.cross_signed_leaf("x.test")
    by_root, by_platform = pki.cross_signed()
    verifier = Verifier.of_certificates(
        [
            ("mozilla", [pki.root().cert]),
            ("android", [pki.platform_root().cert]),
            ("apple", [pki.other_root().cert]),
        ]
    )
    verdict = verifier.verify(leaf.chain_der, "x.test")
    assert verdict.store_paths == (
        ("mozilla", True, (leaf.der, by_root.der, pki.root().der)),
        ("android", True, (leaf.der, by_platform.der, pki.platform_root().der)),
        ("apple", False, ()),
    )
    assert verdict.chain == verdict.store_paths[0][2]  # the first store's is the endpoint's


def test_a_sent_certificate_whose_name_python_cannot_read_stops_no_store() -> None:
    """pyca's Python side cannot read the subject of cryptography_vectors' invalid-UTF-8
    certificate: sent as an extra, it keeps the stores from being grouped, not the chain from
    verifying."""
    extra = pinscan.read_certificates(VECTORS / "custom" / "invalid_utf8_common_name.pem")
    leaf = pki.leaf("a.test")
    verifier = Verifier.of_certificates(
        [("mozilla", [pki.root().cert]), ("android", [pki.other_root().cert])]
    )
    verdict = verifier.verify([*leaf.chain_der, *extra], "a.test")
    assert verdict.store_paths == (
        ("mozilla", True, (*leaf.chain_der, pki.root().der)),
        ("android", False, ()),
    )


def policy(fmt: str, *roots: pki.Issued, chain: ChainSource = ChainSource.VERIFIED) -> Policy:
    """A policy of format ``fmt`` pinning ``roots`` for x.test."""
    pins = PinSet(tuple(Pin.sha256(pinscan.spki_pin(r.der)) for r in roots))
    rule = Rule(host="x.test", match=Match.EXACT, pin_sets=(pins,), location=Location(fmt, 1))
    return Policy(f"{fmt}.policy", fmt, (rule,), Combine.MOST_SPECIFIC, chain)


@pytest.fixture(scope="module")
def platform_scan(tmp_path_factory) -> pinscan.ScanDataset:
    """x.test scanned with Mozilla's store holding the test root and Android's the platform
    root: each builds its own path through the cross-signed intermediate."""
    tmp = tmp_path_factory.mktemp("platform")
    stores_ = (
        f"mozilla={pem(tmp, pki.root(), 'root')}",
        f"android={pem(tmp, pki.platform_root(), 'platform')}",
        "apple",
    )
    config = ScanConfig(retries=0, timeouts=CONFIG.timeouts, trust_stores=stores_)
    with servers.tls(pki.cross_signed_leaf("x.test")) as server:
        return pinscan.scan([f"127.0.0.1:{server.port} x.test"], tmp / "out", config=config)


def test_an_android_pin_on_a_root_only_android_holds_passes_on_android(platform_scan) -> None:
    by_root, by_platform = pki.cross_signed()
    row = platform_scan.endpoints.select("trust_store", "store_paths").collect().row(0)
    certs = platform_scan.certificates.select("cert_sha256", "der").collect()
    sha = dict(zip(certs["der"], certs["cert_sha256"], strict=True))
    leaf = pki.cross_signed_leaf("x.test")
    assert row[0] == "mozilla"
    mozilla = [sha[leaf.der], sha[by_root.der], sha[pki.root().der]]
    android = [sha[leaf.der], sha[by_platform.der], sha[pki.platform_root().der]]
    # Mozilla's path is the endpoint's verified chain, written once, in the chains table.
    assert row[1] == [
        {"store": "mozilla", "verified": True, "chain": None},
        {"store": "android", "verified": True, "chain": android},
        {"store": "apple", "verified": False, "chain": []},
    ]
    verified = platform_scan.chains.filter(pl.col("source") == "verified").sort("position")
    assert verified.collect()["cert_sha256"].to_list() == mozilla
    verdict = evaluate(platform_scan, policy("android", pki.platform_root())).row(0, named=True)
    assert (verdict["verdict"], verdict["store"], verdict["chain"]) == (
        "pass",
        "android",
        "verified",
    )
    assert verdict["matched_position"] == 2 and verdict["matched_sent"] is False
    # The same pin, on the path of the scan's first store (TOML names no platform): the
    # platform root is not on it.
    toml = evaluate(platform_scan, policy("toml", pki.platform_root())).row(0, named=True)
    assert (toml["verdict"], toml["store"]) == ("fail", "mozilla")
    assert toml["note"] == "no pin of x.test matches the verified chain"
    # Apple's real store does not verify a private chain: an iOS client refuses it.
    ios = evaluate(platform_scan, policy("ios", pki.platform_root())).row(0, named=True)
    assert (ios["verdict"], ios["store"], ios["chain"]) == ("fail", "apple", "presented")
    assert "chain does not verify with the apple store: the client refuses it" in ios["note"]


def test_the_store_that_judges_can_be_chosen(platform_scan) -> None:
    toml = policy("toml", pki.platform_root())
    assert evaluate(platform_scan, toml, stores="android")["verdict"].to_list() == ["pass"]
    assert evaluate(platform_scan, toml, stores={"toml": "android"})["store"].to_list() == [
        "android"
    ]
    android = policy("android", pki.platform_root())
    assert evaluate(platform_scan, android, stores={"android": "mozilla"})["verdict"].to_list() == [
        "fail"
    ]
    # OkHttp on the JVM builds on Java's store, which this scan did not verify against: judged
    # as before, on the scan's first store's path, and said.
    okhttp = evaluate(platform_scan, policy("okhttp", pki.platform_root()), okhttp_jvm=True)
    row = okhttp.row(0, named=True)
    assert (row["verdict"], row["store"]) == ("fail", "mozilla")
    assert "the scan has no path of the java store: judged on the mozilla path" in row["note"]
    found = findings(platform_scan, policy("okhttp", pki.root()), okhttp_jvm=True)
    missing = found.filter(pl.col("kind") == "store_missing").row(0, named=True)
    assert missing["endpoints"] == 1 and "no path of the java store" in missing["message"]
    with pytest.raises(ConfigError, match="no store named 'chrome'"):
        evaluate(platform_scan, toml, stores="chrome")
    with pytest.raises(ConfigError, match="no policy format 'nsc'"):
        evaluate(platform_scan, toml, stores={"nsc": "android"})


# --- every format, each on its own store's path ------------------------------------------------


def test_each_format_is_judged_on_its_platform_store(tmp_path: Path) -> None:
    """One endpoint whose every store builds a path to a root of its own: a pin of a store's
    root passes exactly the formats that store judges."""
    issued = pki.leaf("x.test")
    roots = {s: pki._issue(f"Pinscan {s} Root", pki._key("ec"), None, ca=True) for s in STORES}
    roots["mozilla"] = pki.root()  # the endpoint's verified chain is Mozilla's path
    store_paths = [(s, True, (*issued.chain_der, r.der)) for s, r in roots.items()]
    dataset = write_dataset(
        tmp_path,
        [Served("x.test", issued, trust_store="mozilla", store_paths=store_paths)],
    )
    assert set(PLATFORM_STORES) | set(UNPLACED_FORMATS) == set(FORMATS)
    for fmt in FORMATS:
        chain = ChainSource.LEAF if fmt == "curl" else ChainSource.VERIFIED
        expected = "mozilla" if fmt in UNPLACED_FORMATS else PLATFORM_STORES[fmt][-1]
        for store, root in roots.items():
            if fmt == "curl":  # curl checks the leaf: the store is named, the root never matches
                root = issued
            row = evaluate(dataset, policy(fmt, root, chain=chain)).row(0, named=True)
            assert row["store"] == expected, (fmt, store)
            passes = fmt == "curl" or store == expected
            assert row["verdict"] == ("pass" if passes else "fail"), (fmt, store, row["note"])
            # No other note: every store verified, none is missing.
            assert "store" not in (row["note"] or ""), (fmt, row["note"])
    # The switches move OkHttp, or every format, to another store.
    assert platform_stores(okhttp_jvm=True)["okhttp"] == ("java",)
    okhttp = evaluate(dataset, policy("okhttp", roots["java"]), okhttp_jvm=True)
    assert okhttp.select("verdict", "store").row(0) == ("pass", "java")
    judged = [policy(f, roots["microsoft"]) for f in FORMATS if f != "curl"]
    every = evaluate(dataset, judged, stores="microsoft")
    assert set(every["verdict"]) == {"pass"} and set(every["store"]) == {"microsoft"}


def test_a_store_that_builds_the_verified_chain_judges_on_it(tmp_path: Path) -> None:
    """Most stores build the endpoint's verified chain: the dataset says so with a null path,
    and the verdict is still that store's."""
    issued = pki.leaf("x.test")
    path = (*issued.chain_der, pki.root().der)
    paths = [("mozilla", True, path), ("android", True, path), ("apple", False, ())]
    dataset = write_dataset(
        tmp_path, [Served("x.test", issued, trust_store="mozilla", store_paths=paths)]
    )
    stored = dataset.endpoints.select("store_paths").collect().item()
    assert [p["chain"] for p in stored] == [None, None, []]
    android = evaluate(dataset, policy("android", pki.root())).row(0, named=True)
    assert (android["verdict"], android["store"], android["chain"]) == (
        "pass",
        "android",
        "verified",
    )
    ios = evaluate(dataset, policy("ios", pki.root())).row(0, named=True)
    assert (ios["verdict"], ios["store"], ios["chain"]) == ("fail", "apple", "presented")


def test_curl_prefers_the_systems_store_when_the_scan_has_it(tmp_path: Path) -> None:
    issued = pki.leaf("x.test")
    paths = [("mozilla", True, (*issued.chain_der, pki.root().der))]
    paths.append(("system", True, (*issued.chain_der, pki.root().der)))
    dataset = write_dataset(
        tmp_path, [Served("x.test", issued, trust_store="mozilla", store_paths=paths)]
    )
    row = evaluate(dataset, policy("curl", issued, chain=ChainSource.LEAF)).row(0, named=True)
    assert (row["verdict"], row["store"], row["chain"]) == ("pass", "system", "leaf")


def test_the_private_bundle_judges_when_the_platform_store_does_not_verify(tmp_path) -> None:
    """A private PKI: the platform's store lacks the root, --ca-bundle has it, as the app's own
    trust anchors do; Android's overridePins for system CAs does not apply to it."""
    issued = pki.leaf("x.test")
    path = (*issued.chain_der, pki.root().der)
    paths = [(s, False, ()) for s in TRUST_STORES] + [("ca_bundle", True, path)]
    dataset = write_dataset(tmp_path, [Served("x.test", issued, store_paths=paths)])
    row = evaluate(dataset, policy("android", pki.root())).row(0, named=True)
    assert (row["verdict"], row["store"]) == ("pass", "ca_bundle")
    assert row["note"] == "passes on a certificate the server does not send (usually the root)"
    assert (
        findings(dataset, policy("android", pki.root()))
        .filter(pl.col("kind") == "store_missing")
        .is_empty()
    )


# --- datasets of an older pinscan --------------------------------------------------------------


def test_a_dataset_without_store_paths_is_judged_as_before_and_says_so(tmp_path) -> None:
    """Parts written before pinscan kept every store's path (no store_paths, no store column)
    still open, and a policy is judged on the scan's own verified chain as it always was."""
    leaf = pki.cross_signed_leaf("x.test")
    bundle = pem(tmp_path, pki.root(), "root")
    config = ScanConfig(retries=0, timeouts=CONFIG.timeouts, trust_stores=(f"mozilla={bundle}",))
    android = policy("android", pki.root())
    with servers.tls(leaf) as server:
        ds = pinscan.scan(
            [f"127.0.0.1:{server.port} x.test"], tmp_path / "out", config=config, policies=[android]
        )
    new = ds.pin_results.collect()
    for table, column in (("endpoints", "store_paths"), ("pin_results", "store")):
        (part,) = (tmp_path / "out" / table).glob("*.parquet")
        pl.read_parquet(part).drop(column).write_parquet(part)
    old = pinscan.open(tmp_path / "out", verify=True)
    assert old.endpoints.select("store_paths").collect().item() is None
    assert old.pin_results.select("store").collect().item() is None
    again = evaluate(old, android)
    same = ["verdict", "matched_pin", "matched_position", "matched_sent", "chain"]
    assert again.select(same).equals(new.select(same))
    row = again.row(0, named=True)
    assert (row["verdict"], row["store"]) == ("pass", "mozilla")
    assert row["note"] == (
        "passes on a certificate the server does not send (usually the root); the scan has no "
        "path of the android store: judged on the mozilla path"
    )
    kinds = findings(old, android)["kind"].to_list()
    assert "store_missing" in kinds
    # The command line reads it too, and says which store judged.
    args = ["check", str(old.path), "-p", _nsc(tmp_path), "--format", "json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert [r["store"] for r in json.loads(result.output)] == ["mozilla"]


# --- the command line --------------------------------------------------------------------------


def _nsc(tmp_path: Path, root: pki.Issued | None = None) -> str:
    """An Android network security config pinning ``root`` (the test root) for x.test."""
    pin = pinscan.spki_pin((root or pki.root()).der)
    path = tmp_path / "network_security_config.xml"
    path.write_text(
        "<network-security-config><domain-config><domain>x.test</domain>"
        f'<pin-set><pin digest="SHA-256">{pin}</pin></pin-set></domain-config>'
        "</network-security-config>"
    )
    return str(path)


def test_scan_and_check_on_the_command_line(tmp_path: Path) -> None:
    root, platform = pem(tmp_path, pki.root(), "root"), pem(tmp_path, pki.platform_root(), "p")
    out = tmp_path / "out"
    nsc = _nsc(tmp_path, pki.platform_root())
    toml = tmp_path / "pins.toml"
    pin = pinscan.spki_pin(pki.platform_root().der)
    toml.write_text(f'[[pin-set]]\ndomain = "x.test"\npins = ["sha256/{pin}"]\n')
    with servers.tls(pki.cross_signed_leaf("x.test")) as server:
        args = ["scan", f"127.0.0.1:{server.port} x.test", "-o", str(out), "--quiet"]
        args += ["--trust-store", f"mozilla={root}", "--trust-store", f"android={platform},java"]
        result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    ds = pinscan.open(out)
    stored = ds.endpoints.select("store_paths").collect().item()
    assert [(p["store"], p["verified"]) for p in stored] == [
        ("mozilla", True), ("android", True), ("java", False),
    ]  # fmt: skip
    assert ds.meta["arguments"]["trust_stores"] == [
        f"mozilla={root}", f"android={platform}", "java jdk-17.0.2 (2022-01-23)",
    ]  # fmt: skip

    def check(*more: str) -> tuple[int, list[dict]]:
        result = CliRunner().invoke(main, ["check", str(out), "--format", "json", *more])
        return result.exit_code, json.loads(result.output) if result.output.strip() else []

    code, rows = check("-p", nsc)
    assert code == 0 and [(r["verdict"], r["store"]) for r in rows] == [("pass", "android")]
    code, rows = check("-p", str(toml))
    assert code == 1 and [(r["verdict"], r["store"]) for r in rows] == [("fail", "mozilla")]
    for choice in ("android", "toml=android"):
        code, rows = check("-p", str(toml), "--trust-store", choice)
        assert code == 0 and [(r["verdict"], r["store"]) for r in rows] == [("pass", "android")]
    code, rows = check("-p", nsc, "--trust-store", "android=mozilla")
    assert code == 1 and rows[0]["store"] == "mozilla"
    # The table says which store judged.
    text = CliRunner().invoke(main, ["check", str(out), "-p", nsc], env={"COLUMNS": "200"})
    assert text.exit_code == 0
    header = next(line for line in text.output.splitlines() if "target" in line)
    assert "store" in header and "android" in text.output
    for bad, words in (("chrome", "no store named 'chrome'"), ("nsc=java", "no policy format")):
        result = CliRunner().invoke(main, ["check", str(out), "-p", nsc, "--trust-store", bad])
        assert result.exit_code == 2 and words in result.output, result.output
    result = CliRunner().invoke(main, ["scan", "x.test", "--trust-store", "android,chrome"])
    assert result.exit_code == 2 and "no store named 'chrome'" in result.output


def test_the_verification_child_gives_every_store_the_same_paths(tmp_path: Path) -> None:
    root, platform = pem(tmp_path, pki.root(), "root"), pem(tmp_path, pki.platform_root(), "p")
    names = [f"n{i}.test" for i in range(6)]
    leaves = [pki.cross_signed_leaf(n) for n in names]
    results = {}
    with servers.tls(*leaves) as server:
        lines = [f"127.0.0.1:{server.port} {n}" for n in names]
        for processes in (0, 1):
            config = ScanConfig(
                retries=0, timeouts=CONFIG.timeouts, verify_processes=processes,
                trust_stores=(f"mozilla={root}", f"android={platform}", "apple", "java"),
            )  # fmt: skip
            ds = pinscan.scan(lines, tmp_path / f"p{processes}", config=config)
            results[processes] = (
                ds.endpoints.select("target", "verified", "trust_store", "store_paths")
                .sort("target")
                .collect()
            )
    assert results[0].equals(results[1])
    assert results[0]["verified"].all()


def test_the_audit_file_takes_the_stores(tmp_path: Path) -> None:
    (tmp_path / "hosts.txt").write_text("x.test\n")
    (tmp_path / "android.pem").write_bytes(pki.platform_root().cert.public_bytes(Encoding.PEM))
    path = tmp_path / "audit.toml"
    path.write_text(
        'inventory = "hosts.txt"\nhistory = "h"\n[scan]\n'
        'trust_stores = ["apple", "android=android.pem"]\n'
    )
    assert load_config(path).scan.trust_stores == ("apple", f"android={tmp_path / 'android.pem'}")
    path.write_text('inventory = "hosts.txt"\nhistory = "h"\n[scan]\ntrust_stores = ["chrome"]\n')
    with pytest.raises(ConfigError, match=r"scan\.trust_stores: no store named 'chrome'"):
        load_config(path)
    path.write_text('inventory = "hosts.txt"\nhistory = "h"\n[scan]\ntrust_stores = 3\n')
    with pytest.raises(ConfigError, match=r"scan\.trust_stores: must be a list of store names"):
        load_config(path)


def test_the_shipped_file_keeps_to_its_share_of_the_budget() -> None:
    # The catalog's data may take 3 MB of the wheel; the stores take about a sixth of it.
    assert stores.FILE.stat().st_size < 600_000


def test_printed_endpoints_name_the_stores_that_refuse_them(tmp_path: Path) -> None:
    root, platform = pem(tmp_path, pki.root(), "root"), pem(tmp_path, pki.platform_root(), "p")
    stores_ = f"mozilla={root},android={platform},apple"
    with servers.tls(pki.cross_signed_leaf("x.test")) as server:
        target = f"127.0.0.1:{server.port} x.test"
        text = CliRunner().invoke(main, ["scan", target, "--trust-store", stores_, "-q"])
        lines = CliRunner().invoke(main, ["scan", target, "--trust-store", stores_, "--jsonl"])
    assert text.exit_code == 0 and lines.exit_code == 0, text.output + lines.output
    assert "  verified  yes (mozilla); not in apple" in text.output.splitlines()
    (row,) = [json.loads(line) for line in lines.stdout.splitlines()]
    pins = {p["store"]: [c["spki_sha256"] for c in p["chain"]] for p in row["store_paths"]}
    assert pins["android"][-1] == pinscan.spki_pin(pki.platform_root().der)
    assert pins["mozilla"][-1] == pinscan.spki_pin(pki.root().der)
    assert pins["apple"] == []
