"""No code path can unpickle: every torch.load passes weights_only=True, every np.load allow_pickle=False,
nothing calls pickle.load(s), and HDF5 strings are stored as strings, not pickled objects. Checked on the
source (ast), so a new loader anywhere in gan_core or explorer is held to it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(p for d in ("gan_core", "explorer", "benchmarks") for p in (ROOT / d).rglob("*.py"))


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f"{f.value.id}.{f.attr}" if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else ""
            yield name, {k.arg: k.value for k in node.keywords}, node


def _const(node: ast.AST | None):
    return node.value if isinstance(node, ast.Constant) else object()


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(ROOT)) for p in SOURCES])
def test_loaders_never_unpickle(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    problems = []
    for name, kw, node in _calls(tree):
        where = f"{path.relative_to(ROOT)}:{node.lineno}"
        if name == "torch.load" and _const(kw.get("weights_only")) is not True:
            problems.append(f"{where}: torch.load without weights_only=True")
        if name in ("np.load", "numpy.load") and _const(kw.get("allow_pickle")) is not False:
            problems.append(f"{where}: np.load without allow_pickle=False")
        if name in ("pickle.load", "pickle.loads", "pickle.Unpickler", "dill.load", "joblib.load"):
            problems.append(f"{where}: {name}")
        if name.endswith(".create_dataset") and any(isinstance(v, ast.Name) and v.id == "object" for v in kw.values()):
            problems.append(f"{where}: HDF5 dataset of Python objects")
    assert problems == []
