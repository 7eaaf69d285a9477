"""No import circle in gan_core/ or explorer/ (issue 25): every import counts, at the top, inside functions and
under TYPE_CHECKING, and so does the package ``__init__`` that importing a submodule runs first."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("gan_core", "explorer")


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    """Module -> the modules of ``packages`` it imports. ``from a.b import c`` imports ``a.b.c`` when that is a
    module, else ``a.b``; importing ``a.b.c`` also runs the ``__init__`` of ``a`` and ``a.b`` unless they are
    the importer's own packages (already running when it runs). Relative imports are resolved."""
    paths = {_module_name(p, root): p for pkg in packages for p in (root / pkg).rglob("*.py")}

    def resolve(name: str) -> str | None:
        while name and name not in paths:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        deps: set[str] = set()
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    here = name.split(".") if is_package else name.split(".")[:-1]
                    here = here[:len(here) - (node.level - 1)]
                    base = ".".join(here + ([node.module] if node.module else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for target in targets:
                found = resolve(target)
                if found is None or found == name:
                    continue
                deps.add(found)
                parts = found.split(".")
                for i in range(1, len(parts)):
                    parent = ".".join(parts[:i])
                    if parent in paths and not (name == parent or name.startswith(parent + ".")):
                        deps.add(parent)
        graph[name] = deps
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of two or more modules (Tarjan), each sorted, sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(groups)


def test_no_import_circle_in_gan_core_or_the_explorer():
    graph = import_graph()
    assert len(graph) > 100 and "gan_core.model" in graph["gan_core.runtime"]
    assert import_cycles(graph) == []


def test_the_graph_sees_every_kind_of_import(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "a.py": "def f():\n    from pkg import b\n",  # inside a function
        "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import f\n",  # type hints only
        "c.py": "from . import d\n",  # relative
        "d.py": "import pkg.c\n",
        "e.py": "from pkg.sub.x import y\n",  # runs pkg.sub's __init__ first
        "sub/__init__.py": "from pkg import e\n",
        "sub/x.py": "y = 1\n",
        "f.py": "import pkg.sub.x\n",  # no circle: nothing imports f
    }
    for name, text in files.items():
        (pkg / name).write_text(text)
    graph = import_graph(tmp_path, ("pkg",))
    assert graph["pkg.f"] == {"pkg.sub", "pkg.sub.x"}  # pkg.sub's __init__ runs first; pkg is f's own package
    assert import_cycles(graph) == [["pkg.a", "pkg.b"], ["pkg.c", "pkg.d"], ["pkg.e", "pkg.sub"]]
