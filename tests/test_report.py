# SPDX-License-Identifier: Apache-2.0
"""`pinscan report`: its numbers against a real nginx fleet scan, computed here independently from
the dataset, and the HTML page in a real headless Chromium (no console errors, a table the script
really drew, sorting and filtering, plots on the screenshot)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

import pinscan
from pinscan.cli import main
from pinscan.records import VERIFY_ERRORS
from pinscan.report import summarize
from pinscan.report.page import render, write_html

from fleet import pki, servers
from policyfleet import Served, write_dataset

# Leaves of the test PKI end 90 days after the test process started: at this moment they are
# all "within 30 days" (not 7), and the expired one is expired.
AS_OF = dt.datetime.now(dt.UTC) + dt.timedelta(days=62)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def _common_name(issued: pki.Issued) -> str:
    return str(issued.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


@pytest.fixture(scope="module")
def closed_port():
    """A loopback port bound but not listening: connecting to it is refused, reliably."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture(scope="module")
def scanned(nginx, closed_port, tmp_path_factory) -> Path:
    """A scan of every nginx site under its own name, nginx's SNI port, and a refused port."""
    tmp = tmp_path_factory.mktemp("report-fleet")
    ports = nginx.ports.items()
    lines = [f"127.0.0.1:{port} {_common_name(nginx.issued[k])}" for k, port in ports
             if k != "wrong_name"]  # fmt: skip
    # The certificate of this site is for elsewhere.example: ask for another name.
    lines.append(f"127.0.0.1:{nginx.ports['wrong_name']} wrong-name.nginx.test")
    lines += [f"127.0.0.1:{nginx.shared_port} {n}" for n in ("a.shared.test", "b.shared.test")]
    lines.append(f"127.0.0.1:{closed_port} closed.test")
    inventory = tmp / "inventory.txt"
    inventory.write_text("\n".join(lines) + "\n")
    bundle = tmp / "root.pem"
    bundle.write_bytes(pki.root().cert.public_bytes(serialization.Encoding.PEM))
    out = tmp / "out"
    code, _, err = run("scan", str(inventory), "-o", str(out), "--ca-bundle", str(bundle), "-q")
    assert code == 0, err
    return out


@pytest.fixture(scope="module")
def policy(tmp_path_factory) -> Path:
    """Pins the shared names to the intermediate (pass) and rsa.nginx.test to a spare key
    (fail); everything else is unpinned."""
    path = tmp_path_factory.mktemp("report-policy") / "fleet.toml"
    good = pinscan.spki_pin(pki.intermediate().der)
    wrong = pinscan.spki_pin(pki.leaf("spare.invalid").der)
    path.write_text(
        f'[[pin-set]]\ndomain = "shared.test"\ninclude-subdomains = true\n'
        f'pins = ["sha256/{good}"]\n'
        f'[[pin-set]]\ndomain = "rsa.nginx.test"\npins = ["sha256/{wrong}"]\n'
    )
    return path


def expected_numbers(out: Path, policy: Path) -> dict:
    """The report's figures, worked out row by row in plain Python from the dataset."""
    ds = pinscan.open(out)
    endpoints = ds.endpoints.collect().to_dicts()
    certs = {c["cert_sha256"]: c for c in ds.certificates.collect().to_dicts()}
    leaves = [(e, certs[e["leaf_sha256"]]) for e in endpoints if e["leaf_sha256"]]
    windows = Counter()
    for _, cert in leaves:
        left = cert["not_after"] - AS_OF
        if left <= dt.timedelta(0):
            windows["expired"] += 1
        for days in (7, 30, 90):
            if dt.timedelta(0) < left <= dt.timedelta(days=days):
                windows[f"within {days} days"] += 1
    unverified = Counter()
    for e, _ in leaves:
        if not e["verified"]:
            kind = e["verify_error"]  # reports say it in words
            unverified[VERIFY_ERRORS.get(kind, kind) or "did not verify"] += 1
        elif e["hostname_match"] is False:
            unverified["certificate does not match the name"] += 1
    verdicts = pinscan.evaluate(ds, pinscan.load_policies(policy), AS_OF).to_dicts()
    return {
        "endpoints": len(endpoints),
        "status": Counter(str(e["status"]) for e in endpoints),
        "tls": Counter(e["tls_version"] for e in endpoints if e["tls_version"]),
        "keys": Counter(f"{c['key_type']} {c['curve'] or c['key_bits']}" for _, c in leaves),
        "issuers": Counter(c["issuer"] for _, c in leaves),
        "windows": windows,
        "unverified": unverified,
        "verdicts": Counter((v["policy"], str(v["verdict"])) for v in verdicts),
        "failing_pins": sum(v["verdict"] in ("fail", "error") for v in verdicts),
        "errors": Counter(e["error"] or str(e["status"]) for e in endpoints if e["status"] != "ok"),
    }


