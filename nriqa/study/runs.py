"""Profiles, run names, run configs and cached training: the study's shared core.

Run folders live under ``<RUN_ROOT>/<profile>/`` and are named ``<experiment>-s<seed>-<key>``
(:func:`run_name`): a readable experiment name, the seed, and 8 hex digits of
:func:`nriqa.train.run_files.run_key`, a hash of everything that changes the trained weights (model and
size, objective terms and weights, steps, optimizer, schedule, EMA, data settings, seed, and the key
of the baseline a fine-tune starts from). A changed setting trains a new folder; the same settings
find the finished (or the interrupted, which resumes) folder again. Logging cadence, TensorBoard,
``run_root`` and the device are not in the key (:data:`nriqa.train.run_files.UNKEYED_TRAIN`). The
folder's ``config.yaml`` holds the resolved config, ``run_key`` and ``keyed`` (what was hashed).

Experiment names:

- ``baseline-<model>``                   Charbonnier only (notebook 01), trained once with ``seed``
- ``ft-<model>-<slug>``                  baseline + extra terms (notebooks 02, 03, 06; 04's hand-set weighting)
- ``w-<model>-<weighting>-<slug>``       a gradient-chosen weighting of a combination (notebook 04)
- ``gan-<model>-<disc>-w<weight>``       fidelity + adversarial term (notebooks 05, 06)
- ``gan-<model>-fidelity-only``          the same steps without the GAN term (notebooks 05, 06)

Seeds: every fine-tune *arm* (a grid entry, a GAN arm, the fidelity-only arm) is trained once per
seed of :func:`seeds` (the profile's ``seeds``, default ``[seed]``), each from the same baseline;
such an arm is ``{seed: run folder}`` and a set of arms ``{label: {seed: run folder}}``.

An *extra-terms* mapping is ``{measure name: weight}`` (a GAN term's value is a dict with
``weight``); it is added to ``{charbonnier: 1.0}`` to form a fine-tune's objective.
"""
from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from nriqa.compute import concurrent_jobs, job_threads, resolve_device, usable_cores, use_job_numerics
from nriqa.config import deep_merge, load_profile
from nriqa.data.iqa_sets import load_iqa_dataset
from nriqa.errors import ConfigError
from nriqa.iqa import train_iqa
from nriqa.iqa.iqa_training import EarlyStop, iqa_config, iqa_run_is_done, kit_models, kit_name, kit_set_key
from nriqa.iqa.transfer import gan_discriminator
from nriqa.models.released import kit_release_file, kit_release_info
from nriqa.paths import figures_dir, file_sha256, runs_dir
from nriqa.quality import register_kit_models
from nriqa.quality.kit import use_kit_set
from nriqa.train import run_is_done, train
from nriqa.train.imported_run import write_imported_run
from nriqa.train.run_files import run_key

_PIXEL_TERMS = {"charbonnier", "pixel"}


# --------------------------------------------------------------------------- profiles and folders

def profile(name: str | None = None, overrides: Mapping[str, Any] | None = None, *,
            device: str | None = None, seed: int | None = None, run_root: str | None = None) -> dict:
    """Load a profile as the notebooks do: parameters cell values override the YAML, and
    ``device`` is resolved (``"auto"`` -> ``"cuda"`` when present, else ``"cpu"``).

    ``name=None`` is ``$NRIQA_PROFILE`` or ``demo``; ``run_root=None`` is :func:`nriqa.paths.runs_dir`
    (a relative ``run_root`` is taken from the current folder)."""
    name = name or os.environ.get("NRIQA_PROFILE") or "demo"
    cfg = load_profile(name, overrides)
    cfg["device"] = resolve_device(device if device is not None else cfg.get("device", "auto"))
    if seed is not None:
        cfg["seed"] = int(seed)
    cfg["run_root"] = str(Path(run_root).expanduser().resolve() if run_root else runs_dir())
    use_job_numerics(cfg)  # this process computes (evaluates, optimises pixels) with the profile's threads
    use_kit_set(kit_set_key(cfg))  # the kit IQA models this profile trains, never another profile's
    return cfg


