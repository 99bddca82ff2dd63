"""The figures are in the executed notebooks: one image output per figure a notebook saves.

Reads the notebooks that ``python -m nriqa run`` executed (``make test`` runs the smoke profile
and points here)::

    NRIQA_EXECUTED=runs/smoke/notebooks pytest tests/test_executed_notebooks.py

Skipped unless ``NRIQA_EXECUTED`` names that folder. Per code cell, each ``save_figure(`` call
must have shown its figure as an image output (exactly one image per call in a cell without a
loop, so a figure shown twice fails too; a cell tagged ``optional-figure``, a section a profile
may skip, shows all its figures or none, or in a loop any number), and no output may be matplotlib's bare
``<Figure size ...>`` text, which is what a notebook shows when a figure was drawn but not displayed.

The saved copies are also read as documents: no progress bar (a tqdm widget, or its text frozen at
``0%| 0/4``; a headless run prints one plain line per training instead, ``nriqa.progress``) and no
absolute path of the machine that ran them (``/home/...``, ``/tmp/...``, the repository's or the
run root's path), in any cell source, text output or the notebook's metadata.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import nbformat
import pytest

from nriqa.paths import REPO_ROOT
from nriqa.runner import list_notebooks

EXECUTED = os.environ.get("NRIQA_EXECUTED", "")
pytestmark = pytest.mark.skipif(not EXECUTED, reason="set NRIQA_EXECUTED=<folder of executed notebooks> "
                                                     "(make test does, after python -m nriqa run --profile smoke)")

IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml")
BARE_FIGURE = re.compile(r"<(Figure size \d|matplotlib\.figure\.Figure object)")
CALL = re.compile(r"(?<![\w.])save_figure\(")


def _calls(source: str) -> tuple[int, bool]:
    """``save_figure(`` calls in a cell (not counting imports, definitions and comments), and
    whether one of them sits in a ``for``/``while`` body (then it may save several figures)."""
    n, in_loop, loops = 0, False, []  # loops: indentation of the enclosing for/while lines
    for line in source.splitlines():
        code = line.split("#", 1)[0]
        if not code.strip():
            continue
        indent = len(code) - len(code.lstrip())
        loops = [i for i in loops if i < indent]
        if re.match(r"\s*(from|import|def)\s", code):
            continue
        found = len(CALL.findall(code))
        n += found
        in_loop |= bool(found and loops)
        if re.match(r"\s*(for|while)\s", code):
            loops.append(indent)
    return n, in_loop


def _images(cell) -> int:
    return sum(1 for o in cell.get("outputs", [])
               if o.get("output_type") in ("display_data", "execute_result")
               and any(t in o.get("data", {}) for t in IMAGE_TYPES))


#: a tqdm bar as text: ``train:  40%|####      | 12/30 [...]``, ``  0%|          | 0/4``
BAR = re.compile(r"\d+%\|.*\d+/\d+")
#: a widget (an ipywidgets progress bar: its saved text fallback is a frozen bar)
WIDGET = "application/vnd.jupyter.widget-view+json"
#: the start of an absolute path of a machine: a POSIX home or temporary folder, a Windows drive
ABSOLUTE = re.compile(r"(?<![\w.:/~-])(/(home|Users|root|tmp|var/folders|private|work|mnt|opt|srv)/|[A-Za-z]:[\\/])")


def _texts(cell) -> list[str]:
    out = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            out.append(o.get("text", ""))
        elif o.get("output_type") in ("display_data", "execute_result"):
            out.append(str(o.get("data", {}).get("text/plain", "")))
    return out


def _document(nb) -> list[tuple[str, str]]:
    """``(where, text)`` of everything a reader of the notebook sees or its metadata records: cell
    sources, text outputs (stream, text/plain, text/html, text/markdown, errors) and the notebook's
    metadata; not image data (base64 may spell anything)."""
    out = [("notebook metadata", json.dumps(nb.metadata))]
    for i, cell in enumerate(nb.cells):
        out.append((f"cell {i} source", cell.source))
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            texts = [o.get("text", ""), *(str(data.get(k, "")) for k in ("text/plain", "text/html", "text/markdown")),
                     "\n".join(o.get("traceback", []))]
            out += [(f"cell {i} output", t) for t in texts if t]
    return out


def _machine_paths() -> list[str]:
    """This machine's folders an executed notebook could leak, absolute."""
    paths = {str(REPO_ROOT), str(Path.home()), tempfile.gettempdir(), str(Path(EXECUTED).expanduser().resolve())}
    return sorted(p for p in paths if len(p) > 1)


@pytest.mark.parametrize("book", list_notebooks(), ids=lambda p: p.stem)
def test_no_progress_bar_and_no_absolute_path_in_the_saved_notebook(book):
    executed = Path(EXECUTED).expanduser() / book.name
    assert executed.exists(), f"{executed} missing: run python -m nriqa run --profile smoke first"
    nb = nbformat.read(executed, as_version=4)
    widgets = [i for i, c in enumerate(nb.cells) for o in c.get("outputs", []) if WIDGET in o.get("data", {})]
    assert not widgets, f"{book.name}: widget outputs (a progress bar saved frozen) in cells {widgets}"
    for where, text in _document(nb):
        bar = BAR.search(text)
        assert not bar, f"{book.name}, {where}: a progress bar saved in the notebook: {bar.group(0)[:80]!r}"
        found = ABSOLUTE.search(text) or next((re.search(re.escape(p), text) for p in _machine_paths()
                                              if p in text), None)
        assert not found, (f"{book.name}, {where}: an absolute path of this machine: "
                           f"{text[max(0, found.start() - 40):found.end() + 60]!r}")


@pytest.mark.parametrize("book", list_notebooks(), ids=lambda p: p.stem)
def test_each_saved_figure_is_an_image_output(book):
    executed = Path(EXECUTED).expanduser() / book.name
    assert executed.exists(), f"{executed} missing: run python -m nriqa run --profile smoke first"
    nb = nbformat.read(executed, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    unexecuted = [i for i, c in enumerate(code) if c.get("execution_count") is None]
    assert not unexecuted, f"{book.name}: code cells {unexecuted} were not executed"

    calls = images = 0
    for i, cell in enumerate(code):
        (n_calls, in_loop), n_images = _calls(cell.source), _images(cell)
        calls, images = calls + n_calls, images + n_images
        where = f"{book.name}, code cell {i}:\n{cell.source[:300]}"
        bare = [t for t in _texts(cell) if BARE_FIGURE.search(t)]
        assert not bare, f"a figure shown as text, not drawn: {bare[0][:120]!r} in {where}"
        if "optional-figure" in cell.metadata.get("tags", []):  # a section a profile may skip: all or nothing
            if in_loop:  # a loop that saves a figure only where there is one to show (notebook 03's crops)
                assert n_images == 0 or n_images >= n_calls, f"{n_images} image(s) for {n_calls} call(s) in {where}"
            else:
                assert n_images in (0, n_calls), f"{n_images} image(s) for {n_calls} save_figure call(s) in {where}"
            calls -= n_calls - n_images
        elif in_loop:  # a call in a loop body saves a figure per pass
            assert n_images >= n_calls, f"{n_images} image(s) for {n_calls} save_figure call(s) in {where}"
        else:
            assert n_images == n_calls, f"{n_images} image(s) for {n_calls} save_figure call(s) in {where}"
    assert images >= calls, f"{book.name}: {images} image outputs, {calls} save_figure calls"
