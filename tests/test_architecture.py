"""The package layering: a subpackage imports only nriqa modules of lower layers, or its own.

Every ``import`` / ``from ... import`` statement in every module under ``nriqa/`` counts, at
module level or inside a function (relative imports resolved), and so does a call
``importlib.import_module("nriqa....")`` / ``__import__("nriqa....")`` with a literal name.
``nriqa.paths``, ``nriqa.config``, ``nriqa.compute`` and ``nriqa.errors`` may be imported by everyone.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

import nriqa

PACKAGE_DIR = Path(nriqa.__file__).resolve().parent

#: unit (subpackage or top-level module of nriqa) -> layer; an import must go to a lower layer
LAYERS = {
    "paths": 0, "config": 0, "errors": 0, "compute": 0,
    "data": 1,
    "models": 2,
    "quality": 3,
    "losses": 4,
    "train": 5,
    "iqa": 6,
    "analysis": 7,
    "viz": 8,
    "study": 9,
    "runner": 10, "sweep": 10, "__main__": 10,
}
SHARED = {"paths", "config", "errors", "compute"}   # importable from every layer


@dataclass(frozen=True)
class Edge:
    """``source`` (a file, its unit) imports module ``target`` (its unit) at ``line``."""

    file: str
    line: int
    source: str
    target: str
    statement: str
    type_only: bool = False   # inside ``if TYPE_CHECKING:``: an annotation, never run

    @property
    def source_unit(self) -> str:
        return unit_of(self.source)

    @property
    def target_unit(self) -> str:
        return unit_of(self.target)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.statement}"


def unit_of(module: str) -> str:
    """``nriqa.quality.registry`` -> ``quality``; ``nriqa`` itself -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str, root: Path) -> bool:
    """Whether dotted ``name`` (``nriqa.x.y``) is a module or package under ``root``."""
    rel = Path(*name.split(".")[1:])
    return (root / rel).with_suffix(".py").is_file() or (root / rel / "__init__.py").is_file()