def test_json_report_matches_the_dataset(scanned, policy):
    code, out, err = run(
        "report", str(scanned), "--policy", str(policy), "--as-of", AS_OF.isoformat(),
        "--format", "json", "--top", "50",
    )  # fmt: skip
    assert code == 0, err
    got = json.loads(out)
    want = expected_numbers(scanned, policy)
    assert got["endpoints"] == want["endpoints"] == 32
    assert {r["status"]: r["endpoints"] for r in got["status"]} == want["status"]
    assert want["status"]["refused"] == 1
    assert {r["tls_version"]: r["endpoints"] for r in got["tls_versions"]} == want["tls"]
    assert {r["key"]: r["endpoints"] for r in got["key_types"]} == want["keys"]
    assert {r["issuer"]: r["endpoints"] for r in got["issuers"]} == want["issuers"]
    assert got["distinct_issuers"] == len(want["issuers"])
    windows = {r["window"]: r["endpoints"] for r in got["expiring"]}
    assert windows == {w: want["windows"][w] for w in windows}
    assert windows["expired"] == 1 and windows["within 7 days"] == 0
    assert windows["within 30 days"] == windows["within 90 days"] == 30
    assert sum(r["endpoints"] for r in got["timeline"]) == 31  # every leaf, once
    assert {r["reason"]: r["endpoints"] for r in got["unverified"]} == want["unverified"]
    # The self-signed and the expired leaf do not verify; the wrongly named one is flagged.
    assert sum(want["unverified"].values()) == 3
    assert want["unverified"]["certificate does not match the name"] == 1
    verdicts = {(r["policy"], r["verdict"]): r["endpoints"] for r in got["verdicts"]}
    assert verdicts == want["verdicts"]
    assert got["verdict_source"] == "policy"
    (coverage,) = got["coverage"]
    assert (coverage["pinned"], coverage["passing"], coverage["failing"]) == (3, 2, 1)
    assert coverage["endpoints"] == 32
    problems = {(r["kind"], r["problem"]): r["endpoints"] for r in got["problems"]}
    for error, n in want["errors"].items():
        assert problems[("refused", error)] == n
    for reason, n in want["unverified"].items():
        assert problems[("verify", reason)] == n
    assert sum(n for (kind, _), n in problems.items() if kind == "pin") == want["failing_pins"]
    soonest = got["soonest"][0]
    assert soonest["subject"].startswith("CN=expired.nginx.test") and soonest["days"] < 0


def test_text_report_shows_the_same_numbers(scanned, policy):
    code, out, err = run(
        "report", str(scanned), "--policy", str(policy), "--as-of", AS_OF.isoformat()
    )
    assert code == 0, err
    want = expected_numbers(scanned, policy)
    assert f"{want['endpoints']} endpoints, 31 presented a certificate" in out
    for status, n in want["status"].items():
        assert re.search(rf"│ {status}\s+│\s+{n} │", out), status
    for version, n in want["tls"].items():
        assert re.search(rf"│ {re.escape(version)}\s+│\s+{n} │", out), version
    assert re.search(r"│ expired\s+│\s+1 │\s+1 │", out)
    assert re.search(r"│ within 30 days\s+│\s+30 │", out)
    assert re.search(r"│ fleet\.toml\s+│\s+2 │\s+1 │\s+29 │\s+3/32 \(9%\) │", out), out
    assert "top problems" in out and "closed.test" in out


