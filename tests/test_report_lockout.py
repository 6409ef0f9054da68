# SPDX-License-Identifier: Apache-2.0
"""The report's lockout section: the heat map of hosts (or registrable domains) by scenario on
the page, the riskiest first and capped, the terminal section and the JSON.

Two kinds of input. Lockout tables made by hand in ``LOCKOUT_SCHEMA`` pin down the drawing: each
cell is the worst outcome of its row's endpoints, worded and marked as well as coloured, the
ordering, the cap and what the page says it left out. Then a dataset of the test PKI judged by a
real policy file through ``pinscan report``, against the analysis ``pinscan.rotation.analyse``
makes of the same files, worked out cell by cell here; and the page in headless Chromium."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from test_report import browse, png_pixels

import pinscan
from pinscan.cli import main
from pinscan.report.lockout import WORST_FIRST, Lockout, lockout_section
from pinscan.report.page import OUTCOME_LOOK, render
from pinscan.report.terminal import new_console, print_lockout
from pinscan.rotation.matrix import matrix
from pinscan.rotation.schema import KINDS, LOCKOUT_SCHEMA, OUTCOMES, ROUTINE

from fleet import pki
from policyfleet import Served, pin_of, write_dataset


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


class _HeatMap(HTMLParser):
    """``#lockout-matrix``: its headings, and per row each cell's text, class and tooltip."""

    def __init__(self) -> None:
        super().__init__()
        self.head: list[str] = []
        self.rows: list[list[tuple[str, str, str]]] = []
        self.legend: list[str] = []
        self.section = ""
        self._in = self._in_legend = False
        self._cell: list[str] | None = None
        self._attrs: dict[str, str | None] = {}
        self._part = ""

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "section" and attributes.get("id") == "lockout":
            self._in = True
        if tag == "table" and attributes.get("id") == "lockout-matrix":
            self._part = "table"
        elif tag == "ul" and attributes.get("class") == "legend":
            self._in_legend = True
        elif self._part and tag in ("thead", "tbody"):
            self._part = tag
        elif self._part == "tbody" and tag == "tr":
            self.rows.append([])
        elif self._part in ("thead", "tbody") and tag in ("th", "td"):
            self._cell, self._attrs = [], attributes
        elif self._in_legend and tag == "li":
            self.legend.append("")

    def handle_endtag(self, tag):
        if tag == "section":
            self._in = False
        elif tag == "ul":
            self._in_legend = False
        elif tag == "table" and self._part:
            self._part = ""
        elif tag in ("th", "td") and self._cell is not None:
            text = "".join(self._cell).strip()
            if self._part == "thead":
                self.head.append(text)
            else:
                cell = (text, self._attrs.get("class") or "", self._attrs.get("title") or "")
                self.rows[-1].append(cell)
            self._cell = None

    def handle_data(self, data):
        if self._in:
            self.section += data
        if self._cell is not None:
            self._cell.append(data)
        if self._in_legend and self.legend:
            self.legend[-1] += data


def heat_map(html: str) -> _HeatMap:
    parsed = _HeatMap()
    parsed.feed(html)
    return parsed


def worst(outcomes: list[str]) -> str:
    return min(outcomes, key=WORST_FIRST.index)


def expected_cells(lockout: pl.DataFrame, by: str = "name") -> dict[tuple[str, str, str], str]:
    """(row, policy, scenario) -> the worst outcome among the row's endpoints, row by row."""
    seen: dict[tuple[str, str, str], list[str]] = {}
    for row in lockout.to_dicts():
        seen.setdefault((row[by], row["policy"], str(row["scenario"])), []).append(
            str(row["outcome"])
        )
    return {key: worst(outcomes) for key, outcomes in seen.items()}


# --- hand-made lockout tables -------------------------------------------------------------------

SCENARIOS = ("renew_same_key", "renew_new_key", "sibling:R11", "switch:DigiCert", "root_removed")


def kind_of(scenario: str) -> str:
    return scenario.partition(":")[0]


