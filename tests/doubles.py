"""Test doubles shared by several test files (a plain module: ``from doubles import ...``).

Trainer doubles (``ToyVSR``, ``ToySampler``, ``ToyObjective``, ``ToyDiscriminator``, ``Crash``,
``toy_cfg``): tiny stand-ins for the trainer's own mechanics tests (resume, NaN guard, EMA, DDP,
balancing). Only the trainer's bookkeeping is under test with these; tests/test_train_real.py runs
the real generator, sampler and objective. This module holds no tests.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ToyVSR(nn.Module):
    """(B,T,3,h,w) -> (B,T,3,4h,4w): nearest upsampling plus a learned residual (optional dropout)."""

    def __init__(self, width: int = 8, dropout: float = 0.0):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Conv2d(width, 3 * 16, 3, padding=1), nn.PixelShuffle(4))
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        b, t = lr.shape[:2]
        x = lr.flatten(0, 1)
        y = F.interpolate(x, scale_factor=4, mode="nearest") + 0.1 * self.body(x)
        self.calls += 1
        return y.view(b, t, *y.shape[1:])


class ToySampler:
    """Deterministic in (seed, step): the same step always gives the same batch."""

    def __init__(self, batch_size: int = 4, num_frames: int = 2, lr_patch: int = 6, seed: int = 0):
        self.batch_size, self.num_frames, self.lr_patch, self.seed = batch_size, num_frames, lr_patch, seed

    def batch(self, step: int) -> dict:
        g = torch.Generator().manual_seed(self.seed * 100_003 + step)
        hr = torch.rand(self.batch_size, self.num_frames, 3, 4 * self.lr_patch, 4 * self.lr_patch, generator=g)
        lr = F.avg_pool2d(hr.flatten(0, 1), 4).view(self.batch_size, self.num_frames, 3, self.lr_patch, self.lr_patch)
        return {"lr": lr, "hr": hr}


class Crash(Exception):
    """Simulates a killed process in the middle of a run."""


class ToyObjective:
    """Charbonnier plus an optional 'bright' term (mean darkness of the output, a stand-in for an NR term):
    a ``nriqa.losses.TrainingObjective``.

    ``nan_steps``: calls of :meth:`terms` whose loss is NaN; ``nan_grad_steps``: calls whose loss is
    finite but whose gradient is NaN; ``crash_at``: the call that raises :class:`Crash`.
    """

    losses = None  # no unchecked term modules: the trainer calls terms() at every micro-batch (counted above)

    def __init__(self, spec: dict | None = None, *, nan_steps=(), nan_grad_steps=(), crash_at=None,
                 adversarial=None):
        spec = dict(spec or {"charbonnier": 1.0})
        self.balancing = spec.pop("weights", None)
        self.weights = {k: float(v) for k, v in spec.items()}
        self.nan_steps, self.nan_grad_steps, self.crash_at = set(nan_steps), set(nan_grad_steps), crash_at
        self.adversarial = adversarial
        self.calls = 0

    def terms(self, pred: torch.Tensor, target: torch.Tensor) -> dict:
        call, self.calls = self.calls, self.calls + 1
        if call == self.crash_at:
            raise Crash(f"simulated crash at call {call}")
        out = {}
        if "charbonnier" in self.weights:
            out["charbonnier"] = torch.sqrt((pred - target) ** 2 + 1e-6).mean()
        if "bright" in self.weights:
            out["bright"] = (1.0 - pred.clamp(0, 1)).mean()
        first = next(iter(out))
        if call in self.nan_steps:
            out[first] = out[first] * float("nan")
        if call in self.nan_grad_steps:  # value 0, gradient NaN (sqrt at 0)
            out[first] = out[first] + torch.sqrt((pred - pred.detach()).abs().sum())
        return out

    def __call__(self, pred, target):
        terms = self.terms(pred, target)
        return sum(self.weights[k] * v for k, v in terms.items()), terms


class ToyDiscriminator(nn.Module):
    """(N,3,H,W) -> patch logits (N,1,H/4,W/4)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 8, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
                                 nn.Conv2d(8, 1, 4, stride=2, padding=1))

    def forward(self, x):
        return self.net(x)


def toy_cfg(**train) -> dict:
    """A resolved-profile-shaped config for the doubles."""
    t = {"steps": 8, "objective": {"charbonnier": 1.0},
         "optimizer": {"name": "adam", "lr": 1e-3, "betas": [0.9, 0.99]},
         "schedule": {"name": "cosine_restarts", "periods": [4, 4], "restart_weights": [1.0, 0.5],
                      "eta_min": 1e-5, "warmup_steps": 2},
         "grad_clip": 1.0, "ema_decay": 0.9, "log_every": 2, "gradnorm_every": 3, "ckpt_every": 4,
         "keep_last": 2, "max_nonfinite": 3}
    t.update(train)
    return {"name": "toy", "seed": 0, "device": "cpu", "model": "toy", "data": {}, "train": t}


# ----------------------------------------------------------------------------- files on disk, profiles, scores
# (helpers of the data, quality and study tests)

