"""The notebooks in a real browser: JupyterLab + Chromium, driven by Playwright.

    make browser-test            # installs Debian's chromium (apt-get, needs root), then this test
    pytest -m browser tests/test_browser.py

Starts JupyterLab on 127.0.0.1 (free port, random token) over a temporary folder holding a copy of
``notebooks/00_tour.ipynb`` and a tiny generated notebook that calls
:func:`nriqa.viz.widgets.compare_frames`; runs every cell from the Run menu and checks what a
person would see: the saved figures render as images, and moving the comparer's frame slider
redraws its image. The kernels run the smoke profile with their own run, weight and figure
folders. Skipped, with the reason, when Chromium or the ``playwright`` package is missing (the
test never downloads a browser: no ``playwright install``).

A second test opens executed copies of notebooks 03 and 06 (``$NRIQA_BROWSER_EXECUTED``, a folder of
notebooks a smoke run executed; `make browser-test` makes one in runs/browser/run, else the test is
skipped) and saves screenshots of JupyterLab scrolled to each of their figures and verdict tables,
``<NN_name>-<k>.png`` in ``$NRIQA_BROWSER_SHOTS`` (default: runs/browser of the checkout), for a
person to look at. It also opens a paired notebook whose ``.ipynb`` was edited outside JupyterLab:
JupyterLab runs with :class:`nriqa.lab.PairedNotebooksContentsManager`, as `make lab` does.
"""
from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

import nriqa
from nriqa.lab import CONTENTS_MANAGER
from nriqa.runner import NOTEBOOKS_DIR

pytestmark = [pytest.mark.browser, pytest.mark.timeout(150)]

INSTALL_HINT = "apt-get install chromium; pip install playwright"
SERVER_START_S = 60     # JupyterLab answering on its port
# every cell of 00_tour on the smoke profile, plus the comparer notebook
RUN_ALL_S = int(os.environ.get("NRIQA_BROWSER_RUN_S", 75))
TOUR = "00_tour.ipynb"
COMPARER = "zz_comparer.ipynb"
CHECKOUT = Path(nriqa.__file__).resolve().parent.parent
#: executed notebooks to screenshot, and the folder the screenshots go to
SHOT_NOTEBOOKS = ("03_artifact_analysis", "06_assessment_vs_optimization")
SHOTS_DIR = Path(os.environ.get("NRIQA_BROWSER_SHOTS", CHECKOUT / "runs" / "browser"))

COMPARER_SOURCE = """\
import torch
from nriqa.viz.widgets import compare_frames

g = torch.Generator().manual_seed(0)
frames = {run: {"clip": torch.rand(4, 3, 32, 32, generator=g)} for run in ("a", "b")}
compare_frames(frames, frame=0)
"""


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kernel_name() -> str:
    """``nriqa`` (the "Python (nriqa)" kernel `make venv` installs) when this environment has it,
    else ``python3``; the copied notebooks are set to it, so JupyterLab asks no question."""
    from jupyter_client.kernelspec import KernelSpecManager

    specs = KernelSpecManager().find_kernel_specs()
    return "nriqa" if "nriqa" in specs else "python3"


def _kernelspec(name: str | None = None) -> dict:
    """Notebook metadata naming kernel ``name`` (default :func:`_kernel_name`) with its own display
    name (JupyterLab would rewrite another one, leaving the notebook modified)."""
    from jupyter_client.kernelspec import KernelSpecManager

    name = name or _kernel_name()
    return {"name": name, "display_name": KernelSpecManager().get_kernel_spec(name).display_name,
            "language": "python"}


def _write_notebooks(folder: Path, kernel: str) -> None:
    folder.mkdir(parents=True)
    tour = nbformat.read(NOTEBOOKS_DIR / TOUR, as_version=4)
    comparer = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(COMPARER_SOURCE)])
    for nb, name in ((tour, TOUR), (comparer, COMPARER)):
        nb.metadata["kernelspec"] = _kernelspec(kernel)
        nbformat.write(nb, folder / name)


def _lab_settings(folder: Path) -> None:
    """Render every cell (no windowing: hidden cells would have no outputs in the page) and ask
    no news/update question."""
    tracker = folder / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text('{"windowingMode": "none"}')
    notes = folder / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notes.parent.mkdir(parents=True)
    notes.write_text('{"fetchNews": "false", "checkForUpdates": false}')