def lockout_frame(
    rows: list[tuple[str, str, str, str]], policy: str = "/p/app.xml"
) -> pl.DataFrame:
    """A lockout table from (endpoint, name, scenario, outcome) rows: one rule per name."""
    frame = pl.DataFrame(
        [
            {
                "endpoint_id": endpoint,
                "target": name,
                "name": name,
                "policy": policy,
                "format": "android",
                "store": "android",
                "rule": name,
                "scenario": scenario,
                "kind": kind_of(scenario),
                "routine": kind_of(scenario) in ROUTINE,
                "today": "pass",
                "verdict": "fail" if outcome == "locks_out" else "pass",
                "outcome": outcome,
                "matched_pin": None,
                "matched_position": None,
                "new_chain": "new leaf key > R11 > ISRG Root X1",
            }
            for endpoint, name, scenario, outcome in rows
        ],
        schema_overrides={"matched_pin": pl.String, "matched_position": pl.Int16},
    )
    return frame.cast(dict(LOCKOUT_SCHEMA)).select(LOCKOUT_SCHEMA.names())  # type: ignore[arg-type]


def scenarios_frame(lockout: pl.DataFrame) -> pl.DataFrame:
    names = sorted(
        set(lockout["scenario"].cast(pl.String)), key=lambda s: (KINDS.index(kind_of(s)), s)
    )
    return pl.DataFrame(
        {
            "scenario": names,
            "kind": [kind_of(n) for n in names],
            "routine": [kind_of(n) in ROUTINE for n in names],
            "detail": [f"what {n} does" for n in names],
            "endpoints": [
                lockout.filter(pl.col("scenario").cast(pl.String) == n)["endpoint_id"].n_unique()
                for n in names
            ],
        }
    ).with_columns(pl.col("kind").cast(pl.Enum(list(KINDS))))


def page_with(section: Lockout, directory: Path) -> str:
    """The report page of an empty scan with ``section`` as its lockout section."""
    summary = pinscan.summarize(write_dataset(directory / "ds", []), scenarios=None)
    return render(replace(summary, lockout=section))


def every(endpoint: str, name: str, outcomes: dict[str, str]) -> list[tuple[str, str, str, str]]:
    return [(endpoint, name, scenario, outcome) for scenario, outcome in outcomes.items()]


def test_outcomes_are_ranked_worst_first():
    assert set(WORST_FIRST) == set(OUTCOMES) == set(OUTCOME_LOOK)


def test_each_cell_is_the_worst_outcome_of_its_row_in_words_and_colour(tmp_path):
    fine = dict.fromkeys(SCENARIOS, "survives")
    rows = [
        # Two addresses of one host: the one that locks out on the sibling decides the cell.
        *every("a1", "a.example.com", fine),
        *every("a2", "a.example.com", {**fine, "sibling:R11": "locks_out"}),
        *every("b1", "b.example.com", {**fine, "root_removed": "untrusted"}),
        # A host the sibling scenario does not apply to (another CA), and a report-only rule.
        *every("c1", "c.example.org", {s: o for s, o in fine.items() if s != "sibling:R11"}),
        *every("d1", "d.example.org", dict.fromkeys(SCENARIOS, "unpinned")),
    ]
    lockout = lockout_frame(rows)
    page = page_with(lockout_section(lockout, scenarios_frame(lockout)), tmp_path)
    parsed = heat_map(page)
    assert parsed.head == [
        "host", "policy", "renew_same_key", "renew_new_key *", "sibling:R11 *", "switch:DigiCert",
        "root_removed", "locks out",
    ]  # fmt: skip
    want = expected_cells(lockout)
    assert want[("a.example.com", "/p/app.xml", "sibling:R11")] == "locks_out"
    seen = 0
    for row in parsed.rows:
        (host, _, _), (policy, _, _), *cells, (count, _, _) = row
        assert policy == "app.xml"
        for scenario, (text, cls, title) in zip(SCENARIOS, cells, strict=True):
            outcome = want.get((host, "/p/app.xml", scenario))
            if outcome is None:  # the scenario does not apply to this host
                assert (text, cls) == ("", "cell") and title.endswith(": does not apply")
                continue
            seen += 1
            # Readable without colour: a mark and the words in the cell, and a tooltip.
            _, mark, words = OUTCOME_LOOK[outcome]
            assert text == f"{mark} {words}", (host, scenario)
            assert cls == f"cell o-{outcome}"
            assert title == f"{host}, app.xml, {scenario}: {words}"
        locked = sum(want.get((host, "/p/app.xml", s)) == "locks_out" for s in SCENARIOS)
        assert count == f"{locked}/{len(SCENARIOS)}"
    assert seen == len(want) == 4 * 5 - 1
    # The routine lockout first; then the untrusted one; then by name.
    assert [r[0][0] for r in parsed.rows] == [
        "a.example.com", "b.example.com", "c.example.org", "d.example.org"
    ]  # fmt: skip
    assert [item.strip() for item in parsed.legend] == [
        f"{mark} {words}" for _, mark, words in OUTCOME_LOOK.values()
    ] + ["does not apply"]
    # Each outcome's colour is in the stylesheet, for the class its cells carry.
    for outcome, (colour, _, _) in OUTCOME_LOOK.items():
        assert re.search(rf"\.o-{outcome} \{{ background: {colour};", page), outcome
    assert "Endpoints a routine scenario locks out: <b>1</b>" in page


