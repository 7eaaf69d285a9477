"""The explorer reaches the core only through its public service modules (DESIGN: explorer talks to
gan_core.runtime; never train.py or models.py)."""

from __future__ import annotations

import ast
from pathlib import Path

ALLOWED = {"gan_core.runtime", "gan_core.latent", "gan_core.mesh", "gan_core.errors", "gan_core.files"}
EXPLORER = Path(__file__).resolve().parents[2] / "explorer"


def core_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "gan_core":
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "gan_core"}
    return found


def test_explorer_imports_only_the_core_service_modules():
    files = sorted(EXPLORER.rglob("*.py"))
    assert len(files) > 10
    bad = {str(f.relative_to(EXPLORER)): sorted(core_imports(f) - ALLOWED) for f in files}
    assert not {k: v for k, v in bad.items() if v}


def test_modules_stay_small():
    sizes = {str(f.relative_to(EXPLORER)): len(f.read_text(encoding="utf-8").splitlines())
             for f in EXPLORER.rglob("*.py")}
    assert not {k: n for k, n in sizes.items() if n > 420}, sizes


def _module(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_cycles(package: Path) -> list[set[str]]:
    """The import circles among ``package``'s modules (strongly connected groups of two or more), counting every
    (absolute) import: at the top, inside functions and under TYPE_CHECKING."""
    root = package.parent
    modules = {_module(p, root): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for t in targets:
                while t and t not in modules:
                    t = t.rpartition(".")[0]
                if t and t != name:
                    deps.add(t)
        graph[name] = deps
    # reachability is enough at this size: a and b are in one circle when each reaches the other
    reach = {}
    for start in graph:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        reach[start] = seen
    circles = {frozenset({a} | {b for b in reach[a] if a in reach[b]}) for a in graph if a in reach[a]}
    return [set(c) for c in circles]


def test_no_import_circle_in_the_explorer(tmp_path):
    assert import_cycles(EXPLORER) == []
    # the check sees circles through function-local and TYPE_CHECKING imports (menus <-> window was one)
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "a.py").write_text("def f():\n    from pkg import b\n")
    (pkg / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import f\n")
    (pkg / "c.py").write_text("import pkg.a\n")
    assert import_cycles(pkg) == [{"pkg.a", "pkg.b"}]
