"""The training loop: read it top to bottom.

``train(cfg, run_dir)`` builds the generator (``nriqa.models``), the objective
(``nriqa.losses.Objective`` from ``cfg["train"]["objective"]``) and the deterministic sampler
(``nriqa.data.build_train_sampler``), then runs ``cfg["train"]["steps"]`` optimizer steps.

One step (``accumulate`` micro-batches, micro-batch ``j`` of step ``i`` is ``sampler.batch(i *
accumulate + j)``, sliced ``rank::world_size`` under DDP):

1. forward under bf16 autocast on CUDA (losses in float32), weighted sum of the objective's terms
   (plus ``gan`` = the adversarial generator loss when the objective has one), backward;
2. flow (SpyNet) gradients dropped while ``step < flow_freeze_steps``; gradient clipping;
3. a non-finite loss or gradient norm skips the update *on-device* (fused Adam's ``found_inf``,
   EMA weight 0) — the host looks at the flag only at log intervals, where ``max_nonfinite``
   consecutive skips stop the run with :class:`NonFiniteError`;
4. EMA update; discriminator update on the detached output (own optimizer).

Nothing in the step calls ``.item()``/``.cpu()``: loss sums, counters and gradient norms stay on
the device and are read once per ``log_every`` steps (and at checkpoints).

Best checkpoint: by the EMA of the training loss (``loss_ema_decay``, default 0.9) unless an
``evaluate(generator) -> float`` (lower is better) callable is passed; then by that, on the EMA
generator, at every checkpoint. Fine-tuning (``init_from=baseline_run``) starts from the
baseline's latest ``params_ema`` (``train.init_weights: params`` for the raw weights).
"""
from __future__ import annotations

import contextlib
import json
import math
import random
import resource
import sys
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
import yaml
from torch import nn

from nriqa import config as nconfig
from nriqa.paths import atomic_path, atomic_write_text

from . import distributed as ddp
from .balance import GradNormBalancer, grad_norm, project_conflicts, term_gradients
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state, step_checkpoints
from .ema import EMA
from .runs import CONFIG_FILE, DONE_FILE, LOG_FILE, _model_name, config_hash, read_config, read_log_rows
from .schedule import build_schedule

GAN_TERM = "gan"


class NonFiniteError(RuntimeError):
    """Raised when ``max_nonfinite`` consecutive steps had a NaN/Inf loss or gradient."""


@dataclass
class TrainConfig:
    """``cfg["train"]`` with defaults (``nriqa/profiles/demo.yaml`` sets the common ones).

    Beyond the demo profile's keys: ``tensorboard`` (write ``run_dir/tensorboard``; skipped with a
    warning when the package is missing), ``balance`` (``{reference, shares, every, ema, clip}``,
    used when ``objective`` has ``weights: gradnorm``; defaults from ``cfg["weights"]``:
    ``reference``, ``target_share``, ``balance_every``), ``project_conflicts`` (PCGrad-style, one
    process only), ``d_lr``/``d_optimizer`` (discriminator Adam), ``init_weights`` (``ema`` |
    ``params`` of the ``init_from`` baseline), ``loss_ema_decay`` (smoothing of the loss that picks
    ``best.pt``), ``ddp_find_unused``. ``grad_clip`` 0/null = off; ``gradnorm_every`` 0 = off;
    ``ckpt_every`` 0 = only at the end.
    """

    steps: int
    objective: dict
    optimizer: dict = field(default_factory=lambda: {"name": "adam", "lr": 1e-3})
    schedule: dict = field(default_factory=dict)
    flow_lr_mult: float = 1.0
    flow_freeze_steps: int = 0
    grad_clip: float | None = None
    accumulate: int = 1
    ema_decay: float = 0.999
    log_every: int = 10
    gradnorm_every: int = 0
    ckpt_every: int = 0
    keep_last: int = 2
    max_nonfinite: int = 5
    amp: Any = "auto"
    channels_last: Any = "auto"
    compile: bool = False
    tensorboard: bool = False
    balance: dict = field(default_factory=dict)
    project_conflicts: bool = False
    d_optimizer: dict = field(default_factory=dict)
    d_lr: float | None = None
    init_weights: str = "ema"
    loss_ema_decay: float = 0.9
    ddp_find_unused: bool = False

    @classmethod
    def from_cfg(cls, cfg: Mapping[str, Any]) -> "TrainConfig":
        if not isinstance(cfg, Mapping) or not isinstance(cfg.get("train"), Mapping):
            raise ValueError("cfg must be a resolved profile with a cfg['train'] mapping (see nriqa/profiles/demo.yaml)")
        t = dict(cfg["train"])
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(t) - known)
        if unknown:
            warnings.warn(f"train: ignoring unknown keys {unknown}", stacklevel=3)
        for k in unknown:
            t.pop(k)
        if "steps" not in t or "objective" not in t:
            raise ValueError("cfg['train'] needs 'steps' and 'objective'")
        out = cls(**t)
        out.check()
        return out

    def check(self) -> None:
        def bad(name, expect, got):
            raise ValueError(f"train.{name} must be {expect}, got {got!r}")

        if int(self.steps) < 1:
            bad("steps", "a positive integer", self.steps)
        if not isinstance(self.objective, Mapping) or not self.objective:
            bad("objective", "a non-empty mapping term -> weight", self.objective)
        if int(self.accumulate) < 1:
            bad("accumulate", ">= 1", self.accumulate)
        if int(self.log_every) < 1:
            bad("log_every", ">= 1", self.log_every)
        if int(self.max_nonfinite) < 1:
            bad("max_nonfinite", ">= 1", self.max_nonfinite)
        if self.grad_clip is not None and not float(self.grad_clip) >= 0:
            bad("grad_clip", "a number >= 0 (0 or null = off)", self.grad_clip)
        if str(self.optimizer.get("name", "adam")).lower() not in {"adam", "adamw"}:
            bad("optimizer.name", "'adam' or 'adamw'", self.optimizer.get("name"))
        if not float(self.optimizer.get("lr", 0)) > 0:
            bad("optimizer.lr", "> 0", self.optimizer.get("lr"))
        if self.init_weights not in {"ema", "params"}:
            bad("init_weights", "'ema' or 'params'", self.init_weights)


