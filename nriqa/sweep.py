"""``python -m nriqa sweep``: submit every training run of a profile's study, then its evaluation.

    python -m nriqa sweep --profile paper --dry-run              # the plan, one line per job
    python -m nriqa sweep --profile paper --executor slurm --partition gpu --gpus 4
    python -m nriqa sweep --profile smoke --executor local       # this machine, one job after another

The plan comes from the study's own config functions (:mod:`nriqa.study.runs`), so its run folders
are the ones the notebooks look for:

- ``iqa``: the kit NR-IQA models (``iqa.models``), when a loss term or the panel names one (``arch@set``);
- ``baseline``: the Charbonnier baseline of every model in ``models``;
- ``finetune``: the fine-tuning grid (``finetune.extra_terms`` and ``finetune.combos``) of every
  model of ``finetune.models`` and the adversarial grid (each discriminator x GAN weight) of
  ``finetune.model``, each started from its model's baseline weights (``init_from``), once per seed
  of the profile's ``seeds``;
- ``evaluate``: the notebooks (``python -m nriqa run``), after every training job. They find the runs
  above done, train the runs that depend on measurements or on other runs (gradient-chosen weights,
  the fidelity-only and artifact-suppression arms, the transfer tests) and render the tables.

A job whose run folder is done (:func:`nriqa.train.run_is_done`) is not submitted, and a job waiting
for it does not wait. An interrupted run resumes from its newest checkpoint when submitted again;
on slurm a job that reaches its time limit is requeued (submitit's checkpoint hook) and resumes too.

Executors (through submitit, ``pip install "nriqa[cluster]"``): ``slurm`` submits every job at once,
each waiting for its dependencies (``--dependency=afterok``, ``kill_on_invalid_dep``); ``local``
runs the jobs one after another on this machine, each in its own process, and stops at the first
failure. Logs go to ``<RUN_ROOT>/<profile>/sweep/logs/``.

Multi-GPU: ``--gpus N`` gives a training job one slurm task with N GPUs on one node; for N > 1 the
job runs ``torchrun --standalone --nproc_per_node N -m nriqa train <config> ...`` (DDP, one process
per GPU, rank 0 writes the run folder). The kit IQA and evaluation jobs use one GPU.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from nriqa.compute import resolve_device
from nriqa.config import dump
from nriqa.errors import ConfigError, UserError

KINDS = ("iqa", "baseline", "finetune", "evaluate")


@dataclass(frozen=True)
class Job:
    """One unit of the sweep. ``after``: names of the jobs it waits for. ``config``: the resolved run
    config of a training job (``None`` for the iqa and evaluate jobs); ``run_dir``: its run folder."""
    name: str
    kind: str
    profile: str
    run_root: str
    device: str
    run_dir: Path | None = None
    config: dict | None = None
    init_from: Path | None = None
    after: tuple[str, ...] = ()
    gpus: int = 1
    notebooks: tuple[str, ...] = field(default_factory=tuple)


# --------------------------------------------------------------------------- the plan

def _kit_names(cfg: Mapping[str, Any], names) -> list[str]:
    """Those of ``names`` that are kit IQA measures this profile trains (``<arch>@<dataset>`` of
    ``iqa.models``, :func:`nriqa.iqa.iqa_training.kit_models`)."""
    from nriqa.iqa.iqa_training import kit_models

    mine = set(kit_models(dict(cfg)))
    return [n for n in names if isinstance(n, str) and n.lower() in mine]


def plan(cfg: Mapping[str, Any], *, profile: str, gpus: int = 1, evaluate: bool = True,
         notebooks: tuple[str, ...] = ()) -> list[Job]:
    """Every job of the study of resolved profile ``cfg`` (:func:`nriqa.study.runs.profile`), in an
    order where each job comes after those it waits for. ``profile``: the name or YAML path the
    jobs load again (the evaluation notebooks get it as ``PROFILE``)."""
    from nriqa.study import runs as study_runs

    common = {"profile": profile, "run_root": str(cfg["run_root"]), "device": str(cfg["device"])}
    jobs: list[Job] = []
    train_jobs: list[Job] = []

    ft = cfg.get("finetune") or {}
    ft_model = ft.get("model") or cfg["models"][0]
    grid = study_runs.finetune_grid(cfg)
    terms_used = [t for terms in grid.values() for t in terms] + list(cfg.get("panel") or [])
    iqa_after: tuple[str, ...] = ()
    if _kit_names(cfg, terms_used):
        jobs.append(Job(name="iqa", kind="iqa", **common))
        iqa_after = ("iqa",)

    baselines: dict[str, Job] = {}
    for model in cfg["models"]:
        c = study_runs.baseline_config(cfg, model)
        job = Job(name=c["experiment"], kind="baseline", run_dir=study_runs.run_dir(c), config=c, gpus=gpus, **common)
        baselines[model] = job
        train_jobs.append(job)
    if ft_model not in baselines:
        raise ConfigError(f"finetune.model {ft_model!r} is not among the profile's models {cfg['models']}")
    base = baselines[ft_model]

    arm_seeds = study_runs.seeds(cfg)  # a clear ConfigError on a bad ``seeds``
    # the fine-tuning grid on every model of finetune.models (notebook 02), each from its own baseline
    arms = {(model, label): study_runs.arm_jobs(cfg, model, terms, baseline=baselines[model].run_dir,
                                                arm_seeds=arm_seeds)
            for model in study_runs.finetune_models(cfg) for label, terms in grid.items()}
    if cfg.get("adversarial"):  # the GAN grid (notebook 05) of finetune.model, one arm per discriminator and weight
        for disc in cfg["adversarial"].get("discriminators") or []:
            for w in cfg["adversarial"].get("gan_weights") or []:
                arms[(ft_model, f"gan {disc} w={w:g}")] = study_runs.gan_arm_jobs(cfg, ft_model, disc, w,
                                                                                 baseline=base.run_dir)
    for (model, _), by_seed in arms.items():
        for c, init in by_seed.values():
            after = (baselines[model].name,) + (iqa_after if _kit_names(cfg, c["train"]["objective"]) else ())
            train_jobs.append(Job(name=f"{c['experiment']}-s{c['seed']}", kind="finetune",
                                  run_dir=study_runs.run_dir(c, init), config=c, init_from=init, after=after,
                                  gpus=gpus, **common))

    seen: dict[Path, Job] = {}
    for job in train_jobs:
        other = seen.get(job.run_dir)
        if other is None:
            seen[job.run_dir] = job
            jobs.append(job)
        elif dump(other.config) != dump(job.config):
            raise ConfigError(f"two runs of the sweep share the run folder {job.run_dir} with different configs "
                              "(the run names do not tell them apart, e.g. seeds); name them apart in the profile")
    if evaluate:
        jobs.append(Job(name="evaluate", kind="evaluate", after=tuple(j.name for j in jobs), gpus=1,
                        notebooks=tuple(notebooks), **common))
    return jobs


def pending(jobs: list[Job]) -> tuple[list[Job], list[Job]]:
    """``(to_submit, done)``: training jobs whose run folder is done are dropped, and so are waits on them."""
    from nriqa.train import run_is_done

    done = [j for j in jobs if j.run_dir is not None and run_is_done(j.run_dir)]
    gone = {j.name for j in done}
    todo = [replace(j, after=tuple(a for a in j.after if a not in gone)) for j in jobs if j.name not in gone]
    return todo, done


def describe(job: Job) -> str:
    """One line of the plan: kind, name, GPUs, what it waits for, where it writes or what it runs."""
    waits = ", ".join(job.after) if job.after else "-"
    if job.kind == "evaluate":
        what = "python " + " ".join(evaluate_command(job)[1:])
    elif job.kind == "iqa":
        what = "kit IQA models (iqa.models) -> <profile>/iqa/ (returns at once when trained)"
    else:
        what = str(job.run_dir) + (f"  init_from={job.init_from.name}" if job.init_from else "")
    return f"{job.kind:<9} {job.name:<40} gpus={job.gpus}  after: {waits}  {what}"


# --------------------------------------------------------------------------- what a job runs

def config_path(job: Job) -> Path:
    """Where a training job's resolved config is written for ``torchrun``: ``<profile root>/sweep/configs/``."""
    return Path(job.run_root) / str(job.config["name"]) / "sweep" / "configs" / f"{job.name}.yaml"


