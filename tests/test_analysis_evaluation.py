"""evaluate() + relative_gain() + metric hacking with real frames, synthetic outputs and small
stand-in measures (the analysis must not need a trained model or downloaded weights); the run
folders' cached outputs (generator_outputs)."""
import time
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import skimage.data
import torch
import torch.nn.functional as F
from doubles import CountingUpscaler, random_clip, run_folder

from nriqa import quality
from nriqa.analysis import evaluate, generator_outputs, metric_hacking, relative_gain
from nriqa.analysis import evaluation as evaluate_mod
from nriqa.analysis.evaluation import measure_fingerprint, resolve_panel, source_fingerprint
from nriqa.config import load_profile
from nriqa.viz import save_figure
from nriqa.viz.plots import gain_heatmap


def clip_from(name: str, t: int = 3, size: int = 48) -> dict:
    a = torch.from_numpy(getattr(skimage.data, name)()).permute(2, 0, 1).float() / 255
    a = F.interpolate(a[None], size=(2 * size, 2 * size), mode="area")[0]
    hr = torch.stack([a[:, 4 * i:4 * i + size, 3 * i:3 * i + size] for i in range(t)])[None]
    lr = F.interpolate(hr[0], scale_factor=0.25, mode="area")[None]
    return {"name": name, "lr": lr, "hr": hr}


@pytest.fixture(scope="module")
def test_set():
    return [clip_from("astronaut"), clip_from("coffee")]


class PSNR(torch.nn.Module):
    card = SimpleNamespace(name="psnr", mode="FR", higher_better=True)
    calls = 0

    def forward(self, x, ref=None):
        PSNR.calls += 1
        mse = (x - ref).pow(2).mean((1, 2, 3)).clamp_min(1e-10)
        return -10 * torch.log10(mse)


class Sharpness(torch.nn.Module):  # NR, higher = more detail
    card = SimpleNamespace(name="sharp", mode="NR", higher_better=True)

    def forward(self, x, ref=None):
        assert ref is None
        return (x[..., 1:, :] - x[..., :-1, :]).abs().mean((1, 2, 3))


class Noise(torch.nn.Module):  # NR, lower = better: energy of the Laplacian
    card = SimpleNamespace(name="noise", mode="NR", higher_better=False)

    def forward(self, x, ref=None):
        lap = x[..., 1:-1, 1:-1] * 4 - x[..., 2:, 1:-1] - x[..., :-2, 1:-1] - x[..., 1:-1, 2:] - x[..., 1:-1, :-2]
        return lap.pow(2).mean((1, 2, 3))


FACTORY = {"psnr": PSNR, "sharp": Sharpness, "noise": Noise}


def create(name, device):
    if name == "needs-weights":
        raise FileNotFoundError("weights for needs-weights missing at /nowhere")
    return FACTORY[name]()


class Bicubic(torch.nn.Module):
    def __init__(self, noise=0.0):
        super().__init__()
        self.noise = torch.nn.Parameter(torch.tensor(noise), requires_grad=False)

    def forward(self, lr):
        b, t = lr.shape[:2]
        up = F.interpolate(lr.flatten(0, 1), scale_factor=4, mode="bicubic").clamp(0, 1)
        g = torch.Generator().manual_seed(0)
        up = up + self.noise * torch.randn(up.shape, generator=g)
        return up.view(b, t, *up.shape[1:])


def outputs_of(test_set, fn):
    return {c["name"]: fn(c) for c in test_set}


def test_tidy_table_and_directions(test_set):
    df = evaluate(Bicubic(), test_set, ["psnr", "sharp", "noise"], run="base", model="bicubic",
                  dataset="photos", create=create, progress=False)
    assert list(df.columns[:7]) == ["run", "model", "dataset", "clip", "frame", "measure", "score"]
    assert len(df) == 2 * 3 * 3
    assert set(df["measure"]) == {"psnr", "sharp", "noise"}
    assert df.groupby("measure")["higher_better"].first().to_dict() == {"noise": False, "psnr": True, "sharp": True}
    psnr = df[df.measure == "psnr"]["score"]
    assert (psnr > 15).all() and (psnr < 40).all()


def test_outputs_from_dict_and_png_folder_agree(test_set, tmp_path):
    import cv2

    out = outputs_of(test_set, lambda c: c["hr"][0] * 0.9)
    for name, v in out.items():
        d = tmp_path / "frames" / name
        d.mkdir(parents=True)
        for i, f in enumerate(v):
            img = (f.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)[:, :, ::-1]
            cv2.imwrite(str(d / f"{i:04d}.png"), img)
    a = evaluate(out, test_set, ["psnr"], run="r", model="m", dataset="d", create=create, progress=False)
    b = evaluate(tmp_path / "frames", test_set, ["psnr"], run="r", model="m", dataset="d", create=create,
                 progress=False)
    np.testing.assert_allclose(a["score"], b["score"], atol=0.05)  # 8-bit quantization only


