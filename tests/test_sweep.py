"""``python -m nriqa sweep``: the plan comes from the study's config functions, done runs are skipped,
slurm jobs wait for their dependencies, and the local executor trains a tiny study end to end."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from nriqa import sweep
from nriqa.errors import ConfigError, UserError
from nriqa.study import runs as study_runs
from nriqa.train import run_is_done


@pytest.fixture()
def smoke(tmp_path):
    cfg = study_runs.profile("smoke", device="cpu", run_root=str(tmp_path / "runs"))
    return cfg, sweep.plan(cfg, profile="smoke")


def test_plan_is_the_studys_runs_in_dependency_order(smoke):
    cfg, jobs = smoke
    by_dir = {j.run_dir: j for j in jobs if j.run_dir is not None}
    model = cfg["finetune"]["model"]
    base = study_runs.baseline_config(cfg, model)
    base_dir = study_runs.run_dir(base)
    arms = [study_runs.arm_jobs(cfg, model, t, baseline=base_dir) for t in study_runs.finetune_grid(cfg).values()]
    arms += [study_runs.gan_arm_jobs(cfg, model, d, w, baseline=base_dir)
             for d in cfg["adversarial"]["discriminators"] for w in cfg["adversarial"]["gan_weights"]]
    fts = [job for arm in arms for job in arm.values()]
    assert len(fts) == len(arms) * len(study_runs.seeds(cfg)) > len(arms)   # smoke: two seeds per arm
    assert [j.kind for j in jobs] == ["iqa", "baseline"] + ["finetune"] * len(fts) + ["evaluate"]
    assert by_dir[base_dir].name == base["experiment"]
    for ft, init in fts:
        job = by_dir[study_runs.run_dir(ft, init)]   # the folder the notebooks look for
        assert job.config == ft and job.init_from == init == base_dir
        assert base["experiment"] in job.after
        # only a fine-tune that uses a kit-trained measure waits for the kit IQA job
        assert ("iqa" in job.after) == any("@" in t for t in ft["train"]["objective"])
    seen: set[str] = set()
    for job in jobs:  # every job comes after those it waits for
        assert set(job.after) <= seen, job.name
        seen.add(job.name)
    assert set(by_name_of(jobs)["evaluate"].after) == {j.name for j in jobs} - {"evaluate"}


def by_name_of(jobs) -> dict:
    return {j.name: j for j in jobs}


def test_done_runs_are_not_submitted_and_not_waited_for(smoke):
    cfg, jobs = smoke
    base = next(j for j in jobs if j.kind == "baseline")
    base.run_dir.mkdir(parents=True)
    (base.run_dir / "done.json").write_text(json.dumps({"step": 4}))
    todo, done = sweep.pending(jobs)
    assert [j.name for j in done] == [base.name]
    assert base.name not in {j.name for j in todo}
    assert all(base.name not in j.after for j in todo)
    assert any(j.kind == "finetune" for j in todo)


def test_seeds_give_one_finetune_per_seed_or_a_clear_error(tmp_path):
    cfg = study_runs.profile("smoke", device="cpu", run_root=str(tmp_path))
    n_arms = len(study_runs.finetune_grid(cfg)) + len(cfg["adversarial"]["discriminators"]) * len(
        cfg["adversarial"]["gan_weights"])
    for seeds in ([0], [0, 1, 2]):
        jobs = sweep.plan({**cfg, "seeds": seeds}, profile="smoke")
        fts = [j for j in jobs if j.kind == "finetune"]
        assert len(fts) == len(seeds) * n_arms and len({j.run_dir for j in fts}) == len(fts)
    with pytest.raises(ConfigError, match="seeds must be"):
        sweep.plan({**cfg, "seeds": "0,1"}, profile="smoke")


def test_slurm_jobs_wait_for_their_dependencies_and_multi_gpu_runs_torchrun(smoke):
    _, jobs = smoke
    ids = {j.name: str(100 + i) for i, j in enumerate(jobs)}
    res = sweep.Resources(timeout_min=30, partition="gpu", extra={"account": "vsr"})
    ft = next(j for j in jobs if j.kind == "finetune")
    p = sweep.slurm_parameters(ft, ids, res)
    assert p["slurm_additional_parameters"]["dependency"] == "afterok:" + ":".join(ids[a] for a in ft.after)
    assert p["slurm_additional_parameters"]["account"] == "vsr"
    assert (p["slurm_partition"], p["tasks_per_node"], p["gpus_per_node"]) == ("gpu", 1, 1)
    first = sweep.slurm_parameters(jobs[0], {}, res)
    assert "dependency" not in first["slurm_additional_parameters"]

    four = replace(ft, gpus=4)
    cmd = sweep.torchrun_command(four, sweep.config_path(four))
    assert cmd[1:3] == ["-m", "torch.distributed.run"] and "--nproc_per_node=4" in cmd
    i = cmd.index("nriqa")
    assert cmd[i + 1:i + 3] == ["train", str(sweep.config_path(four))]
    assert cmd[cmd.index("--init-from") + 1] == str(ft.init_from)
    assert cmd[cmd.index("--run-dir") + 1] == str(ft.run_dir)


def test_evaluation_command_is_a_valid_nriqa_run_call(smoke):
    from nriqa.runner import build_parser

    _, jobs = smoke
    job = replace(jobs[-1], notebooks=("01", "02"))
    cmd = sweep.evaluate_command(job)
    assert cmd[1:4] == ["-m", "nriqa", "run"]
    args = build_parser().parse_args(cmd[4:])
    assert (args.profile, args.run_root, args.only) == ("smoke", job.run_root, "01,02")
    assert ["DEVICE", "cpu"] in args.parameter


def test_dry_run_prints_one_line_per_job(tmp_path, capsys):
    assert sweep.main(["--profile", "smoke", "--executor", "local", "--dry-run", "--run-root", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    cfg = study_runs.profile("smoke", device="cpu", run_root=str(tmp_path))
    assert len(lines) == len(sweep.plan(cfg, profile="smoke"))
    base = study_runs.baseline_config(cfg, cfg["finetune"]["model"])["experiment"]
    assert lines[1].split()[:2] == ["baseline", base] and "after: -" in lines[1]
    assert all(f"after: {base}" in ln for ln in lines if ln.startswith("finetune"))
    assert not (tmp_path / "smoke" / "sweep").exists()  # a dry run submits nothing


def test_slurm_without_sbatch_is_a_user_error(tmp_path, monkeypatch):
    pytest.importorskip("submitit")
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here
    with pytest.raises(UserError, match="--executor local"):
        sweep.main(["--profile", "smoke", "--executor", "slurm", "--run-root", str(tmp_path)])
    assert not list(tmp_path.glob("smoke/*")), "nothing written before the error"


def test_local_executor_trains_the_plan_then_skips_it(tmp_path, monkeypatch, capsys):
    pytest.importorskip("submitit")
    monkeypatch.setenv("NRIQA_WEIGHTS", str(tmp_path / "weights"))
    prof = tmp_path / "tiny.yaml"  # smoke cut to one baseline and one fine-tune, no kit IQA model
    prof.write_text("base: smoke\nname: tiny\npanel: [psnr]\nseeds: [0]\nadversarial: {discriminators: []}\n"
                    "finetune: {fidelity_only: false, combos: [],\n"
                    "           extra_terms: {niqe: null, niqe-kit: 0.02, cnniqa@embedded-a: null}}\n")
    argv = ["--profile", str(prof), "--executor", "local", "--run-root", str(tmp_path / "runs"), "--no-evaluate"]
    assert sweep.main(argv) == 0
    out = capsys.readouterr().out
    cfg = study_runs.profile(str(prof), device="cpu", run_root=str(tmp_path / "runs"))
    base = study_runs.run_dir(study_runs.baseline_config(cfg, "basicvsrpp"))
    ft = study_runs.run_dir(*study_runs.arm_jobs(cfg, "basicvsrpp", {"niqe-kit": 0.02}, baseline=base,
                                                arm_seeds=[0])[0])
    assert run_is_done(base) and run_is_done(ft), out
    assert out.count("submitted ") == 2
    assert str(base) in (ft / "config.yaml").read_text()  # fine-tuned from the baseline's weights
    assert sweep.main(argv) == 0
    again = capsys.readouterr().out
    assert "submitted" not in again and "nothing to submit" in again


def test_the_sweep_plans_the_grid_on_every_model_each_from_its_own_baseline(tmp_path):
    models = ["basicvsrpp", "vrt"]
    cfg = study_runs.profile("smoke", {"models": models, "finetune.models": models}, device="cpu",
                             run_root=str(tmp_path))
    jobs = sweep.plan(cfg, profile="smoke")
    by_dir = {j.run_dir: j for j in jobs if j.run_dir is not None}
    grid = study_runs.finetune_grid(cfg)
    for model in models:
        base = study_runs.baseline_config(cfg, model)
        for terms in grid.values():
            for ft, init in study_runs.arm_jobs(cfg, model, terms, baseline=study_runs.run_dir(base)).values():
                job = by_dir[study_runs.run_dir(ft, init)]  # the folder notebook 02 looks for
                assert job.init_from == study_runs.run_dir(base) and base["experiment"] in job.after
    gan = [j for j in jobs if j.kind == "finetune" and j.config["experiment"].startswith("gan-")]
    assert gan and all(j.config["model"] == cfg["finetune"]["model"] for j in gan)  # the GAN grid: one model