def test_verdicts_come_from_the_dataset_without_policy(scanned, policy, tmp_path):
    copy = tmp_path / "ds"
    shutil.copytree(scanned, copy)
    code, _, err = run("check", str(copy), "--policy", str(policy), "--format", "json")
    assert code == 1, err  # rsa.nginx.test fails
    from pinscan.dataset.writer import write_pin_results

    write_pin_results(copy, pinscan.evaluate(pinscan.open(copy), pinscan.load_policies(policy)))
    code, out, err = run("report", str(copy), "--format", "json")
    assert code == 0, err
    got = json.loads(out)
    assert got["verdict_source"] == "pin_results"
    assert {r["verdict"]: r["endpoints"] for r in got["verdicts"]}["fail"] == 1
    # Without policy and verdicts there is nothing to say about pins, and the report says so.
    code, out, _ = run("report", str(scanned))
    assert code == 0 and "pin verdicts: none" in out


def test_unreadable_input_exits_2_without_traceback(tmp_path):
    code, _, err = run("report", str(tmp_path / "missing"))
    assert code == 2 and err.startswith("pinscan: ") and "Traceback" not in err
    garbage = tmp_path / "garbage.txt"
    garbage.write_text("not a policy\n")
    (tmp_path / "ds").mkdir()
    code, _, err = run("report", str(tmp_path / "ds"), "--policy", str(garbage))
    assert code == 2 and "Traceback" not in err


def test_quiet_writes_the_page_and_prints_nothing(scanned, tmp_path):
    page = tmp_path / "report.html"
    code, out, err = run("report", str(scanned), "--html", str(page), "-q")
    assert code == 0 and out == "" and err == ""
    assert page.read_text().startswith("<!DOCTYPE html>")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_table_is_capped_with_problems_first(tmp_path):
    served = [Served(f"fine{i}.test", pki.leaf(f"fine{i}.test")) for i in range(6)]
    served += [
        Served("broken.test", pki.leaf("broken.test"), verified=False),
        Served("down.test", None, status="refused"),
    ]
    summary = summarize(write_dataset(tmp_path / "ds", served), table_rows=3)
    assert summary.table.height == 3 and summary.table_left_out == 5
    assert set(summary.table["target"][:2]) == {"broken.test", "down.test"}
    assert summary.table["rank"].to_list() == [0, 0, 2]
    page = render(summary)
    assert "3 of 8 endpoints" in page and "5 more are left out" in page


