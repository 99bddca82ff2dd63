"""``python -m nriqa``: a user error is one line on stderr and exit status 2; ``--debug`` shows the traceback."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nriqa.__main__ import main
from nriqa.errors import ConfigError
from nriqa.train.lock import run_lock

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _runs_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("NRIQA_RUNS", str(tmp_path / "runs"))
    monkeypatch.delenv("NRIQA_DEBUG", raising=False)
    monkeypatch.delenv("NRIQA_REDS", raising=False)


def _error_line(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("argv, expected", [
    (["train", "trian"],
     "nriqa train: error: unknown profile 'trian'; bundled profiles: demo, demo_seeds345, paper, smoke"),
    (["train", "demo", "--set", "trian.steps=3"],
     "nriqa train: error: override trian.steps=3: unknown key 'trian' in profile 'demo'; did you mean 'train'?"),
    (["train", "demo", "--set", "train.steps=abc"],
     ("nriqa train: error: override train.steps=abc: train.steps must be an int (profile 'demo' has train.steps: 100), "
     "got a str abc")),
    (["train", "demo", "--set", "train.steps"],
     "nriqa train: error: override 'train.steps' must look like key.path=value, e.g. train.steps=50"),
    (["train", "nope.yaml"], "nriqa train: error: profile file nope.yaml does not exist"),
    (["train", "smoke", "--set", "train.optimizer.name=sgd"],
     "nriqa train: error: train.optimizer.name must be 'adam' or 'adamw', got 'sgd'"),
    (["train", "smoke", "--set", "data.source=reds", "--no-progress"],
     "nriqa train: error: data.source='reds' needs data.root (or $NRIQA_REDS) pointing at the dataset folder"),
    (["train", "smoke", "--model", "nosuch", "--no-progress"], "nriqa train: error: unknown generator model='nosuch'"),
    (["train-iqa", "cnniqa", "--profile", "smoke", "--set", "iqa.stpes=3"],
     ("nriqa train-iqa: error: override iqa.stpes=3: unknown key 'stpes' under 'iqa' in profile 'smoke'; "
     "did you mean 'steps'?")),
    (["run", "--profile", "nope"], "nriqa run: error: unknown profile 'nope'"),
    (["run", "--only", "99"], "nriqa run: error: --only 99 matches no notebook"),
])
def test_user_errors_are_one_line_and_exit_2(capsys, argv, expected):
    line = _error_line(capsys, argv)
    assert line.startswith(expected) or expected in line, line


def test_missing_dataset_folder_names_it(capsys, tmp_path):
    missing = tmp_path / "REDS"
    line = _error_line(capsys, ["train", "smoke", "--set", "data.source=reds", "--set", f"data.root={missing}",
                                "--no-progress"])
    assert line.startswith(f"nriqa train: error: reds: the dataset folder {missing} does not exist")
    assert not (tmp_path / "runs").exists()                     # nothing was created for the failed run


def test_missing_weights_are_one_line(capsys, tmp_path, monkeypatch):
    from nriqa import quality

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no pretrained weights there
    try:
        card = quality.card("maniqa")
    except (ValueError, KeyError):
        pytest.skip("maniqa is not registered (pyiqa missing)")
    assert not card.present
    line = _error_line(capsys, ["train", "smoke", "--set", "train.objective={charbonnier: 1.0, maniqa: 0.1}",
                                "--no-progress"])
    assert line.startswith("nriqa train: error: quality measure 'maniqa' needs weight files that are not on disk:")
    assert "python -m nriqa weights fetch maniqa" in line


def test_a_busy_run_folder_is_one_line_naming_the_holder(capsys, tmp_path):
    run = tmp_path / "runs" / "busy"
    with run_lock(run):
        line = _error_line(capsys, ["train", "smoke", "--run-dir", str(run), "--no-progress"])
    assert line.startswith(f"nriqa train: error: run folder {run} is in use by another trainer: pid {os.getpid()}")


def test_a_run_without_an_intact_checkpoint_is_one_line(capsys, tmp_path):
    run = tmp_path / "runs" / "broken"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "latest.pt").write_bytes(b"\x00" * 100)
    line = _error_line(capsys, ["train", "smoke", "--run-dir", str(run), "--no-progress"])
    assert line.startswith(f"nriqa train: error: no intact checkpoint in {run / 'checkpoints'} to resume from: "
                           "latest.pt (truncated or not a checkpoint")
    assert "To restart the run from step 0, delete" in line


def test_debug_shows_the_traceback():
    with pytest.raises(ConfigError, match="unknown key 'trian'"):
        main(["--debug", "train", "demo", "--set", "trian.steps=3"])


def test_other_errors_keep_their_traceback(monkeypatch):
    import nriqa.train.cli as tcli

    def boom(argv):
        raise RuntimeError("a bug, not a user error")

    monkeypatch.setattr(tcli, "main", boom)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["train", "demo"])


def test_weights_missing_and_layout_errors_are_user_errors(capsys, monkeypatch):
    """``WeightsMissingError`` and ``LayoutError`` (both FileNotFoundError) are caught like nriqa's own."""
    import nriqa.train.cli as tcli
    from nriqa.quality import WeightsMissingError

    def missing(argv):
        raise WeightsMissingError("quality measure 'x' needs weight files that are not on disk:\n"
                                  "  - a.pth  ->  put it at /w/a.pth\n"
                                  "Fetch them explicitly with:  nriqa weights fetch x")

    monkeypatch.setattr(tcli, "main", missing)
    assert _error_line(capsys, ["train", "demo"]) == (
        "nriqa train: error: quality measure 'x' needs weight files that are not on disk: a.pth -> put it at "
        "/w/a.pth; Fetch them explicitly with: nriqa weights fetch x")


def test_as_a_process_no_traceback_unless_debug(tmp_path):
    env = {**os.environ, "NRIQA_RUNS": str(tmp_path), "PYTHONPATH": str(REPO)}
    env.pop("NRIQA_DEBUG", None)
    cmd = [sys.executable, "-m", "nriqa", "train", "demo", "--set", "trian.steps=3"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == ("nriqa train: error: override trian.steps=3: unknown key 'trian' in profile 'demo'; "
                          "did you mean 'train'?\n")
    out = subprocess.run(cmd[:3] + ["--debug"] + cmd[3:], capture_output=True, text=True, env=env, cwd=REPO,
                         check=False)
    assert out.returncode == 1 and "Traceback" in out.stderr and "ConfigError" in out.stderr
