"""Threads and workers across modules (nriqa.compute, nriqa.train, nriqa.study, nriqa.iqa): a run's
threads are part of its folder key; independent fine-tunes, baselines and kit IQA models trained in
worker processes (profile key ``workers``) give the runs that serial training gives, whatever threads
the calling process had: the same folders, the same weights."""
from __future__ import annotations

import torch

from nriqa.paths import load_torch_file
from nriqa.study import runs
from nriqa.train.checkpoint import load_checkpoint


def _grid_runs(root, n_workers: int, process_threads: int) -> dict:
    before = torch.get_num_threads()
    torch.set_num_threads(process_threads)  # what the machine's load gave this process: must not matter
    try:
        cfg = runs.profile("smoke", device="cpu", run_root=str(root))
        cfg["workers"] = n_workers
        return runs.finetune_runs(cfg, "basicvsrpp", {"gmsd": {"gmsd": 0.5}}, progress=False)
    finally:
        torch.set_num_threads(before)


def test_two_workers_train_the_same_runs_as_one(tmp_path, monkeypatch):
    monkeypatch.setenv("NRIQA_THREADS", "2")  # a budget of 2 cores: two workers of the profile's 1 thread
    serial, parallel = _grid_runs(tmp_path / "a", 1, 2), _grid_runs(tmp_path / "b", 2, 1)
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


def test_kit_iqa_models_trained_in_workers_equal_serial_ones(tmp_path, monkeypatch):
    """ensure_kit_iqa trains pending kit models in the profile's workers: the same tensors as one process."""
    import os

    models = {}
    for budget, root in (("1", tmp_path / "serial"), ("2", tmp_path / "pool")):
        monkeypatch.setenv("NRIQA_THREADS", budget)
        monkeypatch.setenv("NRIQA_WEIGHTS", str(root / "weights"))
        cfg = runs.profile("smoke", device="cpu", run_root=str(root),
                           overrides=["iqa.models=[cnniqa@embedded-a,vitiqa@embedded-b]", "iqa.per_arch.vitiqa.steps=3",
                                      "workers=2"])
        table = runs.ensure_kit_iqa(cfg, progress=False)
        assert list(table.index) == ["cnniqa@embedded-a", "vitiqa@embedded-b"]
        models[budget] = {a: load_torch_file(runs.kit_run_dir(cfg, a) / "model.pt")
                          for a in ("cnniqa@embedded-a", "vitiqa@embedded-b")}
    assert os.environ["NRIQA_THREADS"] == "2"
    for arch, saved in models["1"].items():
        a, b = saved["state_dict"], models["2"][arch]["state_dict"]
        assert a and a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), arch


def test_baselines_trained_side_by_side_equal_serial_ones(tmp_path, monkeypatch):
    """Notebook 01's baselines train in the profile's workers: the same tensors as one process."""
    monkeypatch.setenv("NRIQA_THREADS", "2")
    trained = {}
    for n_workers in (1, 2):
        cfg = runs.profile("smoke", device="cpu", run_root=str(tmp_path / f"w{n_workers}"),
                           overrides=["train.steps=2", "train.schedule.periods=[2]", f"workers={n_workers}"])
        trained[n_workers] = runs.ensure_baselines(cfg, ["basicvsrpp", "iseebetter"], progress=False)
    for model, folder in trained[1].items():
        a, b = load_checkpoint(folder, "latest")["params"], load_checkpoint(trained[2][model], "latest")["params"]
        assert trained[2][model].name == folder.name and all(torch.equal(a[k], b[k]) for k in a), model


def test_threads_key_the_run_folder():
    from nriqa.config import load_profile
    from nriqa.train.run_files import run_key

    cfg = load_profile("smoke")
    assert run_key(cfg) != run_key({**cfg, "threads": 2})
    assert run_key(cfg) == run_key({**cfg, "workers": 2})   # how many at once: not the result