def test_page_is_self_contained(scanned, policy, tmp_path):
    page = render(summarize(pinscan.open(scanned), pinscan.load_policies(policy), table_rows=100))
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<link" not in page and "@import" not in page and "url(" not in page
    assert page.count("<svg") >= 6


# --- in a real browser ------------------------------------------------------------------------


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        reason = "chromium is not installed (Debian package chromium; `make test` installs it)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def browse(
    page: Path,
    profile: Path,
    fragment: str = "",
    screenshot: Path | None = None,
    size: str = "1200,1400",
):
    """Load ``page`` in headless Chromium: (console messages, the DOM after the scripts ran),
    or a ``screenshot`` of a window of ``size`` pixels.
    The page logs nothing itself, so any console message (an uncaught exception, a resource
    that failed to load, a CSP refusal) is a failure."""
    args = [
        _chromium(), "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
        "--disable-dev-shm-usage", "--disable-extensions", f"--user-data-dir={profile}",
        "--enable-logging=stderr", "--v=0",
    ]  # fmt: skip
    if screenshot is None:
        args.append("--dump-dom")
    else:
        args += [f"--screenshot={screenshot}", f"--window-size={size}", "--hide-scrollbars"]
    args.append(page.as_uri() + fragment)
    proc = subprocess.run(
        args, capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [line for line in proc.stderr.splitlines() if ":CONSOLE" in line], proc.stdout


class _Rows(HTMLParser):
    """The cells of ``#endpoints tbody``, and the ``data-*`` attributes of ``<body>``."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.body: dict[str, str | None] = {}
        self._in_table = self._in_body = self._in_cell = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "body":
            self.body = attributes
        elif tag == "table" and attributes.get("id") == "endpoints":
            self._in_table = True
        elif self._in_table and tag == "tbody":
            self._in_body = True
        elif self._in_body and tag == "tr":
            self.rows.append([])
        elif self._in_body and tag == "td":
            self._in_cell = True
            self.rows[-1].append("")

    def handle_endtag(self, tag):
        if tag == "td":
            self._in_cell = False
        elif tag == "tbody":
            self._in_body = False
        elif tag == "table":
            self._in_table = False

    def handle_data(self, data):
        if self._in_cell:
            self.rows[-1][-1] += data


def rows_of(dom: str) -> _Rows:
    parser = _Rows()
    parser.feed(dom)
    return parser


def png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB(A) bytes) of an 8-bit truecolour PNG, by the PNG spec."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and color in (2, 6), (depth, color)
    bpp = 3 if color == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    rows, previous = [], bytes(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif kind == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, previous, strict=True))
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 255
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = previous[i], previous[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        previous = rows[-1]
    return width, height, [r if bpp == 3 else bytes(r[i] for i in range(len(r)) if i % 4 != 3)
                           for r in rows]  # fmt: skip


@pytest.fixture(scope="module")
def page(scanned, policy, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("report-page") / "report.html"
    code, _, err = run(
        "report", str(scanned), "--policy", str(policy), "--as-of", AS_OF.isoformat(),
        "--html", str(path), "-q",
    )  # fmt: skip
    assert code == 0, err
    return path


def test_page_loads_without_console_errors_and_draws_the_table(page, tmp_path):
    console, dom = browse(page, tmp_path / "profile")
    assert console == []
    parsed = rows_of(dom)
    assert parsed.body.get("data-ready") == "1"
    assert len(parsed.rows) == int(parsed.body["data-rows"]) == 32
    # Problems first: the refused port, the expired, self-signed and wrongly named leaves and the
    # failing pin; then the rest, all expiring within 30 days at AS_OF.
    targets = [r[0].split()[-1] for r in parsed.rows]
    assert targets.index("closed.test") < 6


def test_page_sorts_and_filters_from_the_url(page, tmp_path):
    console, dom = browse(page, tmp_path / "profile", fragment="#show=problems&sort=target&desc=1")
    assert console == []
    shown = [r[0] for r in rows_of(dom).rows]
    assert len(shown) == 5 and shown == sorted(shown, reverse=True)
    assert {t.split()[-1] for t in shown} == {
        "closed.test", "rsa.nginx.test", "expired.nginx.test", "self-signed.nginx.test",
        "wrong-name.nginx.test",
    }  # fmt: skip
    console, dom = browse(page, tmp_path / "profile", fragment="#filter=RSA%202048&sort=port")
    assert console == []
    rows = rows_of(dom).rows
    ports = [int(r[2]) for r in rows]
    assert rows and ports == sorted(ports)
    assert all("rsa 2048" in r for r in rows)


def test_a_javascript_error_is_caught(page, tmp_path):
    broken = tmp_path / "broken.html"
    broken.write_text(page.read_text().replace("JSON.parse(", "JSON.prase(", 1))
    console, dom = browse(broken, tmp_path / "profile")
    assert any("Uncaught TypeError" in line for line in console), console
    assert rows_of(dom).body.get("data-ready") is None


def test_hostile_names_stay_text(tmp_path):
    hostile = "x</script><img src=x onerror=alert(1)>.test"
    served = [Served(hostile, pki.leaf("a.test")), Served("b<!--c.test", None, status="refused")]
    path = write_html(
        summarize(write_dataset(tmp_path / "ds", served), table_rows=10), tmp_path / "r.html"
    )
    console, dom = browse(path, tmp_path / "profile")
    assert console == []
    assert {r[0] for r in rows_of(dom).rows} == {hostile, "b<!--c.test"}
    assert "<img" not in dom.split('id="endpoint-data"')[0]


def test_screenshot_shows_the_plots(page, tmp_path):
    shot = tmp_path / "shot.png"
    console, _ = browse(page, tmp_path / "profile", screenshot=shot)
    assert console == []
    width, height, rows = png_pixels(shot)
    assert (width, height) == (1200, 1400)
    pixels = Counter(
        px for row in rows[::2] for px in zip(row[0::3], row[1::3], row[2::3], strict=True)
    )
    white = pixels[(255, 255, 255)]
    assert white < 0.95 * sum(pixels.values())
    assert len(pixels) > 50  # text, bars, cards: far more than a blank or error page
    # The bars are drawn in the report's own colours: blue issuers, green "ok", orange expiry.
    for colour in ((0, 114, 178), (0, 158, 115), (240, 196, 25)):
        assert pixels[colour] > 200, colour


# --- counts, labels, ticks and pins on the page -----------------------------------------------


class _Page(HTMLParser):
    """What a reader sees in each ``<section>`` (and the cards): table rows as cell texts, SVG
    ``<text>`` contents, and SVG tooltips (``<title>``)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[list[str]]] = {}
        self.texts: dict[str, list[str]] = {}
        self.tips: dict[str, list[str]] = {}
        self.cards: dict[str, str] = {}
        self.classes: dict[str, list[tuple[str, str]]] = {}
        self._section = "header"
        self._text: list[str] | None = None
        self._cell: str | None = None
        self._cell_class = ""
        self._card: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "section":
            self._section = attributes.get("id") or "?"
        elif tag == "tr":
            self.rows.setdefault(self._section, []).append([])
        elif tag in ("td", "th"):
            self._cell, self._cell_class = "", attributes.get("class") or ""
        elif tag in ("text", "title") and self._cell is None:
            self._text = []
            self._kind = tag
        elif tag == "div" and "card" in (attributes.get("class") or "").split():
            self._card = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[self._section][-1].append(self._cell)
            self.classes.setdefault(self._section, []).append((self._cell, self._cell_class))
            self._cell = None
        elif tag in ("text", "title") and self._text is not None:
            store = self.texts if tag == "text" else self.tips
            store.setdefault(self._section, []).append("".join(self._text))
            self._text = None
        elif tag == "div" and self._card is not None:
            value, _, label = "".join(self._card).partition("\x00")
            self.cards[label] = value
            self._card = None
        elif tag == "b" and self._card is not None:
            self._card.append("\x00")

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        if self._text is not None:
            self._text.append(data)
        if self._card is not None:
            self._card.append(data)