def test_cache_reuses_and_invalidates(test_set, tmp_path):
    gen = Bicubic()
    kw = dict(run="base", model="bicubic", dataset="photos", cache_dir=tmp_path, create=create, progress=False)
    PSNR.calls = 0
    first = evaluate(gen, test_set, ["psnr", "sharp"], **kw)
    calls = PSNR.calls
    assert calls > 0 and len(list(tmp_path.glob("*.csv"))) == 2
    again = evaluate(gen, test_set, ["psnr", "sharp"], **kw)
    assert PSNR.calls == calls  # served from the cache
    pd.testing.assert_frame_equal(first.reset_index(drop=True), again.reset_index(drop=True), check_dtype=False)
    changed = Bicubic(noise=0.05)  # a "new checkpoint": different weights
    third = evaluate(changed, test_set, ["psnr", "sharp"], **kw)
    assert PSNR.calls > calls
    assert third[third.measure == "psnr"]["score"].mean() < first[first.measure == "psnr"]["score"].mean()
    assert len(list(tmp_path.glob("*.csv"))) == 2  # stale entries replaced, not accumulated


def _frames_folder(folder, test_set, factor):
    import cv2

    for c in test_set:
        d = folder / c["name"]
        d.mkdir(parents=True)
        for i, f in enumerate(c["hr"][0] * factor):
            cv2.imwrite(str(d / f"{i:04d}.png"), (f.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))


def test_cache_keeps_every_folder_of_one_label(test_set, tmp_path):
    """Seeds of one arm share a label: scoring one seed's folder must not evict another's entries."""
    seeds = [tmp_path / "s0", tmp_path / "s1"]
    for k, folder in enumerate(seeds):
        _frames_folder(folder, test_set, 0.9 - 0.1 * k)
    kw = dict(run="arm", model="m", dataset="d", cache_dir=tmp_path / "cache", create=create, progress=False)
    first = [evaluate(f, test_set, ["psnr"], **kw) for f in seeds]
    PSNR.calls = 0
    again = [evaluate(f, test_set, ["psnr"], **kw) for f in seeds]
    assert PSNR.calls == 0  # both seeds served from the cache
    assert len(list((tmp_path / "cache").glob("*.csv"))) == 2
    for a, b in zip(first, again):
        assert a["score"].tolist() == b["score"].tolist()  # bit for bit
    assert first[0]["score"].mean() != first[1]["score"].mean()
    other = evaluate(seeds[0], test_set, ["psnr"], **{**kw, "run": "another label"})
    assert PSNR.calls == 0 and set(other["run"]) == {"another label"}  # a folder is scored once, any label
    assert other["score"].tolist() == first[0]["score"].tolist()


