# SPDX-License-Identifier: Apache-2.0
"""docs/notebook.md, run: its ```python cells, exactly as written, in order and in one namespace,
against a local fleet, inside a running asyncio event loop as Jupyter runs them (so that
`pinscan.scan` is tested where notebooks call it). The names the doc says a notebook provides
(`inventory`, `history`, `ca_bundle`, `pins`) are provided here; `history` already holds
"yesterday's" scan, and a key has been rotated since.

Each ```text block right after a cell is that cell's output as the doc shows it. Ports, keys and
dates differ on every run, so only its first line is compared with the real output's: for a
DataFrame, its shape."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import datetime as dt
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from cryptography.hazmat.primitives import serialization

import pinscan
from pinscan.config import ScanConfig
from pinscan.errors import PinscanError

from fleet import pki, servers

DOC = Path(__file__).parent.parent / "docs" / "notebook.md"
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def cells(text: str) -> list[tuple[str, str | None]]:
    """(code, the output shown after it or ``None``) for every ```python block, in order."""
    blocks = [(m.group(1), m.group(2)) for m in _BLOCK.finditer(text)]
    out: list[tuple[str, str | None]] = []
    for i, (language, body) in enumerate(blocks):
        if language == "python":
            after = blocks[i + 1] if i + 1 < len(blocks) else None
            out.append((body, after[1] if after and after[0] == "text" else None))
    return out


def run_cell(code: str, namespace: dict[str, Any], name: str) -> Any:
    """Run a cell as Jupyter does: every statement, then the value of a final expression."""
    tree = ast.parse(code, name)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, name, "exec"), namespace)
    if last is None:
        return None
    return eval(compile(ast.Expression(last.value), name, "eval"), namespace)


@contextlib.contextmanager
def local_fleet(tmp: Path) -> Iterator[dict[str, Any]]:
    """The doc's fleet, yesterday's scan already in ``history``, and then today's change (api's
    key rotated); yields the names the doc's cells use."""
    now = dt.datetime.now(dt.UTC)
    other_ca = pki._issue("Partner CA", pki._key("ec"), pki.root(), ca=True)
    api = pki.leaf("api.fleet.test")
    www = pki.leaf("www.fleet.test")
    legacy = pki._issue(
        "legacy.fleet.test", pki._key("rsa"), pki.intermediate(), ca=False,
        names=("legacy.fleet.test",), not_after=now + dt.timedelta(days=12),
    )  # fmt: skip
    partner = pki._issue(
        "partner.fleet.test", pki._key("ec"), other_ca, ca=False, names=("partner.fleet.test",)
    )
    ca_bundle = tmp / "root.pem"
    ca_bundle.write_bytes(pki.root().cert.public_bytes(serialization.Encoding.PEM))
    intermediate_pin = pinscan.spki_pin(pki.intermediate().der)
    pins = tmp / "pins.toml"
    pins.write_text(
        "# api pins its leaf key (no backup: the rotation breaks it); www pins the CA.\n"
        '[[pin-set]]\ndomain = "api.fleet.test"\npositions = "leaf"\n'
        f'pins = ["sha256/{pinscan.spki_pin(api.der)}"]\n\n'
        '[[pin-set]]\ndomain = "www.fleet.test"\npositions = "ca"\n'
        f'pins = ["sha256/{intermediate_pin}"]\n'
    )
    rotating = servers.Swappable(api)
    with contextlib.ExitStack() as stack, socket.socket() as refusing:
        refusing.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        ports = {
            "api": stack.enter_context(servers.swappable(rotating)).port,
            "www": stack.enter_context(servers.tls(www)).port,
            "legacy": stack.enter_context(servers.tls(legacy)).port,
            "partner": stack.enter_context(servers.tls(partner)).port,
            "old": stack.enter_context(
                servers.tls(pki.leaf("old.fleet.test", self_signed=True))
            ).port,
            "down": refusing.getsockname()[1],
        }
        inventory = tmp / "inventory.txt"
        inventory.write_text(
            "".join(f"127.0.0.1:{port} {name}.fleet.test\n" for name, port in ports.items())
        )
        history = tmp / "history"
        pinscan.scan(
            inventory,
            history=history,
            policies=pinscan.load_policies(pins),
            config=ScanConfig(ca_bundle=ca_bundle, retries=0),
        )
        rotating.swap(pki.leaf("api.fleet.test", "api2.fleet.test"))
        yield {"inventory": inventory, "history": history, "ca_bundle": ca_bundle, "pins": pins}


def run_notebook(namespace: dict[str, Any]) -> list[Any]:
    """Every cell of the doc, inside a running event loop; the value each cell displays."""

    async def kernel() -> list[Any]:
        asyncio.get_running_loop()  # as in Jupyter: cells run while the loop runs
        return [
            run_cell(code, namespace, f"docs/notebook.md cell {i}")
            for i, (code, _) in enumerate(cells(DOC.read_text()), 1)
        ]

    return asyncio.run(kernel())


def test_the_notebook_runs_end_to_end(tmp_path: Path) -> None:
    shown = [output for _, output in cells(DOC.read_text())]
    with local_fleet(tmp_path) as names:
        namespace = dict(names)
        values = run_notebook(namespace)
    for i, (value, output) in enumerate(zip(values, shown, strict=True), 1):
        if output is not None:
            assert value is not None, f"cell {i} shows an output but displays nothing"
            assert repr(value).splitlines()[0] == output.splitlines()[0], f"cell {i}"
    # What the doc says it finds, checked on the real values.
    changes = namespace["changes"]
    rotated = changes.filter(pl.col("change") == "key_rotated")["target"].to_list()
    assert [t.split()[-1] for t in rotated] == ["api.fleet.test"]
    soon = namespace["expiry"].filter(pl.col("days_left") < 30)["name"].to_list()
    assert soon == ["legacy.fleet.test"]
    verdicts = dict(namespace["verdicts"].select("name", "verdict").iter_rows())
    assert (verdicts["api.fleet.test"], verdicts["www.fleet.test"]) == ("fail", "pass")
    assert isinstance(namespace["ds"].endpoints, pl.LazyFrame)


def test_scan_into_a_history_inside_a_running_loop(tmp_path: Path, good_server) -> None:
    target = f"127.0.0.1:{good_server.port} a.test"

    async def notebook() -> pinscan.ScanDataset:
        return pinscan.scan([target], history=tmp_path / "h")

    first = asyncio.run(notebook())
    second = pinscan.scan([target], history=tmp_path / "h")  # and outside one
    every = pinscan.open(tmp_path / "h", scans="all")
    assert every.scans["scan_id"].to_list() == [first.meta["scan_id"], second.meta["scan_id"]]
    assert second.endpoints.select("status").collect().item() == "ok"
    with pytest.raises(PinscanError, match="not both"):
        pinscan.scan([target], tmp_path / "out", history=tmp_path / "h")