def risk_rows() -> pl.DataFrame:
    """Five hosts, each locked out by a different set of scenarios."""
    fine = dict.fromkeys(SCENARIOS, "survives")
    locks = {
        "leaf-only.example.com": ("renew_new_key", "sibling:R11", "switch:DigiCert"),
        "one-ca.example.com": ("sibling:R11", "switch:DigiCert"),
        "root.example.com": ("switch:DigiCert",),
        "two-ways.example.net": ("switch:DigiCert", "root_removed"),
        "safe.example.net": (),
    }
    rows = []
    for i, (host, scenarios) in enumerate(locks.items()):
        rows += every(f"e{i}", host, {**fine, **dict.fromkeys(scenarios, "locks_out")})
    return lockout_frame(rows)


def test_the_riskiest_rows_come_first_and_the_rest_are_counted():
    lockout = risk_rows()
    section = lockout_section(lockout, scenarios_frame(lockout), rows=3, top=2)
    assert section.by == "domain"  # five hosts, more than the three rows kept
    section = lockout_section(lockout, scenarios_frame(lockout), rows=5, top=2)
    assert section.by == "name"
    # Two routine lockouts, then one; then the emergency ones by how many.
    assert section.matrix["name"].to_list() == [
        "leaf-only.example.com", "one-ca.example.com", "two-ways.example.net",
        "root.example.com", "safe.example.net",
    ]  # fmt: skip
    assert section.matrix["routine_locked_out"].to_list() == [2, 1, 0, 0, 0]
    assert section.matrix["locked_out"].to_list() == [3, 2, 2, 1, 0]
    assert section.riskiest.height == 2 and section.pin_sets == 5
    assert section.riskiest["rule"][0] == "leaf-only.example.com"
    assert section.routine_locked == 2


def test_a_fleet_with_many_hosts_is_shown_by_registrable_domain_and_capped(tmp_path):
    fine = dict.fromkeys(SCENARIOS, "survives")
    rows = []
    for i in range(30):
        domain = f"d{i}.com" if i < 20 else f"d{i}.co.uk"
        outcome = {**fine, "renew_new_key": "locks_out"} if i % 7 == 0 else fine
        rows += every(f"a{i}", f"api.{domain}", outcome)
        rows += every(f"w{i}", f"www.{domain}", fine)
    lockout = lockout_frame(rows)
    section = lockout_section(lockout, scenarios_frame(lockout), rows=8)
    assert section.by == "domain"
    assert section.matrix_total == 30 and section.matrix.height == 8 and section.left_out == 22
    # The rows of the API's own fold by domain, cell for cell.
    folded = matrix(lockout, by="domain").rename({"name": "domain"})
    names = [*folded.columns[2:-1]]
    key = ["domain", "policy"]
    api = folded.select(*key, pl.col(names).cast(pl.String)).sort(key)
    whole = lockout_section(lockout, scenarios_frame(lockout), rows=30).matrix
    assert whole.height == 30 and whole["domain"].n_unique() == 30
    assert whole.select(*key, *names).sort(key).equals(api)
    # The five domains with a routine lockout first (d0, d7, d14, d21, d28), whole names.
    assert section.matrix["domain"].head(5).to_list() == [
        "d0.com", "d14.com", "d21.co.uk", "d28.co.uk", "d7.com"
    ]  # fmt: skip
    page = page_with(section, tmp_path)
    parsed = heat_map(page)
    assert parsed.head[0] == "domain" and len(parsed.rows) == 8
    assert "The 8 riskiest of 30 rows; 22 more are left out" in page
    console = new_console()
    with console.capture() as captured:
        print_lockout(section, console)
    out = captured.get()
    assert "lockout by domain and scenario (* routine), riskiest first: 8 of 30" in out
    assert "22 more rows left out" in out