def test_run_dir_cache_key_follows_checkpoint(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("model: basicvsrpp\n")
    ck = run / "checkpoints" / "latest.pt"
    ck.write_bytes(b"step100")
    a = source_fingerprint(run)
    time.sleep(0.01)
    ck.write_bytes(b"step200-longer")
    assert source_fingerprint(run) != a


def test_missing_weights_skipped_with_warning(test_set):
    with pytest.warns(UserWarning, match="needs-weights"):
        df = evaluate(Bicubic(), test_set, ["psnr", "needs-weights"], run="r", model="m", dataset="d",
                      create=create, progress=False)
    assert df.attrs["skipped"] == ["needs-weights"]
    assert set(df["measure"]) == {"psnr"}


def test_bad_inputs(test_set):
    with pytest.raises(ValueError, match="test_set"):
        evaluate(Bicubic(), [], ["psnr"], run="r", model="m", dataset="d", create=create)
    with pytest.raises(ValueError, match="run"):
        evaluate(Bicubic(), test_set, ["psnr"], run="", model="m", dataset="d", create=create)
    with pytest.raises(TypeError, match="generator_or_run_dir"):
        evaluate(42, test_set, ["psnr"], run="r", model="m", dataset="d", create=create)
    with pytest.raises(KeyError, match="coffee"):
        evaluate({"astronaut": test_set[0]["hr"][0]}, test_set, ["psnr"], run="r", model="m", dataset="d",
                 create=create, progress=False)


def test_panels_come_from_the_profiles():
    for profile in ("demo", "paper", "smoke"):
        assert resolve_panel(profile) == load_profile(profile)["panel"]
    assert {"lpips-vgg", "pieapp"} <= set(resolve_panel("paper"))
    assert resolve_panel("psnr, ssim") == ["psnr", "ssim"]
    with pytest.raises(ValueError, match="names no measure"):
        resolve_panel(" , ")


# ----------------------------------------------------------------------------- relative gain
@pytest.fixture(scope="module")
def panel_df(test_set):
    runs = {"base": lambda c: F.interpolate(c["lr"][0], scale_factor=4, mode="bicubic").clamp(0, 1),
            "sharper": lambda c: (0.5 * c["hr"][0] + 0.5 * F.interpolate(c["lr"][0], scale_factor=4,
                                                                        mode="bicubic")).clamp(0, 1),
            "noisy": lambda c: (c["hr"][0] + 0.08 * torch.randn(c["hr"][0].shape,
                                                               generator=torch.Generator().manual_seed(3))).clamp(0, 1)}
    return pd.concat([evaluate(outputs_of(test_set, fn), test_set, ["psnr", "sharp", "noise"], run=r,
                               model="m", dataset="photos", create=create, progress=False)
                      for r, fn in runs.items()], ignore_index=True)


def test_relative_gain_formula(panel_df):
    g = relative_gain(panel_df, "base", by=("measure",), level="clip")
    assert set(g["run"]) == {"sharper", "noisy"}
    # recompute by hand for one cell: lower-better "noise" of the noisy run
    unit = panel_df.groupby(["run", "clip", "measure"])["score"].mean()
    hand = np.mean([-(unit["noisy", c, "noise"] - unit["base", c, "noise"]) / abs(unit["base", c, "noise"])
                    for c in ("astronaut", "coffee")])
    got = g[(g.run == "noisy") & (g.measure == "noise")]["gain"].item()
    assert got == pytest.approx(hand)
    cell = g.set_index(["run", "measure"])["gain"]
    assert cell["sharper", "psnr"] > 0 and cell["sharper", "sharp"] > 0  # closer to GT, more detail
    assert cell["noisy", "noise"] < 0  # more noise = worse for a lower-better measure
    frame_level = relative_gain(panel_df, "base", level="frame")
    assert frame_level.shape == g.shape


def test_relative_gain_errors(panel_df):
    with pytest.raises(ValueError, match="baseline run 'nope'"):
        relative_gain(panel_df, "nope")
    with pytest.raises(ValueError, match="by names columns"):
        relative_gain(panel_df, "base", by=("measure", "loss"))


def test_metric_hacking_and_heatmap(tmp_path):
    gains = pd.DataFrame({"run": ["niqe"] * 3 + ["lpips"] * 3, "measure": ["niqe", "psnr", "ssim"] * 2,
                          "gain": [0.40, -0.05, -0.02, 0.03, 0.02, 0.04]})
    flags = metric_hacking(gains, {"niqe": "niqe", "lpips": "psnr"}, threshold=0.1).set_index("run")
    assert flags.loc["niqe", "flagged"] and not flags.loc["lpips", "flagged"]
    assert flags.loc["niqe", "excess"] == pytest.approx(0.40 - (-0.035))
    fig = gain_heatmap(gains, own={"niqe": "niqe"}, hacking_threshold=0.1)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["niqe", "psnr", "ssim", "held-out average"]
    texts = [t.get_text() for t in ax.texts]
    # the held-out average leaves the run's own measure out: niqe's row averages psnr and ssim only
    assert "+40" in texts and f"{100 * np.mean([-0.05, -0.02]):+.1f}".replace("-", "\u2212") in texts
    assert f"{100 * np.mean([0.03, 0.02, 0.04]):+.1f}" in texts  # lpips has no own measure: every column
    assert ax.patches and all(not p.get_hatch() and not p.get_fill() for p in ax.patches)  # outlined, not hatched
    assert any("metric hacking" in t.get_text() and "held-out average" in t.get_text() for t in fig.texts)
    lo, hi = ax.images[0].get_clim()
    assert lo == -hi  # centred on 0
    paths = save_figure(fig, "gain_heatmap_test", folder=tmp_path)
    assert [p.suffix for p in paths] == [".png", ".svg"] and all(p.stat().st_size > 1000 for p in paths)


# ----------------------------------------------------------------------------- with nriqa.quality
def test_with_real_quality_measures(test_set):
    out = outputs_of(test_set, lambda c: F.interpolate(c["lr"][0], scale_factor=4, mode="bicubic").clamp(0, 1))
    with pytest.warns(UserWarning, match="notrained@embedded"):
        df = evaluate(out, test_set, ["psnr", "ssim", "notrained@embedded"], run="bicubic", model="m",
                      dataset="photos", progress=False)
    assert df.attrs["skipped"] == ["notrained@embedded"]
    mine = df[df.measure == "psnr"]["score"].to_numpy()
    ref = [PSNR()(out[c["name"]][f:f + 1], c["hr"][0, f:f + 1]).item() for c in test_set for f in range(3)]
    np.testing.assert_allclose(np.sort(mine), np.sort(ref), rtol=1e-3)
    with pytest.raises(ValueError, match="unknown quality measure"):
        evaluate(out, test_set, ["psnr", "no-such-measure"], run="r", model="m", dataset="d")


def test_eval_frames_restrict_scoring(test_set):
    only_mid = [dict(c, eval_frames=[1]) for c in test_set]
    df = evaluate(Bicubic(), only_mid, ["psnr"], run="r", model="m", dataset="d", create=create, progress=False)
    full = evaluate(Bicubic(), test_set, ["psnr"], run="r", model="m", dataset="d", create=create, progress=False)
    assert list(df["frame"]) == [1, 1]
    np.testing.assert_allclose(df["score"], full[full.frame == 1]["score"], rtol=1e-6)


def test_relative_gain_levels_and_grouping(panel_df):
    per_clip = relative_gain(panel_df, "base", by=("measure", "clip"))
    assert set(per_clip["clip"]) == {"astronaut", "coffee"} and len(per_clip) == 2 * 2 * 3
    overall = relative_gain(panel_df, "base", by=("measure",))
    mean_of_clips = per_clip.groupby(["run", "measure"])["gain"].mean()
    np.testing.assert_allclose(overall.set_index(["run", "measure"])["gain"].sort_index(),
                               mean_of_clips.sort_index())
    with pytest.raises(ValueError, match="finer than level"):
        relative_gain(panel_df, "base", by=("measure", "clip"), level="dataset")


class ClipMean(torch.nn.Module):  # a "video" measure: one score per clip
    card = SimpleNamespace(name="clipmean", mode="NR", higher_better=True, video=True)

    def forward(self, x, ref=None):
        assert x.dim() == 5
        return x.mean((1, 2, 3, 4))


def test_video_measure_scores_whole_clip(test_set):
    df = evaluate(Bicubic(), test_set, ["clipmean"], run="r", model="m", dataset="d",
                  create=lambda n, d: ClipMean(), progress=False)
    assert len(df) == 6
    per_clip = df.groupby("clip")["score"].agg(["min", "max"])
    assert (per_clip["min"] == per_clip["max"]).all()


def test_measure_fingerprint_follows_weight_files(tmp_path, monkeypatch):
    monkeypatch.setenv("NRIQA_WEIGHTS", str(tmp_path))
    wf = quality.WeightFile("fake.pt", None, "", subdir="kit", root="nriqa")
    card = quality.Card(name="fakefp@embedded", mode="NR", higher_better=True, score_range=(0, 1),
                        differentiable=True, min_size=8, video=False, weights=(wf,))
    monkeypatch.setattr(quality, "card", lambda name: card)  # nothing registered globally
    a = measure_fingerprint("fakefp@embedded")
    (tmp_path / "kit").mkdir()
    (tmp_path / "kit" / "fake.pt").write_bytes(b"trained")
    b = measure_fingerprint("fakefp@embedded")
    assert a and b and a != b
    assert measure_fingerprint("fakefp@embedded") == b


# ----------------------------------------------------------------------------- a run folder's cached outputs
def test_outputs_recomputed_for_a_new_checkpoint_or_a_damaged_file(tmp_path, monkeypatch):
    clips = [random_clip("a", 0)]
    gen = CountingUpscaler(1.0)
    monkeypatch.setattr(evaluate_mod._Outputs, "_load_generator", lambda self: gen)
    rdir, cache = run_folder(tmp_path, "r"), tmp_path / "cache"
    first = generator_outputs(rdir, clips, cache_dir=cache)
    generator_outputs(rdir, clips, cache_dir=cache)
    assert gen.calls == 1
    (files,) = [list(cache.glob("outputs__*.pt"))]
    assert len(files) == 1
    files[0].write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="unreadable"):
        again = generator_outputs(rdir, clips, cache_dir=cache)
    assert gen.calls == 2 and torch.equal(again["a"], first["a"])
    (rdir / "checkpoints" / "latest.pt").write_bytes(b"a newer checkpoint")
    generator_outputs(rdir, clips, cache_dir=cache)
    assert gen.calls == 3
    assert len(list(cache.glob("outputs__*.pt"))) == 1  # the older checkpoint's file is replaced
    generator_outputs(rdir, clips)  # no cache: always runs
    assert gen.calls == 4