def page_of(dom: str) -> _Page:
    parsed = _Page()
    parsed.feed(dom)
    return parsed


@pytest.fixture(scope="module")
def second_policy(tmp_path_factory) -> Path:
    """Pins rsa.nginx.test to a spare key as well: that endpoint fails under both policies."""
    path = tmp_path_factory.mktemp("report-policy-2") / "other.toml"
    wrong = pinscan.spki_pin(pki.leaf("spare-2.invalid").der)
    path.write_text(f'[[pin-set]]\ndomain = "rsa.nginx.test"\npins = ["sha256/{wrong}"]\n')
    return path


def test_failing_pins_count_endpoints_once_on_the_page_and_the_terminal(
    scanned, policy, second_policy, tmp_path
):
    policies = ("--policy", str(policy), "--policy", str(second_policy))
    page = tmp_path / "report.html"
    code, out, err = run(
        "report", str(scanned), *policies, "--as-of", AS_OF.isoformat(), "--html", str(page)
    )
    assert code == 0, err
    verdicts = pinscan.evaluate(
        pinscan.open(scanned),
        pinscan.load_policies(policy) + pinscan.load_policies(second_policy),
        AS_OF,
    ).to_dicts()
    failing = [v for v in verdicts if v["verdict"] in ("fail", "error")]
    endpoints = {v["endpoint_id"] for v in failing}
    assert (len(failing), len(endpoints)) == (2, 1)  # one endpoint, failing under both
    assert "endpoints failing a pin check (fail or error under at least one policy): 1" in out
    console, dom = browse(page, tmp_path / "profile")
    assert console == []
    assert page_of(dom).cards["endpoints failing a pin check"] == "1"
    code, out, _ = run("report", str(scanned), *policies, "--as-of", AS_OF.isoformat(),
                       "--format", "json")  # fmt: skip
    assert json.loads(out)["pin_failing"] == 1