def _resolve_flag(value: Any, device: str) -> bool:
    return device.startswith("cuda") if value in (None, "auto") else bool(value)


def _flow_parameters(model: nn.Module) -> list[nn.Parameter]:
    """``nriqa.models.flow_parameters``; a model built while nriqa.models was never imported has none
    (this keeps a hand-made model from paying for the torchvision import)."""
    models = sys.modules.get("nriqa.models")
    return list(models.flow_parameters(model)) if models is not None else []


def _build_optimizer(opt_cfg: Mapping, groups: list[dict], device: str) -> torch.optim.Optimizer:
    name = str(opt_cfg.get("name", "adam")).lower()
    cls = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
    kw = dict(lr=float(opt_cfg.get("lr", 1e-3)), betas=tuple(float(b) for b in opt_cfg.get("betas", (0.9, 0.999))),
              eps=float(opt_cfg.get("eps", 1e-8)), weight_decay=float(opt_cfg.get("weight_decay", 0.0)))
    # fused kernels honour ``found_inf`` on-device: a non-finite step is skipped without a host sync
    return cls(groups, fused=True, **kw)


def _peak_memory_mb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _frames(video: torch.Tensor) -> torch.Tensor:
    """(B, T, 3, H, W) -> (B*T, 3, H, W)."""
    return video.flatten(0, 1) if video.dim() == 5 else video


def _json_value(v: float) -> float | None:
    return v if math.isfinite(v) else None


class _TensorBoard:
    def __init__(self, enabled: bool, run_dir: Path):
        self.writer = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except Exception:  # noqa: BLE001 — tensorboard missing or broken: skip cleanly
            warnings.warn("train.tensorboard: true but tensorboard is not installed; skipping it", stacklevel=2)
            return
        self.writer = SummaryWriter(str(run_dir / "tensorboard"))

    def log(self, row: Mapping[str, Any]) -> None:
        if self.writer is None:
            return
        for k, v in row.items():
            if k != "step" and isinstance(v, (int, float)) and v is not None:
                self.writer.add_scalar(k, v, row["step"])
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _baseline_record(init_from: Path, which_weights: str) -> tuple[dict, dict]:
    """(state_dict to start from, record of where it came from)."""
    init_from = Path(init_from)
    ckpt = load_checkpoint(init_from, "latest")
    key = "params_ema" if which_weights == "ema" and ckpt.get("params_ema") is not None else "params"
    try:
        base_hash = read_config(init_from).get("config_hash")
    except FileNotFoundError:
        base_hash = None
    record = {"path": str(init_from.resolve()), "step": int(ckpt["step"]), "weights": key,
              "config_hash": base_hash or ckpt.get("config_hash"), "done": (init_from / DONE_FILE).exists()}
    if not record["done"]:
        warnings.warn(f"init_from {init_from} has no done.json: starting from its step {record['step']}", stacklevel=3)
    return ckpt[key], record