def write_frames(folder, names, h: int, w: int, seed: int = 0) -> None:
    """Random 8-bit RGB frames ``names`` of ``h`` x ``w`` in ``folder`` (written with cv2)."""
    import cv2
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for n in names:
        cv2.imwrite(str(folder / n), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def flat_image(path, value: int) -> None:
    """A 40 x 48 image of one grey ``value`` at ``path`` (its folders created)."""
    import cv2
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((40, 48, 3), value, np.uint8))


def save_torch(obj, path) -> None:
    """``torch.save(obj, path)``, the folders created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path)


#: measures whose model files ship inside installed wheels: measure -> (distribution, pip command on its card)
WHEEL_MEASURES = {
    "niqe": ("iqa-torch", "pip install iqa-torch==1.2.1"),
    "brisque": ("brisque", "pip install brisque==0.2.0"),
    "st-lpips-alex": ("stlpips-pytorch", "pip install stlpips-pytorch==0.0.2"),
    "st-lpips-vgg": ("stlpips-pytorch", "pip install stlpips-pytorch==0.0.2"),
}


def toy_profile(**extra) -> dict:
    """A hand-written study profile (no schema check): run root, seed, train / finetune /
    adversarial sections; ``extra`` keys replace or add top-level keys."""
    cfg = {"name": "toy", "run_root": "/tmp/toy-runs", "seed": 3,
           "train": {"steps": 100, "optimizer": {"lr": 1e-3}, "ema_decay": 0.999},
           "finetune": {"model": "basicvsrpp", "steps": 10, "optimizer": {"lr": 1e-4},
                        "extra_terms": {"niqe": 0.02, "gmsd": None, "lpips": 1.0},
                        "combos": [{"cnniqa@embedded": 0.2, "lpips": 1.0}]},
           "adversarial": {"fidelity": {"charbonnier": 1.0, "dists": 0.5}, "gan_loss": "hinge",
                           "steps": 7, "d_lr": 2e-4, "gan_weights": [0.05, 0.001, 0.01]}}
    cfg.update(extra)
    return cfg


def toy_scores():
    """Tidy scores: psnr (FR, higher better) and niqe (NR, lower better) of runs baseline / a / b on
    two clips."""
    import pandas as pd

    values = {  # run -> measure -> clip -> per-frame scores
        "baseline": {"psnr": {"c1": [20, 20], "c2": [30]}, "niqe": {"c1": [5, 5], "c2": [4]}},
        "a": {"psnr": {"c1": [21, 23], "c2": [33]}, "niqe": {"c1": [4, 4], "c2": [3]}},
        "b": {"psnr": {"c1": [18, 18], "c2": [27]}, "niqe": {"c1": [6, 6], "c2": [4]}},
    }
    rows = [{"run": run, "model": "m", "dataset": "d", "clip": clip, "frame": i, "measure": measure, "score": s}
            for run, ms in values.items() for measure, clips in ms.items()
            for clip, frames in clips.items() for i, s in enumerate(frames)]
    return pd.DataFrame(rows)


def gt_only_vid4(root):
    """A Vid4 folder with two GT frames per clip of 30 x 42 px (not multiples of 4) and no LR folder."""
    from nriqa.data import Vid4

    for i, clip in enumerate(Vid4.CLIPS):
        write_frames(root / "GT" / clip, [f"{k:02d}.png" for k in range(2)], 30, 42, i)
    return root


class MeanMeasure(nn.Module):
    """An NR quality measure for assessment tests: the mean pixel value of each image."""

    def __init__(self, name: str, *, higher_better: bool):
        super().__init__()
        from types import SimpleNamespace

        self.card = SimpleNamespace(name=name, mode="NR", higher_better=higher_better)

    def forward(self, x):
        return x.mean((1, 2, 3))


class CountingUpscaler(nn.Module):
    """Bicubic x4 with a brightness ``gain``; counts its forward calls."""

    def __init__(self, gain: float):
        super().__init__()
        self.gain, self.calls = gain, 0

    def forward(self, lr):
        self.calls += 1
        b, t = lr.shape[:2]
        up = F.interpolate(lr.flatten(0, 1), scale_factor=4, mode="bicubic")
        return (self.gain * up).clamp(0, 1).view(b, t, 3, *up.shape[-2:])


def random_clip(name, seed):
    g = torch.Generator().manual_seed(seed)
    hr = torch.rand(1, 2, 3, 32, 32, generator=g)
    return {"name": name, "lr": F.avg_pool2d(hr[0], 4)[None], "hr": hr}


def run_folder(root, name, payload=b"x"):
    d = root / name
    (d / "checkpoints").mkdir(parents=True)
    (d / "config.yaml").write_text("model: stub\n")
    (d / "checkpoints" / "latest.pt").write_bytes(payload)
    return d


def notebook_builder():
    """``notebooks/build_notebooks.py`` as a module (it is a script beside the notebooks, not in a package)."""
    import sys

    from nriqa.runner import NOTEBOOKS_DIR

    sys.path.insert(0, str(NOTEBOOKS_DIR))
    try:
        import build_notebooks
    finally:
        sys.path.pop(0)
    return build_notebooks
