"""The shape of the code: no import circle, short functions, one home for each module name, a
contract that depends on nothing. Read from the sources (ast), nothing is imported."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ROOTS = {"fruits_contract": REPO / "plugins", "fruits_features": REPO / "plugins"}
ROOTS["fruits_job"] = REPO / "spark"
# Declarative literals, not logic: the trigger form's Params and the cluster request.
LONG_LITERALS = {
    "fruits_features.params.dag_params",
    "fruits_features.compute.emr_spec.cluster_spec",
}
MAX_FUNCTION_LINES = 80


def modules() -> dict[str, Path]:
    """Every module of the three packages by its dotted name."""
    found = {}
    for package, root in ROOTS.items():
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports(path: Path, name: str, known: set[str]) -> set[str]:
    """First-party modules a module imports anywhere (in functions and TYPE_CHECKING too),
    with the packages Python imports on the way."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)
    # The packages holding the importer are initialised before it: not a dependency of it.
    holders = {".".join(name.split(".")[:end]) for end in range(1, name.count(".") + 1)}
    found = set()
    for target in targets:
        parts = target.split(".")
        for end in range(1, len(parts) + 1):
            prefix = ".".join(parts[:end])
            if prefix in known and prefix != name and prefix not in holders:
                found.add(prefix)
    return found


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, name, set(known)) for name, path in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_imports_in_functions_and_type_checking(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from fruits_features.plan import RunPlan\n"
        "def f():\n    from fruits_features.compute import registry\n"
    )
    found = {"fruits_features.plan", "fruits_features.compute", "fruits_features.compute.registry"}
    # fruits_features itself holds the importer: initialised first, not a dependency.
    assert imports(module, "fruits_features.x", {"fruits_features", *found}) == found
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circle():
    graph = import_graph()
    assert len(graph) > 60  # every module was read
    assert cycles(graph) == []


def test_the_contract_depends_on_nothing():
    graph = import_graph()
    contract = {
        name: path for name, path in modules().items() if name.startswith("fruits_contract")
    }
    assert len(contract) >= 6
    for name, path in contract.items():
        first_party = graph[name]
        assert all(target.startswith("fruits_contract") for target in first_party), name
        tree = ast.parse(path.read_text())
        roots = {
            (alias.name if isinstance(node, ast.Import) else node.module or "").split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        }
        outside = roots - set(sys.stdlib_module_names) - {"fruits_contract", "__future__"}
        assert not outside, f"{name} imports {sorted(outside)}: the contract is stdlib only"


def test_no_function_is_longer_than_a_page():
    long = []
    for name, path in modules().items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES and f"{name}.{node.name}" not in LONG_LITERALS:
                    long.append(f"{name}.{node.name}: {lines} lines")
    assert long == []


def test_no_module_name_on_both_sides():
    names = {side: {p.stem for p in (REPO / folder).rglob("*.py")} for side, folder in (
        ("job", "spark/fruits_job"), ("airflow", "plugins/fruits_features"),
    )}  # fmt: skip
    assert names["job"] & names["airflow"] == {"__init__"}