def _truncate_log(run_dir: Path, step: int) -> None:
    """Drop log rows written after the checkpoint we resume from (they will be written again)."""
    path = run_dir / LOG_FILE
    if not path.exists():
        return
    rows = [r for r in read_log_rows(run_dir) if r.get("step", 0) <= step]
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def train(cfg: dict, run_dir: str | Path, *, init_from: str | Path | None = None, progress: bool = True,
          model: nn.Module | None = None, sampler: Any = None, objective: Any = None,
          evaluate: Callable[[nn.Module], float] | None = None) -> Path:
    """Train (or fine-tune, or resume) a generator; returns ``run_dir``.

    ``cfg``: a resolved profile (``nriqa.config.load_profile``): ``cfg["train"]`` the trainer
    knobs, ``cfg["data"]`` the sampler, ``cfg["model"]`` (else ``cfg["models"][0]``) and
    ``cfg["model_size"]`` the generator, ``cfg["seed"]``, ``cfg["device"]``.
    Returns at once when ``run_dir/done.json`` exists; resumes from ``checkpoints/latest.pt``
    when present (bit-identical on CPU to an uninterrupted run). ``init_from``: a baseline run
    folder whose latest EMA weights start this run (recorded in config.yaml and done.json).
    ``model``/``sampler``/``objective`` replace the ones ``cfg`` names (for experiments and
    tests); ``evaluate(generator) -> float`` (lower better) picks the best checkpoint.
    """
    run_dir = Path(run_dir)
    if (run_dir / DONE_FILE).exists():
        changed = training_changes(read_config(run_dir), cfg)
        if changed:
            warnings.warn(f"{run_dir} is a finished run trained with a different {', '.join(changed)} than "
                          "asked now; it is reused as it is. Delete the folder (or name the experiment "
                          "differently) to train with the new settings.", stacklevel=2)
        return run_dir
    tc = TrainConfig.from_cfg(cfg)
    cfg = dict(cfg)
    if model is None:
        name, size = _model_name(cfg)
        cfg["model"], cfg["model_size"] = name, size
    if init_from is not None and not (Path(init_from) / "checkpoints" / "latest.pt").exists():
        raise FileNotFoundError(f"init_from={init_from}: no checkpoints/latest.pt there (is it a finished baseline run?)")
    device = nconfig.resolve_device(cfg.get("device", "auto"))
    info = ddp.setup("cuda" if device.startswith("cuda") else "cpu")
    try:
        return _Trainer(cfg, tc, run_dir, device, info, progress=progress, init_from=init_from, model=model,
                        sampler=sampler, objective=objective, evaluate=evaluate).run()
    finally:
        ddp.teardown(info)


#: the config sections that decide what a run trains (other profile sections, e.g. the panel, do not)
TRAINING_KEYS = ("train", "data", "model", "model_size", "seed")


def training_changes(saved: Mapping[str, Any], cfg: Mapping[str, Any]) -> list[str]:
    """Names of the training-relevant sections (``TRAINING_KEYS``) that differ between a run's
    saved config and ``cfg`` (``model``/``model_size`` are compared only where ``cfg`` sets them)."""
    out = []
    for key in TRAINING_KEYS:
        if key in ("model", "model_size") and key not in cfg:
            continue
        a, b = saved.get(key), cfg.get(key)
        if json.dumps(a, sort_keys=True, default=str) != json.dumps(b, sort_keys=True, default=str):
            out.append(key)
    return out


