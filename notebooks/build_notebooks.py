"""Write the numbered notebooks from the cell lists in ``notebooks/src/*.py``.

The ``.ipynb`` files are what users open and what papermill/nbval run; this script keeps them
reviewable as plain Python. Each source file is a sequence of cells separated by lines
``# %% [markdown]``, ``# %%`` (code), ``# %% parameters`` (the papermill parameters cell) or
``# %% check: <expected output>`` (a code cell whose printed output nbval checks).

    python notebooks/build_notebooks.py          # rewrite every notebook
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"
MARK = re.compile(r"^# %%(?: (\[markdown\]|parameters|check: ?(.*)))?\s*$")


def parse_cells(text: str) -> list[nbformat.NotebookNode]:
    cells, kind, expected, lines = [], None, None, []

    def flush():
        if kind is None:
            return
        body = "\n".join(lines).strip("\n")
        if kind == "markdown":
            body = "\n".join(re.sub(r"^# ?", "", ln) for ln in body.splitlines())
            cells.append(nbformat.v4.new_markdown_cell(body))
            return
        cell = nbformat.v4.new_code_cell(body)
        if kind == "parameters":
            cell.metadata["tags"] = ["parameters"]
        if kind == "check":
            cell.source = "# NBVAL_CHECK_OUTPUT\n" + body
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=expected + "\n")]
            cell.execution_count = 1
        cells.append(cell)

    for line in text.splitlines():
        m = MARK.match(line)
        if m:
            flush()
            lines = []
            tag = m.group(1)
            if tag == "[markdown]":
                kind, expected = "markdown", None
            elif tag == "parameters":
                kind, expected = "parameters", None
            elif tag and tag.startswith("check"):
                kind, expected = "check", (m.group(2) or "").replace("\\n", "\n")
            else:
                kind, expected = "code", None
        else:
            lines.append(line)
    flush()
    return cells


def build(src: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = parse_cells(src.read_text())
    for i, cell in enumerate(nb.cells):  # stable ids: rebuilding an unchanged source changes nothing
        cell.id = f"{src.stem[:2]}-{i:02d}"
    target = HERE / f"{src.stem}.ipynb"
    nbformat.validate(nb)
    nbformat.write(nb, target)
    return target


def main() -> int:
    for src in sorted(SRC.glob("[0-9][0-9]_*.py")):
        print(build(src).relative_to(HERE.parent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