def profile_root(cfg: Mapping[str, Any]) -> Path:
    """``<RUN_ROOT>/<profile>``: all runs of one profile."""
    root = Path(cfg.get("run_root") or runs_dir())
    return root / str(cfg["name"])


def figure_dir(cfg: Mapping[str, Any]) -> Path:
    """Where a notebook saves figures: ``figures/`` for the demo profile (referenced by README),
    ``<RUN_ROOT>/<profile>/figures`` for every other profile (so smoke tests never overwrite them)."""
    if cfg["name"] == "demo" and not os.environ.get("NRIQA_FIGURES_IN_RUNS"):
        return figures_dir()
    p = profile_root(cfg) / "figures"
    p.mkdir(parents=True, exist_ok=True)
    return p


def seeds(cfg: Mapping[str, Any]) -> list[int]:
    """The seeds every fine-tune arm is trained with: the profile's ``seeds`` (a list of distinct
    ints), else ``[seed]``. The baseline is trained once, with ``seed``."""
    raw = cfg.get("seeds")
    if raw is None:
        return [int(cfg.get("seed", 0))]
    if isinstance(raw, (int, str)) or not len(raw) or any(isinstance(v, bool) or not isinstance(v, int) for v in raw):
        raise ConfigError(f"seeds must be a non-empty list of ints, got {raw!r}")
    if len(set(raw)) != len(raw):
        raise ConfigError(f"seeds must be distinct, got {raw!r}")
    return [int(v) for v in raw]


def noise_seeds(cfg: Mapping[str, Any]) -> list[int]:
    """:func:`seeds`, with one more (the last + 1) when there is only one: the reference arms that
    measure seed noise (notebook 05) need two."""
    out = seeds(cfg)
    return out if len(out) > 1 else out + [out[-1] + 1]


def with_seed(cfg: Mapping[str, Any], seed: int) -> dict:
    """``cfg`` with ``seed``: the same experiment with other sampled batches and initial noise."""
    out = copy.deepcopy(dict(cfg))
    out["seed"] = int(seed)
    return out


def run_name(cfg: Mapping[str, Any], init_from: Path | None = None) -> str:
    """Folder name of a resolved experiment config: ``<experiment>-s<seed>-<run key>``
    (``init_from``: the baseline folder a fine-tune starts from; its key is part of this one)."""
    return f"{cfg['experiment']}-s{int(cfg.get('seed', 0))}-{run_key(cfg, init_from)}"


def run_dir(cfg: Mapping[str, Any], init_from: Path | None = None) -> Path:
    """Run folder of a resolved experiment config: ``<RUN_ROOT>/<profile>/<run_name>``."""
    return profile_root(cfg) / run_name(cfg, init_from)


# --------------------------------------------------------------------------- names and configs

def slug(terms: Mapping[str, Any]) -> str:
    """Short, filesystem-safe name of a set of extra loss terms: ``name x weight`` joined by ``+``,
    pixel terms left out, e.g. ``{"niqe": 0.02, "lpips": 1}`` -> ``niqex0.02+lpipsx1``."""
    parts = []
    for name, weight in terms.items():
        if name in _PIXEL_TERMS:
            continue
        w = weight.get("weight") if isinstance(weight, Mapping) else weight
        parts.append(f"{name}x{w:g}" if isinstance(w, (int, float)) else str(name))
    text = "+".join(parts) or "charbonnier"
    return re.sub(r"[^A-Za-z0-9@+._-]", "_", text)


def term_label(terms: Mapping[str, Any]) -> str:
    """Human label of the extra terms (weights left out): ``cnniqa@embedded-a + lpips-vgg-randtrunk``."""
    names = [n for n in terms if n not in _PIXEL_TERMS | {"weights"}]
    return " + ".join(names) or "charbonnier"


def finetune_name(model: str, extra_terms: Mapping[str, Any]) -> str:
    """Default experiment name of a fine-tune: ``ft-<model>-<slug of the extra terms>``."""
    return f"ft-{model}-{slug(extra_terms)}"


