"""The package layering: a subpackage imports only nriqa modules of lower layers, or its own.

Every ``import`` / ``from ... import`` statement in every module under ``nriqa/`` counts, at
module level or inside a function (relative imports resolved), and so does a call
``importlib.import_module("nriqa....")`` / ``__import__("nriqa....")`` with a literal name.
``nriqa.paths``, ``nriqa.config``, ``nriqa.compute``, ``nriqa.errors`` and ``nriqa.progress`` may be imported
by everyone.

One meaning per name, and code that reads at once: no module basename twice in ``nriqa/`` (``__init__.py``
and ``cli.py`` aside), no public top-level function name in two subpackages (the CLI's ``main`` and
``build_parser`` aside), no function or method over 80 lines, and every markdown heading of a
``notebooks/src`` notebook in a markdown cell. Each check names the file and line of what is wrong.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

import nriqa

PACKAGE_DIR = Path(nriqa.__file__).resolve().parent

#: unit (subpackage or top-level module of nriqa) -> layer; an import must go to a lower layer
LAYERS = {
    "paths": 0, "config": 0, "errors": 0, "compute": 0, "progress": 0,
    "data": 1,
    "models": 2,
    "quality": 3,
    "losses": 4,
    "train": 5,
    "iqa": 6,
    "analysis": 7,
    "viz": 8,
    "study": 9,
    "runner": 10, "sweep": 10, "lab": 10, "__main__": 10,
}
SHARED = {"paths", "config", "errors", "compute", "progress"}   # importable from every layer


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


# ----------------------------------------------------------------------------- one meaning per name, short functions
#: module basenames that every subpackage may have
SHARED_BASENAMES = {"__init__.py", "cli.py"}
#: public functions that each command-line unit defines for itself
CLI_NAMES = {"main", "build_parser"}
#: the longest a function or method may be: its ``def`` line through its last line
MAX_FUNCTION_LINES = 80
NOTEBOOK_SRC = PACKAGE_DIR.parent / "notebooks" / "src"


def _rel(path: Path, root: Path) -> str:
    return str(path.relative_to(root.parent))


def duplicate_basenames(root: Path) -> list[str]:
    """One line per module basename (``__init__.py`` and ``cli.py`` aside) that more than one module
    under ``root`` has: ``name: file, file``."""
    seen: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*.py")):
        if path.name not in SHARED_BASENAMES:
            seen.setdefault(path.name, []).append(_rel(path, root))
    return [f"{name}: {', '.join(files)}" for name, files in sorted(seen.items()) if len(files) > 1]


def functions_in_two_units(root: Path) -> list[str]:
    """One line per public top-level function name defined in more than one unit (subpackage or
    top-level module) under ``root``, CLI entry points (:data:`CLI_NAMES`) aside:
    ``name: file:line, file:line``."""
    seen: dict[str, dict[str, list[str]]] = {}
    for path in sorted(root.rglob("*.py")):
        unit = unit_of(module_name(path, root))
        for node in ast.parse(path.read_text(), filename=str(path)).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_") \
                    and node.name not in CLI_NAMES:
                seen.setdefault(node.name, {}).setdefault(unit, []).append(f"{_rel(path, root)}:{node.lineno}")
    return [f"{name}: {', '.join(p for places in units.values() for p in places)}"
            for name, units in sorted(seen.items()) if len(units) > 1]


def long_functions(root: Path, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """One line per function or method (nested ones too) under ``root`` longer than ``limit`` lines,
    counted from its ``def`` line through its last line: ``file:line: Class.name is N lines``."""
    out = []
    for path in sorted(root.rglob("*.py")):
        def walk(node: ast.AST, prefix: str) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    n = child.end_lineno - child.lineno + 1
                    if n > limit:
                        out.append(f"{_rel(path, root)}:{child.lineno}: {prefix}{child.name} is {n} lines "
                                   f"(at most {limit})")
                    walk(child, f"{prefix}{child.name}.")
                elif isinstance(child, ast.ClassDef):
                    walk(child, f"{prefix}{child.name}.")
                else:
                    walk(child, prefix)

        walk(ast.parse(path.read_text(), filename=str(path)), "")
    return out


def headings_in_code_cells(folder: Path) -> list[str]:
    """One line per markdown heading (``# # ``, ``# ## ``, ``# ### `` ...) that sits in a code cell of a
    jupytext percent-format notebook in ``folder``; a cell starts at a ``# %%`` line and is markdown
    when that line says ``[markdown]`` (or ``[md]``): ``file:line: heading (in the code cell of line N)``."""
    out = []
    for path in sorted(folder.glob("*.py")):
        cell, start = None, 0                      # None: the jupytext header, before the first cell
        for i, line in enumerate(path.read_text().splitlines(), start=1):
            if line.startswith("# %%"):
                cell, start = ("markdown" if re.match(r"# %% \[(markdown|md)\]", line) else "code"), i
            elif cell == "code" and re.match(r"# #{1,6} ", line):
                out.append(f"{path.relative_to(folder.parent.parent)}:{i}: {line[2:]!r} is a markdown heading in "
                           f"the code cell of line {start}: start a `# %% [markdown]` cell before it")
    return out


def test_no_module_basename_is_used_twice():
    found = duplicate_basenames(PACKAGE_DIR)
    assert not found, "module names used by more than one nriqa module (rename one):\n" + "\n".join(found)


def test_no_public_function_name_in_two_subpackages():
    found = functions_in_two_units(PACKAGE_DIR)
    assert not found, "public functions of one name in two nriqa subpackages (rename one):\n" + "\n".join(found)


def test_no_function_is_longer_than_80_lines():
    found = long_functions(PACKAGE_DIR)
    assert not found, "functions or methods too long to read at once (split them):\n" + "\n".join(found)


def test_notebook_headings_sit_in_markdown_cells():
    found = headings_in_code_cells(NOTEBOOK_SRC)
    assert not found, "markdown headings inside code cells of notebooks/src:\n" + "\n".join(found)


@pytest.fixture
def planted(tmp_path):
    """A package and a notebook folder with one violation of each check above, and their clean twins."""
    def write(rel: str, text: str = "") -> None:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    for pkg in ("data", "quality", "study"):
        write(f"nriqa/{pkg}/__init__.py")
        write(f"nriqa/{pkg}/cli.py", "def main():\n    pass\n\n\ndef build_parser():\n    pass\n")
    write("nriqa/__init__.py")
    write("nriqa/data/frames.py", "def read(path):\n    pass\n\n\ndef _helper():\n    pass\n")
    write("nriqa/study/frames.py", "def read_all(path):\n    pass\n\n\ndef _helper():\n    pass\n")
    write("nriqa/quality/readers.py", "def read(path):\n    pass\n\n\ndef read_all(path):\n    pass\n")
    def body(n: int, indent: int) -> str:
        return "".join(f"{' ' * indent}x{i} = {i}\n" for i in range(n))

    write("nriqa/quality/long.py",
          "def fits():\n" + body(79, 4)                                    # 80 lines: the most allowed
          + "\n\nclass Measure:\n    def forward(self):\n" + body(80, 8)   # 81 lines (line 84)
          + "\n    def outer(self):\n        def inner():\n" + body(79, 12)  # inner: 80 lines
          + "        return inner\n")                                       # outer: 82 lines (line 166)
    write("notebooks/src/01_x.py", "# ---\n# jupyter:\n# ---\n\n# %% [markdown]\n# # Title\n#\n# ## Section\n\n"
                                   "# %%\nx = 1  # ## not at the line start\n# ## Stray heading\n"
                                   "# a plain comment\n#\n\n# %% [markdown]\n# ### Fine\n")
    return tmp_path


def test_each_check_names_the_planted_violations(planted):
    root = planted / "nriqa"
    assert duplicate_basenames(root) == ["frames.py: nriqa/data/frames.py, nriqa/study/frames.py"]
    assert functions_in_two_units(root) == ["read: nriqa/data/frames.py:1, nriqa/quality/readers.py:1",
                                            "read_all: nriqa/quality/readers.py:5, nriqa/study/frames.py:1"]
    assert long_functions(root) == ["nriqa/quality/long.py:84: Measure.forward is 81 lines (at most 80)",
                                    "nriqa/quality/long.py:166: Measure.outer is 82 lines (at most 80)"]
    assert long_functions(root, limit=79) == [
        "nriqa/quality/long.py:1: fits is 80 lines (at most 79)",
        "nriqa/quality/long.py:84: Measure.forward is 81 lines (at most 79)",
        "nriqa/quality/long.py:166: Measure.outer is 82 lines (at most 79)",
        "nriqa/quality/long.py:167: Measure.outer.inner is 80 lines (at most 79)"]
    found = headings_in_code_cells(planted / "notebooks" / "src")
    assert found == ["notebooks/src/01_x.py:12: '## Stray heading' is a markdown heading in the code cell of line 10: "
                     "start a `# %% [markdown]` cell before it"]
