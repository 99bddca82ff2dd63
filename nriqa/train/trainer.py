"""The training loop: read it top to bottom.

``train(cfg, run_dir)`` builds the generator (``nriqa.models``), the objective
(``nriqa.losses.Objective`` from ``cfg["train"]["objective"]``; a hand-made one must be a
``nriqa.losses.TrainingObjective``) and the deterministic sampler (``nriqa.data.build_train_sampler``),
then runs ``cfg["train"]["steps"]`` optimizer steps.

Here: :func:`train` (the entry point), ``_Trainer.__init__`` (the parts, ``_build_*``), ``_Trainer._step``
and the named steps below it, ``_Trainer.run`` (the loop, logging, checkpoints). What changes as the
run trains is one :class:`~nriqa.train.state.TrainState` (``_Trainer.state``); the run folder and what
the run in it is, one :class:`~nriqa.train.state.RunFolder` (``_Trainer.folder``).

One step, ``_step(i)`` (``accumulate`` micro-batches, micro-batch ``j`` of step ``i`` is
``sampler.batch(i * accumulate + j)``, sliced ``rank::world_size`` under DDP):

1. ``_set_lr``: the schedule's rate (the flow network's group at ``flow_lr_mult`` x);
2. ``_accumulate_gradients``: per micro-batch ``_loss`` (forward under bf16 autocast on CUDA, losses
   in float32, weighted sum of the objective's terms plus ``gan`` = the adversarial generator loss when
   the objective has one), on measured steps ``_measure_gradients`` (per-term gradient norms, the
   balancer's update), backward (PCGrad-style with ``project_conflicts``);
3. ``_update_generator``: flow (SpyNet) gradients dropped while ``step < flow_freeze_steps``; gradient
   clipping; a non-finite loss or gradient norm skips the update *on-device* (fused Adam's
   ``found_inf``, EMA weight 0) — the host looks at the flag only at log intervals, where
   ``max_nonfinite`` consecutive skips stop the run with :class:`NonFiniteError`; EMA update;
4. ``_update_discriminator``: on the detached outputs (own optimizer); then the tally.

Nothing in the step calls ``.item()``/``.cpu()``: loss sums, counters and gradient norms stay on
the device and are read once per ``log_every`` steps (and at checkpoints).

Best checkpoint: by the EMA of the training loss (``loss_ema_decay``) unless ``evaluate(generator)
-> float`` (lower better) is passed. Fine-tuning (``init_from``) starts from the baseline's latest
``params_ema`` (``train.init_weights: params`` for the raw weights). Beside it: :mod:`.train_config`,
:mod:`.optim` (fused Adam, the skipped step), :mod:`.state` (tally, train state, run folder: checkpoints,
resume, done.json), :mod:`.log`.
"""
from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn

from nriqa.compute import resolve_device, use_job_numerics
from nriqa.data import build_train_sampler
from nriqa.errors import ConfigError
from nriqa.losses import Objective, TrainingObjective, check_training_objective, discriminator_loss
from nriqa.progress import progress_bar

from . import distributed as ddp
from .balance import GradNormBalancer, grad_norm, loss_weights, projected_backward, term_norms
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
from .state import NonFiniteError, RunFolder, Tally, TrainState, baseline_record, stop_if_nonfinite
from .train_config import GAN_TERM, TrainConfig, resolve_flag

__all__ = ["train", "NonFiniteError", "TrainConfig", "training_changes", "TRAINING_KEYS", "GAN_TERM"]


