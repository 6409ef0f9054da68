# SPDX-License-Identifier: Apache-2.0
"""`pinscan report`: its numbers against a real nginx fleet scan, computed here independently from
the dataset, and the HTML page in a real headless Chromium (no console errors, a table the script
really drew, sorting and filtering, plots on the screenshot)."""

from __future__ import annotations

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
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

import pinscan
from pinscan.cli import main
from pinscan.report import summarize
from pinscan.report.page import render, write_html

from fleet import pki
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
            unverified[e["verify_error"] or "did not verify"] += 1
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


def browse(page: Path, profile: Path, fragment: str = "", screenshot: Path | None = None):
    """Load ``page`` in headless Chromium: (console messages, the DOM after the scripts ran).
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
        args += [f"--screenshot={screenshot}", "--window-size=1200,1400", "--hide-scrollbars"]
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