def _stop(proc: subprocess.Popen) -> None:
    """End the server and its kernels (its own process group): SIGTERM, then SIGKILL."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture
def lab(tmp_path):
    """``(base_url, token)`` of a JupyterLab serving copies of the notebooks; always stopped."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip(f"playwright not installed: {INSTALL_HINT}")
    if _chromium() is None:
        pytest.skip(f"chromium not installed: {INSTALL_HINT}")

    root = tmp_path / "root"
    _write_notebooks(root / "notebooks", _kernel_name())
    _lab_settings(tmp_path / "lab-settings")
    port, token = _free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items()
           if k not in ("MPLBACKEND", "NRIQA_STATIC", "NRIQA_BATCH", "JPY_SESSION_NAME")}
    checkout = str(CHECKOUT)  # kernels import this nriqa
    env.update({
        "NRIQA_PROFILE": "smoke",
        "NRIQA_RUNS": str(tmp_path / "runs"),
        "NRIQA_WEIGHTS": str(tmp_path / "weights"),
        "NRIQA_FIGURES": str(tmp_path / "figures"),
        "PYTHONPATH": os.pathsep.join(p for p in (checkout, os.environ.get("PYTHONPATH")) if p),
        "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "lab-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "lab-workspaces"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
    })
    log = (tmp_path / "jupyterlab.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         f"--ServerApp.contents_manager_class={CONTENTS_MANAGER}"]
        + (["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
        env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited ({proc.returncode}):\n"
                            + (tmp_path / "jupyterlab.log").read_text()[-3000:])
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer in {SERVER_START_S} s:\n"
                                + (tmp_path / "jupyterlab.log").read_text()[-3000:])
                time.sleep(0.5)
        yield base, token
    finally:
        _stop(proc)
        log.close()


def _open_and_run_all(page, base: str, token: str, name: str) -> None:
    page.goto(f"{base}/lab/tree/notebooks/{name}?reset&token={token}")
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    panel.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=30_000)
    # kernel up and idle before anything runs (a dialog would mean an unexpected kernel question)
    page.wait_for_function(
        """() => { const s = document.querySelector(
                '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator');
                   return s && s.getAttribute('data-status') === 'idle'; }""", timeout=30_000)
    for attempt in range(3):  # the menu item is inert until the notebook is the current widget
        panel.locator(".jp-Cell").first.click(position={"x": 5, "y": 5})
        page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-item:not(.lm-mod-hidden)", has_text="Run All Cells").first.click()
        try:  # started: the first cell is queued, running or done
            page.wait_for_function(
                """() => { const p = document.querySelector(
                        '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputArea-prompt');
                           return p && /\\[(\\*|\\d+)\\]/.test(p.textContent); }""", timeout=5_000)
            break
        except Exception:
            page.keyboard.press("Escape")
            if attempt == 2:
                raise
    # done: every code cell has an execution count, none is pending or running ("[*]")
    try:
        page.wait_for_function(
            """() => { const nb = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
                       const s = nb && nb.querySelector('.jp-Notebook-ExecutionIndicator');
                       const p = nb ? [...nb.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')]
                                       .map(e => e.textContent.trim()) : [];
                       return p.length > 0 && p.every(t => /^\\[\\d+\\]:$/.test(t))
                              && s && s.getAttribute('data-status') === 'idle'; }""",
            timeout=RUN_ALL_S * 1000)
    except Exception:
        prompts = panel.locator(".jp-CodeCell .jp-InputArea-prompt").all_inner_texts()
        SHOTS_DIR.mkdir(parents=True, exist_ok=True)
        shot = SHOTS_DIR / f"nriqa-browser-{name}.png"
        page.screenshot(path=str(shot), full_page=True)
        pytest.fail(f"{name}: cells not all run in {RUN_ALL_S} s; prompts {prompts}; screenshot {shot}")
    errors = panel.locator(".jp-OutputArea-output", has_text="Traceback")
    assert errors.count() == 0, errors.first.inner_text()[-2000:]


def _rendered_images(panel) -> list[dict]:
    return panel.locator(".jp-OutputArea-output img").evaluate_all(
        "imgs => imgs.map(i => ({w: i.naturalWidth, h: i.naturalHeight, complete: i.complete}))")