def test_hostile_names_stay_text_in_the_heat_map(tmp_path):
    hostile = 'x"><img src=x onerror=alert(1)>.example.com'
    lockout = lockout_frame(every("h", hostile, dict.fromkeys(SCENARIOS, "locks_out")))
    path = tmp_path / "r.html"
    path.write_text(page_with(lockout_section(lockout, scenarios_frame(lockout)), tmp_path))
    console, dom = browse(path, tmp_path / "profile")
    assert console == []
    parsed = heat_map(dom)
    assert parsed.rows[0][0][0] == hostile
    assert "<img" not in dom


# --- a real dataset and policy, through `pinscan report` ---------------------------------------


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> dict[str, Path]:
    """Three pinned hosts of the test PKI, each a different risk, and one unpinned: a leaf-key
    pin (a new key at renewal locks it out), the issuing intermediate (its sibling does) and the
    root (neither does); each pin-set with a spare key, as a pin-set must. The private PKI's
    root and both its issuing intermediates are given as a CA catalog."""
    tmp = tmp_path_factory.mktemp("lockout-fleet")
    leaf_only = pki.leaf("leaf-only.lock.test")
    served = [
        Served("leaf-only.lock.test", leaf_only),
        Served("one-ca.lock.test", pki.leaf("one-ca.lock.test")),
        Served("root.lock.test", pki.leaf("root.lock.test")),
        Served("free.lock.test", pki.leaf("free.lock.test")),
    ]
    write_dataset(tmp / "ds", served)
    spare = pin_of(pki.leaf("spare.lock.invalid"))
    policy = tmp / "pins.toml"
    policy.write_text(
        "".join(
            f'[[pin-set]]\ndomain = "{host}"\npins = ["sha256/{pin}", "sha256/{spare}"]\n'
            for host, pin in (
                ("leaf-only.lock.test", pin_of(leaf_only)),
                ("one-ca.lock.test", pin_of(pki.intermediate())),
                ("root.lock.test", pin_of(pki.root())),
            )
        )
    )
    cas = tmp / "cas.pem"
    cas.write_bytes(
        b"".join(
            issued.cert.public_bytes(serialization.Encoding.PEM)
            for issued in (pki.root(), pki.intermediate(), pki.second_intermediate())
        )
    )
    return {"ds": tmp / "ds", "policy": policy, "cas": cas}


def analysis_of(fleet: dict[str, Path], scenarios: str = "all") -> pl.DataFrame:
    """The lockout table the API makes of the same files."""
    from pinscan.rotation import analyse

    catalog = pinscan.Catalog.shipped().with_pems([fleet["cas"]])
    policies = pinscan.load_policies(fleet["policy"])
    return analyse(pinscan.open(fleet["ds"]), policies, scenarios, catalog=catalog).lockout


def report(fleet: dict[str, Path], *args: str) -> tuple[int, str, str]:
    return run(
        "report", str(fleet["ds"]), "--policy", str(fleet["policy"]),
        "--ca-catalog", str(fleet["cas"]), *args,
    )  # fmt: skip


