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
from doubles import notebook_builder

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


def test_notebooks_match_their_sources():
    """The committed .ipynb files are byte for byte what notebooks/build_notebooks.py makes from the
    jupytext sources in notebooks/src (cell ids, tags, check outputs and kernelspec included)."""
    build_notebooks = notebook_builder()
    assert [s.stem for s in build_notebooks.sources()] == [b.stem for b in list_notebooks()]
    assert build_notebooks.stale() == [], "run: python notebooks/build_notebooks.py"


def test_sources_are_jupytext_percent_scripts_that_round_trip():
    """Saving a paired notebook from JupyterLab (jupytext) rewrites its source unchanged."""
    import jupytext

    build_notebooks = notebook_builder()
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


def _record_calls(monkeypatch) -> list:
    """papermill.execute_notebook replaced by a recorder of (output path, parameters, the kernels'
    NRIQA_* environment, keyword arguments)."""
    import papermill

    calls = []
    monkeypatch.setattr(papermill, "execute_notebook", lambda src, dst, parameters, **kw: calls.append(
        (Path(dst), parameters, {k: v for k, v in os.environ.items() if k.startswith("NRIQA_")}, kw)))
    return calls


def test_a_profile_file_outside_the_repository_reaches_the_kernels_by_environment(tmp_path, monkeypatch):
    """Its absolute path is in the kernels' environment ($NRIQA_PROFILE), not in the executed notebook;
    nor is the run root ($NRIQA_RUNS)."""
    prof = tmp_path / "mine.yaml"
    prof.write_text("base: smoke\nname: mine\n")
    calls = _record_calls(monkeypatch)
    monkeypatch.chdir(tmp_path)  # a relative path to the profile file, as a user types it
    monkeypatch.delenv("NRIQA_PROFILE", raising=False)
    done = runner.run_notebooks("mine.yaml", only=["01"], run_root=tmp_path / "runs", status_stream=io.StringIO())
    assert [d.parent for d in done] == [tmp_path / "runs" / "mine" / "notebooks"]
    dst, params, env, _ = calls[0]
    assert dst == done[0] and params == {}
    assert env["NRIQA_PROFILE"] == str(prof) and env["NRIQA_RUNS"] == str(tmp_path / "runs")
    assert env["NRIQA_BATCH"] == "1"
    assert "NRIQA_PROFILE" not in os.environ  # restored after the run


def test_profiles_reach_the_kernels_without_a_path_of_this_machine(tmp_path, monkeypatch):
    """A bundled profile by name, a profile file of the repository relative to notebooks/ (where the
    kernels start); never RUN_ROOT as a parameter (the notebooks read $NRIQA_RUNS)."""
    calls = _record_calls(monkeypatch)
    runner.run_notebooks("smoke", only=["00"], run_root=tmp_path, status_stream=io.StringIO())
    inside = REPO_ROOT / "tests" / "profiles" / "smoke_two_workers.yaml"
    runner.run_notebooks(str(inside), only=["00"], run_root=tmp_path, status_stream=io.StringIO())
    assert calls[0][1] == {"PROFILE": "smoke"}
    assert calls[1][1] == {"PROFILE": "../tests/profiles/smoke_two_workers.yaml"}
    assert (NOTEBOOKS_DIR / calls[1][1]["PROFILE"]).resolve() == inside.resolve()
    assert all(c[2]["NRIQA_RUNS"] == str(tmp_path) for c in calls)
    # the kernels are started with CurveZMQ keys where jupyter_client, pyzmq and their kernelspec
    # allow it (then ipykernel does not warn "Kernel is running over TCP without encryption")
    import zmq
    from jupyter_client.manager import KernelManager

    config = calls[0][3]["config"]
    if KernelManager.class_traits().get("transport_encryption") and zmq.has("curve"):
        assert config.KernelManager.transport_encryption == "auto"


def test_executed_copies_record_paths_relative_to_the_repository_or_the_run_root(tmp_path):
    import nbformat

    book = NOTEBOOKS_DIR / "00_tour.ipynb"
    target = tmp_path / "smoke" / "notebooks" / "00_tour.ipynb"
    target.parent.mkdir(parents=True)
    nb = nbformat.read(book, as_version=4)
    nb.metadata["papermill"] = {"input_path": str(book), "output_path": str(target), "parameters": {}}
    nbformat.write(nb, target)
    runner._relative_metadata(target, book, tmp_path)
    meta = nbformat.read(target, as_version=4).metadata["papermill"]
    assert meta["input_path"] == "notebooks/00_tour.ipynb"
    assert meta["output_path"] == "<RUN_ROOT>/smoke/notebooks/00_tour.ipynb"
    assert runner.shown_path(REPO_ROOT / "runs" / "x.ipynb", tmp_path) == "runs/x.ipynb"