def test_page_shows_verdict_counts_years_on_ticks_and_whole_pins(page, scanned, policy, tmp_path):
    console, dom = browse(page, tmp_path / "profile")
    assert console == []
    parsed = page_of(dom)
    # Each policy's bar says its counts in words, as the verdicts are.
    want = expected_numbers(scanned, policy)["verdicts"]
    said = [t for t in parsed.texts["pins"] if "unpinned" in t and "," in t]
    assert said == [", ".join(f"{v} {n}" for (_, v), n in sorted(
        want.items(), key=lambda item: ["pass", "fail", "report-only", "expired", "error",
                                        "no_chain", "unpinned"].index(item[0][1])))]  # fmt: skip
    # The expiry timeline's ticks carry the year.
    ticks = [t for t in parsed.texts["expiry"] if re.fullmatch(r"\d{4}-\d\d-\d\d", t)]
    assert len(ticks) >= 5
    assert ticks == sorted(ticks) and str(AS_OF.year) in ticks[0]
    # Every endpoint's leaf pin, whole, in a cell of its own.
    endpoints = pinscan.open(scanned).endpoints.collect()
    pins = set(endpoints["spki_sha256"].drop_nulls())
    titles = [r for r in rows_of(dom).rows]
    shown = {cell for row in titles for cell in row if cell in pins}
    assert shown == pins and all(len(p) == 44 for p in pins)


def _unverified_dataset(directory: Path, errors: list[str]) -> pinscan.ScanDataset:
    """One endpoint per verification error, all sharing their first 40 characters."""
    from pinscan.dataset.writer import DatasetWriter
    from pinscan.records import Endpoint

    writer = DatasetWriter.create(directory, scan_id="labels", arguments={}, version="t")
    rows = []
    for line, error in enumerate(errors, 1):
        issued = pki.leaf(f"l{line}.labels.test")
        rows.append(
            Endpoint(
                target_id=f"{line:016x}", line=line, target=f"l{line}.labels.test",
                host=f"l{line}.labels.test", ip=f"127.0.0.{line}", port=443, sni=None,
                status="ok", presented=list(issued.chain_der), verified=False,
                verify_error=error,
            )
        )  # fmt: skip
    writer.write(rows)
    writer.finish({})
    return pinscan.open(directory)


def test_not_verified_labels_are_distinct_with_the_full_text_on_hover(tmp_path):
    common = "certificate verify failed: candidates exhausted: "
    errors = [
        common + "no path to a trusted root",
        common + "unable to get local issuer certificate",
        common + "self-signed certificate in chain",
    ]
    path = write_html(
        summarize(_unverified_dataset(tmp_path / "ds", errors), table_rows=10),
        tmp_path / "r.html",
    )
    console, dom = browse(path, tmp_path / "profile")
    assert console == []
    parsed = page_of(dom)
    labels = [t for t in parsed.texts["connections"] if t.startswith("certificat")]
    assert len(labels) == len(set(labels)) == 3, labels
    assert all(len(label) <= 30 for label in labels)
    # What tells each apart is on its label; the whole text is its tooltip.
    for error, label in zip(sorted(errors), sorted(labels), strict=True):
        assert error[len(common) :].split()[0] in label, (error, label)
    assert {f"{e}: 1" for e in errors} <= set(parsed.tips["connections"])