def baseline_config(cfg: Mapping[str, Any], model: str) -> dict:
    """Resolved config of the Charbonnier baseline for ``model`` (experiment ``baseline-<model>``).
    With ``baselines: release`` the baseline is the kit's shipped release (:func:`ensure_baselines`
    imports it): ``released`` holds its file name and sha256, so the run's key follows the file."""
    out = copy.deepcopy(dict(cfg))
    out["model"] = model
    out["experiment"] = f"baseline-{model}"
    out["train"] = copy.deepcopy(cfg["train"])
    out["train"]["objective"] = {"charbonnier": 1.0}
    out.pop("released", None)
    if cfg.get("baselines", "train") == "release":
        path = kit_release_file(model, str(cfg.get("model_size", "tiny")))
        kit_release_info(model, str(cfg.get("model_size", "tiny")))   # FileNotFoundError naming the command
        out["released"] = {"file": path.name, "sha256": file_sha256(path)}
    elif cfg.get("baselines", "train") != "train":
        raise ConfigError(f"baselines must be 'train' or 'release', got {cfg.get('baselines')!r}")
    return out


def scratch_config(cfg: Mapping[str, Any], model: str) -> dict:
    """The Charbonnier baseline of ``model`` trained here from scratch with the profile's ``train``
    section (experiment ``scratch-<model>``), whatever ``baselines`` says: notebook 01's live lesson."""
    out = baseline_config({**cfg, "baselines": "train"}, model)
    out["experiment"] = f"scratch-{model}"
    return out


def finetune_config(cfg: Mapping[str, Any], model: str, extra_terms: Mapping[str, Any], *,
                    name: str | None = None, train_overrides: Mapping[str, Any] | None = None) -> dict:
    """Config of a fine-tune: the baseline's trainer knobs, the ``finetune`` section over them,
    ``train_overrides`` over that, and objective ``{charbonnier: 1.0, **extra_terms}``."""
    out = copy.deepcopy(dict(cfg))
    out["model"] = model
    ft = {k: v for k, v in cfg.get("finetune", {}).items()
          if k not in {"extra_terms", "combos", "model", "models", "fidelity_only"}}
    out["train"] = deep_merge(cfg["train"], ft)
    if train_overrides:
        out["train"] = deep_merge(out["train"], train_overrides)
    objective = {"charbonnier": 1.0}
    objective.update(copy.deepcopy(dict(extra_terms)))
    out["train"]["objective"] = objective
    out["experiment"] = name or finetune_name(model, extra_terms)
    return out


def finetune_dose(cfg: Mapping[str, Any]) -> str:
    """The fine-tunes' dose in one line: learning rate x steps and where they start. A claim about
    naive fine-tuning holds at a dose: every verdict table is printed beside this line."""
    model = cfg.get("finetune", {}).get("model") or cfg["models"][0]
    ft = finetune_config(cfg, model, {})["train"]
    sched = ft.get("schedule") or {}
    released = cfg.get("baselines", "train") == "release"
    start = "the kit's released" if released else "the profile's (trained or imported)"
    gan = cfg.get("adversarial") or {}
    gan_text = f"; GAN arms {int(gan['steps'])} steps" if gan.get("steps") else ""
    return (f"dose: fine-tuned {int(ft['steps'])} steps at learning rate {float(ft['optimizer']['lr']):g} "
            f"(schedule {sched.get('name', 'constant')}, down to {float(sched.get('eta_min', 0)):g}) from {start} "
            f"{model} baseline{gan_text} (the rate's sweep: BENCHMARKS.md, 'Fine-tuning learning rate')")


def finetune_models(cfg: Mapping[str, Any]) -> list[str]:
    """The models notebook 02's grid fine-tunes: ``finetune.models`` (default ``[finetune.model]``),
    each one of the profile's ``models`` (when it lists them), without repeats."""
    ft = cfg.get("finetune") or {}
    models = ft.get("models")
    if models is None:
        models = [ft.get("model") or (cfg.get("models") or ["basicvsrpp"])[0]]
    if not isinstance(models, (list, tuple)) or not models or not all(isinstance(m, str) for m in models):
        raise ConfigError(f"finetune.models must be a non-empty list of model names, got {models!r}")
    if len(set(models)) != len(models):
        raise ConfigError(f"finetune.models lists a model twice: {models}")
    unknown = [m for m in models if cfg.get("models") and m not in cfg["models"]]
    if unknown:
        raise ConfigError(f"finetune.models {unknown} are not among the profile's models {cfg['models']}")
    return list(models)


