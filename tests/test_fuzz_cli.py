"""Fuzzing the command line's values (hypothesis): ``nriqa train --set KEY=VALUE`` over every setting
the schema lists and ``nriqa run -p NAME VALUE`` over every notebook parameter. Each generated value
either reaches the work (a stub stands in for training and for the notebooks) or fails in under a
second with exit status 2 and one line on stderr naming it: never a traceback, never a late failure."""
from __future__ import annotations

import string
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nriqa import __main__ as cli
from nriqa.config import SCHEMA

FUZZ = dict(deadline=None, derandomize=True, database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
VALUES = st.sampled_from(["0", "-1", "1", "3", "0.5", "-0.5", "1e-3", "nan", "inf", "true", "null", "abc", "[]",
                          "[1, 2]", "{a: 1}", "{", "'x'", "2024-01-01", "1_000", "", "999999999999"]) | \
    st.text(alphabet=string.printable, max_size=8)
PARAMETERS = ["PROFILE", "DEVICE", "RUN_ROOT", "SEED", "MODELS", "HACK_THRESHOLD"]


def _one_line_or_reached(capsys, reached: list, argv: list[str]) -> None:
    t0 = time.perf_counter()
    try:
        rc = cli.main(argv)
    except SystemExit as exit_:   # argparse's usage errors
        rc = exit_.code
    seconds = time.perf_counter() - t0
    err = capsys.readouterr().err
    if reached:
        return
    assert rc == 2, (argv, rc, err)
    assert seconds < 1.0, (argv, seconds)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, (argv, err)


@pytest.fixture
def stub_training(monkeypatch):
    import nriqa.train.cli as train_cli

    reached: list = []
    monkeypatch.setattr(train_cli, "train", lambda cfg, run_dir, **kw: reached.append(cfg) or run_dir)
    return reached


@settings(max_examples=120, **FUZZ)
@given(key=st.sampled_from(sorted(SCHEMA)), value=VALUES)
def test_set_values_reach_training_or_fail_in_one_line(key, value, stub_training, capsys, tmp_path_factory):
    stub_training.clear()
    run_dir = tmp_path_factory.mktemp("run")
    _one_line_or_reached(capsys, stub_training,
                         ["train", "smoke", "--set", f"{key}={value}", "--run-dir", str(run_dir)])


@pytest.fixture
def stub_notebooks(monkeypatch):
    import nriqa.runner as runner

    reached: list = []
    known = {"PROFILE": {"inferred_type_name": "Optional[str]"}, "DEVICE": {"inferred_type_name": "str"},
             "RUN_ROOT": {"inferred_type_name": "Optional[str]"}, "SEED": {"inferred_type_name": "int"},
             "MODELS": {"inferred_type_name": "Optional[list]"}, "HACK_THRESHOLD": {"inferred_type_name": "float"}}
    monkeypatch.setattr(runner, "notebook_parameters", lambda book: known)   # what papermill reads (tested elsewhere)
    monkeypatch.setattr(runner, "run_notebooks", lambda *a, **kw: reached.append(kw) or [])
    monkeypatch.setattr(runner, "render_findings_into_readme", lambda *a, **kw: None)
    return reached


@settings(max_examples=80, **FUZZ)
@given(name=st.sampled_from(PARAMETERS + ["SEEED", "seed"]), value=VALUES)
def test_p_values_reach_the_notebooks_or_fail_in_one_line(name, value, stub_notebooks, capsys):
    stub_notebooks.clear()
    _one_line_or_reached(capsys, stub_notebooks, ["run", "--profile", "smoke", "-p", name, value])


def test_the_stubs_are_reached_by_good_values(stub_training, stub_notebooks, capsys, tmp_path):
    """The positive control: valid values do reach the work (so the fuzz tests above test something)."""
    assert cli.main(["train", "smoke", "--set", "train.steps=3", "--run-dir", str(tmp_path)]) == 0 and stub_training
    assert cli.main(["run", "--profile", "smoke", "-p", "SEED", "3"]) == 0 and stub_notebooks
    capsys.readouterr()
