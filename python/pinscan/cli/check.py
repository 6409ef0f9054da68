# SPDX-License-Identifier: Apache-2.0
"""``pinscan check OUT --policy FILE...``: would each client's pins accept what the fleet serves?
With ``--scenarios``, would they still accept it after the next renewal, CA switch or key change?

Exit 0 when every pinned endpoint passes, 1 on any ``fail`` or ``error`` (or a policy the client
rejects, or an endpoint passing today that a ``--fail-on-lockout`` scenario locks out), 2 on
usage errors and unreadable files: a scheduled audit gates on it.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pinscan.cli import exits, options
from pinscan.cli.options import POLICY_FORMATS, policy_options, read_policy_files
from pinscan.errors import ConfigError
from pinscan.records import TRUST_STORES

# polars, rich, the dataset and the policy code are imported in the functions that use them, so
# that `pinscan check --help` starts fast (lazy for start-up time).
if TYPE_CHECKING:
    import polars as pl
    from rich.console import Console
    from rich.table import Table

    from pinscan.dataset import ScanDataset
    from pinscan.policy.model import Policy
    from pinscan.rotation import Analysis
    from pinscan.rotation.scenarios import Selection


#: The stores a verdict can be judged by (pinscan.policy.evaluate.JUDGING_STORES).
_STORES = (*TRUST_STORES, "ca_bundle", "system")


def _judging(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> dict[str, str]:
    """``--trust-store STORE`` (every format) and ``FORMAT=STORE``, in order: {format: store}."""
    out: dict[str, str] = {}
    for entry in value:
        fmt, equals, store = entry.rpartition("=")
        if store not in _STORES:
            raise click.BadParameter(f"no store named {store!r}; stores: {', '.join(_STORES)}")
        if equals and fmt not in POLICY_FORMATS:
            formats = ", ".join(POLICY_FORMATS)
            raise click.BadParameter(f"no policy format {fmt!r}; formats: {formats}")
        out.update({fmt: store} if equals else dict.fromkeys(POLICY_FORMATS, store))
    return out


@click.command("check")
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@policy_options
@options.as_of("Judge at this moment instead of now.")
@click.option(
    "--days", "--warn-days", "days", type=click.IntRange(0), default=30, show_default=True,
    help="Horizon of 'expiring soon' for pin-sets and leaves, and (with --scenarios) of "
    "expiry_headroom: a pass that ends within it when its last matching pin's certificate does.",
)  # fmt: skip
@click.option(
    "--trust-store", "judging", multiple=True, metavar="[FORMAT=]STORE", callback=_judging,
    help="Judge every policy on the path STORE builds, instead of its platform's (Android "
    "formats: android; iOS and TrustKit: apple; curl: system, else mozilla; others: the "
    "scan's first store that verifies), or only the policies of FORMAT (okhttp=java). "
    f"Stores: {', '.join(_STORES)}. Repeat for several.",
)  # fmt: skip
@click.option(
    "--okhttp-jvm", is_flag=True,
    help="Judge OkHttp policies on Java's store: OkHttp on the JVM (not Android) builds its "
    "path there.",
)  # fmt: skip
@click.option("--all", "show_all", is_flag=True, help="Also list endpoints no rule covers.")
@click.option(
    "--findings", "show_findings", is_flag=True,
    help="Print the fleet findings instead of the verdicts (a table, or JSON with --format json).",
)  # fmt: skip
@options.scenario_options
@click.option(
    "--fail-on-lockout", metavar="LIST",
    help="Exit 1 when an endpoint that passes today locks out under one of these scenarios "
    "(kinds or names, as --scenarios takes them; none: never).  [default: routine, i.e. "
    "renew_new_key and every sibling]",
)  # fmt: skip
@click.option(
    "--by", type=click.Choice(["name", "domain"]), default="name", show_default=True,
    help="Rows of the lockout matrix: one per host name, or per registrable domain.",
)  # fmt: skip
@options.output_format()
@options.quiet("Print only failures, nothing when clean.")
def check_command(
    out: Path,
    policies: tuple[Path, ...],
    policy_format: str | None,
    as_of: dt.datetime | None,
    days: int,
    judging: dict[str, str],
    okhttp_jvm: bool,
    show_all: bool,
    show_findings: bool,
    scenarios: str | None,
    switch_to: tuple[str, ...],
    backup_keys: tuple[Path, ...],
    password: str | None,
    ca_catalogs: tuple[Path, ...],
    fail_on_lockout: str | None,
    by: str,
    output: str,
    quiet: bool,
) -> None:
    """Judge every endpoint of the scan in OUT by each --policy, as its client would.

    Each verdict uses the client's own host matching, chain (the path its platform's trust
    store builds; the leaf for curl), positions, expiry and strictness; the store column says
    which store's path judged it. Exits 1 when any pinned endpoint fails or a client would
    reject its policy, 0 otherwise.

    With --scenarios, each pinned endpoint is judged again on the chains its next certificate
    may have (a renewal with the same or a new key, a sibling CA, another CA family, the spare
    key, its root distrusted) and a lockout matrix follows the verdicts, with the endpoints that
    pass through a single pin and when that pass ends. Exits 1 too when an endpoint passing
    today locks out under a --fail-on-lockout scenario (by default the routine ones).
    """
    import polars as pl

    from pinscan.dataset import open as open_dataset
    from pinscan.policy.evaluate import evaluate
    from pinscan.policy.findings import findings

    if not policies:
        raise click.UsageError("give at least one --policy FILE")
    lockout = _lockout_request(scenarios, fail_on_lockout, switch_to, backup_keys, ca_catalogs)
    loaded, artifacts = read_policy_files(policies, policy_format)
    dataset = open_dataset(out, verify=True)
    stores = judging or None
    results = evaluate(dataset, loaded, as_of, stores=stores, okhttp_jvm=okhttp_jvm)
    found = findings(
        dataset, loaded, as_of, days=days, stores=stores, okhttp_jvm=okhttp_jvm,
        artifacts=artifacts,
    )  # fmt: skip
    shown = results if show_all else results.filter(pl.col("verdict") != "unpinned")
    failing = results.filter(pl.col("verdict").is_in(exits.FAILING))
    rejected = [p for p in loaded if p.error]
    rotation = None
    if lockout is not None:
        inputs = options.scenario_inputs(switch_to, backup_keys, password, ca_catalogs)
        try:
            rotation = _Rotation.of(
                dataset, loaded, lockout, as_of=as_of, days=days, stores=stores,
                okhttp_jvm=okhttp_jvm, by=by, **inputs,
            )  # fmt: skip
        except ConfigError as exc:  # named as the library names it: say the option instead
            option = options.SCENARIO_INPUTS.get(exc.setting, exc.setting)
            raise ConfigError(option, exc.reason) from None
    clean = failing.is_empty() and not rejected and (rotation is None or rotation.gate.is_empty())
    if quiet:
        shown = failing
    if output == "json":
        if rotation is None:
            frame = found if show_findings else shown
            click.echo(json.dumps(frame.to_dicts(), indent=2, default=_json_value))
        elif not (quiet and clean):
            _print_json(rotation, shown, found, quiet=quiet)
    else:
        if show_findings:
            if not quiet or not found.is_empty() or rejected:
                _print_findings(found, loaded)
        elif not quiet or not failing.is_empty() or rejected:
            _print_text(shown, found, results, loaded, quiet=quiet)
        if rotation is not None:
            _print_lockout(rotation, quiet=quiet)
    if not clean:
        raise SystemExit(exits.FINDINGS)


@dataclass(frozen=True)
class _Lockout:
    """What --scenarios and --fail-on-lockout asked for, checked before the scan is read."""

    scenarios: Selection
    #: The scenarios that fail the check when they lock out a passing endpoint (none for
    #: ``--fail-on-lockout none``); ``None``: the routine ones, the default.
    gate: Selection | None

    def gating(self, scenario: str, kind: str) -> bool:
        """Whether a lockout under this scenario fails the check."""
        from pinscan.rotation.scenarios import ROUTINE_SELECTION

        return (self.gate or ROUTINE_SELECTION).matches(scenario, kind)

    @property
    def label(self) -> str:
        """The gate as the titles say it."""
        from pinscan.rotation.scenarios import ROUTINE_SELECTION

        return str(self.gate or ROUTINE_SELECTION) or "none"


def _lockout_request(
    scenarios: str | None,
    fail_on: str | None,
    switch_to: tuple[str, ...],
    backup_keys: tuple[Path, ...],
    ca_catalogs: tuple[Path, ...],
) -> _Lockout | None:
    """The scenario options, checked: each error is one line naming its option (exit 2)."""
    from pinscan.rotation.scenarios import parse_scenarios

    if scenarios is None:
        given = {"switch_to": switch_to, "backup_keys": backup_keys, "ca_catalogs": ca_catalogs}
        named = [options.SCENARIO_INPUTS[k] for k, v in given.items() if v]
        if fail_on is not None:
            named.insert(0, "--fail-on-lockout")
        if named:
            raise ConfigError(named[0], "plays rotation scenarios: give --scenarios too")
        return None
    played = parse_scenarios(scenarios, option="--scenarios")
    if not str(played):
        raise ConfigError("--scenarios", "names no scenario: give all, routine, or kinds and names")
    if fail_on is None:
        return _Lockout(played, None)
    gate = parse_scenarios(fail_on, option="--fail-on-lockout")
    missing = played.unplayed(gate)
    if missing:
        raise ConfigError(
            "--fail-on-lockout",
            f"{', '.join(missing)} would gate but --scenarios does not play it",
        )
    return _Lockout(played, gate)


@dataclass(frozen=True)
class _Rotation:
    """The scenarios played on the fleet, and what check prints of them."""

    request: _Lockout
    analysis: Analysis
    by: str
    days: int
    headroom: pl.DataFrame
    expiry: pl.DataFrame
    #: The lockout rows that fail the check: passing today, locked out by a gating scenario.
    gate: pl.DataFrame

    @classmethod
    def of(
        cls,
        dataset: ScanDataset,
        policies: list[Policy],
        request: _Lockout,
        *,
        by: str,
        days: int,
        **analyse: Any,
    ) -> _Rotation:
        from pinscan.rotation import analyse as play

        analysis = play(dataset, policies, request.scenarios, **analyse)
        gate = analysis.gate(request.gate)
        headroom = analysis.headroom()
        return cls(request, analysis, by, days, headroom, analysis.expiry_findings(days), gate)


def _json_value(value: object) -> str:
    """Times as ISO 8601 (``2027-06-01T00:00:00+00:00``), as every JSON pinscan writes them."""
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _print_rejected(console: Console, policies: list[Policy]) -> None:
    for policy in policies:
        if policy.error:
            where = policy.error_location or policy.name
            console.print(f"[bold red]{where}: the client rejects this policy:[/] {policy.error}")


def _print_findings(found: pl.DataFrame, policies: list[Policy]) -> None:
    """``--findings``: the findings table alone, or that there are none."""
    from pinscan.report.terminal import new_console, print_table

    console = new_console()
    _print_rejected(console, policies)
    if found.is_empty():
        console.print("no findings")
    else:
        print_table(console, _findings_table(found))


def _findings_table(found: pl.DataFrame, title: str = "findings") -> Table:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in ("severity", "kind", "where", "endpoints", "message"):
        table.add_column(column)
    for r in found.iter_rows(named=True):
        table.add_row(
            r["severity"],
            r["kind"],
            r["location"] or "",
            "" if r["endpoints"] is None else str(r["endpoints"]),
            r["message"],
        )
    return table


def _print_text(
    shown: pl.DataFrame,
    found: pl.DataFrame,
    results: pl.DataFrame,
    policies: list[Policy],
    *,
    quiet: bool,
) -> None:
    from rich.table import Table

    from pinscan.report.summary import policy_label
    from pinscan.report.terminal import VERDICT_STYLE, new_console, print_table

    console = new_console()
    _print_rejected(console, policies)
    if not shown.is_empty():
        table = Table(title="pin verdicts", title_justify="left")
        for column in ("target", "ip", "policy", "verdict", "store", "matched pin", "pos", "note"):
            table.add_column(column)
        for r in shown.iter_rows(named=True):
            verdict = r["verdict"]
            table.add_row(
                r["target"]
                if not r["name"] or r["name"] in r["target"]
                else f"{r['target']} ({r['name']})",
                r["ip"] or "",
                policy_label(r["policy"]),
                f"[{VERDICT_STYLE[verdict]}]{verdict}[/]",
                r["store"] or "",
                r["matched_pin"] or "",
                "" if r["matched_position"] is None else str(r["matched_position"]),
                r["note"] or "",
            )
        print_table(console, table)
    if quiet:
        return
    if not found.is_empty():
        print_table(console, _findings_table(found))
    coverage = results.group_by("policy", "verdict").len().sort("policy", "verdict").iter_rows()
    by_policy: dict[str, list[str]] = {}
    for policy, verdict, n in coverage:
        by_policy.setdefault(policy, []).append(f"{verdict} {n}")
    for policy, counts in by_policy.items():
        console.print(f"{policy_label(policy)}: " + ", ".join(counts))
    for policy in policies:
        for note in policy.notes:
            console.print(f"[dim]{policy_label(policy.name)}: {note}[/]")


#: Rows of the gate and headroom tables printed, the first (by target, or soonest to end) of
#: them: a fleet's thousands would take rich minutes and no one reads them in a terminal.
SHOWN = 20

#: How each outcome reads in the matrix: a word, so that it reads without colour too.
OUTCOME_CELL = {
    "survives": "[green]survives[/]",
    "locks_out": "[bold red]LOCKS_OUT[/]",
    "unpinned": "[dim]unpinned[/]",
    "untrusted": "[magenta]untrusted[/]",
}


def _where(row: dict[str, Any]) -> str:
    """An endpoint as the verdicts name it: its target, and the name when the target lacks it."""
    target, name = row["target"], row["name"]
    return target if not name or name in target else f"{target} ({name})"


def _print_json(
    rotation: _Rotation, shown: pl.DataFrame, found: pl.DataFrame, *, quiet: bool
) -> None:
    """With --scenarios, one object: the verdicts and findings as without, and the lockout."""
    import polars as pl

    analysis = rotation.analysis
    document = {
        "verdicts": shown.to_dicts(),
        "findings": pl.concat([found, rotation.expiry]).to_dicts(),
        "scenarios": analysis.scenarios.to_dicts(),
        "lockout": (rotation.gate if quiet else analysis.lockout).to_dicts(),
        "headroom": rotation.headroom.to_dicts(),
        "fail_on": [w for w in rotation.request.label.split(",") if w != "none"],
        "gate": rotation.gate.to_dicts(),
    }
    click.echo(json.dumps(document, indent=2, default=_json_value))


def _print_lockout(rotation: _Rotation, *, quiet: bool) -> None:
    from rich.table import Table

    from pinscan.report.summary import policy_label
    from pinscan.report.terminal import new_console, print_table
    from pinscan.rotation.matrix import matrix

    console = new_console()
    request, analysis = rotation.request, rotation.analysis
    gating = {
        r["scenario"]
        for r in analysis.scenarios.iter_rows(named=True)
        if request.gating(r["scenario"], r["kind"])
    }
    if not quiet:
        _print_scenarios(console, analysis.scenarios, gating)
        if analysis.lockout.is_empty():
            console.print("lockout: no pinned endpoint to play the scenarios on")
        else:
            print_table(
                console,
                _matrix_table(matrix(analysis.lockout, by=rotation.by), rotation.by, gating),
            )
            counts = analysis.lockout.group_by("outcome").len().sort("outcome").iter_rows()
            pairs = analysis.lockout.select("endpoint_id", "policy").n_unique()
            console.print(
                f"outcomes: {', '.join(f'{o} {n:,}' for o, n in counts)} "
                f"over {pairs:,} pinned endpoint-policy pairs"
            )
    if not rotation.gate.is_empty():
        table = Table(
            title=f"lockouts that fail the check (--fail-on-lockout {request.label})",
            title_justify="left",
        )
        for column in ("target", "policy", "scenario", "today", "new chain"):
            table.add_column(column, no_wrap=column == "scenario")
        gate = rotation.gate.sort("target", "policy", "scenario")
        for r in gate.head(SHOWN).iter_rows(named=True):
            table.add_row(
                _where(r),
                policy_label(r["policy"]),
                r["scenario"],
                r["today"],
                r["new_chain"] or "",
            )
        print_table(console, table)
        _more(console, gate.height)
    if quiet:
        return
    endpoints = rotation.gate.select("endpoint_id").n_unique()
    if endpoints == 0:
        verdict = "no endpoint that passes today locks out"
    else:
        plural = "s" if endpoints > 1 else ""
        verdict = f"[bold red]{endpoints:,} passing endpoint{plural} locked out[/]"
    console.print(f"gate (--fail-on-lockout {request.label}): {verdict}")
    _print_headroom(console, rotation.headroom)
    if not rotation.expiry.is_empty():
        title = f"expiry headroom (passes that end within {rotation.days} days)"
        print_table(console, _findings_table(rotation.expiry, title))


def _print_scenarios(console: Console, scenarios: pl.DataFrame, gating: set[str]) -> None:
    from rich.table import Table

    from pinscan.report.terminal import print_table

    table = Table(title="scenarios played (*: gates)", title_justify="left")
    table.add_column("scenario", no_wrap=True)
    table.add_column("what changes")
    table.add_column("endpoints", justify="right")
    for r in scenarios.iter_rows(named=True):
        mark = "*" if r["scenario"] in gating else ""
        table.add_row(f"{r['scenario']}{mark}", r["detail"] or "", f"{r['endpoints']:,}")
    print_table(console, table)


def _matrix_table(frame: pl.DataFrame, by: str, gating: set[str]) -> Table:
    """The matrix: a row per host (or domain) and policy, a column per scenario, the worst
    outcome in each cell; the columns that gate are marked ``*``."""
    from rich.table import Table

    from pinscan.report.summary import policy_label

    scenario_columns = [c for c in frame.columns if c not in ("name", "policy", "locked_out")]
    table = Table(title="lockout matrix (worst outcome per row)", title_justify="left")
    # CA names hold spaces ("sibling:DigiCert Global G2 ..."): a name is not folded either.
    table.add_column("host" if by == "name" else "domain", no_wrap=True)
    table.add_column("policy")
    for column in scenario_columns:
        table.add_column(f"{column}{'*' if column in gating else ''}", no_wrap=True)
    table.add_column("locked out", justify="right")
    for r in frame.iter_rows(named=True):
        table.add_row(
            r["name"] or "",
            policy_label(r["policy"]),
            *(OUTCOME_CELL.get(r[c], "-") if r[c] else "-" for c in scenario_columns),
            str(r["locked_out"]),
        )
    return table


def _print_headroom(console: Console, headroom: pl.DataFrame) -> None:
    """The endpoints that pass through a single pin, soonest end first: a renewal that changes
    the certificate carrying it locks them out."""
    import polars as pl
    from rich.table import Table

    from pinscan.report.summary import policy_label
    from pinscan.report.terminal import print_table

    passing = headroom.filter(pl.col("today") == "pass")
    single = passing.filter(pl.col("pins_matched") == 1)
    single = single.sort("days_left", "target", nulls_last=True)
    console.print(
        f"headroom: {single.height:,} of {passing.height:,} passing endpoint-policy pairs pass "
        "through one pin only"
    )
    if single.is_empty():
        return
    table = Table(title="passing through one pin only", title_justify="left")
    for column in ("target", "policy", "pin at", "pass ends", "days left", "locks out under"):
        table.add_column(column, justify="right" if column == "days left" else "left")
    for r in single.head(SHOWN).iter_rows(named=True):
        ends = r["pass_ends"]
        table.add_row(
            _where(r),
            policy_label(r["policy"]),
            ", ".join(r["positions"] or []),
            f"{ends:%Y-%m-%d} ({r['carrier']})" if ends else "",
            "" if r["days_left"] is None else str(r["days_left"]),
            ", ".join(r["locks_out"] or []),
        )
    print_table(console, table)
    _more(console, single.height)


def _more(console: Console, rows: int) -> None:
    """Says how many rows a table left out."""
    if rows > SHOWN:
        console.print(f"... and {rows - SHOWN:,} more (--format json lists them all)")