@contextlib.contextmanager
def _chromium_page():
    """A 1400x1000 page of headless Chromium (30 s default timeout), closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), headless=True,
                                     args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()


def test_notebook_figures_and_comparer_render_in_jupyterlab(lab):

    base, token = lab
    started = time.monotonic()
    with _chromium_page() as page:

        # 1. the tour: each saved figure is an image in its cell's output, with pixels
        _open_and_run_all(page, base, token, TOUR)
        panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
        tour = nbformat.read(NOTEBOOKS_DIR / TOUR, as_version=4)
        expected = sum(c.source.count("save_figure(") for c in tour.cells if c.cell_type == "code")
        page.wait_for_function(
            """(n) => { const i = [...document.querySelectorAll(
                    '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output img')];
                       return i.length >= n && i.every(x => x.complete && x.naturalWidth > 0); }""",
            arg=expected, timeout=10_000)
        images = _rendered_images(panel)
        assert len(images) >= expected >= 1, images
        assert all(i["w"] > 0 and i["h"] > 0 for i in images), images
        assert panel.locator(".jp-OutputArea-output", has_text=re.compile(r"<Figure size")).count() == 0

        # 2. the comparer: a widget (not a static figure) whose frame slider redraws the image
        _open_and_run_all(page, base, token, COMPARER)
        panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
        image = panel.locator(".jupyter-widgets img, .widget-image").first
        image.wait_for(timeout=20_000)
        page.wait_for_function("(img) => img.complete && img.naturalWidth > 0",
                               arg=image.element_handle(), timeout=10_000)
        before = image.get_attribute("src")
        slider = panel.locator(".widget-slider", has_text="frame").first
        handle = slider.locator(".noUi-handle").first
        handle.focus()
        handle.press("ArrowRight")
        page.wait_for_function("([img, old]) => img.getAttribute('src') !== old",
                               arg=[image.element_handle(), before], timeout=20_000)
        after = image.get_attribute("src")
        readout = slider.locator(".widget-readout").first.inner_text().strip()
        assert readout == "1", readout
        assert after and after != before
        page.wait_for_function("(img) => img.complete && img.naturalWidth > 0",
                               arg=image.element_handle(), timeout=10_000)

        # 3. the crop is the whole frame: its position sliders are disabled and a note says so;
        # a smaller crop enables them and hides the note
        note = panel.locator(".widget-label", has_text="crop covers the whole frame")
        crop_y = panel.locator(".widget-slider", has_text="crop y").locator(".noUi-target")
        assert note.is_visible() and crop_y.get_attribute("disabled") is not None
        SHOTS_DIR.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS_DIR / "zz_comparer.png"))
        size = panel.locator(".widget-slider", has_text="crop size").locator(".noUi-handle").first
        size.focus()
        size.press("ArrowLeft")
        note.wait_for(state="hidden", timeout=20_000)
        assert crop_y.get_attribute("disabled") is None
    assert time.monotonic() - started < 120


def _executed_folder() -> Path:
    """The folder of executed notebooks to screenshot, or a skip saying how to make one."""
    folder = os.environ.get("NRIQA_BROWSER_EXECUTED")
    if not folder:
        pytest.skip("no executed notebooks to screenshot: make browser-test runs the smoke profile into "
                    "runs/browser/run, or set NRIQA_BROWSER_EXECUTED to <run root>/smoke/notebooks")
    missing = [n for n in SHOT_NOTEBOOKS if not (Path(folder) / f"{n}.ipynb").is_file()]
    if missing:
        pytest.fail(f"NRIQA_BROWSER_EXECUTED={folder} has no executed {missing}")
    return Path(folder)


def _open(page, base: str, token: str, path: str, nb):
    """Open ``path`` (relative to the server's root; ``nb`` is the notebook there) and wait until
    its cells, output images and verdict tables (:func:`_expected_outputs`) are drawn; returns the
    notebook panel. A dialog (File Load Error) fails the test."""
    page.goto(f"{base}/lab/tree/{path}?reset&token={token}")
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    dialog = page.locator(".jp-Dialog")
    page.wait_for_function(  # all cells there (a notebook that failed to load shows one empty cell)
        """(n) => document.querySelector('.jp-Dialog') || document.querySelectorAll(
                '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell').length >= n""",
        arg=len(nb.cells), timeout=30_000)
    assert dialog.count() == 0, f"{path}: {dialog.first.inner_text()[:2000]}"
    page.wait_for_function(
        """([n, t]) => { const nb = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
                const i = [...nb.querySelectorAll('.jp-OutputArea-output img')];
                const v = [...nb.querySelectorAll('.jp-OutputArea-output th')]
                              .filter(th => th.textContent.trim() === 'verdict');
                return i.length >= n && i.every(x => x.complete && x.naturalWidth > 0) && v.length >= t; }""",
        arg=list(_expected_outputs(nb)), timeout=20_000)
    return panel


def _expected_outputs(nb) -> tuple[int, int]:
    """(image outputs, verdict tables: markdown outputs with a ``verdict`` column) of ``nb``."""
    outs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    images = sum("image/png" in o.get("data", {}) for o in outs)
    tables = sum("| verdict |" in o.get("data", {}).get("text/markdown", "") for o in outs)
    return images, tables


# indices of the notebook's cells with a figure or a verdict table in their outputs
_SHOWN_CELLS = """() => [...document.querySelectorAll(
        '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell')].flatMap((c, i) =>
    c.querySelector('.jp-OutputArea-output img') || [...c.querySelectorAll('.jp-OutputArea-output th')]
        .some(th => th.textContent.trim() === 'verdict') ? [i] : [])"""


def _screenshot_figures_and_verdicts(page, panel, stem: str, nb) -> list[Path]:
    """One screenshot of JupyterLab per cell showing a figure or a verdict table, the cell scrolled
    to the top of the notebook; checks that every figure and verdict table of ``nb`` is drawn."""
    images, tables = _expected_outputs(nb)
    drawn = _rendered_images(panel)
    assert len(drawn) == images >= 1 and all(i["w"] > 0 for i in drawn), (stem, images, drawn)
    verdicts = panel.locator(".jp-OutputArea-output table", has=page.locator("th", has_text="verdict"))
    assert verdicts.count() == tables >= 1, (stem, tables, verdicts.count())
    cells = panel.locator(".jp-Notebook .jp-Cell")
    shots = []
    for k, index in enumerate(page.evaluate(_SHOWN_CELLS), start=1):
        cells.nth(index).evaluate("c => c.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(300)  # let the scrolled cells paint
        shots.append(SHOTS_DIR / f"{stem}-{k}.png")
        page.screenshot(path=str(shots[-1]))
    return shots


def _copy_pair_edited_outside(root: Path) -> str:
    """notebooks 00's .ipynb and jupytext source under ``root/paired``, the .ipynb's first code
    cell edited as another program would (newer than its source); returns its server path."""
    (root / "paired" / "src").mkdir(parents=True)
    shutil.copy(NOTEBOOKS_DIR / "src" / "00_tour.py", root / "paired" / "src")
    nb = nbformat.read(NOTEBOOKS_DIR / TOUR, as_version=4)
    nb.metadata["kernelspec"] = _kernelspec()
    next(c for c in nb.cells if c.cell_type == "code").source += "\n# edited outside JupyterLab"
    nbformat.write(nb, root / "paired" / TOUR)
    later = (root / "paired" / "src" / "00_tour.py").stat().st_mtime + 10
    os.utime(root / "paired" / TOUR, (later, later))
    return f"paired/{TOUR}"


@pytest.mark.timeout(300)
def test_executed_notebooks_screenshots_and_an_outside_edit_opens(lab, tmp_path):
    """Screenshots of the executed notebooks 03 and 06 in JupyterLab (figures, verdict tables) into
    SHOTS_DIR; a paired notebook edited outside JupyterLab opens there with the edit."""

    base, token = lab
    executed = _executed_folder()
    root = tmp_path / "root"
    (root / "executed").mkdir()
    for stem in SHOT_NOTEBOOKS:
        nb = nbformat.read(executed / f"{stem}.ipynb", as_version=4)
        nb.metadata["kernelspec"] = _kernelspec()
        nbformat.write(nb, root / "executed" / f"{stem}.ipynb")
    edited = _copy_pair_edited_outside(root)
    SHOTS_DIR.mkdir(parents=True, exist_ok=True)
    for old in SHOTS_DIR.glob("[0-9][0-9]_*-*.png"):
        old.unlink()
    shots: list[Path] = []
    with _chromium_page() as page:
        for stem in SHOT_NOTEBOOKS:
            nb = nbformat.read(root / "executed" / f"{stem}.ipynb", as_version=4)
            panel = _open(page, base, token, f"executed/{stem}.ipynb", nb)
            shots += _screenshot_figures_and_verdicts(page, panel, stem, nb)
        panel = _open(page, base, token, edited, nbformat.read(root / edited, as_version=4))
        panel.locator(".jp-CodeCell .cm-content").first.filter(
            has_text="# edited outside JupyterLab").wait_for(timeout=20_000)
    assert "edited outside JupyterLab" in (root / "paired" / "src" / "00_tour.py").read_text()
    assert all(s.stat().st_size > 0 for s in shots)
    print("screenshots:", *shots, sep="\n  ")