def train(cfg: dict, run_dir: str | Path, *, init_from: str | Path | None = None, progress: bool = True,
          model: nn.Module | None = None, sampler: Any = None, objective: TrainingObjective | None = None,
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
    tests; ``objective`` must be a ``nriqa.losses.TrainingObjective``); ``evaluate(generator) -> float``
    (lower better) picks the best checkpoint.
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
    if objective is not None:
        check_training_objective(objective)
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
    """One run: the parts that stay fixed (config, sampler, objective, the wrapped forward) built in
    ``__init__``, what changes in :attr:`state` (:class:`TrainState`), the run folder in
    :attr:`folder` (:class:`RunFolder`), then :meth:`run` = ``_step`` in a loop, with logging and
    checkpoints."""

    def __init__(self, cfg, tc: TrainConfig, run_dir: Path, device: str, info: ddp.DistInfo, *, progress, init_from,
                 model, sampler, objective, evaluate):
        self.cfg, self.tc, self.info, self.evaluate = cfg, tc, info, evaluate
        if device.startswith("cuda") and info.enabled:  # one process per GPU
            device = f"cuda:{info.local_rank}"
            torch.cuda.set_device(device)
        self.device = device
        self.progress = progress and info.is_main
        self.amp, self.channels_last = resolve_flag(tc.amp, device), resolve_flag(tc.channels_last, device)
        seed = int(cfg.get("seed", 0))
        seed_all(seed)
        keyed = model is None  # (a hand-made model has no name to key)
        self.folder = RunFolder(run_dir, cfg, config_hash(cfg), run_key(cfg, init_from) if keyed else None,
                                keyed_config(cfg, init_from) if keyed else None)

        # the parts, built in this order (each may draw from the seeded RNGs): data, objective, generator,
        # optimizer and schedule, EMA, discriminator, loss weights
        self.sampler = sampler if sampler is not None else build_train_sampler(cfg["data"], seed)
        self.objective = objective if objective is not None else Objective(dict(tc.objective), device=device)
        gen, self.folder.init_from = self._build_generator(model, init_from)
        opt = self._build_optimizer(gen)
        schedule = build_schedule(tc.schedule, float(tc.optimizer.get("lr", 1e-3)), int(tc.steps))
        ema = EMA(gen, float(tc.ema_decay), warmup=bool(tc.ema_warmup))
        self.adv = self.objective.adversarial
        disc, d_opt = self._build_discriminator()
        weights, balancer = self._build_weights()
        self.forward = ddp.wrap(gen, info, device, bool(tc.ddp_find_unused))
        if tc.compile:
            self.forward = torch.compile(self.forward)
        self.state = TrainState(gen=gen, ema=ema, opt=opt, schedule=schedule, tally=Tally(device, tc.loss_ema_decay),
                                weights=weights, balancer=balancer, disc=disc, d_opt=d_opt)

        self._validated = False  # the first objective call checks its inputs (see _terms)
        probe = self.sampler.batch(0)["lr"]  # the sampler is deterministic in (seed, step): no RNG consumed
        self.sampler_shape = (int(probe.shape[0]), int(probe.shape[1]))
        self.start_step = self.folder.resume_or_start(self.state, info, device)

    # --- building the parts -------------------------------------------------------------------------------
    def _build_generator(self, model: nn.Module | None, init_from) -> tuple[nn.Module, dict | None]:
        """The generator on the device (channels_last convs), from ``init_from``'s baseline when given;
        returns it and the baseline's record."""
        gen = (model if model is not None else build_generator(self.cfg)).to(self.device)
        if self.channels_last:  # 4-D conv weights only (Module.to would reject the 5-D ones of Conv3d)
            for m in gen.modules():
                if isinstance(m, nn.Conv2d):
                    m.to(memory_format=torch.channels_last)
        record = None
        if init_from is not None:
            state, record = baseline_record(Path(init_from), self.tc.init_weights)
            gen.load_state_dict(state)
        gen.train()
        return gen, record

    def _build_optimizer(self, gen: nn.Module) -> torch.optim.Optimizer:
        """Fused Adam over the trainable parameters (:attr:`params`); the flow network (:attr:`flow`)
        in its own group, at ``flow_lr_mult`` x the rate (:attr:`lr_mults`)."""
        flow_ids = {id(p) for p in _flow_parameters(gen)}
        self.params = [p for p in gen.parameters() if p.requires_grad]
        self.flow = [p for p in self.params if id(p) in flow_ids]
        main = [p for p in self.params if id(p) not in flow_ids]
        self.lr_mults = [1.0] + ([float(self.tc.flow_lr_mult)] if self.flow else [])
        return build_optimizer(self.tc.optimizer, [{"params": main}] + ([{"params": self.flow}] if self.flow else []))

    def _build_discriminator(self) -> tuple[nn.Module | None, torch.optim.Optimizer | None]:
        """The adversarial term's discriminator and its own optimizer (None, None without one); its
        parameters (:attr:`d_params`) are frozen outside its own update."""
        if self.adv is None:
            return None, None
        disc = self.adv.discriminator.to(self.device).train()
        self.d_params = list(disc.parameters())
        d_opt = build_optimizer(self.tc.d_optimizer_cfg(), [{"params": self.d_params}])
        disc.requires_grad_(False)
        return disc, d_opt

    def _build_weights(self) -> tuple[dict[str, torch.Tensor], GradNormBalancer | None]:
        """The loss weights (0-dim tensors, ``gan`` included): fixed, or moved on-device by the balancer
        the objective asks for; :attr:`reference` is the fidelity term that balancing and
        ``project_conflicts`` measure the others against."""
        tc = self.tc
        weights = {k: float(v) for k, v in dict(self.objective.weights).items()}
        if self.adv is not None:
            weights[GAN_TERM] = float(self.adv.weight)
        balancing = self.objective.balancing or dict(tc.objective).get("weights")
        profile_knobs = self.cfg.get("weights") if isinstance(self.cfg.get("weights"), Mapping) else {}
        tensors, balancer = loss_weights(weights, balancing, tc.balance, profile_knobs, self.device)
        self.reference = balancer.reference if balancer is not None else tc.balance.get("reference", "charbonnier")
        if tc.project_conflicts:
            if self.info.enabled:
                raise NotImplementedError("train.project_conflicts is not supported under DDP; run it on one process")
            if self.reference not in weights:
                raise ConfigError(f"train.project_conflicts needs the fidelity term {self.reference!r} "
                                  f"(train.balance.reference) in the objective {sorted(weights)}")
        return tensors, balancer

    # --- one optimizer step (no host sync in here) -------------------------------------------------------
    def _step(self, step: int) -> None:
        """Rate, gradients of ``accumulate`` micro-batches, the generator's update, the discriminator's."""
        self._set_lr(step)
        self.state.opt.zero_grad(set_to_none=True)
        total, terms, conflict, fakes = self._accumulate_gradients(step)
        finite, gnorm = self._update_generator(step, total)
        d_loss = self._update_discriminator(fakes)
        self.state.tally.add_step(finite, total, gnorm, d_loss, conflict, terms)

    def _set_lr(self, step: int) -> None:
        lr = self.state.schedule(step)
        for group, mult in zip(self.state.opt.param_groups, self.lr_mults):
            group["lr"] = lr * mult

    def _accumulate_gradients(self, step: int) -> tuple[torch.Tensor, dict, torch.Tensor, list]:
        """Forward and backward of micro-batch ``j`` = ``sampler.batch(step * accumulate + j)`` for every
        ``j``; returns the mean loss, the mean of each term, the conflict rate (``project_conflicts``) and
        the (fake, real) frames the discriminator learns from after the generator's update."""
        accum = int(self.tc.accumulate)
        balance_now = self.state.balancer is not None and self.state.balancer.due(step)
        measure = (bool(self.tc.gradnorm_every) and step % int(self.tc.gradnorm_every) == 0) or balance_now
        total_sum, term_sums, fakes = torch.zeros((), device=self.device), {}, []
        conflict = torch.zeros((), device=self.device)
        for micro in range(accum):
            batch = self._micro_batch(step * accum + micro)
            with self._sync_gradients(last=micro == accum - 1):
                pred, terms, total = self._loss(batch)
                if measure and micro == 0:  # unweighted terms' gradient norms, on the first micro-batch
                    self._measure_gradients(terms, balance_now)
                if self.tc.project_conflicts:
                    conflict = conflict + projected_backward(terms, self.state.weights, self.params, self.reference,
                                                             accum, self.device)
                else:
                    (total / accum).backward()
            total_sum = total_sum + total.detach() / accum
            for k, v in terms.items():
                term_sums[k] = term_sums.get(k, 0) + v.detach() / accum
            if self.state.disc is not None:  # the discriminator learns after the generator's update, on these
                fakes.append((_frames(pred.detach()), _frames(batch["hr"])))
        return total_sum, term_sums, conflict / accum, fakes

    def _micro_batch(self, index: int) -> dict:
        """Batch ``index`` of the sampler (this rank's rows under DDP), on the device."""
        batch = ddp.shard(self.sampler.batch(index), self.info)
        return {k: (v.to(self.device, non_blocking=True) if isinstance(v, torch.Tensor) else v)
                for k, v in batch.items()}

    def _sync_gradients(self, last: bool):
        """Under DDP, gradients are all-reduced once, on the last micro-batch (``no_sync`` before it)."""
        defer_sync = self.info.enabled and not last and hasattr(self.forward, "no_sync")
        return self.forward.no_sync() if defer_sync else contextlib.nullcontext()

    def _loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        """The forward under bf16 autocast (when ``amp``), the terms in float32, their weighted sum."""
        with torch.autocast(device_type=self.device.split(":")[0], dtype=torch.bfloat16, enabled=self.amp):
            pred = self.forward(batch["lr"])
        pred = pred.float()  # the losses see float32, whatever autocast computed in
        terms = self._terms(pred, batch["hr"])
        total = sum(self.state.weights[k] * v for k, v in terms.items())
        return pred, terms, total

    def _terms(self, pred: torch.Tensor, hr: torch.Tensor) -> dict[str, torch.Tensor]:
        """Unweighted terms (+ ``gan``). The first call goes through ``objective.terms`` (which checks
        shapes and values, one host sync); later calls use its unvalidated term modules
        (``objective.losses``, when it has them) so the step stays sync-free and a NaN reaches the
        non-finite guard."""
        losses = self.objective.losses
        if self._validated and losses is not None:
            terms = {name: module(pred, hr) for name, module in losses.items()}
        else:
            terms = dict(self.objective.terms(pred, hr))
            self._validated = True
        if self.adv is not None:
            terms[GAN_TERM] = self.adv.generator_loss(_frames(pred), _frames(hr))
        return terms

    def _measure_gradients(self, terms: dict[str, torch.Tensor], balance_now: bool) -> None:
        """Each term's gradient norm into the tally (logged as ``gradnorm/<term>``), and to the balancer."""
        tally = self.state.tally
        tally.norms = term_norms(terms, self.params, self.device)
        tally.norms_measured = True
        if balance_now:
            self.state.balancer.update(tally.norms)

    def _update_generator(self, step: int, total: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Flow gradients dropped while frozen, clipping, the update unless non-finite, the EMA.
        Returns (finite, gradient norm), both on the device."""
        if step < int(self.tc.flow_freeze_steps):
            for p in self.flow:
                p.grad = None
        clip = float(self.tc.grad_clip) if self.tc.grad_clip else math.inf  # inf: measure the norm, clip nothing
        gnorm = torch.nn.utils.clip_grad_norm_(self.params, clip, foreach=True)
        finite = ddp.all_finite(total, gnorm, self.info)
        step_unless_nonfinite(self.state.opt, finite)
        self.state.ema.update(self.state.gen, finite)  # not finite: EMA and its counter unchanged
        return finite, gnorm

    def _update_discriminator(self, fakes: list) -> torch.Tensor:
        """One discriminator step on the generator's detached outputs; returns its loss (0 without one)."""
        disc, d_opt = self.state.disc, self.state.d_opt
        if disc is None:
            return torch.zeros((), device=self.device)
        disc.requires_grad_(True)
        d_opt.zero_grad(set_to_none=True)
        d_sum = torch.zeros((), device=self.device)
        for fake, real in fakes:  # the functional loss: no per-step range check (host sync) on ``real``
            loss = discriminator_loss(disc(fake), disc(real), self.adv.loss) / len(fakes)
            loss.backward()
            d_sum = d_sum + loss.detach()
        ddp.average_gradients(self.d_params, self.info)
        d_norm = grad_norm([p.grad for p in self.d_params]).to(self.device)
        step_unless_nonfinite(d_opt, ddp.all_finite(d_sum, d_norm, self.info))
        disc.requires_grad_(False)
        return d_sum

    # --- the loop; logging, checking, checkpointing (host syncs live only here) -------------------------
    def run(self) -> Path:
        tc, total_steps = self.tc, int(self.tc.steps)
        log_every, ckpt_every = int(tc.log_every), int(tc.ckpt_every or 0)
        tb = TensorBoard(bool(tc.tensorboard) and self.info.is_main, self.folder.path)
        bar = progress_bar(total=total_steps, initial=self.start_step, disable=not self.progress, desc="train",
                           unit="step", dynamic_ncols=True)
        t0 = started = time.perf_counter()
        frames = 0
        try:
            for step in range(self.start_step, total_steps):
                self._step(step)
                done = step + 1
                frames += self.sampler_shape[0] * self.sampler_shape[1] * int(tc.accumulate)
                bar.update(1)
                if done % log_every == 0 or done == total_steps:
                    self._log_interval(done, t0, frames, tb, bar)
                    frames = 0
                if (ckpt_every and done % ckpt_every == 0) or done == total_steps:
                    self._checkpoint(done)
                if frames == 0:  # the throughput clock restarts after logging and checkpointing
                    t0 = time.perf_counter()
        finally:
            bar.close()
            tb.close()
        if self.info.is_main:
            self.folder.finish(self.state, total_steps, started, world_size=self.info.world_size,
                               best_by="evaluate" if self.evaluate is not None else "train_loss_ema")
        return self.folder.path

    def _log_interval(self, step: int, t0: float, frames: int, tb: TensorBoard, bar) -> None:
        """The end of a log interval: the row (rank 0), the non-finite guard, a fresh interval."""
        if self.info.is_main:
            row = self._log(step, time.perf_counter() - t0, frames)
            tb.log(row)
            bar.set_postfix(loss=f"{row['total']:.4g}" if row["total"] is not None else "nan", skipped=row["nonfinite"])
        stop_if_nonfinite(self.state.tally, step, self.tc.max_nonfinite, self.folder.path)
        self.state.tally.reset_interval()

    def _log(self, step: int, seconds: float, frames: int) -> dict:
        st = self.state
        lrs = {"lr": st.opt.param_groups[0]["lr"]}
        if self.flow:  # the rate the flow network actually trained at during the last step
            lrs["lr_flow"] = st.opt.param_groups[1]["lr"] if step - 1 >= int(self.tc.flow_freeze_steps) else 0.0
        row = log_row(step, st.tally, st.weights, lrs, seconds=seconds, frames=frames, device=self.device,
                      d_loss=st.disc is not None, conflicts=bool(self.tc.project_conflicts))
        if st.balancer is not None:  # show the balanced weights on the objective the caller holds
            self.objective.weights.update({k: v for k, v in st.balancer.weights_as_floats().items() if k != GAN_TERM})
        append_row(self.folder.path, row)
        return row

    def _checkpoint(self, step: int) -> None:
        """The non-finite guard, then the checkpoint of ``step`` (rank 0)."""
        stop_if_nonfinite(self.state.tally, step, self.tc.max_nonfinite, self.folder.path)
        if self.info.is_main:
            self.folder.save(self.state, step, keep_last=self.tc.keep_last, evaluate=self.evaluate)


def _flow_parameters(model: nn.Module) -> list[nn.Parameter]:
    """``nriqa.models.flow_parameters``; a model built while nriqa.models was never imported has none
    (this keeps a hand-made model from paying for the torchvision import)."""
    import sys

    models = sys.modules.get("nriqa.models")
    return list(models.flow_parameters(model)) if models is not None else []