def test_page_and_json_show_the_analysis_cell_by_cell_riskiest_first(fleet, tmp_path):
    page = tmp_path / "report.html"
    code, out, err = report(fleet, "--html", str(page), "--format", "json")
    assert code == 0, err
    truth = analysis_of(fleet)
    want = expected_cells(truth)
    sibling = "sibling:Pinscan Test Intermediate 2"
    policy = str(fleet["policy"])
    # What each pin-set should do, as the issue states it.
    assert want[("leaf-only.lock.test", policy, "renew_new_key")] == "locks_out"
    assert want[("leaf-only.lock.test", policy, "renew_same_key")] == "survives"
    assert want[("one-ca.lock.test", policy, sibling)] == "locks_out"
    assert want[("one-ca.lock.test", policy, "renew_new_key")] == "survives"
    assert want[("root.lock.test", policy, sibling)] == "survives"
    assert "free.lock.test" not in {host for host, _, _ in want}

    parsed = heat_map(page.read_text())
    scenarios = [h.removesuffix(" *") for h in parsed.head[2:-1]]
    assert set(scenarios) == set(truth["scenario"].cast(pl.String))
    assert scenarios.index("renew_same_key") < scenarios.index("renew_new_key")
    routine = {h.removesuffix(" *") for h in parsed.head if h.endswith(" *")}
    assert routine == {s for s in scenarios if kind_of(s) in ROUTINE}
    hosts = [row[0][0] for row in parsed.rows]
    assert hosts == ["leaf-only.lock.test", "one-ca.lock.test", "root.lock.test"]
    for row in parsed.rows:
        host = row[0][0]
        for scenario, (text, cls, _) in zip(scenarios, row[2:-1], strict=True):
            outcome = want.get((host, policy, scenario))
            words = OUTCOME_LOOK[outcome][2] if outcome else ""
            assert (text.partition(" ")[2], cls) == (
                words, f"cell o-{outcome}" if outcome else "cell"
            ), (host, scenario)  # fmt: skip

    got = json.loads(out)["lockout"]
    assert got["by"] == "name" and got["left_out"] == 0 and got["matrix_rows"] == 3
    assert [r["name"] for r in got["matrix"]] == hosts
    for row in got["matrix"]:
        for scenario in scenarios:
            assert row[scenario] == want.get((row["name"], policy, scenario)), scenario
    assert got["riskiest"][0]["rule"] == "leaf-only.lock.test"
    pairs = Counter((str(r["scenario"]), str(r["outcome"])) for r in truth.to_dicts())
    assert {(r["scenario"], r["outcome"]): r["pairs"] for r in got["outcomes"]} == pairs
    routine_locked = {
        r["endpoint_id"]
        for r in truth.to_dicts()
        if r["routine"] and str(r["outcome"]) == "locks_out"
    }
    assert got["routine_locked"] == len(routine_locked) >= 2


def test_terminal_prints_the_lockout_section(fleet):
    code, out, err = report(fleet)
    assert code == 0, err
    truth = expected_cells(analysis_of(fleet))
    policy = str(fleet["policy"])
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("lockout by host and scenario"))
    head = [c.strip() for c in lines[at + 2].strip("┃").split("┃")]
    assert head[:2] == ["host", "policy"] and head[-1] == "locks out"
    scenarios = [h.removesuffix(" *") for h in head[2:-1]]
    rows = [
        [c.strip() for c in line.strip("│").split("│")]
        for line in lines[at + 4 :]
        if line.startswith("│")
    ]
    assert [r[0] for r in rows] == ["leaf-only.lock.test", "one-ca.lock.test", "root.lock.test"]
    plain = {"locks_out": "LOCKS OUT", "untrusted": "untrusted", "survives": "survives",
             "unpinned": "unpinned", None: "-"}  # fmt: skip
    for row in rows:
        assert row[1] == "pins.toml"
        cells = [truth.get((row[0], policy, s)) for s in scenarios]
        assert row[2:-1] == [plain[c] for c in cells]
        assert row[-1] == f"{cells.count('locks_out')}/{len(scenarios)}"
    assert re.search(r"riskiest pin-sets \(3 of 3\)", out)
    assert re.search(r"routine scenario \(renew_new_key, sibling:\) locks out: [1-9]", out)


