"""nriqa.study.judging: the generator runs once per run folder across evaluate_runs + run_outputs
(outputs and scores are cached)."""

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from doubles import CountingUpscaler, random_clip, run_folder, toy_profile, toy_scores

from nriqa.analysis import evaluation as evaluate_mod
from nriqa.study import artifact_sources as artifacts
from nriqa.study import judging as study_eval


def test_each_generator_runs_once_across_evaluate_and_run_outputs(tmp_path, monkeypatch):
    clips = [random_clip("a", 0), random_clip("b", 1)]
    gens = {"baseline": CountingUpscaler(1.0), "dim": CountingUpscaler(0.8)}
    loads = []

    def load(self):  # like the real one: loads once per _Outputs, then keeps it
        if self.generator is None:
            loads.append(self._run_dir.name)
            self.generator = gens[self._run_dir.name]
        return self.generator

    monkeypatch.setattr(evaluate_mod._Outputs, "_load_generator", load)
    monkeypatch.setattr(study_eval, "test_set", lambda cfg: clips)
    cfg = {"name": "unit", "run_root": str(tmp_path / "runs"), "device": "cpu", "panel": ["psnr"],
           "data": {"source": "embedded"}}
    runs = {k: run_folder(tmp_path, k) for k in gens}

    scores = study_eval.evaluate_runs(cfg, runs, model="stub")
    assert {k: g.calls for k, g in gens.items()} == {"baseline": 2, "dim": 2}  # one forward per clip
    outs = study_eval.run_outputs(cfg, runs)
    assert {k: g.calls for k, g in gens.items()} == {"baseline": 2, "dim": 2}  # read from the cache
    assert sorted(loads) == ["baseline", "dim"]
    for k, g in gens.items():  # the cached frames are exactly what the generator gives
        for c in clips:
            want = (g.gain * F.interpolate(c["lr"][0], scale_factor=4, mode="bicubic")).clamp(0, 1)
            torch.testing.assert_close(outs[k][c["name"]], want, rtol=0, atol=0)
    assert set(outs) == {"ground truth", "baseline", "dim"}
    assert len(scores) == 2 * 2 * 2  # runs x clips x frames, one measure
    study_eval.evaluate_runs(cfg, runs, model="stub")  # scores cached too: still no forward
    assert sum(g.calls for g in gens.values()) == 4


def test_mean_gain_averages_signed_relative_gains_over_measures():
    gains = study_eval.mean_gain(toy_scores())
    # a: psnr +0.1 on both clips; niqe (lower better) +0.2 and +0.25 -> (0.1 + 0.225) / 2
    assert set(gains) == {"a", "b"}
    assert gains["a"] == pytest.approx(0.1625)
    assert gains["b"] == pytest.approx(-0.1)
    assert study_eval.mean_gain(toy_scores(), exclude={"a": ["niqe"]})["a"] == pytest.approx(0.1)
    assert study_eval.mean_gain(toy_scores(), baseline="a")["baseline"] < 0


def test_fr_gain_judges_by_full_reference_measures_only():
    assert study_eval.fr_measures(["niqe", "psnr", "ssim"]) == ["psnr", "ssim"]
    fr = study_eval.fr_gain(toy_scores(), baseline="baseline")
    assert fr["a"] == pytest.approx(0.1) and fr["b"] == pytest.approx(-0.1)


def test_save_table_writes_under_the_profile(tmp_path):
    cfg = toy_profile(run_root=str(tmp_path))
    path = study_eval.save_table(pd.DataFrame({"x": [1, 2]}), cfg, "t")
    assert path == tmp_path / "toy" / "tables" / "t.csv"
    assert pd.read_csv(path, index_col=0)["x"].tolist() == [1, 2]
    assert study_eval.dataset_label({"data": {}}) == "embedded-test"
    assert study_eval.dataset_label({"data": {"source": "reds"}}) == "reds-test"


def test_artifact_table_is_zero_for_ground_truth_and_worst_clip_finds_the_noisy_clip():
    g = torch.Generator().manual_seed(0)
    gt = {"c1": torch.rand(2, 3, 32, 32, generator=g), "c2": torch.rand(2, 3, 32, 32, generator=g)}
    noisy = {"c1": gt["c1"], "c2": (gt["c2"] + 0.3 * torch.randn(2, 3, 32, 32, generator=g)).clamp(0, 1)}
    outputs = {"ground truth": gt, "copy": dict(gt), "noisy": noisy}
    table = study_eval.artifact_table(outputs)
    assert list(table.columns) == list(study_eval.ARTIFACTS) and list(table.index) == ["copy", "noisy"]
    assert table.loc["copy"].abs().max() < 1e-6
    assert table.loc["noisy", "chroma_noise"] > table.loc["copy", "chroma_noise"]
    assert artifacts.worst_clip(outputs, "noisy", "chroma_noise") == "c2"


def test_evaluate_runs_takes_plain_and_seeded_runs(monkeypatch, tmp_path):
    def fake_evaluate(rdir, clips, panel, *, run, model, dataset, **_):
        return pd.DataFrame({"run": [run], "model": [model], "dataset": [dataset], "clip": ["c"], "frame": [0],
                             "measure": ["psnr"], "score": [float(len(str(rdir)))]})

    monkeypatch.setattr(study_eval, "evaluate", fake_evaluate)
    monkeypatch.setattr(study_eval, "test_set", lambda cfg: [])
    base = tmp_path / "b"
    base.mkdir()
    (base / "config.yaml").write_text("seed: 7\n")
    cfg = toy_profile(run_root=str(tmp_path), panel=["psnr"], device="cpu", data={})
    df = study_eval.evaluate_runs(cfg, {"baseline": base, "x": {0: tmp_path / "x0", 1: tmp_path / "x11"}}, model="m")
    assert list(df.columns) == ["run", "seed", "model", "dataset", "clip", "frame", "measure", "score"]
    assert list(zip(df["run"], df["seed"])) == [("baseline", 7), ("x", 0), ("x", 1)]
    means = study_eval.seed_mean(df)
    assert "seed" not in means and means.set_index("run").loc["x", "score"] == pytest.approx(df["score"][1:].mean())
    assert list(zip(*[study_eval.first_seed(df)[c] for c in ("run", "seed")])) == [("baseline", 7), ("x", 0)]
