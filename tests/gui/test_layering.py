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
