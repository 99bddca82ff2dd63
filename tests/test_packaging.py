"""The install path: pyproject and environment.yml agree, Jupyter and the test tools are extras (not
dependencies of the library), the Makefile pins torch, CI runs `make test`."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent

# conda names that differ from the PyPI names
CONDA_TO_PYPI = {"pytorch": "torch"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def pyproject_deps() -> set[str]:
    return {_name(r) for r in pyproject()["dependencies"]}


def extra(name: str) -> list[str]:
    return pyproject()["optional-dependencies"][name]


#: what the notebooks, the sweep and the tests need, and the library does not
NOTEBOOK_TOOLS = {"papermill", "nbformat", "ipykernel", "ipywidgets", "jupyterlab"}
TEST_TOOLS = {"pytest", "nbval"}


def environment_deps() -> set[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    names: set[str] = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            names |= {_name(r) for r in dep.get("pip", [])}
        else:
            n = _name(dep)
            if n not in {"python", "pip"}:
                names.add(CONDA_TO_PYPI.get(n, n))
    return names


def test_environment_yml_lists_the_runtime_dependencies_and_the_notebooks_extra():
    py, env = pyproject_deps() | {_name(r) for r in extra("notebooks")}, environment_deps()
    assert py == env, f"only in pyproject: {sorted(py - env)}; only in environment.yml: {sorted(env - py)}"


def test_environment_yml_uses_conda_forge_only():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]


def test_license_file_matches_pyproject():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    assert declared == "MIT" and (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_named_dependencies_are_declared():
    required = {"torch", "torchvision", "pyiqa", "lpips", "matplotlib", "tqdm", "pyyaml", "opencv-python-headless",
                "scikit-image", "scikit-video"}
    assert required <= pyproject_deps()


def test_jupyter_cluster_and_test_tools_are_extras_and_dev_has_them_all():
    deps = pyproject_deps()
    assert not (NOTEBOOK_TOOLS | TEST_TOOLS | {"submitit"}) & deps, "the library must not require them"
    assert NOTEBOOK_TOOLS <= {_name(r) for r in extra("notebooks")}
    assert {_name(r) for r in extra("cluster")} == {"submitit"}
    dev = extra("dev")
    assert TEST_TOOLS <= {_name(r) for r in dev}
    # make demo / make test install .[dev]: it must bring papermill, ipykernel, ... and submitit
    self_ref = [r for r in dev if _name(r) == "nriqa"]
    assert len(self_ref) == 1 and {"notebooks", "cluster"} <= set(re.findall(r"\w+", self_ref[0].split("[", 1)[1]))
    assert re.search(r'pip install .*-e "\.\[dev\]"', (ROOT / "Makefile").read_text())


def _module_level_imports(tree: ast.Module) -> set[str]:
    """Top-level package names imported when the module is imported (function bodies left out)."""
    names: set[str] = set()
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            todo += node.body + getattr(node, "orelse", []) + getattr(node, "finalbody", [])
            todo += [s for h in getattr(node, "handlers", []) for s in h.body]
    return names


def test_the_library_imports_no_optional_package_at_import_time():
    optional = {"papermill", "nbformat", "ipykernel", "ipywidgets", "jupyterlab", "IPython", "pytest", "nbval",
                "submitit", "jupytext", "hypothesis", "playwright"}
    found = {}
    for path in sorted((ROOT / "nriqa").rglob("*.py")):
        bad = _module_level_imports(ast.parse(path.read_text())) & optional
        if bad:
            found[str(path.relative_to(ROOT))] = sorted(bad)
    assert not found, f"import these inside the functions that need them: {found}"


def test_project_urls_and_classifiers():
    p = pyproject()
    assert p["urls"] and all(u.startswith("https://") for u in p["urls"].values())
    assert all(len(label) <= 32 for label in p["urls"])  # core metadata's limit on a Project-URL label
    cls = p["classifiers"]
    assert "Intended Audience :: Science/Research" in cls and "Framework :: Jupyter" in cls
    assert not [c for c in cls if c.startswith("License ::")], "license = \"MIT\" (PEP 639) replaces it"
    supported = {c.rsplit(" ", 1)[1] for c in cls if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)}
    assert p["requires-python"] == ">=3.10" and "3.10" in supported  # the oldest Python nriqa supports is listed


def test_makefile_pins_torch_and_lets_users_override():
    text = (ROOT / "Makefile").read_text()
    assert re.search(r"^TORCH_SPEC\s*\?=\s*torch==2\.14\.1 torchvision==0\.29\.1$", text, re.M)
    assert "$(TORCH_SPEC)" in text


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert ci.strip().splitlines()[-1].strip() == "make test"
    assert "make test" in readme and "make demo" in readme


def test_readme_is_a_front_door():
    """README fits on a few screens: both commands on the first, the scoreboard figure, the headline
    block the findings are rendered into, and links to the pages everything else moved to."""
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; move detail to docs/"
    first = "\n".join(lines[:40])
    assert re.search(r"^make demo\b", first, re.M) and re.search(r"^make test\b", first, re.M), \
        "make demo and make test belong in README's first 40 lines"
    text = "\n".join(lines)
    assert "](figures/claims_scoreboard.png)" in text
    assert "<!-- headline:start -->" in text and "<!-- headline:end -->" in text
    for page in re.findall(r"\]\(((?:docs/)?[\w./-]+\.md)(?:#[\w-]+)?\)", text):
        assert (ROOT / page).is_file(), f"README links to {page}, which does not exist"
    assert "docs/architecture.md#glossary-the-studys-nouns" in text
    assert "## Glossary: the study's nouns" in (ROOT / "docs" / "architecture.md").read_text()


def test_cli_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "nriqa", "--help"], capture_output=True, text=True, check=True)
    for cmd in ["data", "quality", "weights", "train", "train-iqa", "eval", "run", "sweep"]:
        assert cmd in out.stdout


def test_unknown_command_suggests_closest():
    out = subprocess.run([sys.executable, "-m", "nriqa", "trian"], capture_output=True, text=True)
    assert out.returncode == 2 and "train" in out.stderr