def finetune_grid(cfg: Mapping[str, Any]) -> dict[str, dict]:
    """The profile's fine-tuning grid: label -> extra terms (``finetune.fidelity_only``: first the
    arm ``fidelity-only`` with no extra term, whose seed-to-seed spread standardises the effects;
    then each term alone, then the combos). A term whose weight is null is left out (lets a
    profile drop a term of its base)."""
    ft = cfg.get("finetune", {})
    grid: dict[str, dict] = {"fidelity-only": {}} if ft.get("fidelity_only") else {}
    for name, weight in (ft.get("extra_terms") or {}).items():
        if weight is not None:
            grid[name] = {name: weight}
    for combo in ft.get("combos") or []:
        grid[term_label(combo)] = dict(combo)
    return grid


# --------------------------------------------------------------------------- adversarial terms

def fidelity_terms(cfg: Mapping[str, Any]) -> dict:
    """The profile's ``adversarial.fidelity`` terms besides the pixel terms."""
    return {k: v for k, v in cfg["adversarial"]["fidelity"].items() if k not in _PIXEL_TERMS}


def gan_terms(cfg: Mapping[str, Any], discriminator: str, weight: float,
              fidelity: Mapping[str, Any] | None = None) -> dict:
    """Extra terms of an adversarial fine-tune: ``fidelity`` (default: :func:`fidelity_terms`)
    plus ``gan: {weight, discriminator, loss, size}``."""
    a = cfg["adversarial"]
    terms = dict(fidelity_terms(cfg) if fidelity is None else fidelity)
    terms["gan"] = {"weight": float(weight), "discriminator": discriminator, "loss": a["gan_loss"],
                    "size": a.get("size", "tiny")}
    return terms


def gan_overrides(cfg: Mapping[str, Any]) -> dict:
    """Trainer overrides of a GAN-length fine-tune: ``adversarial.steps`` in one schedule period,
    the discriminator's learning rate ``adversarial.d_lr``."""
    a = cfg["adversarial"]
    return {"steps": int(a["steps"]), "schedule": {"periods": [int(a["steps"])]}, "d_lr": float(a["d_lr"])}


