"""A paired notebook edited outside JupyterLab still opens there (nriqa.lab's contents manager).

jupytext's contents manager reads a paired notebook's cells from its text file; an ``.ipynb`` newer
than that file whose cells differ (edited by another program) makes it refuse to open the notebook
("File Load Error"). :class:`nriqa.lab.PairedNotebooksContentsManager`, which ``make lab`` and the
browser test start JupyterLab with, lets the newer ``.ipynb`` win and rewrites the text file.
"""
from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest
from doubles import notebook_builder

from nriqa.runner import NOTEBOOKS_DIR

jupytext = pytest.importorskip("jupytext")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("jupyter_server")

from nriqa import lab  # noqa: E402

NAME = "03_artifact_analysis"
EDIT = "# edited outside JupyterLab"


def _copy_pair(root: Path, name: str = NAME) -> tuple[Path, Path]:
    """``root/notebooks/src/<name>.py``, a copy of the repository's source, and
    ``root/notebooks/<name>.ipynb`` built from it by notebooks/build_notebooks.py (``make notebooks``)."""
    (root / "notebooks" / "src").mkdir(parents=True)
    text = Path(shutil.copy(NOTEBOOKS_DIR / "src" / f"{name}.py", root / "notebooks" / "src"))
    ipynb = root / "notebooks" / f"{name}.ipynb"
    ipynb.write_text(notebook_builder().render(text))
    os.utime(ipynb, (text.stat().st_mtime, text.stat().st_mtime))  # as old as its source
    return ipynb, text


def _edit_outside(ipynb: Path, text: Path, later_s: float = 10.0) -> None:
    """Prepend :data:`EDIT` to the first code cell, as an editor other than JupyterLab would; the
    ``.ipynb`` ends up ``later_s`` newer than its text file."""
    nb = nbformat.read(ipynb, as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code")
    cell.source = f"{EDIT}\n{cell.source}"
    nbformat.write(nb, ipynb)
    t = text.stat().st_mtime + later_s
    os.utime(ipynb, (t, t))


def _open(manager, path: str):
    return asyncio.run(manager.get(path, content=True, type="notebook"))


def _first_code(model) -> str:
    return next(c.source for c in model["content"].cells if c.cell_type == "code")


def test_jupytext_alone_refuses_a_notebook_edited_outside_jupyterlab(tmp_path):
    """The failure the contents manager works around (if jupytext ever opens it, nriqa.lab can go)."""
    from tornado.web import HTTPError

    ipynb, text = _copy_pair(tmp_path)
    _edit_outside(ipynb, text)
    with pytest.raises(HTTPError, match="is more recent than") as err:
        jupytext.TextFileContentsManager(root_dir=str(tmp_path)).get(f"notebooks/{NAME}.ipynb")
    assert err.value.status_code == 400


def test_a_notebook_edited_outside_jupyterlab_opens_and_rewrites_its_source(tmp_path):
    ipynb, text = _copy_pair(tmp_path)
    source_before = text.read_text()
    _edit_outside(ipynb, text)
    manager = lab.PairedNotebooksContentsManager(root_dir=str(tmp_path))
    assert manager.__class__.__module__ == "nriqa.lab" and hasattr(manager, "formats")  # jupytext's

    opened = _first_code(_open(manager, f"notebooks/{NAME}.ipynb"))
    assert opened.startswith(EDIT)
    # the source gained the edited line and nothing else changed
    assert text.read_text().replace(f"{EDIT}\n", "", 1) == source_before
    # opened again (the pair now agrees), and as JupyterLab's file browser asks for it (no content)
    assert _first_code(_open(manager, f"notebooks/{NAME}.ipynb")) == opened
    assert asyncio.run(manager.get(f"notebooks/{NAME}.ipynb", content=False))["type"] == "notebook"


def test_a_newer_source_still_wins_and_an_unchanged_pair_is_left_alone(tmp_path):
    ipynb, text = _copy_pair(tmp_path)
    # the built notebooks and their sources hold the same cells: touching an .ipynb rewrites nothing
    t = text.stat().st_mtime + 10
    os.utime(ipynb, (t, t))
    assert lab.sync_text_from_newer_notebook(ipynb) == []
    # a source edited in a text editor (newer than the .ipynb) is what JupyterLab shows
    marker = '# %% tags=["parameters"]\n'
    text.write_text(text.read_text().replace(marker, f"{marker}{EDIT}\n", 1))
    os.utime(text, (t + 10, t + 10))
    before = text.read_text()
    manager = lab.PairedNotebooksContentsManager(root_dir=str(tmp_path))
    assert _first_code(_open(manager, f"notebooks/{NAME}.ipynb")).startswith(EDIT)
    assert text.read_text() == before


def test_every_built_notebook_agrees_with_its_source(tmp_path):
    """What notebooks/build_notebooks.py writes holds the cells of its source in jupytext's view
    (cell metadata keys included, in the sorted order the .ipynb stores them): an .ipynb newer than
    its source, as after `make notebooks`, opens in JupyterLab with plain jupytext too, and the
    contents manager rewrites nothing."""
    from jupytext.compare import compare

    build_notebooks = notebook_builder()
    for src in build_notebooks.sources():
        built = jupytext.reads(build_notebooks.render(src), fmt="ipynb")
        diff = compare(jupytext.writes(built, "py:percent"), src.read_text(), "from .ipynb", src.name,
                       return_diff=True)
        assert not diff, f"{src.name}: write cell metadata keys in sorted order\n{diff}"
        ipynb, text = _copy_pair(tmp_path / src.stem, src.stem)
        t = text.stat().st_mtime + 10
        os.utime(ipynb, (t, t))
        plain = jupytext.TextFileContentsManager(root_dir=str(tmp_path / src.stem))
        assert plain.get(f"notebooks/{ipynb.name}")["type"] == "notebook"
        assert lab.sync_text_from_newer_notebook(ipynb) == [], src.name


def test_no_pairing_no_rewrite(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    nbformat.write(nb, tmp_path / "plain.ipynb")
    assert lab.sync_text_from_newer_notebook(tmp_path / "plain.ipynb") == []
    (tmp_path / "broken.ipynb").write_text("{not json")
    assert lab.sync_text_from_newer_notebook(tmp_path / "broken.ipynb") == []
    with pytest.raises(AttributeError):
        lab.NoSuchThing  # noqa: B018