def imports_of(path: Path, root: Path) -> list[Edge]:
    """Every import of an ``nriqa`` module in ``path`` (a file of the package at ``root``)."""
    pkg = root.name
    source = module_name(path, root)
    is_package = path.name == "__init__.py"
    text = path.read_text()
    rel_file = str(path.relative_to(root.parent))
    edges: dict[tuple[int, str], Edge] = {}

    tree = ast.parse(text, filename=str(path))
    type_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                 and getattr(block.test, "id", getattr(block.test, "attr", None)) == "TYPE_CHECKING"
                 for stmt in block.body for n in ast.walk(stmt)}

    def add(node: ast.AST, target: str) -> None:
        if target == pkg or target.startswith(pkg + "."):
            statement = ast.get_source_segment(text, node) or ast.dump(node)
            edges.setdefault((node.lineno, target),
                             Edge(rel_file, node.lineno, source, target, " ".join(statement.split()),
                                  id(node) in type_only))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(node, alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = source.split(".") if is_package else source.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                candidate = f"{module}.{alias.name}"
                add(node, candidate if _is_module(candidate, root) else module)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__"):
                add(node, node.args[0].value)
    return list(edges.values())


def all_imports(root: Path) -> list[Edge]:
    return [e for path in sorted(root.rglob("*.py")) for e in imports_of(path, root)]


def layer_violations(edges: list[Edge]) -> list[str]:
    out = []
    for e in edges:
        src, dst = e.source_unit, e.target_unit
        if src == dst or dst in SHARED or dst == "":
            continue
        if src not in LAYERS or dst not in LAYERS:
            unknown = src if src not in LAYERS else dst
            out.append(f"{e}  -- nriqa.{unknown} has no layer: add it to LAYERS in tests/test_architecture.py")
        elif LAYERS[dst] >= LAYERS[src]:
            out.append(f"{e}  -- {src} (layer {LAYERS[src]}) imports {dst} (layer {LAYERS[dst]}); "
                       "imports must go to a lower layer")
    return out


def cycles(edges: list[Edge], node=unit_of) -> list[str]:
    """Import cycles between ``node(module)`` (a unit by default; ``str`` for single modules):
    one line per strongly connected group, naming the import statements inside it."""
    graph: dict[str, dict[str, list[Edge]]] = {}
    for e in edges:
        a, b = node(e.source), node(e.target)
        if a != b and a and b:
            graph.setdefault(a, {}).setdefault(b, []).append(e)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def strongconnect(v: str) -> None:   # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, {}):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    out = []
    for group in groups:
        inside = [str(e) for a in group for b, es in sorted(graph.get(a, {}).items()) if b in group for e in es]
        out.append(f"{', '.join(group)}: " + "; ".join(inside))
    return out


# ----------------------------------------------------------------------------- the package
def test_every_unit_of_the_package_has_a_layer():
    units = {unit_of(module_name(p, PACKAGE_DIR)) for p in PACKAGE_DIR.rglob("*.py")} - {""}
    assert units <= set(LAYERS), f"nriqa units without a layer: {sorted(units - set(LAYERS))}"


def test_imports_go_to_lower_layers_only():
    problems = layer_violations(all_imports(PACKAGE_DIR))
    assert not problems, "imports against the layering:\n" + "\n".join(problems)


def test_no_import_cycle_between_subpackages():
    found = cycles(all_imports(PACKAGE_DIR))
    assert not found, "import cycles between nriqa subpackages:\n" + "\n".join(found)


def test_no_import_cycle_between_modules():
    """Within a subpackage, an annotation-only import (``if TYPE_CHECKING:``) may point back."""
    found = cycles([e for e in all_imports(PACKAGE_DIR) if not e.type_only], node=str)
    assert not found, "import cycles between nriqa modules:\n" + "\n".join(found)


def test_the_walk_sees_module_and_function_level_imports():
    edges = all_imports(PACKAGE_DIR)
    targets = {(e.source, e.target) for e in edges}
    assert ("nriqa.quality.registry", "nriqa.quality.kit") in targets            # module level
    assert ("nriqa.models.spynet", "nriqa.models.convert") in targets            # relative
    assert ("nriqa.train.generators", "nriqa.models") in targets                      # in a function


# ----------------------------------------------------------------------------- the checker itself
@pytest.fixture
def fake_package(tmp_path):
    def write(rel: str, text: str = "") -> None:
        path = tmp_path / "nriqa" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    for pkg in ("quality", "viz", "analysis", "study"):
        write(f"{pkg}/__init__.py")
    write("__init__.py")
    write("paths.py")
    write("analysis/gain.py", "def f():\n    from ..viz.plots import gain_heatmap\n")
    write("quality/ok.py", "from . import other\nfrom nriqa.paths import weights_dir\n")
    write("quality/other.py")
    write("viz/plots.py", "from nriqa import paths\n")
    write("quality/lazy.py", "import importlib\nimportlib.import_module('nriqa.viz.plots')\n")
    write("study/a.py", "import nriqa.runner\n")
    write("runner.py", "from nriqa.study import a\n")
    return tmp_path / "nriqa"


def test_checker_names_file_and_statement_of_each_violation(fake_package):
    problems = layer_violations(all_imports(fake_package))
    assert any(p.startswith("nriqa/analysis/gain.py:2: from ..viz.plots import gain_heatmap") for p in problems)
    assert any(p.startswith("nriqa/quality/lazy.py:2: importlib.import_module('nriqa.viz.plots')")
               for p in problems)
    assert any("nriqa/study/a.py:1: import nriqa.runner" in p for p in problems)   # upward
    assert not any("quality/ok.py" in p or "viz/plots.py" in p for p in problems)
    found = cycles(all_imports(fake_package))
    assert len(found) == 1 and found[0].startswith("runner, study: ")
    assert "nriqa/runner.py:1: from nriqa.study import a" in found[0]
    assert "nriqa/study/a.py:1: import nriqa.runner" in found[0]
    assert any(f.startswith("nriqa.runner, nriqa.study.a: ") for f in cycles(all_imports(fake_package), str))


def test_annotation_only_imports_are_marked(tmp_path):
    pkg = tmp_path / "nriqa"
    (pkg / "train").mkdir(parents=True)
    for rel in ("__init__.py", "train/__init__.py"):
        (pkg / rel).write_text("")
    (pkg / "train" / "a.py").write_text("from . import b\n")
    (pkg / "train" / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n")
    edges = all_imports(pkg)
    assert {(e.source, e.target, e.type_only) for e in edges} == {
        ("nriqa.train.a", "nriqa.train.b", False), ("nriqa.train.b", "nriqa.train.a", True)}
    assert cycles(edges, node=str)                                   # the raw graph has the cycle
    assert not cycles([e for e in edges if not e.type_only], node=str)