def test_the_section_is_left_out_without_policies_or_when_asked(fleet, tmp_path):
    for args in ((), ("--scenarios", "none")):
        page = tmp_path / "r.html"
        if args:
            code, out, err = report(fleet, *args, "--html", str(page), "--format", "json")
        else:
            code, out, err = run("report", str(fleet["ds"]), "--html", str(page),
                                 "--format", "json")  # fmt: skip
        assert code == 0, err
        assert json.loads(out)["lockout"] is None
        assert 'id="lockout"' not in page.read_text()


def test_scenarios_choose_the_columns(fleet):
    code, out, err = report(fleet, "--scenarios", "routine", "--format", "json")
    assert code == 0, err
    got = json.loads(out)["lockout"]
    assert got["scenarios"] and all(s["routine"] for s in got["scenarios"])
    assert {s["kind"] for s in got["scenarios"]} <= set(ROUTINE)


def test_the_spare_key_is_a_scenario_and_the_options_are_checks(fleet, tmp_path):
    """--backup-key and --switch-to as `check` takes them (the options are shared)."""
    spare = tmp_path / "spare.pem"
    spare.write_bytes(pki.leaf("spare.lock.invalid").cert.public_bytes(serialization.Encoding.PEM))
    code, out, err = report(fleet, "--backup-key", str(spare), "--format", "json")
    assert code == 0, err
    matrix = json.loads(out)["lockout"]["matrix"]
    # Every pin-set holds the spare key: re-keyed to it, each host survives.
    assert [row["backup_key"] for row in matrix] == ["survives"] * 3
    code, out, err = report(fleet, "--switch-to", "Nowhere CA")
    assert code == 2 and out == "" and err.startswith("pinscan: --switch-to: "), err
    assert len(err.strip().splitlines()) == 1


def test_an_unknown_scenario_is_one_line_and_exit_2(fleet):
    code, out, err = report(fleet, "--scenarios", "renew_new_key,sideways")
    assert code == 2 and out == ""
    assert err.startswith("pinscan: ") and len(err.strip().splitlines()) == 1, err
    assert "sideways" in err


def test_the_heat_map_in_chromium(fleet, tmp_path):
    """The page loads without a console message, the browser's DOM holds the heat map as
    written, and a screenshot shows its cells in their colours."""
    pages = {}
    for name, args in (("with", ()), ("without", ("--scenarios", "none"))):
        pages[name] = tmp_path / f"{name}.html"
        code, _, err = report(fleet, *args, "--html", str(pages[name]), "-q")
        assert code == 0, err
    console, dom = browse(pages["with"], tmp_path / "profile")
    assert console == []
    assert heat_map(dom).rows == heat_map(pages["with"].read_text()).rows
    # Vermillion ("locks out") and green ("survives"): far more of both with the heat map.
    colours = {}
    for name, page in pages.items():
        shot = tmp_path / f"{name}.png"
        console, _ = browse(page, tmp_path / "profile", screenshot=shot, size="1200,3600")
        assert console == []
        _, _, rows = png_pixels(shot)
        colours[name] = Counter(
            px for row in rows for px in zip(row[0::3], row[1::3], row[2::3], strict=True)
        )
    for rgb in ((213, 94, 0), (0, 158, 115)):
        assert colours["with"][rgb] > colours["without"][rgb] + 2000, rgb


def test_an_analysis_given_is_the_section_shown(fleet):
    """An audit has played the scenarios already: the summary shows that analysis."""
    from pinscan.rotation import analyse

    catalog = pinscan.Catalog.shipped().with_pems([fleet["cas"]])
    policies = pinscan.load_policies(fleet["policy"])
    dataset = pinscan.open(fleet["ds"])
    given = analyse(dataset, policies, "routine", catalog=catalog)
    summary = pinscan.summarize(dataset, analysis=given)
    assert summary.lockout is not None and summary.verdict_source == "none"
    assert set(summary.lockout.scenario_names) == set(given.scenarios["scenario"])
    assert summary.lockout.matrix.height == 3
