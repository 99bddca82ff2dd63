"""nriqa.data.factory: the profile's data section builds the training sampler and the test set(s)."""
from __future__ import annotations

import pytest
import torch

from nriqa.config import load_profile
from nriqa.data import (
    build_test_set,
    build_train_sampler,
)
from nriqa.errors import ConfigError


def test_eval_sets_with_the_same_source_need_distinct_names():
    from nriqa.data import build_test_sets

    with pytest.raises(ConfigError, match="twice"):
        build_test_sets({"source": "embedded", "test_max_clips": 1, "test_max_frames": 1, "test_max_side": 8,
                         "eval_sets": [{"source": "embedded"}, {"source": "embedded"}]})


def test_profile_builders_on_embedded_data():
    cfg = load_profile("smoke")["data"]
    sampler = build_train_sampler(cfg, seed=3)
    b = sampler.batch(0)
    p, t, bs = cfg["lr_patch"], cfg["num_frames"], cfg["batch_size"]
    assert b["lr"].shape == (bs, t, 3, p, p) and b["hr"].shape == (bs, t, 3, 4 * p, 4 * p)
    assert torch.equal(build_train_sampler(cfg, seed=3).batch(0)["hr"], b["hr"])
    test_set = build_test_set(cfg)
    k = cfg["test_max_clips"]  # clips are taken round-robin over the 3 test sources
    assert len(test_set) == k
    assert {d["source"] for d in test_set} <= {"carphone", "bikes-shot3", "photo-chelsea", "photo-rocket"}
    assert len({d["source"] for d in test_set}) == min(k, 3)
    everything = build_test_set({**cfg, "test_max_clips": None})
    assert {d["source"] for d in everything} == {"carphone", "bikes-shot3", "photo-chelsea", "photo-rocket"}
    for d in test_set:
        assert d["lr"].shape[1] == cfg["test_max_frames"] and max(d["lr"].shape[-2:]) <= cfg["test_max_side"]
        assert d["hr"].shape[-2:] == tuple(4 * s for s in d["lr"].shape[-2:])
    with pytest.raises(ValueError, match="data.source"):
        build_train_sampler({**cfg, "source": "imagenet"})
    with pytest.raises(ValueError, match="data.root"):
        build_train_sampler({**cfg, "source": "reds", "root": None})
