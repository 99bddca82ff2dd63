"""Write the numbered notebooks from their jupytext sources in ``notebooks/src/*.py``.

The ``.ipynb`` files are what users open and what papermill/nbval run; the sources keep them
reviewable as plain Python. Each source is a jupytext *percent* script paired with its notebook
(``formats: ipynb,src//py:percent`` in its header, so JupyterLab with jupytext keeps both in step):

- ``# %% [markdown]`` a markdown cell, ``# %%`` a code cell;
- ``# %% tags=["parameters"]`` the papermill parameters cell (first code cell; typed, commented
  assignments, which ``papermill --help-notebook`` lists);
- ``# %% expected_output="True" tags=["nbval-check-output"]`` a code cell whose printed output
  nbval compares with ``expected_output`` (written into the notebook as the cell's stored output).

Cell metadata keys are written in sorted order, as the ``.ipynb`` stores them: jupytext in
JupyterLab compares the cells of a paired ``.ipynb`` newer than its source with the source's, and
refuses to open it ("File Load Error") when they differ, key order included (tests/test_lab.py).

On top of what ``jupytext --sync`` would write, this script gives every cell a stable id
(``<NN>-<index>``) and drops jupytext's per-version bookkeeping, so rebuilding an unchanged
source changes nothing.

    python notebooks/build_notebooks.py          # rewrite every notebook
    python notebooks/build_notebooks.py --check  # exit 1 if a notebook is out of date
"""
from __future__ import annotations

import sys
from pathlib import Path

import jupytext
import nbformat

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"
CHECK_TAG = "nbval-check-output"


def notebook(src: Path) -> nbformat.NotebookNode:
    """The notebook built from ``src`` (a jupytext percent script)."""
    nb = jupytext.read(src, fmt="py:percent")
    nb.metadata.get("jupytext", {}).pop("text_representation", None)
    nb.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(nb.cells):  # stable ids: rebuilding an unchanged source changes nothing
        cell.id = f"{src.stem[:2]}-{i:02d}"
        if cell.cell_type == "code" and CHECK_TAG in cell.metadata.get("tags", []):
            expected = str(cell.metadata.get("expected_output", "")).replace("\\n", "\n")
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=expected + "\n")]
            cell.execution_count = 1
    nbformat.validate(nb)
    return nb


def target_of(src: Path) -> Path:
    return HERE / f"{src.stem}.ipynb"


def sources() -> list[Path]:
    return sorted(SRC.glob("[0-9][0-9]_*.py"))


def render(src: Path) -> str:
    return nbformat.writes(notebook(src)) + "\n"


def build(src: Path) -> Path:
    target = target_of(src)
    target.write_text(render(src))
    return target


def stale() -> list[Path]:
    """Sources whose notebook is missing or differs from what :func:`build` would write."""
    return [s for s in sources() if not target_of(s).exists() or target_of(s).read_text() != render(s)]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--check" in argv:
        out = stale()
        for s in out:
            print(f"{target_of(s).relative_to(HERE.parent)} is out of date: run python notebooks/build_notebooks.py")
        return 1 if out else 0
    for src in sources():
        print(build(src).relative_to(HERE.parent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
