"""Independent fine-tunes trained in worker processes (profile key ``workers``) give the runs that
serial training gives: the same folders, the same weights."""
from __future__ import annotations

import pytest
import torch

from nriqa import config
from nriqa.errors import ConfigError
from nriqa.study import runs
from nriqa.train.checkpoint import load_checkpoint


def _grid_runs(root, n_workers: int) -> dict:
    cfg = runs.profile("smoke", device="cpu", run_root=str(root))
    cfg["workers"] = n_workers
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # each worker trains with one thread; the serial reference does too (same sums)
    try:
        return runs.finetune_runs(cfg, "basicvsrpp", {"gmsd": {"gmsd": 0.5}}, progress=False)
    finally:
        torch.set_num_threads(before)


def test_two_workers_train_the_same_runs_as_one(tmp_path):
    serial, parallel = _grid_runs(tmp_path / "a", 1), _grid_runs(tmp_path / "b", 2)
    assert list(parallel["gmsd"]) == [0, 1]                               # smoke: seeds [0, 1]
    for label in serial:
        for seed, folder in serial[label].items():
            other = parallel[label][seed]
            assert other.name == folder.name and runs.run_is_done(other)  # run_root is not in the key
            a, b = load_checkpoint(folder, "latest"), load_checkpoint(other, "latest")
            for key in ("params", "params_ema"):
                assert all(torch.equal(a[key][k], b[key][k]) for k in a[key]), (label, seed, key)
    s0, s1 = (load_checkpoint(serial["gmsd"][s], "latest")["params"] for s in (0, 1))
    assert any(not torch.equal(s0[k], s1[k]) for k in s0)                 # the seeds are different runs


def test_workers_setting():
    assert runs.workers({}) == 1 and runs.workers({"workers": 3}) == 3
    assert runs.workers({"workers": "auto", "device": "cuda"}) == 1
    assert runs.workers({"workers": 0, "device": "cpu"}) == runs.workers({"workers": "auto", "device": "cpu"}) >= 1
    assert runs.workers({"workers": "auto", "device": "cpu"}) == config.usable_cores()   # the affinity, as threads
    assert runs.profile("demo", device="cpu", overrides=["workers=auto"])["workers"] == "auto"
    with pytest.raises(ConfigError, match="workers"):
        runs.workers({"workers": -1})