def torchrun_command(job: Job, config_file: Path) -> list[str]:
    """The command of a training job on ``job.gpus`` > 1 GPUs: one DDP process per GPU on this node."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={job.gpus}",
           "-m", "nriqa", "train", str(config_file), "--run-dir", str(job.run_dir), "--no-progress"]
    if job.init_from is not None:
        cmd += ["--init-from", str(job.init_from)]
    return cmd


def evaluate_command(job: Job) -> list[str]:
    """The evaluation job: every notebook (or ``job.notebooks``) executed by ``python -m nriqa run``."""
    cmd = [sys.executable, "-m", "nriqa", "run", "--profile", job.profile, "--run-root", job.run_root,
           "-p", "DEVICE", job.device]
    if job.notebooks:
        cmd += ["--only", ",".join(job.notebooks)]
    return cmd


def _check(cmd: list[str]) -> None:
    rc = subprocess.run(cmd).returncode
    if rc:
        raise RuntimeError(f"{' '.join(cmd)} exited with status {rc}")


class JobFunction:
    """The callable submitit runs for a job (on the node). Checkpointable: on a slurm time-out the
    same job is requeued, and the trainer resumes from the run's newest checkpoint."""

    def __call__(self, job: Job) -> str:
        if job.kind == "iqa":
            from nriqa.study.runs import ensure_kit_iqa, profile
            ensure_kit_iqa(profile(job.profile, device=job.device, run_root=job.run_root), progress=False)
            return "iqa"
        if job.kind == "evaluate":
            _check(evaluate_command(job))
            return "evaluate"
        if job.gpus > 1:
            from nriqa.paths import atomic_path
            path = config_path(job)
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                Path(tmp).write_text(dump(job.config))
            _check(torchrun_command(job, path))
        else:
            from nriqa.train import train
            train(dict(job.config), job.run_dir, init_from=job.init_from, progress=False)
        return str(job.run_dir)

    def checkpoint(self, job: Job):
        import submitit

        return submitit.helpers.DelayedSubmission(self, job)