# --- a history: the trend and the changes since the scan before ---------------------------------


@dataclass
class History:
    path: Path
    policy: Path
    rot: tuple[str, str]  # the rotated key's pins, before and after


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Iterator[History]:
    """Three scans of an in-process fleet into one history, judged by a policy pinning `rot`'s
    first key: in the second, `flaky` is down; in the third it is back, `rot` serves a new key,
    `gone` has left the inventory and `new` joined it. `self` never verifies."""
    tmp = tmp_path_factory.mktemp("report-history")
    bundle = tmp / "root.pem"
    bundle.write_bytes(pki.root().cert.public_bytes(serialization.Encoding.PEM))
    first, second = pki.leaf("rot.trend.test"), pki.leaf("rot.trend.test", "www.rot.trend.test")
    policy = tmp / "pins.toml"
    policy.write_text(
        '[[pin-set]]\ndomain = "rot.trend.test"\npositions = "leaf"\n'
        f'pins = ["sha256/{pinscan.spki_pin(first.der)}"]\n'
    )
    rot, flaky = servers.Swappable(first), servers.Swappable(pki.leaf("flaky.trend.test"))
    with contextlib.ExitStack() as stack:
        port = {
            "rot": stack.enter_context(servers.swappable(rot)).port,
            "flaky": stack.enter_context(servers.swappable(flaky)).port,
            "stable": stack.enter_context(servers.tls(pki.leaf("stable.trend.test"))).port,
            "self": stack.enter_context(
                servers.tls(pki.leaf("self.trend.test", self_signed=True))
            ).port,
            "gone": stack.enter_context(servers.tls(pki.leaf("gone.trend.test"))).port,
            "new": stack.enter_context(servers.tls(pki.leaf("new.trend.test"))).port,
        }

        def scan(names: list[str]) -> None:
            inventory = tmp / "inventory.txt"
            inventory.write_text("".join(f"127.0.0.1:{port[n]} {n}.trend.test\n" for n in names))
            code, _, err = run(
                "scan", str(inventory), "--history", str(tmp / "H"), "--policy", str(policy),
                "--ca-bundle", str(bundle), "--retries", "0", "-q",
            )  # fmt: skip
            assert code in (0, 1), err  # 1: rot's pin fails in the third

        scan(["rot", "flaky", "stable", "self", "gone"])
        flaky.swap(None)
        scan(["rot", "flaky", "stable", "self", "gone"])
        flaky.swap(pki.leaf("flaky.trend.test"))
        rot.swap(second)
        scan(["rot", "flaky", "stable", "self", "new"])
    yield History(tmp / "H", policy, (pinscan.spki_pin(first.der), pinscan.spki_pin(second.der)))


def expected_trend(history: Path) -> list[dict]:
    """Per scan, worked out row by row from the history's tables."""
    every = pinscan.open(history, scans="all")
    endpoints = every.endpoints.collect().to_dicts()
    verdicts = every.pin_results.collect().to_dicts()
    out = []
    for scan_id in every.scans["scan_id"]:
        rows = [e for e in endpoints if e["scan_id"] == scan_id]
        out.append(
            {
                "scan_id": scan_id,
                "endpoints": len(rows),
                "handshake_ok": sum(e["status"] == "ok" for e in rows),
                "handshake_failed": sum(e["status"] != "ok" for e in rows),
                "unverified": sum(
                    e["leaf_sha256"] is not None
                    and (not e["verified"] or e["hostname_match"] is False)
                    for e in rows
                ),
                "pin_failing": len(
                    {
                        v["endpoint_id"]
                        for v in verdicts
                        if v["scan_id"] == scan_id and v["verdict"] in ("fail", "error")
                    }
                ),
            }
        )
    return out


