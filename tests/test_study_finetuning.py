"""nriqa.study.finetuning (notebook 02). The first paper's design ("every model on every dataset"):
the fine-tuning grid trained on every model of ``finetune.models``, scored on every test set of
``data.eval_sets``, and the loss term x (model, dataset) gain table checked against a hand computation
from the scores; the one-model gain table and its sentence."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from doubles import toy_scores

from nriqa.study import finetuning, runs
from nriqa.study import judging as evaluation
from nriqa.viz import plots

MODELS = ["basicvsrpp", "vrt"]
PANEL = ["psnr", "brisque"]  # one measure of each direction (psnr higher = better, brisque lower = better)
HIGHER_BETTER = {"psnr": True, "brisque": False}


def _tiny(run_root: str) -> dict:
    """smoke cut further: two tiny models, one extra term, one seed, 2-step runs, two embedded test sets."""
    return runs.profile("smoke", {
        "models": MODELS, "finetune.models": MODELS, "seeds": [0], "workers": 1, "panel": PANEL,
        "train.steps": 2, "train.schedule.periods": [2], "train.log_every": 1, "train.ckpt_every": 2,
        "finetune.steps": 2, "finetune.schedule.periods": [2], "finetune.fidelity_only": False,
        "finetune.extra_terms": {"niqe": None, "cnniqa@embedded-a": None, "gmsd": 0.5}, "finetune.combos": [],
        "data.num_frames": 2, "data.batch_size": 1, "data.test_max_frames": 2, "data.test_max_side": 16,
        "data.eval_sets": [{"source": "embedded", "name": "one-clip", "test_max_clips": 1},
                           {"source": "embedded", "name": "two-clips", "test_max_clips": 2}],
    }, device="cpu", seed=0, run_root=run_root)


def _hand_table(scores: pd.DataFrame) -> pd.DataFrame:
    """The gain table computed from the tidy scores, step by step: mean over seeds and frames per
    (run, model, dataset, clip, measure); signed relative gain against the same model's baseline on
    the same clip; mean over clips and measures per (run, model, dataset); mean over the cells."""
    unit = scores.groupby(["run", "model", "dataset", "clip", "measure"], as_index=False)["score"].mean()
    base = unit[unit["run"] == "baseline"].drop(columns="run").rename(columns={"score": "base"})
    m = unit[unit["run"] != "baseline"].merge(base, on=["model", "dataset", "clip", "measure"])
    sign = m["measure"].map(lambda x: 1.0 if HIGHER_BETTER[x] else -1.0)
    m["gain"] = sign * (m["score"] - m["base"]) / m["base"].abs()
    cells = m.groupby(["run", "model", "dataset"])["gain"].mean()
    out = pd.DataFrame({f"{mo} / {d}": cells.xs((mo, d), level=("model", "dataset"))
                        for mo in MODELS for d in ("one-clip", "two-clips")})
    out["mean"] = out.mean(axis=1)
    return out


def test_the_grid_is_trained_on_every_model_and_tabled_per_model_and_dataset(tmp_path):
    cfg = _tiny(str(tmp_path))
    assert runs.finetune_models(cfg) == MODELS and finetuning.several_cells(cfg)
    by_model = runs.model_finetune_runs(cfg, progress=False)
    assert list(by_model) == MODELS
    for model, arms in by_model.items():
        assert list(arms) == ["baseline", "gmsd"] and list(arms["gmsd"]) == [0]
        assert arms["baseline"][0].name.startswith(f"baseline-{model}-s0-")
        assert arms["gmsd"][0].name.startswith(f"ft-{model}-gmsdx0.5-s0-")
        assert runs.run_is_done(arms["gmsd"][0])

    sets = evaluation.test_sets(cfg)
    assert {k: len(v) for k, v in sets.items()} == {"one-clip": 1, "two-clips": 2}
    scores = finetuning.grid_scores(cfg, by_model)
    assert set(scores["model"]) == set(MODELS) and set(scores["dataset"]) == set(sets)
    assert set(scores["measure"]) == set(PANEL) and scores["score"].notna().all()
    # every run scored on every clip of every set: (1 + 2 clips) x 2 frames x 2 measures x 2 runs x 2 models
    assert len(scores) == 3 * 2 * 2 * 2 * 2

    table = finetuning.model_dataset_gains(scores)
    expected = _hand_table(scores)
    assert list(table.columns) == list(expected.columns)  # one column per model x dataset, then the mean
    assert list(table.index) == ["gmsd"]
    pd.testing.assert_frame_equal(table, expected.loc[table.index], check_names=False, rtol=1e-9, atol=0)
    assert np.isfinite(table.to_numpy()).all() and (table.abs().to_numpy() > 0).any()
    assert "gmsd" in finetuning.describe_model_dataset_gains(table)

    fig = plots.model_dataset_heatmap(table, title="tiny")
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == list(table.columns)
    assert fig.axes[0].get_xlabel() == "model / test set"


def test_gain_table_averages_seeds_then_cells_on_constructed_scores():
    rows = []
    for model in ("a", "b"):
        for run, psnr in (("baseline", 20.0), ("t", 22.0)):
            for seed, noise in ((0, -1.0), (1, 1.0)):
                score = psnr + (noise if run == "t" else 0) + (10 if model == "b" else 0)
                rows.append({"run": run, "seed": seed, "model": model, "dataset": "d", "clip": "c",
                             "frame": 0, "measure": "psnr", "score": score})
    table = finetuning.model_dataset_gains(pd.DataFrame(rows))
    # seeds average to psnr 22 (a: +2/20) and 32 (b: +2/30); the mean is over the two cells
    assert table.loc["t", "a / d"] == pytest.approx(0.1) and table.loc["t", "b / d"] == pytest.approx(2 / 30)
    assert table.loc["t", "mean"] == pytest.approx((0.1 + 2 / 30) / 2)


def test_the_models_and_test_sets_scored_do_not_change_what_a_run_trains(tmp_path):
    """Adding a model to finetune.models or a test set to data.eval_sets finds the runs trained before."""
    cfg = runs.profile("smoke", device="cpu", run_root=str(tmp_path))
    wider = _tiny(str(tmp_path)) | {"train": cfg["train"], "finetune": {**cfg["finetune"], "models": MODELS}}
    wider["data"] = {**cfg["data"], "eval_sets": [{"source": "embedded", "name": "x"}]}
    base = runs.baseline_config(cfg, "basicvsrpp")
    assert runs.run_dir(runs.baseline_config(wider, "basicvsrpp")) == runs.run_dir(base)
    terms = {"gmsd": 0.5}
    assert (runs.run_dir(runs.finetune_config(wider, "basicvsrpp", terms), runs.run_dir(base))
            == runs.run_dir(runs.finetune_config(cfg, "basicvsrpp", terms), runs.run_dir(base)))


# ----------------------------------------------------------------------------- gain table of one model

def test_gain_table_and_its_sentence():
    table = finetuning.gain_table(toy_scores())
    assert list(table.columns) == ["psnr", "niqe", "mean"] and set(table.index) == {"a", "b"}
    assert table.loc["a", "mean"] == pytest.approx(0.1625) and table.loc["a", "niqe"] == pytest.approx(0.225)
    assert finetuning.describe_gains(table) == "largest mean panel gain: a (+16.25 %); smallest: b (-10.00 %)"


def test_gains_sentence_says_held_out_gains_outliers_and_metric_hacking():
    """With the runs' own measures the sentence reports held-out gains (own measures excluded), names a
    mean one cell decides as an outlier, and flags a run whose own-measure gain dwarfs its held-out gain."""
    table = pd.DataFrame({"psnr": [0.01, -0.01, -0.02], "niqe": [0.02, -12.02, -0.01], "ssim": [0.0, 0.005, 0.0],
                          "dbcnn@embedded": [0.0, 0.0, 0.625]}, index=["a", "b", "dbcnn@embedded"])
    table["mean"] = table.mean(axis=1)
    own = {"a": ["psnr"], "b": ["ssim"], "dbcnn@embedded": ["dbcnn@embedded"]}
    held = finetuning.held_out_means(table, own)
    assert held["dbcnn@embedded"] == pytest.approx(-0.01) and table.loc["dbcnn@embedded", "mean"] > 0.14
    lines = finetuning.describe_gains(table, own).splitlines()
    assert lines[0] == ("largest held-out panel gain (own measures excluded): a (+0.67 %); smallest: b (-401.00 %, "
                        "an outlier: one cell, niqe at -1202.00 %; its other 2 average -0.5 %)")
    assert "dbcnn@embedded (own +62.50 %, held-out -1.00 %)" in lines[1]
    assert lines[1].startswith("flagged for metric hacking (own-measure gain above the held-out one by more than "
                               "10 points)")


def test_standardised_table_divides_each_change_by_the_fidelity_arms_seed_spread():
    rows = []
    for run, seed, value in [("baseline", 0, 10.0), ("fidelity-only", 0, 10.0), ("fidelity-only", 1, 12.0),
                             ("niqe", 0, 16.0), ("niqe", 1, 18.0)]:
        for clip in ("a", "b"):
            rows.append({"run": run, "seed": seed, "model": "m", "dataset": "d", "clip": clip, "frame": 0,
                         "measure": "psnr", "score": value, "higher_better": True})
    table = finetuning.standardised_table(pd.DataFrame(rows))
    # seed SD of the fidelity-only arm: sqrt(2) per clip; niqe's mean change: +7 -> 7 / sqrt(2) SD
    assert table.loc["niqe", "psnr"] == pytest.approx(7 / np.sqrt(2))
    assert table.loc["fidelity-only", "psnr"] == pytest.approx(1 / np.sqrt(2))
    assert list(table.columns) == ["psnr", "median"] and table.loc["niqe", "median"] == table.loc["niqe", "psnr"]
    from nriqa.viz.plots import matrix_heatmap

    fig = matrix_heatmap(table, unit="SD")
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert "+4.9" in texts and "+0.7" in texts                          # drawn as SD, not as percent
