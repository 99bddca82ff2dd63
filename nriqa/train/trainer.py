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

Best checkpoint: by the EMA of the training loss (``loss_ema_decay``) unless ``evaluate(generator)
-> float`` (lower better) is passed. Fine-tuning (``init_from``) starts from the baseline's latest
``params_ema`` (``train.init_weights: params`` for the raw weights). Beside it: :mod:`.config`,
:mod:`.optim` (fused Adam, the skipped step), :mod:`.state` (tally, checkpoints, resume), :mod:`.log`.
"""
from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn
from tqdm.auto import tqdm

from nriqa.compute import resolve_device, use_job_numerics
from nriqa.data import build_train_sampler
from nriqa.errors import ConfigError
from nriqa.losses import Objective, discriminator_loss

from . import distributed as ddp
from .balance import grad_norm, loss_weights, projected_backward, term_norms
from .checkpoint import seed_all
from .ema import EMA
from .generators import build_generator
from .lock import claim_run_folder
from .log import TensorBoard, append_row, log_row
from .optim import build_optimizer, step_unless_nonfinite
from .run_files import (
    DONE_FILE,
    TRAINING_KEYS,
    config_hash,
    keyed_changes,
    keyed_config,
    model_name,
    read_config,
    run_key,
    training_changes,
)
from .schedule import build_schedule
from .state import NonFiniteError, Tally, baseline_record, checkpoint, resume_or_start, stop_if_nonfinite, write_done
from .train_config import GAN_TERM, TrainConfig, resolve_flag

__all__ = ["train", "NonFiniteError", "TrainConfig", "training_changes", "TRAINING_KEYS", "GAN_TERM"]


def train(cfg: dict, run_dir: str | Path, *, init_from: str | Path | None = None, progress: bool = True,
          model: nn.Module | None = None, sampler: Any = None, objective: Any = None,
          evaluate: Callable[[nn.Module], float] | None = None) -> Path:
    """Train (or fine-tune, or resume) a generator; returns ``run_dir``.

    ``cfg``: a resolved profile (``nriqa.config.load_profile``): ``cfg["train"]`` the trainer
    knobs, ``cfg["data"]`` the sampler, ``cfg["model"]`` (else ``cfg["models"][0]``) and
    ``cfg["model_size"]`` the generator, ``cfg["seed"]``, ``cfg["device"]``.
    Returns at once when ``run_dir/done.json`` exists; resumes from ``checkpoints/latest.pt`` (else
    the newest intact ``step_*.pt``) when present (bit-identical on CPU to an uninterrupted run);
    ``run_dir/train.lock`` keeps a second trainer out (``RunLockedError``). ``init_from``: a baseline run
    folder whose latest EMA weights start this run (recorded in config.yaml and done.json).
    ``model``/``sampler``/``objective`` replace the ones ``cfg`` names (for experiments and
    tests); ``evaluate(generator) -> float`` (lower better) picks the best checkpoint.
    """
    run_dir = Path(run_dir)
    if (run_dir / DONE_FILE).exists():
        changed = keyed_changes(read_config(run_dir), cfg, init_from) if model is None else []
        if changed:
            raise ConfigError(f"{run_dir} is a finished run trained with a different {', '.join(changed)} than "
                              "asked now. Pass another run folder (the study names each folder by what "
                              "changes its result: nriqa.study.runs.run_dir), or delete this one.")
        return run_dir
    tc = TrainConfig.from_cfg(cfg)
    cfg = dict(cfg)
    if model is None:
        cfg["model"], cfg["model_size"] = model_name(cfg)
    if init_from is not None and not (Path(init_from) / "checkpoints" / "latest.pt").exists():
        raise FileNotFoundError(f"init_from={init_from}: no checkpoints/latest.pt there "
                                "(is it a finished baseline run?)")
    device = resolve_device(cfg.get("device", "auto"))
    use_job_numerics({**cfg, "device": device})  # the profile's threads, never the machine's load
    info = ddp.setup("cuda" if device.startswith("cuda") else "cpu")
    try:  # one trainer per run folder (rank 0 holds the lock for all ranks)
        with claim_run_folder(run_dir) if info.is_main else contextlib.nullcontext():
            return _Trainer(cfg, tc, run_dir, device, info, progress=progress, init_from=init_from, model=model,
                            sampler=sampler, objective=objective, evaluate=evaluate).run()
    finally:
        ddp.teardown(info)


def _frames(video: torch.Tensor) -> torch.Tensor:
    """(B, T, 3, H, W) -> (B*T, 3, H, W)."""
    return video.flatten(0, 1) if video.dim() == 5 else video


class _Trainer:
    def __init__(self, cfg, tc: TrainConfig, run_dir: Path, device: str, info: ddp.DistInfo, *, progress, init_from,
                 model, sampler, objective, evaluate):
        self.cfg, self.tc, self.run_dir, self.info, self.evaluate = cfg, tc, run_dir, info, evaluate
        if device.startswith("cuda") and info.enabled:  # one process per GPU
            device = f"cuda:{info.local_rank}"
            torch.cuda.set_device(device)
        self.device = device
        self.progress = progress and info.is_main
        self.amp, self.channels_last = resolve_flag(tc.amp, device), resolve_flag(tc.channels_last, device)
        seed = int(cfg.get("seed", 0))
        seed_all(seed)
        self.hash = config_hash(cfg)
        self.key = run_key(cfg, init_from) if model is None else None  # (a hand-made model has no name to key)
        self.keyed = keyed_config(cfg, init_from) if model is None else None

        # --- generator, objective, data ----------------------------------------------------------------
        self.sampler = sampler if sampler is not None else build_train_sampler(cfg["data"], seed)
        self.objective = objective if objective is not None else Objective(dict(tc.objective), device=device)
        self.gen = (model if model is not None else build_generator(cfg)).to(device)
        if self.channels_last:  # 4-D conv weights only (Module.to would reject the 5-D ones of Conv3d)
            for m in self.gen.modules():
                if isinstance(m, nn.Conv2d):
                    m.to(memory_format=torch.channels_last)
        self.init_record = None
        if init_from is not None:
            state, self.init_record = baseline_record(Path(init_from), tc.init_weights)
            self.gen.load_state_dict(state)
        self.gen.train()

        # --- optimizer (flow network in its own group, at flow_lr_mult x the rate), schedule, EMA ---------
        flow_ids = {id(p) for p in _flow_parameters(self.gen)}
        self.params = [p for p in self.gen.parameters() if p.requires_grad]
        self.flow = [p for p in self.params if id(p) in flow_ids]
        main = [p for p in self.params if id(p) not in flow_ids]
        self.lr_mults = [1.0] + ([float(tc.flow_lr_mult)] if self.flow else [])
        self.opt = build_optimizer(tc.optimizer, [{"params": main}] + ([{"params": self.flow}] if self.flow else []))
        self.schedule = build_schedule(tc.schedule, float(tc.optimizer.get("lr", 1e-3)), int(tc.steps))
        self.ema = EMA(self.gen, float(tc.ema_decay), warmup=bool(tc.ema_warmup))

        # --- adversarial term: discriminator with its own optimizer, frozen outside its own update -------
        self.adv = getattr(self.objective, "adversarial", None)
        self.disc, self.d_opt = None, None
        if self.adv is not None:
            self.disc = self.adv.discriminator.to(device).train()
            self.d_params = list(self.disc.parameters())
            self.d_opt = build_optimizer(tc.d_optimizer_cfg(), [{"params": self.d_params}])
            self.disc.requires_grad_(False)

        # --- loss weights: fixed, or moved on-device by the gradient-norm balancer -----------------------
        weights = {k: float(v) for k, v in dict(self.objective.weights).items()}
        if self.adv is not None:
            weights[GAN_TERM] = float(self.adv.weight)
        balancing = getattr(self.objective, "balancing", None) or dict(tc.objective).get("weights")
        profile_knobs = cfg.get("weights") if isinstance(cfg.get("weights"), Mapping) else {}
        self.weights, self.balancer = loss_weights(weights, balancing, tc.balance, profile_knobs, device)
        self.reference = (self.balancer.reference if self.balancer is not None
                          else tc.balance.get("reference", "charbonnier"))
        if tc.project_conflicts:
            if info.enabled:
                raise NotImplementedError("train.project_conflicts is not supported under DDP; run it on one process")
            if self.reference not in weights:
                raise ConfigError(f"train.project_conflicts needs the fidelity term {self.reference!r} "
                                  f"(train.balance.reference) in the objective {sorted(weights)}")

        self.forward = ddp.wrap(self.gen, info, device, bool(tc.ddp_find_unused))
        if tc.compile:
            self.forward = torch.compile(self.forward)

        self.tally = Tally(device, tc.loss_ema_decay)
        self._validated = False
        probe = self.sampler.batch(0)["lr"]  # the sampler is deterministic in (seed, step): no RNG consumed
        self.sampler_shape = (int(probe.shape[0]), int(probe.shape[1]))
        self.start_step = resume_or_start(self)

    # --- one optimizer step (no host sync in here) -------------------------------------------------------
    def _step(self, step: int) -> None:
        tc, accum = self.tc, int(self.tc.accumulate)
        lr = self.schedule(step)
        for group, mult in zip(self.opt.param_groups, self.lr_mults):
            group["lr"] = lr * mult
        self.opt.zero_grad(set_to_none=True)
        balance_now = self.balancer is not None and self.balancer.due(step)
        measure = (bool(tc.gradnorm_every) and step % int(tc.gradnorm_every) == 0) or balance_now
        total_sum, term_sums, fakes = torch.zeros((), device=self.device), {}, []
        conflict = torch.zeros((), device=self.device)
        for micro in range(accum):
            batch = ddp.shard(self.sampler.batch(step * accum + micro), self.info)
            batch = {k: (v.to(self.device, non_blocking=True) if isinstance(v, torch.Tensor) else v)
                     for k, v in batch.items()}
            # under DDP, gradients are all-reduced once, on the last micro-batch
            defer_sync = self.info.enabled and micro < accum - 1 and hasattr(self.forward, "no_sync")
            with self.forward.no_sync() if defer_sync else contextlib.nullcontext():
                with torch.autocast(device_type=self.device.split(":")[0], dtype=torch.bfloat16, enabled=self.amp):
                    pred = self.forward(batch["lr"])
                pred = pred.float()  # the losses see float32, whatever autocast computed in
                terms = self._terms(pred, batch["hr"])
                total = sum(self.weights[k] * v for k, v in terms.items())
                if measure and micro == 0:  # unweighted terms' gradient norms, on the first micro-batch
                    self.tally.norms = term_norms(terms, self.params, self.device)
                    self.tally.norms_measured = True
                    if balance_now:
                        self.balancer.update(self.tally.norms)
                if tc.project_conflicts:
                    conflict = conflict + projected_backward(terms, self.weights, self.params, self.reference,
                                                             accum, self.device)
                else:
                    (total / accum).backward()
            total_sum = total_sum + total.detach() / accum
            for k, v in terms.items():
                term_sums[k] = term_sums.get(k, 0) + v.detach() / accum
            if self.disc is not None:  # the discriminator learns after the generator's update, on these
                fakes.append((_frames(pred.detach()), _frames(batch["hr"])))
        if step < int(tc.flow_freeze_steps):
            for p in self.flow:
                p.grad = None
        clip = float(tc.grad_clip) if tc.grad_clip else math.inf  # inf: measure the norm, clip nothing
        gnorm = torch.nn.utils.clip_grad_norm_(self.params, clip, foreach=True)
        finite = ddp.all_finite(total_sum, gnorm, self.info)
        step_unless_nonfinite(self.opt, finite)
        self.ema.update(self.gen, finite)  # not finite: EMA and its counter unchanged
        d_loss = self._discriminator_step(fakes) if self.disc is not None else torch.zeros((), device=self.device)
        self.tally.add_step(finite, total_sum, gnorm, d_loss, conflict / accum, term_sums)

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

    def _discriminator_step(self, fakes: list) -> torch.Tensor:
        self.disc.requires_grad_(True)
        self.d_opt.zero_grad(set_to_none=True)
        d_sum = torch.zeros((), device=self.device)
        for fake, real in fakes:  # the functional loss: no per-step range check (host sync) on ``real``
            loss = discriminator_loss(self.disc(fake), self.disc(real), self.adv.loss) / len(fakes)
            loss.backward()
            d_sum = d_sum + loss.detach()
        ddp.average_gradients(self.d_params, self.info)
        d_norm = grad_norm([p.grad for p in self.d_params]).to(self.device)
        step_unless_nonfinite(self.d_opt, ddp.all_finite(d_sum, d_norm, self.info))
        self.disc.requires_grad_(False)
        return d_sum

    # --- logging, checking, checkpointing (host syncs live only here) -------------------------------------
    def _log(self, step: int, seconds: float, frames: int) -> dict:
        lrs = {"lr": self.opt.param_groups[0]["lr"]}
        if self.flow:  # the rate the flow network actually trained at during the last step
            lrs["lr_flow"] = self.opt.param_groups[1]["lr"] if step - 1 >= int(self.tc.flow_freeze_steps) else 0.0
        row = log_row(step, self.tally, self.weights, lrs, seconds=seconds, frames=frames, device=self.device,
                      d_loss=self.disc is not None, conflicts=bool(self.tc.project_conflicts))
        if self.balancer is not None:  # show the balanced weights on the objective the caller holds
            self.objective.weights.update({k: v for k, v in self.balancer.weights_as_floats().items() if k != GAN_TERM})
        append_row(self.run_dir, row)
        return row

    def run(self) -> Path:
        tc, total_steps = self.tc, int(self.tc.steps)
        log_every, ckpt_every = int(tc.log_every), int(tc.ckpt_every or 0)
        tb = TensorBoard(bool(tc.tensorboard) and self.info.is_main, self.run_dir)
        bar = tqdm(total=total_steps, initial=self.start_step, disable=not self.progress, desc="train",
                   dynamic_ncols=True)
        t0 = started = time.perf_counter()
        frames = 0
        try:
            for step in range(self.start_step, total_steps):
                self._step(step)
                done = step + 1
                frames += self.sampler_shape[0] * self.sampler_shape[1] * int(tc.accumulate)
                bar.update(1)
                if done % log_every == 0 or done == total_steps:
                    if self.info.is_main:
                        row = self._log(done, time.perf_counter() - t0, frames)
                        tb.log(row)
                        bar.set_postfix(loss=f"{row['total']:.4g}" if row["total"] is not None else "nan",
                                        skipped=row["nonfinite"])
                    stop_if_nonfinite(self.tally, done, tc.max_nonfinite, self.run_dir)
                    self.tally.reset_interval()
                    frames = 0
                if (ckpt_every and done % ckpt_every == 0) or done == total_steps:
                    stop_if_nonfinite(self.tally, done, tc.max_nonfinite, self.run_dir)
                    if self.info.is_main:
                        checkpoint(self, done)
                if frames == 0:  # the throughput clock restarts after logging and checkpointing
                    t0 = time.perf_counter()
        finally:
            bar.close()
            tb.close()
        if self.info.is_main:
            write_done(self, total_steps, started)
        return self.run_dir


def _flow_parameters(model: nn.Module) -> list[nn.Parameter]:
    """``nriqa.models.flow_parameters``; a model built while nriqa.models was never imported has none
    (this keeps a hand-made model from paying for the torchvision import)."""
    import sys

    models = sys.modules.get("nriqa.models")
    return list(models.flow_parameters(model)) if models is not None else []
