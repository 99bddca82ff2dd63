"""Notebook 03's temporal judge: ColorVideoVDP next to the flicker detector, per arm, from the cached panel
scores when the panel has ``cvvdp``, else computed from the runs' outputs (the same numbers)."""
from __future__ import annotations

import pandas as pd
import pytest
import torch

from nriqa import quality as q
from nriqa.study import artifact_sources as study


@pytest.fixture(scope="module")
def toy():
    """Outputs of a baseline and two arms on two 3-frame 24x24 clips, and their artifact table."""
    import skimage.data

    photo = torch.from_numpy(skimage.data.coffee()).permute(2, 0, 1).float() / 255
    gt = {f"clip{c}": torch.stack([photo[:, 60 + 30 * c:84 + 30 * c, 100 + t:124 + t] for t in range(3)])
          for c in range(2)}
    g = torch.Generator().manual_seed(0)

    def noisy(sigma):
        return {k: (v + sigma * torch.randn(v.shape, generator=g)).clamp(0, 1) for k, v in gt.items()}

    outputs = {"ground truth": gt, "noisy": noisy(0.08), "baseline": noisy(0.02), "calm": noisy(0.01)}
    artifacts = pd.DataFrame({"blur": [0.1, 0.2, 0.3], "flicker": [0.30, 0.05, 0.02]},
                             index=["noisy", "baseline", "calm"])
    return outputs, artifacts


def panel_scores(outputs, values: dict[str, float], seeds=(0, 1)) -> pd.DataFrame:
    """Tidy panel rows of ``cvvdp`` (every frame of a clip carries its clip's score) and of psnr; the
    second seed scores 0, so only the first seed's rows can give ``values``."""
    rows = []
    for run, clips in outputs.items():
        if run == "ground truth":
            continue
        for seed in seeds:
            for clip, frames in clips.items():
                for f in range(frames.shape[0]):
                    for measure, v in (("cvvdp", values.get(run, 0.0) if seed == seeds[0] else 0.0), ("psnr", 30.0)):
                        rows.append({"run": run, "seed": seed, "model": "m", "dataset": "d", "clip": clip,
                                     "frame": f, "measure": measure, "score": v, "higher_better": True})
    return pd.DataFrame(rows)


def test_computed_when_the_panel_lacks_the_judge(toy):
    outputs, artifacts = toy
    t = study.temporal_judge_table(outputs, artifacts, panel_scores(outputs, {}, seeds=(0,)).query("measure == 'psnr'"))
    assert t.attrs["source"] == "computed" and "not in the profile's panel" in study.temporal_judge_note(t)
    assert list(t.index) == ["baseline", "noisy", "calm"]
    assert list(t.columns) == ["jod", "jod_lost", "flicker", "flicker_added"]
    m = q.create("cvvdp")
    gt = outputs["ground truth"]
    for run in t.index:
        want = sum(float(m(fr[None], gt[c][None])) for c, fr in outputs[run].items()) / len(gt)
        assert t.loc[run, "jod"] == pytest.approx(want, abs=1e-6)
    assert t.loc["baseline", "jod_lost"] == 0 and t.loc["baseline", "flicker_added"] == 0
    assert t.loc["noisy", "jod_lost"] > 0 > t.loc["calm", "jod_lost"]      # more noise: more JOD lost
    assert t.loc["noisy", "flicker_added"] == pytest.approx(0.25)
    assert (t["jod"] < 10).all()


def test_read_from_the_panel_first_seed_when_it_has_the_judge(toy):
    outputs, artifacts = toy
    values = {"baseline": 9.5, "noisy": 8.0, "calm": 9.75}
    t = study.temporal_judge_table(outputs, artifacts, panel_scores(outputs, values))
    assert t.attrs["source"] == "panel" and "cached" in study.temporal_judge_note(t)
    assert t["jod"].to_dict() == values
    assert t["jod_lost"].to_dict() == {"baseline": 0.0, "noisy": 1.5, "calm": -0.25}
    # an arm the cached scores lack: computed for all, not half from each source
    partial = panel_scores({k: v for k, v in outputs.items() if k != "calm"}, values)
    assert study.temporal_judge_table(outputs, artifacts, partial).attrs["source"] == "computed"


def test_without_a_baseline_the_changes_are_nan(toy):
    outputs, artifacts = toy
    values = {"baseline": 9.5, "noisy": 8.0, "calm": 9.75}
    t = study.temporal_judge_table(outputs, artifacts.drop(index="baseline"), panel_scores(outputs, values))
    assert list(t.index) == ["noisy", "calm"] and t["jod_lost"].isna().all() and t["flicker_added"].isna().all()
    study.temporal_judge_figure(t)  # still draws (bars at 0, labelled n/a)


def test_the_figure_has_one_bar_per_arm_in_each_panel(toy, tmp_path):
    from nriqa.viz import save_figure

    outputs, artifacts = toy
    values = {"baseline": 9.5, "noisy": 8.0, "calm": 9.75}
    t = study.temporal_judge_table(outputs, artifacts, panel_scores(outputs, values))
    fig = study.temporal_judge_figure(t, title="toy")
    left, right = fig.axes
    assert len(left.patches) == len(right.patches) == 2                    # the baseline has no bar
    assert [p.get_width() for p in left.patches] == pytest.approx([1.5, -0.25])
    assert [p.get_width() for p in right.patches] == pytest.approx([0.25, -0.03])
    paths = save_figure(fig, "03_cvvdp_temporal", folder=tmp_path, show=False)
    assert all(p.stat().st_size > 0 for p in paths) and fig.text_sizes["min_pt"] >= 8
