"""The code layout stays readable: no import cycles, imports point one way, views stay free of Gradio, short modules.

Imports are read with `ast` (nothing is imported), including relative imports, `from . import x` and imports
inside functions, so a cycle hidden behind a lazy import still counts.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .conftest import REPO

PACKAGES = ("capsnet", "explorer")
MAX_LINES = 450
# (importer prefix, imported prefixes it must not use): dependencies point tabs -> session / views -> capsnet.
FORBIDDEN = (
    ("capsnet", ("explorer",)),
    ("explorer.views", ("explorer.inputs", "explorer.session", "explorer.events", "explorer.tabs", "explorer.app",
                        "explorer.__main__", "explorer.serving")),
    ("explorer.inputs", ("explorer.session", "explorer.events", "explorer.tabs", "explorer.app", "explorer.__main__")),
    ("explorer.session", ("explorer.events", "explorer.tabs", "explorer.app", "explorer.__main__")),
    ("explorer.tabs", ("explorer.events", "explorer.app", "explorer.__main__")),
)


def module_files(root: Path, packages=PACKAGES) -> dict[str, Path]:
    """{dotted module name: file} for every .py under the packages (a package is its __init__.py)."""
    mods = {}
    for pkg in packages:
        for py in sorted((root / pkg).rglob("*.py")):
            parts = list(py.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            mods[".".join(parts)] = py
    return mods


def _is_package(name: str, mods: dict[str, Path]) -> bool:
    return mods[name].name == "__init__.py"


def imports_of(name: str, mods: dict[str, Path]) -> set[str]:
    """Every module `name` imports anywhere in its file (top level, functions, classes), fully qualified.

    `from P import x` counts as importing P.x when that is a module, else P; relative imports are resolved
    against `name`'s package. Names outside `mods` (stdlib, third party) are kept as written."""
    tree = ast.parse(mods[name].read_text(encoding="utf-8"), filename=str(mods[name]))
    package = name if _is_package(name, mods) else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                if node.level - 1 >= len(parts):
                    raise ValueError(f"{name}: relative import beyond the top-level package")
                base = ".".join(parts[: len(parts) - (node.level - 1)])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in mods else base)
    return found


def import_graph(root: Path, packages=PACKAGES) -> dict[str, set[str]]:
    """{module: the project modules it imports}."""
    mods = module_files(root, packages)
    return {name: {m for m in imports_of(name, mods) if m in mods and m != name} for name in mods}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


# ---------------------------------------------------------------- the checker itself


def test_cycle_checker_finds_a_cycle_through_a_lazy_relative_import(tmp_path):
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from . import b\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/c.py": "def f():\n    from ..a import thing\n",
        "pkg/b.py": "import os\nfrom .sub import c\n",
    })  # fmt: skip
    graph = import_graph(tmp_path, ("pkg",))
    assert graph["pkg.a"] == {"pkg.b"}
    assert graph["pkg.b"] == {"pkg.sub.c"}
    assert graph["pkg.sub.c"] == {"pkg.a"}
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]


def test_cycle_checker_accepts_a_one_way_graph(tmp_path):
    _write(tmp_path, {
        "pkg/__init__.py": "from .a import x\n",
        "pkg/a.py": "x = 1\n",
        "pkg/b.py": "from pkg import a\nfrom pkg import x\n",
    })  # fmt: skip
    graph = import_graph(tmp_path, ("pkg",))
    assert graph == {"pkg": {"pkg.a"}, "pkg.a": set(), "pkg.b": {"pkg", "pkg.a"}}
    assert find_cycle(graph) is None


# ---------------------------------------------------------------- the project


@pytest.fixture(scope="module")
def graph():
    return import_graph(REPO)


def test_every_explorer_folder_is_read(graph):
    for name in ("explorer.app", "explorer.session", "explorer.events", "explorer.tabs.routing",
                 "explorer.views.capsules", "explorer.inputs.preprocess", "capsnet.model"):
        assert name in graph


def test_no_import_cycles(graph):
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_imports_point_one_way(graph):
    bad = []
    for name, deps in graph.items():
        for importer, forbidden in FORBIDDEN:
            if name == importer or name.startswith(importer + "."):
                bad += [f"{name} imports {d}" for d in deps if any(d == f or d.startswith(f + ".") for f in forbidden)]
    assert bad == []


def test_views_never_import_gradio(graph):
    """Nothing under explorer/views imports gradio, directly or through another project module."""
    mods = module_files(REPO)
    views = [n for n in graph if n == "explorer.views" or n.startswith("explorer.views.")]
    assert views
    for name in views:
        seen, todo = set(), [name]
        while todo:
            m = todo.pop()
            if m in seen:
                continue
            seen.add(m)
            direct = imports_of(m, mods)
            assert not any(d == "gradio" or d.startswith("gradio.") for d in direct), f"{name} reaches gradio via {m}"
            todo += graph[m]


def test_modules_are_short():
    files = [*module_files(REPO).values(), REPO / "app.py", *(REPO / "tests").glob("*.py"),
             *(REPO / "benchmarks").glob("*.py")]
    long = {str(p.relative_to(REPO)): n for p in files if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}