class _Trainer:
    def __init__(self, cfg, tc: TrainConfig, run_dir: Path, device: str, info: ddp.DistInfo, *, progress, init_from,
                 model, sampler, objective, evaluate):
        self.cfg, self.tc, self.run_dir, self.info, self.evaluate = cfg, tc, run_dir, info, evaluate
        if device.startswith("cuda") and info.enabled:
            device = f"cuda:{info.local_rank}"
            torch.cuda.set_device(device)
        self.device = device
        self.progress = progress and info.is_main
        self.amp = _resolve_flag(tc.amp, device)
        self.channels_last = _resolve_flag(tc.channels_last, device)
        seed = int(cfg.get("seed", 0))
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)
        self.hash = config_hash(cfg)

        # --- components -------------------------------------------------------------------------
        if sampler is None:
            from nriqa.data import build_train_sampler
            sampler = build_train_sampler(cfg["data"], seed)
        if objective is None:
            from nriqa.losses import Objective
            objective = Objective(dict(tc.objective), device=device)
        if model is None:
            from .runs import build_generator
            model = build_generator(cfg)
        self.sampler, self.objective = sampler, objective
        self.gen = model.to(device)
        if self.channels_last:  # 4-D conv weights only (Module.to would reject the 5-D ones of Conv3d)
            for m in self.gen.modules():
                if isinstance(m, nn.Conv2d):
                    m.to(memory_format=torch.channels_last)
        self.init_record = None
        if init_from is not None:
            state, self.init_record = _baseline_record(Path(init_from), tc.init_weights)
            self.gen.load_state_dict(state)
        self.gen.train()

        flow_ids = {id(p) for p in _flow_parameters(self.gen)}
        self.params = [p for p in self.gen.parameters() if p.requires_grad]
        self.flow = [p for p in self.params if id(p) in flow_ids]
        main = [p for p in self.params if id(p) not in flow_ids]
        self.lr_mults = [1.0] + ([float(tc.flow_lr_mult)] if self.flow else [])
        groups = [{"params": main}] + ([{"params": self.flow}] if self.flow else [])
        self.opt = _build_optimizer(tc.optimizer, groups, device)
        self.schedule = build_schedule(tc.schedule, float(tc.optimizer.get("lr", 1e-3)), int(tc.steps))
        self.ema = EMA(self.gen, float(tc.ema_decay))

        self.adv = getattr(objective, "adversarial", None)
        self.disc, self.d_opt = None, None
        if self.adv is not None:
            self.disc = self.adv.discriminator.to(device).train()
            d_cfg = {"name": "adam", "lr": tc.d_lr or tc.optimizer.get("lr", 1e-4), "betas": [0.9, 0.99],
                     **dict(tc.d_optimizer)}
            self.d_params = [p for p in self.disc.parameters()]
            self.d_opt = _build_optimizer(d_cfg, [{"params": self.d_params}], device)
            self.disc.requires_grad_(False)

        weights = {k: float(v) for k, v in dict(objective.weights).items()}
        if self.adv is not None:
            weights[GAN_TERM] = float(self.adv.weight)
        self.balancer = None
        spec_balancing = getattr(objective, "balancing", None) or dict(tc.objective).get("weights")
        if spec_balancing == "gradnorm":
            w = cfg.get("weights") if isinstance(cfg.get("weights"), Mapping) else {}  # the profile's notebook-04 knobs
            b = {"reference": w.get("reference", "charbonnier"), "shares": w.get("target_share", 0.1),
                 "every": w.get("balance_every", 10), "ema": 0.9, "clip": [1e-6, 1e6], **tc.balance}
            self.balancer = GradNormBalancer(weights, reference=b["reference"], shares=b["shares"], every=b["every"],
                                             ema=b["ema"], clip=tuple(b["clip"]), device=device)
            self.weights = self.balancer.weights
        elif spec_balancing not in (None, "fixed"):
            raise ValueError(f"train.objective.weights must be 'gradnorm' (or absent), got {spec_balancing!r}")
        else:
            self.weights = {k: torch.tensor(v, device=device) for k, v in weights.items()}
        self.reference = self.balancer.reference if self.balancer is not None else tc.balance.get("reference", "charbonnier")
        if tc.project_conflicts:
            if info.enabled:
                raise NotImplementedError("train.project_conflicts is not supported under DDP; run it on one process")
            if self.reference not in weights:
                raise ValueError(f"train.project_conflicts needs the fidelity term {self.reference!r} "
                                 f"(train.balance.reference) in the objective {sorted(weights)}")

        self.forward = self.gen
        if info.enabled:
            from torch.nn.parallel import DistributedDataParallel
            self.forward = DistributedDataParallel(
                self.gen, device_ids=[info.local_rank] if device.startswith("cuda") else None,
                find_unused_parameters=bool(tc.ddp_find_unused))
        if tc.compile:
            self.forward = torch.compile(self.forward)

        # --- on-device bookkeeping ------------------------------------------------------------------
        z = lambda: torch.zeros((), device=device)  # noqa: E731
        self.loss_ema, self.loss_ema_seen = z(), z()
        self.nonfinite_run, self.nonfinite_max = z(), z()
        self.best_score, self.best_step = math.inf, None
        self._reset_accumulators()
        self.last_norms: dict[str, torch.Tensor] | None = None
        self.start_step = 0
        self._validated = False
        probe = self.sampler.batch(0)["lr"]  # the sampler is deterministic in (seed, step): no RNG consumed
        self.sampler_shape = (int(probe.shape[0]), int(probe.shape[1]))
        self._resume_or_start()

    # --- bookkeeping --------------------------------------------------------------------------------
    def _reset_accumulators(self) -> None:
        z = lambda: torch.zeros((), device=self.device)  # noqa: E731
        self.acc = {"total": z(), "grad_norm": z(), "finite": z(), "nonfinite": z(), "d_loss": z(), "conflict": z()}
        self.acc_terms: dict[str, torch.Tensor] = {}
        self.acc_steps = 0
        self.norms_measured = False

    def _accumulator_state(self) -> dict:
        return {"acc": {k: v.cpu() for k, v in self.acc.items()},
                "acc_terms": {k: v.cpu() for k, v in self.acc_terms.items()}, "acc_steps": self.acc_steps}

    def _state(self, step: int) -> dict:
        state = {
            "step": step, "params": self.gen.state_dict(), "params_ema": self.ema.state_dict(),
            "optimizer": self.opt.state_dict(), "scheduler": {"name": "cosine_restarts", "step": step,
                                                             **self.schedule.__dict__},
            "rng": rng_state(), "config_hash": self.hash, "model": self.cfg.get("model"),
            "model_size": self.cfg.get("model_size"),
            "trainer": {"loss_ema": self.loss_ema.cpu(), "loss_ema_seen": self.loss_ema_seen.cpu(),
                        "nonfinite_run": self.nonfinite_run.cpu(), "nonfinite_max": self.nonfinite_max.cpu(),
                        "best_score": self.best_score, "best_step": self.best_step,
                        **self._accumulator_state()},
            "weights": {k: v.cpu() for k, v in self.weights.items()},
        }
        if self.balancer is not None:
            state["balancer"] = self.balancer.state_dict()
        if self.disc is not None:
            state["discriminator"] = self.disc.state_dict()
            state["d_optimizer"] = self.d_opt.state_dict()
        return state

    def _resume_or_start(self) -> None:
        run_dir, tc = self.run_dir, self.tc
        latest = run_dir / "checkpoints" / "latest.pt"
        if latest.exists():
            ck = load_checkpoint(run_dir, "latest", map_location=self.device)
            if ck.get("config_hash") != self.hash:
                saved = read_config(run_dir)
                saved.pop("config_hash", None), saved.pop("init_from", None)
                ignore = {"steps"}
                old_t, new_t = dict(saved.get("train", {})), dict(self.cfg.get("train", {}))
                changed = [k for k in set(old_t) | set(new_t) if k not in ignore and old_t.get(k) != new_t.get(k)]
                changed += [k for k in set(saved) | set(self.cfg) if k != "train" and saved.get(k) != self.cfg.get(k)]
                if changed:
                    warnings.warn(f"resuming {run_dir} with a changed config ({sorted(changed)})", stacklevel=4)
            self.gen.load_state_dict(ck["params"])
            self.ema.load_state_dict(ck["params_ema"])
            self.opt.load_state_dict(ck["optimizer"])
            for k, v in ck.get("weights", {}).items():
                if k in self.weights:
                    self.weights[k] = v.to(self.device)
            if self.balancer is not None and "balancer" in ck:
                self.balancer.load_state_dict(ck["balancer"])
                self.weights = self.balancer.weights
            if self.disc is not None:
                self.disc.load_state_dict(ck["discriminator"])
                self.d_opt.load_state_dict(ck["d_optimizer"])
            t = ck["trainer"]
            self.loss_ema, self.loss_ema_seen = t["loss_ema"].to(self.device), t["loss_ema_seen"].to(self.device)
            self.nonfinite_run, self.nonfinite_max = (t["nonfinite_run"].to(self.device),
                                                      t["nonfinite_max"].to(self.device))
            self.best_score, self.best_step = t["best_score"], t["best_step"]
            self.acc = {k: v.to(self.device) for k, v in t["acc"].items()}
            self.acc_terms = {k: v.to(self.device) for k, v in t["acc_terms"].items()}
            self.acc_steps = t["acc_steps"]
            self.start_step = int(ck["step"])
            if self.info.enabled and not self.info.is_main:
                seed = int(self.cfg.get("seed", 0)) * 1_000_003 + self.info.rank * 7919 + self.start_step
                torch.manual_seed(seed)
            else:
                set_rng_state(ck["rng"])
            if self.info.is_main:
                _truncate_log(run_dir, self.start_step)
            saved_cfg = read_config(run_dir)
            self.init_record = saved_cfg.get("init_from")
            return
        if self.info.enabled and not self.info.is_main:
            torch.manual_seed(int(self.cfg.get("seed", 0)) * 1_000_003 + self.info.rank * 7919)
        if self.info.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            record = dict(self.cfg)
            record["config_hash"] = self.hash
            if self.init_record is not None:
                record["init_from"] = self.init_record
            atomic_write_text(run_dir / CONFIG_FILE, nconfig.dump(record))
            (run_dir / LOG_FILE).unlink(missing_ok=True)

    # --- one optimizer step ---------------------------------------------------------------------------
    def _set_lr(self, step: int) -> float:
        lr = self.schedule(step)
        for group, mult in zip(self.opt.param_groups, self.lr_mults):
            group["lr"] = lr * mult
        return lr

    def _batch(self, index: int) -> dict:
        batch = ddp.shard(self.sampler.batch(index), self.info)
        return {k: (v.to(self.device, non_blocking=True) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}

    def _terms(self, pred: torch.Tensor, hr: torch.Tensor) -> dict[str, torch.Tensor]:
        """Unweighted terms (+ ``gan``). The first call goes through ``objective.terms`` (which checks
        shapes and values, one host sync); later calls use its unvalidated term modules
        (``objective.losses``) so the step stays sync-free and a NaN reaches the non-finite guard."""
        losses = getattr(self.objective, "losses", None)
        if self._validated and isinstance(losses, Mapping):
            terms = {name: module(pred, hr) for name, module in losses.items()}
        else:
            terms = dict(self.objective.terms(pred, hr))
            self._validated = True
        if self.adv is not None:
            terms[GAN_TERM] = self.adv.generator_loss(_frames(pred), _frames(hr))
        return terms

    def _step(self, step: int) -> None:
        tc, accum = self.tc, int(self.tc.accumulate)
        self._set_lr(step)
        self.opt.zero_grad(set_to_none=True)
        measure = bool(tc.gradnorm_every) and step % int(tc.gradnorm_every) == 0
        if self.balancer is not None and self.balancer.due(step):
            measure = True
        total_sum = torch.zeros((), device=self.device)
        term_sums: dict[str, torch.Tensor] = {}
        fakes = []
        conflict = torch.zeros((), device=self.device)
        for micro in range(accum):
            batch = self._batch(step * accum + micro)
            sync = (self.forward.no_sync() if self.info.enabled and micro < accum - 1 and hasattr(self.forward, "no_sync")
                    else contextlib.nullcontext())
            with sync:
                with torch.autocast(device_type=self.device.split(":")[0], dtype=torch.bfloat16, enabled=self.amp):
                    pred = self.forward(batch["lr"])
                pred = pred.float()
                terms = self._terms(pred, batch["hr"])
                total = sum(self.weights[k] * v for k, v in terms.items())
                if measure and micro == 0:
                    grads = term_gradients(terms, self.params)
                    self.last_norms = {k: grad_norm(g).to(self.device) for k, g in grads.items()}
                    self.norms_measured = True
                    if self.balancer is not None and self.balancer.due(step):
                        self.balancer.update(self.last_norms)
                    del grads
                if tc.project_conflicts:
                    conflict = conflict + self._projected_backward(terms, accum)
                else:
                    (total / accum).backward()
            total_sum = total_sum + total.detach() / accum
            for k, v in terms.items():
                term_sums[k] = term_sums.get(k, 0) + v.detach() / accum
            if self.disc is not None:
                fakes.append((_frames(pred.detach()), _frames(batch["hr"])))
        if step < int(tc.flow_freeze_steps):
            for p in self.flow:
                p.grad = None
        clip = float(tc.grad_clip) if tc.grad_clip else math.inf
        gnorm = torch.nn.utils.clip_grad_norm_(self.params, clip, foreach=True)
        finite = self._finite_on_all_ranks(total_sum, gnorm)
        self.opt.found_inf = (~finite).float()
        self.opt.step()
        self.ema.update(self.gen, torch.where(finite, 1.0 - self.ema.decay, 0.0))
        d_loss = self._discriminator_step(fakes) if self.disc is not None else torch.zeros((), device=self.device)

        # bookkeeping, all on-device
        f = finite.float()
        self.acc["total"] += torch.where(finite, total_sum, 0.0)
        self.acc["grad_norm"] += torch.where(finite, gnorm, 0.0)
        self.acc["finite"] += f
        self.acc["nonfinite"] += 1 - f
        self.acc["d_loss"] += torch.where(torch.isfinite(d_loss), d_loss, 0.0)
        self.acc["conflict"] += conflict / accum
        for k, v in term_sums.items():
            self.acc_terms[k] = self.acc_terms.get(k, torch.zeros((), device=self.device)) + torch.where(finite, v, 0.0)
        self.acc_steps += 1
        self.nonfinite_run = (self.nonfinite_run + 1) * (1 - f)
        self.nonfinite_max = torch.maximum(self.nonfinite_max, self.nonfinite_run)
        d = float(tc.loss_ema_decay)
        blended = torch.where(self.loss_ema_seen > 0, d * self.loss_ema + (1 - d) * total_sum, total_sum)
        self.loss_ema = torch.where(finite, blended, self.loss_ema)
        self.loss_ema_seen = self.loss_ema_seen + f

    def _finite_on_all_ranks(self, loss: torch.Tensor, norm: torch.Tensor) -> torch.Tensor:
        """On-device flag: ``loss`` and ``norm`` finite here and, under DDP, on every rank."""
        finite = torch.isfinite(loss) & torch.isfinite(norm)
        if self.info.enabled:
            flag = finite.float()
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
            finite = flag > 0
        return finite

    def _projected_backward(self, terms: dict[str, torch.Tensor], accum: int) -> torch.Tensor:
        """PCGrad-style: quality terms' gradients lose their component opposing the reference's."""
        weighted = {k: self.weights[k] * v / accum for k, v in terms.items()}
        grads = term_gradients(weighted, self.params, retain_graph=True)
        ref = grads[self.reference]
        conflicts = torch.zeros((), device=self.device)
        summed = [g.clone() if g is not None else None for g in ref]
        for k, g in grads.items():
            if k == self.reference:
                continue
            g, c = project_conflicts(g, ref)
            conflicts = conflicts + c.to(self.device)
            summed = [a if b is None else (b.clone() if a is None else a + b) for a, b in zip(summed, g)]
        for p, g in zip(self.params, summed):
            if g is not None:
                p.grad = g if p.grad is None else p.grad + g
        return conflicts / max(1, len(grads) - 1)

    def _discriminator_step(self, fakes: list) -> torch.Tensor:
        self.disc.requires_grad_(True)
        self.d_opt.zero_grad(set_to_none=True)
        d_sum = torch.zeros((), device=self.device)
        from nriqa.losses import discriminator_loss

        for fake, real in fakes:  # the functional loss: no per-step range check (host sync) on ``real``
            loss = discriminator_loss(self.disc(fake), self.disc(real), self.adv.loss) / len(fakes)
            loss.backward()
            d_sum = d_sum + loss.detach()
        ddp.average_gradients(self.d_params, self.info)
        d_norm = grad_norm([p.grad for p in self.d_params]).to(self.device)
        finite = self._finite_on_all_ranks(d_sum, d_norm)
        self.d_opt.found_inf = (~finite).float()
        self.d_opt.step()
        self.disc.requires_grad_(False)
        return d_sum

    # --- logging, checking, checkpointing (host syncs live only here) -----------------------------------
    def _log_row(self, step: int, seconds: float, frames: int) -> dict:
        names = list(self.acc_terms)
        norm_names = list(self.last_norms) if (self.norms_measured and self.last_norms) else []
        values = torch.stack([self.acc[k].float() for k in self.acc] + [self.acc_terms[k].float() for k in names]
                             + [self.weights[k].float() for k in self.weights]
                             + [self.last_norms[k].float().to(self.device) for k in norm_names]).tolist()
        it = iter(values)
        acc = {k: next(it) for k in self.acc}
        term_vals = {k: next(it) for k in names}
        weight_vals = {k: next(it) for k in self.weights}
        norm_vals = {k: next(it) for k in norm_names}
        n_ok = max(acc["finite"], 1.0)
        row: dict[str, Any] = {"step": step, "total": _json_value(acc["total"] / n_ok) if acc["finite"] else None}
        for k in names:
            row[f"loss/{k}"] = _json_value(term_vals[k] / n_ok) if acc["finite"] else None
        for k, v in weight_vals.items():
            row[f"weight/{k}"] = v
        for k, v in norm_vals.items():
            row[f"gradnorm/{k}"] = _json_value(v)
        row["lr"] = self.opt.param_groups[0]["lr"]
        if self.flow:
            row["lr_flow"] = self.opt.param_groups[1]["lr"] if step - 1 >= int(self.tc.flow_freeze_steps) else 0.0
        row["grad_norm"] = _json_value(acc["grad_norm"] / n_ok) if acc["finite"] else None
        row["nonfinite"] = int(acc["nonfinite"])
        if self.disc is not None:
            row["d_loss"] = _json_value(acc["d_loss"] / max(self.acc_steps, 1))
        if self.tc.project_conflicts:
            row["conflict_rate"] = acc["conflict"] / max(self.acc_steps, 1)
        row["frames_per_s"] = frames / seconds if seconds > 0 else None
        row["peak_mem_mb"] = _peak_memory_mb(self.device)
        return row

    def _check_nonfinite(self, step: int) -> None:
        worst = int(self.nonfinite_max.item())
        if worst >= int(self.tc.max_nonfinite):
            good = step_checkpoints(self.run_dir)
            where = f"the last good checkpoint is {self.run_dir / 'checkpoints' / 'latest.pt'} (step {good[-1]})" \
                if good else "no checkpoint was written yet"
            raise NonFiniteError(
                f"training stopped at step {step}: {worst} consecutive steps had a non-finite loss or gradient "
                f"(train.max_nonfinite={self.tc.max_nonfinite}); those updates were skipped and {where}. "
                f"Lower train.optimizer.lr, add train.grad_clip, or check the objective's terms in {LOG_FILE}.")
        self.nonfinite_max = self.nonfinite_run.clone()

    def _checkpoint(self, step: int) -> None:
        if self.evaluate is not None:
            score = float(self.evaluate(self.ema.module))
            self.ema.module.eval()
        else:
            score = float(self.loss_ema.item()) if self.loss_ema_seen.item() > 0 else math.inf
        is_best = math.isfinite(score) and score < self.best_score
        if is_best:
            self.best_score, self.best_step = score, step
        save_checkpoint(self.run_dir, self._state(step), keep_last=int(self.tc.keep_last), is_best=is_best)

    def run(self) -> Path:
        from tqdm.auto import tqdm

        tc, total_steps = self.tc, int(self.tc.steps)
        tb = _TensorBoard(bool(tc.tensorboard) and self.info.is_main, self.run_dir)
        bar = tqdm(total=total_steps, initial=self.start_step, disable=not self.progress, desc="train",
                   dynamic_ncols=True)
        t0 = time.perf_counter()
        started = t0
        frames = 0
        try:
            for step in range(self.start_step, total_steps):
                self._step(step)
                done = step + 1
                b, t = self.sampler_shape
                frames += b * t * int(tc.accumulate)
                bar.update(1)
                if done % int(tc.log_every) == 0 or done == total_steps:
                    now = time.perf_counter()
                    if self.info.is_main:
                        row = self._log_row(done, now - t0, frames)
                        if self.balancer is not None:
                            self.objective.weights.update(
                                {k: v for k, v in self.balancer.weights_as_floats().items() if k != GAN_TERM})
                        with open(self.run_dir / LOG_FILE, "a") as fh:
                            fh.write(json.dumps(row) + "\n")
                        tb.log(row)
                        bar.set_postfix(loss=f"{row['total']:.4g}" if row["total"] is not None else "nan",
                                        skipped=row["nonfinite"])
                    self._check_nonfinite(done)
                    self._reset_accumulators()
                    frames = 0
                if (tc.ckpt_every and done % int(tc.ckpt_every) == 0) or done == total_steps:
                    self._check_nonfinite(done)
                    if self.info.is_main:
                        self._checkpoint(done)
                if frames == 0:  # the throughput clock restarts after logging and checkpointing
                    t0 = time.perf_counter()
        finally:
            bar.close()
            tb.close()
        if self.info.is_main:
            rec = {"step": total_steps, "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   "seconds": round(time.perf_counter() - started, 3), "config_hash": self.hash,
                   "best_step": self.best_step, "best_score": _json_value(self.best_score),
                   "best_by": "evaluate" if self.evaluate is not None else "train_loss_ema",
                   "loss_ema": _json_value(float(self.loss_ema.item())), "world_size": self.info.world_size,
                   "init_from": self.init_record}
            atomic_write_text(self.run_dir / DONE_FILE, json.dumps(rec, indent=2))
        return self.run_dir
