"""nriqa.data: embedded real clips, folder datasets (Vimeo-90K, REDS, Vid4), degradations, samplers.

>>> from nriqa.data import embedded_clips, TrainSampler
>>> sampler = TrainSampler(embedded_clips("train"), num_frames=5, lr_patch=24, batch_size=4, seed=0)
>>> batch = sampler.batch(0)          # {"lr": (4, 5, 3, 24, 24), "hr": (4, 5, 3, 96, 96)}

Video tensors are ``(B, T, 3, H, W)`` float32 RGB in ``[0, 1]``; HR = ``scale`` x LR.
"""
from nriqa.data.clip import Clip, LazyClip
from nriqa.data.degradations import DEGRADATIONS, bicubic_resize, degrade, gaussian_blur
from nriqa.data.embedded import embedded_clips, pristine_frames
from nriqa.data.factory import build_test_set, build_test_sets, build_train_sampler
from nriqa.data.folders import (
    REDS,
    LayoutError,
    Vid4,
    Vimeo90K,
    open_dataset,
    video_clip,
)
from nriqa.data.sampler import TrainSampler, test_clips

__all__ = [
    "DEGRADATIONS",
    "REDS",
    "Clip",
    "LayoutError",
    "LazyClip",
    "TrainSampler",
    "Vid4",
    "Vimeo90K",
    "bicubic_resize",
    "build_test_set",
    "build_test_sets",
    "build_train_sampler",
    "degrade",
    "embedded_clips",
    "gaussian_blur",
    "open_dataset",
    "pristine_frames",
    "test_clips",
    "video_clip",
]