def test_verdicts_and_findings_are_explained_once_in_the_tour_and_linked_from_the_others():
    def markdown(book):
        return "\n".join(c.source for c in nbformat.read(book, as_version=4).cells if c.cell_type == "markdown")

    books = list_notebooks()
    tour = markdown(books[0])
    for heading in ("How to read a verdict", "Recorded findings"):
        assert re.search(rf"^## {heading}$", tour, re.M), heading
    for book in books[1:]:
        text = markdown(book)
        assert "(00_tour.ipynb#Recorded-findings)" in text, book.name
        assert "README's findings block" not in text and "*Inconclusive* means" not in text, book.name
        if book.name[:2] >= "03":  # the notebooks with verdict tables
            assert "(00_tour.ipynb#How-to-read-a-verdict)" in text, book.name
        for anchor in re.findall(r"\(00_tour\.ipynb#([^)]+)\)", text):
            assert re.search(rf"^#+ {anchor.replace('-', ' ')}$", tour, re.M), (book.name, anchor)


def test_headless_progress_is_one_plain_line_per_bar(monkeypatch, capsys):
    """Under ``nriqa run`` / nbval (NRIQA_BATCH=1) a bar that stays on screen becomes one line when it
    ends, a transient one (leave=False) prints nothing, and no tqdm bar is drawn."""
    from nriqa.progress import LineProgress, progress_bar

    monkeypatch.setenv("NRIQA_BATCH", "1")
    bar = progress_bar(total=4, initial=0, disable=False, desc="train", unit="step", dynamic_ncols=True)
    assert isinstance(bar, LineProgress)
    for _ in range(4):
        bar.update(1)
    bar.set_postfix(loss="0.031", skipped=0)
    bar.close()
    bar.close()  # once
    for _ in progress_bar(range(2, 5), desc="train-iqa cnniqa", initial=2, total=5, unit="step"):
        pass
    for _ in progress_bar([1, 2], desc="eval run/set", leave=False):
        pass
    for _ in progress_bar([1, 2], desc="nothing", enabled=False):
        pass
    stopped = progress_bar(total=4, desc="train", unit="step")
    stopped.update(1)
    stopped.close()
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert re.fullmatch(r"train: 4 steps done in \d+\.\d s \(.* step/s; loss=0\.031, skipped=0\)", lines[0]), lines
    assert lines[1].startswith("train-iqa cnniqa: 3 steps (resumed at 2) done in "), lines
    assert lines[2].startswith("train: 1 step stopped at 1 of 4 in "), lines
    assert len(lines) == 3 and not out.err
    assert "%|" not in out.out and "\r" not in out.out


def test_progress_outside_a_headless_run_is_a_tqdm_bar(monkeypatch):
    import tqdm

    from nriqa.progress import progress_bar

    monkeypatch.delenv("NRIQA_BATCH", raising=False)
    bar = progress_bar(total=3, desc="train", enabled=False)
    assert isinstance(bar, tqdm.std.tqdm) and bar.disable
    bar.close()


def test_a_run_saves_no_path_of_this_machine_and_starts_kernels_without_the_tcp_warning(tmp_path, capfd,
                                                                                      monkeypatch):
    """``nriqa run`` of the tour: the executed copy holds neither the run root's nor the repository's
    absolute path, and the kernel's "running over TCP without encryption" warning is not printed."""
    import zmq
    from jupyter_client.manager import KernelManager

    # the kernel imports the nriqa under test, not another checkout's editable install
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    done = runner.run_notebooks("smoke", only=["00"], run_root=tmp_path, status_stream=io.StringIO())
    text = done[0].read_text()
    assert str(tmp_path) not in text and str(REPO_ROOT) not in text
    meta = nbformat.read(done[0], as_version=4).metadata["papermill"]
    assert meta["input_path"] == "notebooks/00_tour.ipynb" and meta["parameters"] == {"PROFILE": "smoke"}
    if KernelManager.class_traits().get("transport_encryption") and zmq.has("curve"):
        assert "without encryption" not in capfd.readouterr().err