def test_history_page_has_the_trend_and_the_changes(history, tmp_path):
    page = tmp_path / "history.html"
    code, out, err = run("report", str(history.path), "--html", str(page))
    assert code == 0, err
    console, dom = browse(page, tmp_path / "profile")
    assert console == []
    parsed = page_of(dom)
    want = expected_trend(history.path)
    assert [w["handshake_failed"] for w in want] == [0, 1, 0]
    assert [w["pin_failing"] for w in want] == [0, 0, 1]
    assert all(w["unverified"] == 1 for w in want)
    head, *body = parsed.rows["trend"]
    assert head == ["started (UTC)", "scan_id", "endpoints", "handshake ok", "handshake failed",
                    "not verified", "failing a pin check"]  # fmt: skip
    columns = ["scan_id", "endpoints", "handshake_ok", "handshake_failed", "unverified",
               "pin_failing"]  # fmt: skip
    assert [row[1:] for row in body] == [[str(w[c]) for c in columns] for w in want]
    # The same numbers as the terminal report and the JSON report, and the trend's last scan
    # agrees with the page's cards.
    assert parsed.cards["handshake ok"] == body[-1][3]
    assert parsed.cards["not verified"] == body[-1][5]
    assert parsed.cards["endpoints failing a pin check"] == body[-1][6]
    code, text, _ = run("report", str(history.path), "--format", "json")
    got = json.loads(text)
    assert [{k: r[k] for k in ("scan_id", *columns[1:])} for r in got["trend"]] == want

    # What `pinscan diff` reports between the last two scans, counted and listed.
    changes = pinscan.diff(f"{history.path}@-2", history.path)
    counts = {str(k): n for k, n in pinscan.diff_summary(changes).iter_rows() if n}
    assert counts == {"key_rotated": 1, "recovered": 1, "appeared": 1, "vanished": 1}
    assert got["changes"] == {**dict.fromkeys(got["changes"], 0), **counts}
    assert got["previous"]["scan_id"] == want[1]["scan_id"]
    listed = parsed.rows["changes"]
    assert listed[0] == ["change", "target", "address", "old", "new", "detail"]
    assert sorted(r[0] for r in listed[1:]) == sorted(counts)
    assert {t.split(": ")[0]: int(t.split(": ")[1]) for t in parsed.tips["changes"]} == counts
    # The rotated key's pins, whole, in cells of their own that keep a pin in one piece.
    (rotated,) = (r for r in listed[1:] if r[0] == "key_rotated")
    assert (rotated[3], rotated[4]) == history.rot
    assert (history.rot[0], "pin") in parsed.classes["changes"]
    assert f"changes since {want[1]['scan_id']}: key_rotated 1, recovered 1, appeared 1, " \
           "vanished 1" in out  # fmt: skip


def test_an_earlier_scan_of_a_history_has_its_own_trend_and_changes(history, tmp_path):
    want = expected_trend(history.path)
    code, text, err = run("report", f"{history.path}@-2", "--format", "json")
    assert code == 0, err
    got = json.loads(text)
    assert [r["scan_id"] for r in got["trend"]] == [w["scan_id"] for w in want[:2]]
    assert got["previous"]["scan_id"] == want[0]["scan_id"]
    assert {k: n for k, n in got["changes"].items() if n} == {"new_failure": 1}
    page = tmp_path / "first.html"
    code, _, err = run("report", f"{history.path}@-3", "--html", str(page), "-q")
    assert code == 0, err
    console, dom = browse(page, tmp_path / "profile")
    assert console == []
    assert "The first scan of this history: nothing to compare with." in dom
    assert len(page_of(dom).rows["trend"]) == 2  # the heading and the one scan


def test_a_plain_dataset_has_no_history_sections(scanned):
    summary = summarize(pinscan.open(scanned), history=True)
    assert summary.trend.is_empty() and summary.changes is None
    assert 'id="trend"' not in render(summary) and 'id="changes"' not in render(summary)


def test_json_report_times_are_iso_8601(scanned):
    code, out, err = run("report", str(scanned), "--format", "json")
    assert code == 0, err
    got = json.loads(out)
    for row in got["soonest"]:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00", row["not_after"])
    assert "T" in got["as_of"]