# --------------------------------------------------------------------------- submitting

@dataclass(frozen=True)
class Resources:
    """What each job asks the scheduler for (slurm); ``extra``: more ``#SBATCH`` settings (key -> value)."""
    timeout_min: int = 60 * 24
    cpus_per_task: int = 8
    partition: str | None = None
    extra: dict = field(default_factory=dict)


def slurm_parameters(job: Job, ids: Mapping[str, str], res: Resources) -> dict:
    """submitit ``update_parameters`` keywords of ``job`` on slurm; ``ids``: job name -> slurm id of
    the jobs submitted before it."""
    extra = dict(res.extra)
    if job.after:
        extra["dependency"] = "afterok:" + ":".join(ids[a] for a in job.after)
        extra.setdefault("kill_on_invalid_dep", "yes")
    params = {"name": f"nriqa-{job.name}", "timeout_min": res.timeout_min, "nodes": 1, "tasks_per_node": 1,
              "gpus_per_node": job.gpus, "cpus_per_task": res.cpus_per_task,
              "slurm_additional_parameters": extra}
    if res.partition:
        params["slurm_partition"] = res.partition
    return params


def _executor(kind: str, folder: Path):
    try:
        import submitit
    except ImportError:
        raise UserError('the sweep submits jobs with submitit, which is not installed; pip install "nriqa[cluster]" '
                        "(or pip install submitit)") from None
    if kind == "slurm" and shutil.which("sbatch") is None:
        raise UserError("--executor slurm: sbatch is not on PATH (not a slurm login node); "
                        "run the sweep here with --executor local")
    return submitit.AutoExecutor(folder=str(folder / "%j"), cluster=kind)


def submit(jobs: list[Job], executor: str, folder: Path, res: Resources = Resources(), *,
           echo=print) -> dict[str, str]:
    """Submit ``jobs`` (in plan order); returns job name -> job id. ``slurm``: all at once with
    dependencies; ``local``: one after another, each waited for (a failure raises and stops the sweep)."""
    ex = _executor(executor, folder)
    fn = JobFunction()
    ids: dict[str, str] = {}
    for job in jobs:
        if executor == "slurm":
            ex.update_parameters(**slurm_parameters(job, ids, res))
        else:
            ex.update_parameters(name=f"nriqa-{job.name}", timeout_min=res.timeout_min, tasks_per_node=1,
                                 gpus_per_node=job.gpus if job.device.startswith("cuda") else 0)
        handle = ex.submit(fn, job)
        ids[job.name] = str(handle.job_id)
        echo(f"submitted {job.kind} {job.name} as job {handle.job_id}")
        if executor == "local":
            try:
                handle.result()
            except Exception as err:  # noqa: BLE001 - name the job and its log, then stop
                raise RuntimeError(f"sweep job {job.name} failed; its log: {handle.paths.stderr}\n{err}") from None
    return ids


# --------------------------------------------------------------------------- what the plan needs

def missing_inputs(cfg: Mapping[str, Any]) -> list[str]:
    """What a profile's plan needs that is not on disk, one line each: the folder datasets it trains
    and evaluates on (``data.root``, ``data.eval_sets``; layout checked), the weights of its panel's
    measures and of the loss terms it fine-tunes with (the kit models of ``iqa.models`` aside: the plan
    trains them). Empty when everything is there."""
    from nriqa.analysis.evaluation import check_panel_names
    from nriqa.data.folders import DATASETS, open_dataset
    from nriqa.iqa.iqa_training import kit_models

    out: list[str] = []
    data = dict(cfg.get("data") or {})
    sets = [{"source": data.get("source", "embedded"), "root": data.get("root")}, *(data.get("eval_sets") or [])]
    for entry in sets:
        source = str(entry.get("source", "embedded")).lower()
        if source not in DATASETS:
            continue
        try:
            open_dataset(source, entry.get("root") or "", scale=int(data.get("scale", 4)))
        except (FileNotFoundError, ValueError) as err:
            out.append(f"dataset {source}: {' '.join(str(err).split())[:300]}")
    ft = cfg.get("finetune") or {}
    terms = {t for t, w in (ft.get("extra_terms") or {}).items() if w is not None}
    for combo in ft.get("combos") or []:
        terms |= set(combo)
    names = sorted({*(cfg.get("panel") or []), *terms} - {"charbonnier", "pixel", "gan"})
    kit = set(kit_models(dict(cfg)))
    names = [n for n in names if n.lower() not in kit]
    try:
        missing = check_panel_names(names)
    except ValueError as err:
        return out + [f"measures: {err}"]
    out += [f"weights of {n}: not on disk (python -m nriqa weights lists where each file goes)" for n in missing]
    return out


