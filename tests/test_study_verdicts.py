"""nriqa.study.verdicts: per-seed artifact values and changes, gains per seed."""
from __future__ import annotations

import pandas as pd
import pytest
import torch

from nriqa.study import verdicts


class _Noisy(torch.nn.Module):
    """A 'generator' that upsamples nearest x4 and adds chroma noise of a fixed amplitude."""

    def __init__(self, amp: float, seed: int):
        super().__init__()
        self.amp, self.seed = amp, seed

    def forward(self, lr):
        up = torch.nn.functional.interpolate(lr[0], scale_factor=4, mode="nearest")[None]
        g = torch.Generator().manual_seed(self.seed)
        noise = torch.randn(up.shape, generator=g) * self.amp
        return up + noise * torch.tensor([1.0, -1.0, 1.0]).view(1, 1, 3, 1, 1)


def test_artifact_values_score_every_seed_and_clip(monkeypatch, tmp_path):
    ramp = torch.linspace(0.2, 0.8, 32)
    smooth = torch.stack([ramp.view(1, -1).expand(32, 32), ramp.view(-1, 1).expand(32, 32),
                          torch.full((32, 32), 0.5)])                      # (3,32,32): no fine detail
    hr = [(smooth * s).expand(1, 2, 3, 32, 32).clone() for s in (1.0, 0.9)]
    clips = [{"name": f"c{i}", "lr": h[:, :, :, ::4, ::4], "hr": h} for i, h in enumerate(hr)]
    amps = {"base": 0.0, "n0": 0.2, "n1": 0.25}
    monkeypatch.setattr(verdicts, "test_set", lambda cfg: clips)
    seen = []

    def outputs(folder, test_set, *, cache_dir, device):  # the eval-cache's frames of that folder
        seen.append((cache_dir, device))
        with torch.no_grad():
            return {c["name"]: _Noisy(amps[folder.name], 1)(c["lr"])[0].clamp(0, 1) for c in test_set}

    monkeypatch.setattr(verdicts, "generator_outputs", outputs)
    runs = {"baseline": {0: tmp_path / "base"}, "noisy": {0: tmp_path / "n0", 1: tmp_path / "n1"}}
    cfg = {"name": "demo", "run_root": str(tmp_path), "device": "cpu"}
    vals = verdicts.artifact_values(cfg, runs, ["chroma_noise", "blur"])
    assert seen == [(tmp_path / "demo" / "eval-cache", "cpu")] * 3   # every folder's scored outputs
    assert list(vals.columns) == ["run", "seed", "clip", "measure", "value"] and len(vals) == 3 * 2 * 2
    ch = verdicts.artifact_changes(vals)
    assert set(ch["run"]) == {"noisy"} and len(ch) == 2 * 2 * 2
    chroma = ch[ch["measure"] == "chroma_noise"]["change"]
    assert (chroma > 0).all()                                        # the noisy arm adds coloured dots


def test_gains_keep_seeds_apart_and_skip_absent_measures():
    rows = [dict(run=r, seed=s, model="m", dataset="d", clip=c, frame=0, measure="psnr", score=v)
            for r, s, v in [("baseline", 0, 20.0), ("a", 0, 22.0), ("a", 1, 21.0)] for c in ("x", "y")]
    g = verdicts.gains(pd.DataFrame(rows), ["psnr", "ssim"])
    assert sorted(g[g["clip"] == "x"]["gain"]) == pytest.approx([0.05, 0.1])
    assert verdicts.gains(pd.DataFrame(rows), ["ssim"]) is None
