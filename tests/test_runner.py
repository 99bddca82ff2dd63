"""`python -m nriqa run`: notebook discovery, selection and parameter cells."""
from __future__ import annotations

import subprocess
import sys

import nbformat
import pytest

from nriqa.runner import NOTEBOOKS_DIR, list_notebooks


def test_notebooks_are_numbered_in_order_and_selectable():
    books = list_notebooks()
    names = [b.name for b in books]
    assert names == sorted(names) and names[0].startswith("00_") and len(names) >= 7
    assert [b.name[:2] for b in list_notebooks(only=["03", "01"])] == ["01", "03"]
    with pytest.raises(ValueError, match="99"):
        list_notebooks(only=["99"])


@pytest.mark.parametrize("book", list_notebooks(), ids=lambda p: p.stem)
def test_every_notebook_has_a_parameters_cell_first_among_code_and_saves_figures(book):
    nb = nbformat.read(book, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", []), f"{book.name}: first code cell must be tagged"
    for name in ["PROFILE", "DEVICE", "RUN_ROOT", "SEED"]:
        assert f"{name} =" in code[0].source
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")


def test_notebooks_match_their_sources(tmp_path):
    """The committed .ipynb files are what notebooks/build_notebooks.py makes from notebooks/src."""
    sys.path.insert(0, str(NOTEBOOKS_DIR))
    try:
        import build_notebooks
    finally:
        sys.path.pop(0)
    for src in sorted((NOTEBOOKS_DIR / "src").glob("[0-9][0-9]_*.py")):
        built = build_notebooks.parse_cells(src.read_text())
        committed = nbformat.read(NOTEBOOKS_DIR / f"{src.stem}.ipynb", as_version=4).cells
        assert [c.source for c in built] == [c.source for c in committed], src.name


def test_run_rejects_unknown_profile_before_running_anything(tmp_path):
    out = subprocess.run([sys.executable, "-m", "nriqa", "run", "--profile", "nope", "--run-root", str(tmp_path)],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "unknown profile" in out.stderr and "Traceback" not in out.stderr  # a user error
    assert not (tmp_path / "nope").exists()
