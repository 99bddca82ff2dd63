"""`python -m nriqa run`: notebook discovery, selection and parameter cells."""
from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from nriqa import runner
from nriqa.paths import REPO_ROOT
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
        assert re.search(rf"^{name}(: [^=]+)? = ", code[0].source, re.M), name
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")


def _builder():
    sys.path.insert(0, str(NOTEBOOKS_DIR))
    try:
        import build_notebooks
    finally:
        sys.path.pop(0)
    return build_notebooks


def test_notebooks_match_their_sources():
    """The committed .ipynb files are byte for byte what notebooks/build_notebooks.py makes from the
    jupytext sources in notebooks/src (cell ids, tags, check outputs and kernelspec included)."""
    build_notebooks = _builder()
    assert [s.stem for s in build_notebooks.sources()] == [b.stem for b in list_notebooks()]
    assert build_notebooks.stale() == [], "run: python notebooks/build_notebooks.py"


def test_sources_are_jupytext_percent_scripts_that_round_trip():
    """Saving a paired notebook from JupyterLab (jupytext) rewrites its source unchanged."""
    import jupytext

    build_notebooks = _builder()
    for src in build_notebooks.sources():
        nb = jupytext.read(src, fmt="py:percent")
        assert jupytext.writes(nb, "py:percent") == src.read_text(), src.name
        built = build_notebooks.notebook(src)
        assert built.metadata["kernelspec"]["name"] == "nriqa"
        assert built.metadata["kernelspec"]["display_name"] == "Python (nriqa)"
        assert built.metadata["jupytext"]["formats"] == "ipynb,src//py:percent"
        ids = [c.id for c in built.cells]
        assert ids == [f"{src.stem[:2]}-{i:02d}" for i in range(len(ids))]
        checks = [c for c in built.cells if "nbval-check-output" in c.metadata.get("tags", [])]
        assert checks and all(c.outputs[0].text == c.metadata["expected_output"] + "\n" for c in checks)


@pytest.mark.parametrize("book", list_notebooks(), ids=lambda p: p.stem)
def test_parameters_are_typed_and_explained(book):
    """``papermill --help-notebook`` shows a type and a comment for every parameter."""
    from nriqa.runner import notebook_parameters

    params = notebook_parameters(book)
    assert {"PROFILE", "DEVICE", "RUN_ROOT", "SEED"} <= set(params)
    for name, p in params.items():
        assert p["inferred_type_name"] not in ("None", ""), name
        assert p["help"].strip(), name
    assert params["RUN_ROOT"]["default"] == "None"  # resolved from the repository, not the cwd


def test_run_rejects_a_mistyped_parameter_before_running_anything(tmp_path):
    out = subprocess.run([sys.executable, "-m", "nriqa", "run", "--profile", "smoke", "--only", "00",
                          "--run-root", str(tmp_path), "-p", "SEEED", "1"], capture_output=True, text=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr  # a user error: one line
    assert "unknown notebook parameter 'SEEED' (did you mean 'SEED'?)" in out.stderr
    assert not (tmp_path / "smoke").exists()


def test_a_parameter_of_one_selected_notebook_is_accepted():
    from nriqa.runner import check_parameters

    check_parameters(list_notebooks(), {"HACK_THRESHOLD": 0.1, "SEED": 1})
    with pytest.raises(ValueError, match="HACK_THRESHOLD"):
        check_parameters(list_notebooks(only=["00"]), {"HACK_THRESHOLD": 0.1})


def test_status_line_shows_notebook_message_and_progress():
    import io

    from nriqa.runner import StatusLine

    out = io.StringIO()
    status = StatusLine("02_per_loss_finetuning", stream=out, every=0)
    status.write("training ft-tiny-niqex0.02 (30 steps)\n")
    status.write("\rtrain:  40%|####      | 12/30 [00:03<00:05,  3.50it/s]")
    line = out.getvalue().splitlines()[-1]
    assert line == ("[nriqa run] 02_per_loss_finetuning | training ft-tiny-niqex0.02 (30 steps) | "
                    "train:  40%|####      | 12/30 [00:03<00:05,  3.50it/s]")


def test_notebook_run_by_papermill_holds_its_figure(tmp_path, monkeypatch):
    """00_tour run by papermill from another folder, as a user would (no NRIQA_STATIC, Agg exported):
    runs land under the repository's runs/ (here NRIQA_RUNS), the figure is an image output."""
    import papermill as pm

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NRIQA_STATIC", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("NRIQA_RUNS", str(tmp_path / "runs"))
    # the kernel imports the nriqa under test, not another checkout's editable install
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    out = tmp_path / "00.ipynb"
    pm.execute_notebook(str(NOTEBOOKS_DIR / "00_tour.ipynb"), str(out), parameters={"PROFILE": "smoke"},
                        kernel_name="python3", progress_bar=False, cwd=str(tmp_path))
    nb = nbformat.read(out, as_version=4)
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    texts = [o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for c in nb.cells
             for o in c.get("outputs", [])]
    assert len(images) == 1  # 00_degradations, once (not again by the inline backend)
    assert not any("<Figure size" in t for t in texts)
    assert (tmp_path / "runs" / "smoke" / "figures" / "00_degradations.png").exists()


def test_run_rejects_unknown_profile_before_running_anything(tmp_path):
    out = subprocess.run([sys.executable, "-m", "nriqa", "run", "--profile", "nope", "--run-root", str(tmp_path)],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "unknown profile" in out.stderr and "Traceback" not in out.stderr  # a user error
    assert not (tmp_path / "nope").exists()


def test_batch_kernels_get_plain_text_progress_bars():
    """Under ``nriqa run`` (NRIQA_BATCH=1) tqdm.auto is tqdm.std even where it would be a widget."""
    code = ("import tqdm.auto as a, tqdm.notebook as n, tqdm.std as s\n"
            "a.tqdm = n.tqdm  # what tqdm.auto picks inside a Jupyter kernel\n"
            "import nriqa\n"
            "assert a.tqdm is s.tqdm, a.tqdm\n")
    env = {**os.environ, "NRIQA_BATCH": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO_ROOT)
    assert out.returncode == 0, out.stderr


def test_version():
    import nriqa

    out = subprocess.run([sys.executable, "-m", "nriqa", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"nriqa {nriqa.__version__}"


def test_a_profile_file_runs_under_its_name_and_reaches_the_kernels_as_an_absolute_path(tmp_path, monkeypatch):
    import papermill

    prof = tmp_path / "mine.yaml"
    prof.write_text("base: smoke\nname: mine\n")
    calls = []
    monkeypatch.setattr(papermill, "execute_notebook",
                        lambda src, dst, parameters, **kw: calls.append((Path(dst), parameters)))
    monkeypatch.chdir(tmp_path)  # a relative path to the profile file, as a user types it
    done = runner.run_notebooks("mine.yaml", only=["01"], run_root=tmp_path / "runs", status_stream=io.StringIO())
    assert [d.parent for d in done] == [tmp_path / "runs" / "mine" / "notebooks"]
    assert calls[0][0] == done[0] and calls[0][1]["PROFILE"] == str(prof)