def middle_gan_weight(cfg: Mapping[str, Any]) -> float:
    """The middle of ``adversarial.gan_weights`` (the upper middle for an even count)."""
    w = sorted(float(v) for v in cfg["adversarial"]["gan_weights"])
    return w[len(w) // 2]


# --------------------------------------------------------------------------- cached training

def _ensure_run(cfg: Mapping[str, Any], *, init_from: Path | None = None, progress: bool = True) -> Path:
    """Train ``cfg`` unless its run folder (:func:`run_dir`) is already done; resume it when
    interrupted. Says which run it trains (one line, when ``progress``), so a notebook's output and
    ``nriqa run``'s status line name the run behind the progress bar."""
    folder = run_dir(cfg, init_from)
    if progress and not run_is_done(folder):
        print(f"training {folder.name} ({(cfg.get('train') or {}).get('steps', '?')} steps)", flush=True)
    return train(dict(cfg), folder, init_from=init_from, progress=progress)


def workers(cfg: Mapping[str, Any]) -> int:
    """How many processes train a set of independent runs now: the profile's ``workers`` (default 1;
    ``0`` or ``"auto"``: one per usable CPU core (:func:`nriqa.compute.usable_cores`) when training
    on the CPU; 1 on a GPU), cut to what the CPU budget holds (:func:`nriqa.compute.concurrent_jobs`:
    ``$NRIQA_THREADS``, else the free cores, over the profile's ``threads``). Only how many runs
    train at once follows the machine's load; each run computes with the profile's ``threads``, so
    the results are the same. Measured on the shared 2-core CPU
    (``benchmarks/bench_parallel_runs.py``, BENCHMARKS.md): two 1-thread processes beat one
    2-thread process by 1.15x on a quiet machine. See :func:`train_jobs`."""
    raw = cfg.get("workers", 1)
    on_cpu = str(cfg.get("device", "cpu")).startswith("cpu")
    if raw in (0, "auto"):
        raw = usable_cores() if on_cpu else 1
    elif isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise ConfigError(f"workers must be an int >= 0 or 'auto', got {raw!r}")
    return concurrent_jobs(cfg, raw) if raw > 1 else raw


def _worker_init(threads: int) -> None:
    """A training worker: the jobs' numerics (``threads`` torch threads, deterministic CPU kernels:
    :func:`nriqa.compute.use_job_numerics`; each job sets its own again), the kit NR-IQA measures
    registered (as :func:`ensure_kit_iqa` does in the parent)."""
    use_job_numerics({"threads": threads})
    register_kit_models()


def _train_job(cfg: dict, init_from: Path | None) -> Path:
    return _ensure_run(cfg, init_from=init_from, progress=False)


def _in_pool(fn, args: list[tuple], *, n_workers: int, threads: int, what=None) -> None:
    """``fn(*a)`` for every ``a`` of ``args`` in ``min(n_workers, len(args))`` spawned processes
    (``concurrent.futures.ProcessPoolExecutor``), each with the jobs' ``threads`` torch threads and
    the kit NR-IQA measures registered (:func:`_worker_init`); ``what(processes, threads)``, when
    given, is the line printed first (or None). An error in one call is raised here once the others
    finished. Which worker runs which call does not matter: every job seeds itself from its config."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    k = min(n_workers, len(args))
    line = what(k, threads) if what else None
    if line:
        print(line, flush=True)
    with ProcessPoolExecutor(max_workers=k, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_worker_init, initargs=(threads,)) as pool:
        futures = [pool.submit(fn, *a) for a in args]
        errors = [f.exception() for f in futures]
    for err in errors:
        if err is not None:
            raise err


def run_jobs(cfg: Mapping[str, Any], fn, args: list[tuple], *, what=None) -> None:
    """``fn(*a)`` for every ``a`` of ``args``: in the profile's :func:`workers` processes (:func:`_in_pool`,
    each with the profile's threads) when there are several workers and jobs, else here, one after the
    other. Each job must set its own numerics (e.g. :func:`nriqa.compute.use_job_numerics`), so where it
    runs does not change its result."""
    n = workers(cfg)
    if n > 1 and len(args) > 1:
        _in_pool(fn, args, n_workers=n, threads=job_threads(cfg), what=what)
    else:
        for a in args:
            fn(*a)


def train_jobs(jobs: list[tuple[Mapping[str, Any], Path | None]], *, n_workers: int = 1,
               progress: bool = True) -> list[Path]:
    """Train independent runs ``[(resolved config, init_from)]`` (each skipped when done, resumed
    when interrupted); returns their folders in order. ``n_workers > 1`` trains them in that many
    spawned processes (``concurrent.futures.ProcessPoolExecutor``), each with the profile's
    ``threads``: the same runs as serial training (each run is seeded by its config), only
    their progress bars are left out. An error in a run is raised here once the others finished."""
    folders = [run_dir(cfg, init) for cfg, init in jobs]
    todo = [(dict(cfg), init) for (cfg, init), f in zip(jobs, folders) if not run_is_done(f)]
    if n_workers <= 1 or len(todo) <= 1:
        return [_ensure_run(cfg, init_from=init, progress=progress) for cfg, init in jobs]

    def what(k: int, threads: int) -> str | None:
        names = ", ".join(run_dir(cfg, init).name for cfg, init in todo)
        return f"training {len(todo)} runs in {k} processes of {threads} thread(s): {names}" if progress else None

    _in_pool(_train_job, todo, n_workers=n_workers, threads=job_threads(todo[0][0]), what=what)
    return folders


def ensure_baseline(cfg: Mapping[str, Any], model: str, *, progress: bool = True) -> Path:
    """The Charbonnier baseline of ``model`` with the profile's ``seed`` (trained on first use,
    cached afterwards; with ``baselines: release`` imported from the kit's release file)."""
    if cfg.get("baselines", "train") == "release":
        return ensure_baselines(cfg, [model], progress=progress)[model]
    return _ensure_run(baseline_config(cfg, model), progress=progress)


def ensure_scratch_run(cfg: Mapping[str, Any], model: str, *, progress: bool = True) -> Path:
    """The run of :func:`scratch_config`: ``model`` trained here from scratch with the profile's ``train``
    section (cached like every run)."""
    return _ensure_run(scratch_config(cfg, model), progress=progress)


def ensure_baselines(cfg: Mapping[str, Any], models: list[str], *, progress: bool = True) -> dict[str, Path]:
    """``{model: baseline run}`` of :func:`ensure_baseline` for each of ``models``, the pending ones
    trained side by side in the profile's :func:`workers` processes (the same runs as one by one), or,
    with ``baselines: release``, imported from the kit's release files (``import-checkpoint``'s path)."""
    if cfg.get("baselines", "train") == "release":
        out = {}
        for m in models:
            bcfg = baseline_config(cfg, m)
            out[m] = folder = run_dir(bcfg)
            if not run_is_done(folder):   # import-checkpoint's path (nriqa.study.checkpoint_import)
                write_imported_run({**bcfg, "model_size": str(cfg.get("model_size", "tiny"))}, folder,
                                   kit_release_file(m, str(cfg.get("model_size", "tiny"))))
        return out
    folders = train_jobs([(baseline_config(cfg, m), None) for m in models], n_workers=workers(cfg),
                         progress=progress)
    return dict(zip(models, folders))


Job = tuple[dict, "Path | None"]
"""One run to train: (resolved experiment config, ``init_from`` baseline folder or ``None``)."""


def _finetune_job(cfg: Mapping[str, Any], model: str, extra_terms: Mapping[str, Any], *, baseline: Path,
                 seed: int, name: str | None = None, train_overrides: Mapping[str, Any] | None = None) -> Job:
    """The :data:`Job` of one fine-tune of ``baseline`` with ``extra_terms`` and ``seed``."""
    return finetune_config(with_seed(cfg, seed), model, extra_terms, name=name,
                           train_overrides=train_overrides), baseline


def train_arms(cfg: Mapping[str, Any], arms: Mapping[str, Mapping[int, Job]], *,
               progress: bool = True) -> dict[str, dict[int, Path]]:
    """``{label: {seed: run}}`` of ``{label: {seed: job}}``: every job through one :func:`train_jobs`
    call with the profile's :func:`workers` (the arms are independent of each other)."""
    flat = [(label, s, job) for label, by_seed in arms.items() for s, job in by_seed.items()]
    folders = train_jobs([job for _, _, job in flat], n_workers=workers(cfg), progress=progress)
    out: dict[str, dict[int, Path]] = {label: {} for label in arms}
    for (label, s, _), folder in zip(flat, folders):
        out[label][s] = folder
    return out


def arm_jobs(cfg: Mapping[str, Any], model: str, extra_terms: Mapping[str, Any], *, baseline: Path,
             name: str | None = None, train_overrides: Mapping[str, Any] | None = None,
             arm_seeds: list[int] | None = None) -> dict[int, Job]:
    """``{seed: job}`` of one arm: a fine-tune of ``baseline`` per seed (default :func:`seeds`)."""
    return {s: _finetune_job(cfg, model, extra_terms, baseline=baseline, seed=s, name=name,
                            train_overrides=train_overrides)
            for s in (seeds(cfg) if arm_seeds is None else arm_seeds)}


def finetune_runs(cfg: Mapping[str, Any], model: str, grid: Mapping[str, Mapping[str, Any]] | None = None, *,
                  progress: bool = True) -> dict[str, dict[int, Path]]:
    """``{"baseline": {seed: run}, label: {seed: run, ...}}``: the baseline of ``model`` (trained
    once, with the profile's ``seed``), then every entry of ``grid`` (label -> extra terms;
    default: :func:`finetune_grid`) once per seed of :func:`seeds` (in grid then seed order, or in
    parallel with the profile's ``workers``)."""
    grid = finetune_grid(cfg) if grid is None else grid
    base = ensure_baseline(cfg, model, progress=progress)
    arms = {label: arm_jobs(cfg, model, terms, baseline=base) for label, terms in grid.items()}
    return {"baseline": {int(cfg.get("seed", 0)): base}, **train_arms(cfg, arms, progress=progress)}


def model_finetune_runs(cfg: Mapping[str, Any], grid: Mapping[str, Mapping[str, Any]] | None = None, *,
                        progress: bool = True) -> dict[str, dict[str, dict[int, Path]]]:
    """``{model: finetune_runs(cfg, model, grid)}`` for every model of :func:`finetune_models`
    (the first paper's design: the same grid fine-tuned on every VSR model)."""
    return {m: finetune_runs(cfg, m, grid, progress=progress) for m in finetune_models(cfg)}


def gan_name(model: str, discriminator: str, weight: float, extra: Mapping[str, Any] | None = None) -> str:
    """Experiment name of a GAN fine-tune: ``gan-<model>-<disc>-w<weight>`` (``+<slug>`` of the
    ``extra`` terms beside the profile's fidelity terms)."""
    return f"gan-{model}-{discriminator}-w{float(weight):g}" + (f"+{slug(extra)}" if extra else "")


def gan_arm_jobs(cfg: Mapping[str, Any], model: str, discriminator: str, weight: float, *,
                 baseline: Path) -> dict[int, Job]:
    """``{seed: job}`` of the GAN arm ``gan-<model>-<discriminator>-w<weight>``: fidelity terms +
    GAN term, GAN-run steps (:func:`gan_overrides`), one per seed of :func:`seeds`."""
    return arm_jobs(cfg, model, gan_terms(cfg, discriminator, weight), baseline=baseline,
                    name=gan_name(model, discriminator, weight), train_overrides=gan_overrides(cfg))


def fidelity_jobs(cfg: Mapping[str, Any], model: str, *, baseline: Path) -> dict[int, Job]:
    """``{seed: job}`` of the fidelity-only arm ``gan-<model>-fidelity-only`` (GAN-run steps, no
    GAN), one per seed of :func:`noise_seeds` (at least two: their spread measures the noise)."""
    return arm_jobs(cfg, model, fidelity_terms(cfg), baseline=baseline, name=f"gan-{model}-fidelity-only",
                    train_overrides=gan_overrides(cfg), arm_seeds=noise_seeds(cfg))


@dataclass(frozen=True)
class IqaJob:
    """One cached NR-IQA training (:func:`nriqa.iqa.train_iqa`, not installed as a kit measure):
    ``arch`` built with ``options``, trained with ``cfg``'s ``iqa`` section into ``folder``,
    initialised from the discriminator of the GAN run ``init_run`` (None: random initialisation);
    ``early_stop``: train to a validation plateau (:class:`nriqa.iqa.iqa_training.EarlyStop`)."""

    arch: str
    cfg: dict
    folder: Path
    init_run: Path | None = None
    options: dict = field(default_factory=dict)
    early_stop: EarlyStop | None = None


def _iqa_job(job: IqaJob, progress: bool = False) -> dict:
    init = None
    if job.init_run is not None and not iqa_run_is_done(job.folder):   # a finished run reads no checkpoint
        init = gan_discriminator(job.init_run).state
    return train_iqa(job.arch, job.cfg, job.folder, init_from=init, arch_options=job.options,
                     progress=progress, install=False, early_stop=job.early_stop)


def train_iqa_jobs(jobs: list[IqaJob], *, n_workers: int = 1, progress: bool = True) -> list[dict]:
    """The held-out metrics of every :class:`IqaJob`, in order: each trained unless its folder is
    done (:func:`nriqa.iqa.iqa_training.iqa_run_is_done`); jobs with the same folder train once.
    ``n_workers > 1`` trains the pending ones in that many spawned processes, as :func:`train_jobs`
    does (each training is seeded by its config, so the results are those of serial training)."""
    todo = list({j.folder: j for j in jobs if not iqa_run_is_done(j.folder)}.values())
    if n_workers > 1 and len(todo) > 1:
        def what(k: int, threads: int) -> str | None:
            return f"training {len(todo)} IQA models in {k} processes of {threads} thread(s)" if progress else None

        _in_pool(_iqa_job, [(job,) for job in todo], n_workers=n_workers, threads=job_threads(todo[0].cfg),
                what=what)
    else:
        for job in todo:
            _iqa_job(job, progress=progress)
    return [_iqa_job(job) for job in jobs]   # every folder is done now: this reads metrics.json


def kit_run_dir(cfg: Mapping[str, Any], model: str) -> Path:
    """``<RUN_ROOT>/<profile>/iqa/<arch>@<dataset>-<kit set>``: where the kit model of ``iqa.models`` entry
    ``model`` (``cnniqa@embedded-a``, or a bare arch on ``iqa.dataset``) of ``cfg`` trains (the folder
    ``python -m nriqa train-iqa`` uses too)."""
    name = kit_name(str(model).partition("@")[0], iqa_config(dict(cfg), model)["dataset"])
    return profile_root(cfg) / "iqa" / f"{name}-{kit_set_key(dict(cfg))}"


def _kit_iqa_job(arch: str, cfg: dict) -> None:
    train_iqa(arch, cfg, kit_run_dir(cfg, arch), progress=False)


def ensure_kit_iqa(cfg: Mapping[str, Any], *, progress: bool = True) -> pd.DataFrame:
    """Train (or load) the profile's kit NR-IQA models (``iqa.models``: ``<arch>@embedded-a`` on half a of
    the embedded distortion set, ``<arch>@embedded-b`` on half b, a bare arch on ``iqa.dataset``;
    :func:`kit_run_dir`), install them in the profile's kit set
    (:func:`nriqa.iqa.iqa_training.kit_set_key`) and register them under those names.
    Returns one row per measure: params, train_s, steps, held-out srcc / plcc / krcc (held-out sources;
    a half's model on its own kinds) and ``srcc_other_half`` (on the other half's kinds: kinds it never
    saw; NaN for a model of the whole set or a published one). Models not
    trained yet train in the profile's :func:`workers` processes (each seeded by its config: the
    models serial training gives)."""
    use_kit_set(kit_set_key(dict(cfg)))
    kit_models(dict(cfg))   # every entry names a known arch and dataset (ConfigError before any training)
    todo = [a for a in cfg["iqa"]["models"] if not iqa_run_is_done(kit_run_dir(cfg, a))]
    n_workers = workers(cfg)
    if n_workers > 1 and len(todo) > 1:
        c = iqa_config(dict(cfg), todo[0])
        if str(c["dataset"]).startswith("embedded"):   # build the distortion set's cache once, not per worker
            for split in ("train", "test"):
                load_iqa_dataset("embedded", None, split, crop=c["crop"], max_sources=c["max_sources"],
                                 progress=progress)

        def what(k: int, threads: int) -> str | None:
            return f"training kit IQA models {', '.join(todo)} in {k} processes of {threads} thread(s)" if progress \
                else None

        _in_pool(_kit_iqa_job, [(a, dict(cfg)) for a in todo], n_workers=n_workers, threads=job_threads(cfg), what=what)
    rows = []
    for arch in cfg["iqa"]["models"]:
        m = train_iqa(arch, dict(cfg), kit_run_dir(cfg, arch), progress=progress)
        overall = m["held_out"]["overall"]
        other = (m.get("held_out_other_half") or {}).get("overall", {})
        rows.append({"measure": m["name"], "params": m["params"], "train_s": m["train_seconds"],
                     "steps": m["steps"], **{k: overall[k] for k in ("srcc", "plcc", "krcc")},
                     "srcc_other_half": other.get("srcc", float("nan"))})
    register_kit_models()
    return pd.DataFrame(rows).set_index("measure")
