# SPDX-License-Identifier: Apache-2.0
"""The package's shape, as docs/architecture.md draws it: no import cycle between modules, not
even through an import inside a function (a lazy import for start-up time is fine; one that
dodges a cycle is not), and every import going down the layers, never up."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "python" / "pinscan"

#: Each room's layer: a module may import its own room and the rooms of lower layers only.
#: Rooms are top-level modules and packages of ``pinscan``; ``pinscan`` itself is the public
#: face (lazy re-exports) and ``pinscan._core`` the Rust extension.
LAYERS: dict[str, int] = {
    "_core": 0,
    "errors": 0,
    "records": 0,
    "atomic": 1,
    "config": 1,
    "catalog": 2,
    "certs": 2,
    "inventory": 2,
    "dataset": 3,
    "policy": 4,
    "scanner": 5,
    "diffing": 5,
    "rotation": 5,
    "report": 6,
    "ct": 6,
    "audit": 7,
    "cli": 8,
    "__main__": 9,
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _target(name: str) -> str | None:
    """The module of ``pinscan`` an imported name is in (``pinscan.x.y.Name`` -> ``pinscan.x.y``),
    or ``None`` outside the package."""
    if name != "pinscan" and not name.startswith("pinscan."):
        return None
    if name == "pinscan._core":
        return name
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _imports(module: str) -> set[str]:
    """Every module of the package ``module`` imports, at its top or inside a function; imports
    only for type checkers (``if TYPE_CHECKING:``) are not run, and not counted."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            for alias in node.names:
                if (target := _target(alias.name)) is not None:
                    found.add(target)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if (target := _target(full if full in MODULES else base)) is not None:
                    found.add(target)

    Visitor().visit(ast.parse(path.read_text(encoding="utf-8")))
    found.discard(module)
    return found


GRAPH = {module: _imports(module) for module in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _room(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def test_there_is_no_import_cycle() -> None:
    assert _cycles(GRAPH) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    # The check itself: a graph with a cycle through three modules, and a self-contained one.
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_every_room_has_a_layer() -> None:
    assert {_room(m) for m in MODULES} - {""} == set(LAYERS) - {"_core"}  # _core is Rust


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "pinscan"))
def test_imports_go_down_the_layers(module: str) -> None:
    room = _room(module)
    upward = [
        target
        for target in sorted(GRAPH[module])
        if target != "pinscan" and LAYERS[_room(target)] > LAYERS[room]
    ]
    assert upward == [], f"{module} ({room}, layer {LAYERS[room]}) imports a higher layer"


def test_only_the_public_face_and_the_rust_core_are_imported_from_the_top() -> None:
    # `from pinscan import x` reaches the lazy public face, whose names come from every layer:
    # inside the package only `_core` (and nothing else) is taken from there.
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "pinscan" and not node.level:
                names = {alias.name for alias in node.names}
                assert names <= {"_core"} | {n for n in names if f"pinscan.{n}" in MODULES}, (
                    f"{module} imports {names} from the public face"
                )


def _reachable(module: str) -> set[str]:
    seen: set[str] = set()
    todo = [module]
    while todo:
        for nxt in GRAPH.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_the_engine_knows_nothing_of_the_ways_a_scan_is_routed() -> None:
    routing = {"router", "history", "shards", "dask"}
    reached = {m for m in _reachable("pinscan.scanner.engine") if m.startswith("pinscan.scanner.")}
    assert {m.rsplit(".", 1)[1] for m in reached} & routing == set()


def test_the_dataset_knows_only_its_layout() -> None:
    # Nothing of scanning, judging, diffing or reporting: it is what they read and write.
    dataset = [m for m in MODULES if m == "pinscan.dataset" or m.startswith("pinscan.dataset.")]
    rooms = {_room(reached) for m in dataset for reached in _reachable(m)}
    assert rooms <= {"", "_core", "errors", "records", "atomic", "config", "certs", "dataset"}
