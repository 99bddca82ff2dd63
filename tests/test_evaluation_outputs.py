"""The generator runs once per run folder across evaluate + run_outputs: outputs are cached."""
import pytest
import torch
import torch.nn.functional as F

from nriqa.analysis import evaluation as evaluate_mod
from nriqa.analysis import generator_outputs
from nriqa.study import judging as study_eval


class CountingUpscaler(torch.nn.Module):
    """Bicubic x4 with a brightness ``gain``; counts its forward calls."""

    def __init__(self, gain: float):
        super().__init__()
        self.gain, self.calls = gain, 0

    def forward(self, lr):
        self.calls += 1
        b, t = lr.shape[:2]
        up = F.interpolate(lr.flatten(0, 1), scale_factor=4, mode="bicubic")
        return (self.gain * up).clamp(0, 1).view(b, t, 3, *up.shape[-2:])


def clip(name, seed):
    g = torch.Generator().manual_seed(seed)
    hr = torch.rand(1, 2, 3, 32, 32, generator=g)
    return {"name": name, "lr": F.avg_pool2d(hr[0], 4)[None], "hr": hr}


def run_folder(root, name, payload=b"x"):
    d = root / name
    (d / "checkpoints").mkdir(parents=True)
    (d / "config.yaml").write_text("model: stub\n")
    (d / "checkpoints" / "latest.pt").write_bytes(payload)
    return d


def test_each_generator_runs_once_across_evaluate_and_run_outputs(tmp_path, monkeypatch):
    clips = [clip("a", 0), clip("b", 1)]
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


def test_outputs_recomputed_for_a_new_checkpoint_or_a_damaged_file(tmp_path, monkeypatch):
    clips = [clip("a", 0)]
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
