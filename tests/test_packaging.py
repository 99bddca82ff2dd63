"""The install path: pyproject and environment.yml agree, the Makefile pins torch, CI runs `make test`."""
from __future__ import annotations

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


def pyproject_deps() -> set[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return {_name(r) for r in data["project"]["dependencies"]}


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


def test_environment_yml_lists_the_same_runtime_dependencies():
    py, env = pyproject_deps(), environment_deps()
    assert py == env, f"only in pyproject: {sorted(py - env)}; only in environment.yml: {sorted(env - py)}"


def test_environment_yml_uses_conda_forge_only():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]


def test_license_file_matches_pyproject():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    assert declared == "MIT" and (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_named_dependencies_are_declared():
    required = {"torch", "torchvision", "pyiqa", "lpips", "papermill", "nbval", "jupyterlab", "ipywidgets",
                "matplotlib", "pytest", "tqdm", "pyyaml", "opencv-python-headless", "scikit-image",
                "scikit-video"}
    assert required <= pyproject_deps()


def test_makefile_pins_torch_and_lets_users_override():
    text = (ROOT / "Makefile").read_text()
    assert re.search(r"^TORCH_SPEC\s*\?=\s*torch==2\.14\.1 torchvision==0\.29\.1$", text, re.M)
    assert "$(TORCH_SPEC)" in text


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert ci.strip().splitlines()[-1].strip() == "make test"
    assert "make test" in readme and "make demo" in readme


def test_cli_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "nriqa", "--help"], capture_output=True, text=True, check=True)
    for cmd in ["data", "quality", "weights", "train", "train-iqa", "eval", "run"]:
        assert cmd in out.stdout


def test_unknown_command_suggests_closest():
    out = subprocess.run([sys.executable, "-m", "nriqa", "trian"], capture_output=True, text=True)
    assert out.returncode == 2 and "train" in out.stderr