# --------------------------------------------------------------------------- command line

def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m nriqa sweep",
        description="Submit every training run of a profile's study (kit IQA models, baselines, fine-tunes; "
                    "finished runs skipped, interrupted ones resumed) and then the notebooks that evaluate them, "
                    "each job after the jobs it needs, through submitit on slurm or on this machine.",
        epilog="For --gpus N > 1 a training job runs torchrun with N processes (DDP) on one node. "
               "Logs: RUN_ROOT/PROFILE/sweep/logs/.")
    ap.add_argument("--profile", default="paper", help="bundled profile name (paper, demo, smoke) or a YAML path")
    ap.add_argument("--executor", choices=["slurm", "local"], default="slurm",
                    help="slurm (default): submit all jobs with dependencies; local: run them here one after another")
    ap.add_argument("--dry-run", action="store_true", help="print the plan (one line per job and what it waits for)")
    ap.add_argument("--run-root", default=None, metavar="DIR",
                    help="folder of the run folders (default: NRIQA_RUNS, else runs/ of the repository)")
    ap.add_argument("--device", default=None,
                    help="device of every job (default: cuda on slurm; on local, cuda when present, else cpu)")
    ap.add_argument("--gpus", type=int, default=1, metavar="N",
                    help="GPUs per training job; above 1 the job runs torchrun")
    ap.add_argument("--partition", default=None, help="slurm partition")
    ap.add_argument("--timeout-min", type=int, default=60 * 24, metavar="MIN", help="time limit of each job in minutes")
    ap.add_argument("--cpus-per-task", type=int, default=8, metavar="N", help="CPU cores of each job (data loading)")
    ap.add_argument("--slurm", action="append", default=[], metavar="KEY=VALUE",
                    help="another sbatch setting for every job, e.g. --slurm account=vsr (repeatable)")
    ap.add_argument("--no-evaluate", action="store_true", help="train only; leave out the notebook job")
    ap.add_argument("--only", default="", metavar="NN,NN",
                    help="notebooks the evaluation job runs, e.g. 01,02 (default: all)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.gpus < 1:
        raise UserError(f"--gpus {args.gpus}: give 1 or more GPUs per training job")
    extra = {}
    for item in args.slurm:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--slurm {item!r}: write KEY=VALUE, e.g. --slurm account=vsr")
        extra[key.strip()] = value.strip()
    from nriqa.study.runs import profile, profile_root

    prof = args.profile
    if Path(prof).suffix in {".yaml", ".yml"}:  # a profile file: the jobs may start in another folder
        prof = str(Path(prof).expanduser().resolve())

    device = args.device or ("cuda" if args.executor == "slurm" else resolve_device("auto"))
    cfg = profile(prof, device="cpu", run_root=args.run_root)
    cfg["device"] = device  # the job's device, resolved on the node (this machine may have no GPU)
    jobs = plan(cfg, profile=prof, gpus=args.gpus, evaluate=not args.no_evaluate,
                notebooks=tuple(o.strip() for o in args.only.split(",") if o.strip()))
    todo, done = pending(jobs)
    for job in done:
        print(f"done      {job.name:<40} {job.run_dir}")
    for job in todo:
        print(describe(job))
    missing = missing_inputs(cfg) if todo else []
    for line in missing:
        print(f"MISSING   {line}")
    if args.dry_run:
        if missing:
            print(f"{len(missing)} input(s) missing: the jobs that need them would fail", file=sys.stderr)
        return 0
    if missing:
        raise UserError(f"{len(missing)} input(s) the plan needs are missing (listed above as MISSING); "
                        "nothing was submitted")
    if not todo:
        print("nothing to submit: every run is done")
        return 0
    res = Resources(timeout_min=args.timeout_min, cpus_per_task=args.cpus_per_task, partition=args.partition,
                    extra=extra)
    submit(todo, args.executor, profile_root(cfg) / "sweep" / "logs", res)
    return 0
