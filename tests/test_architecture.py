"""The layout rules the README states, checked: no import cycle among reviewapp's modules
(imports inside functions count; those under TYPE_CHECKING do not), comfybridge imports
nothing of Django, and no module grows past the size a reader can hold."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _modules(package: str) -> dict[str, Path]:
    found = {}
    for path in (ROOT / package).rglob("*.py"):
        if "migrations" in path.parts:
            continue
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _runtime_imports(path: Path, package: str) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        # `if TYPE_CHECKING:` blocks are for annotations only; they never run.
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    names = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_reviewapp_has_no_import_cycle():
    modules = _modules("reviewapp")
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        graph[name] = {m for m in _runtime_imports(path, package) if m in modules and m != name}
    assert _cycles(graph) == []


def test_comfybridge_imports_nothing_of_django():
    for name, path in _modules("comfybridge").items():
        imported = _runtime_imports(path, name.rsplit(".", 1)[0])
        assert not any(m == "django" or m.startswith(("django.", "reviewapp")) for m in imported), (
            name
        )


def test_the_client_facade_stays_small_and_no_module_grows_past_600_lines():
    assert len((ROOT / "comfybridge" / "client.py").read_text().splitlines()) < 400
    for package in ("reviewapp", "comfybridge", "bench", "chaos"):
        for name, path in _modules(package).items():
            assert len(path.read_text().splitlines()) <= 610, name
