"""What a run carries across steps and across processes, and what its run folder records.

- :class:`Tally`: the on-device counters of the step (log-interval sums, the loss EMA that picks
  ``best.pt``, runs of skipped steps); :func:`stop_if_nonfinite` is the host half of the
  non-finite guard (:class:`NonFiniteError`)
- :class:`TrainState`: everything that changes as a run trains (generator, EMA, optimizers,
  schedule, tally, loss weights, balancer, discriminator): :meth:`TrainState.checkpoint` is the
  checkpoint dict, :meth:`TrainState.restore` loads one back
- :class:`RunFolder`: the run folder and what the run in it is (config, its hash, run key, the
  ``init_from`` baseline): :meth:`RunFolder.resume_or_start`, :meth:`RunFolder.save` (a
  checkpoint, ``best.pt`` when it scores best), :meth:`RunFolder.finish` (``done.json``)
- :func:`baseline_record`: the weights and the record a fine-tune (``init_from``) starts from

Checkpoint keys (``save_checkpoint`` writes this dict as it is): ``step``, ``params``,
``params_ema``, ``ema`` (:meth:`EMA.counters_state`), ``optimizer``, ``scheduler``, ``rng``, ``config_hash``,
``model``, ``model_size``,
``trainer`` (:meth:`Tally.state_dict`), ``weights``; ``balancer`` with online weights;
``discriminator`` and ``d_optimizer`` with an adversarial term.
"""
from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import torch
from torch import nn

from nriqa import config as nconfig
from nriqa.paths import atomic_write_text

from .checkpoint import (
    load_checkpoint,
    load_resume_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
    step_checkpoints,
)
from .lock import outside_stacklevel
from .log import finite_or_none
from .run_files import CONFIG_FILE, DONE_FILE, LOG_FILE, config_changes, read_config, read_log_rows

if TYPE_CHECKING:
    from .balance import GradNormBalancer
    from .distributed import DistInfo
    from .ema import EMA
    from .schedule import CosineRestarts


class NonFiniteError(RuntimeError):
    """Raised when ``max_nonfinite`` consecutive steps had a NaN/Inf loss or gradient."""


class Tally:
    """On-device counters: sums over the current log interval (``acc``, ``acc_terms``) and run-long
    ones (the loss EMA that picks ``best.pt``, the current and worst run of skipped steps).

    :meth:`add_step` only does tensor arithmetic, so the step never waits for the device; the host
    reads the values at log intervals and checkpoints. Sums of a skipped (non-finite) step are
    masked out with ``torch.where``, never branched on.
    """

    def __init__(self, device: str, loss_ema_decay: float):
        self.device, self.loss_ema_decay = device, float(loss_ema_decay)
        self.loss_ema, self.loss_ema_seen = self._zero(), self._zero()
        self.nonfinite_run, self.nonfinite_max = self._zero(), self._zero()
        self.best_score, self.best_step = math.inf, None
        self.norms: dict[str, torch.Tensor] | None = None  # the last measured gradient norm per term
        self.reset_interval()

    def _zero(self) -> torch.Tensor:
        return torch.zeros((), device=self.device)

    def reset_interval(self) -> None:
        z = self._zero
        self.acc = {"total": z(), "grad_norm": z(), "finite": z(), "nonfinite": z(), "d_loss": z(), "conflict": z()}
        self.acc_terms: dict[str, torch.Tensor] = {}
        self.acc_steps = 0
        self.norms_measured = False  # in this interval

    def add_step(self, finite: torch.Tensor, total: torch.Tensor, grad_norm: torch.Tensor, d_loss: torch.Tensor,
                 conflict: torch.Tensor, terms: Mapping[str, torch.Tensor]) -> None:
        f = finite.float()
        self.acc["total"] += torch.where(finite, total, 0.0)
        self.acc["grad_norm"] += torch.where(finite, grad_norm, 0.0)
        self.acc["finite"] += f
        self.acc["nonfinite"] += 1 - f
        self.acc["d_loss"] += torch.where(torch.isfinite(d_loss), d_loss, 0.0)
        self.acc["conflict"] += conflict
        for k, v in terms.items():
            self.acc_terms[k] = self.acc_terms.get(k, self._zero()) + torch.where(finite, v, 0.0)
        self.acc_steps += 1
        self.nonfinite_run = (self.nonfinite_run + 1) * (1 - f)  # back to 0 on a finite step
        self.nonfinite_max = torch.maximum(self.nonfinite_max, self.nonfinite_run)
        d = self.loss_ema_decay
        blended = torch.where(self.loss_ema_seen > 0, d * self.loss_ema + (1 - d) * total, total)
        self.loss_ema = torch.where(finite, blended, self.loss_ema)
        self.loss_ema_seen = self.loss_ema_seen + f

    def state_dict(self) -> dict:
        return {"loss_ema": self.loss_ema.cpu(), "loss_ema_seen": self.loss_ema_seen.cpu(),
                "nonfinite_run": self.nonfinite_run.cpu(), "nonfinite_max": self.nonfinite_max.cpu(),
                "best_score": self.best_score, "best_step": self.best_step,
                "acc": {k: v.cpu() for k, v in self.acc.items()},
                "acc_terms": {k: v.cpu() for k, v in self.acc_terms.items()}, "acc_steps": self.acc_steps}

    def load_state_dict(self, t: Mapping) -> None:
        self.loss_ema, self.loss_ema_seen = t["loss_ema"].to(self.device), t["loss_ema_seen"].to(self.device)
        self.nonfinite_run, self.nonfinite_max = t["nonfinite_run"].to(self.device), t["nonfinite_max"].to(self.device)
        self.best_score, self.best_step = t["best_score"], t["best_step"]
        self.acc = {k: v.to(self.device) for k, v in t["acc"].items()}
        self.acc_terms = {k: v.to(self.device) for k, v in t["acc_terms"].items()}
        self.acc_steps = t["acc_steps"]


def stop_if_nonfinite(tally: Tally, step: int, max_nonfinite: int, run_dir: Path) -> None:
    """The host half of the non-finite guard (one read): raise :class:`NonFiniteError` when the worst
    run of skipped steps since the last check reached ``max_nonfinite``."""
    worst = int(tally.nonfinite_max.item())
    if worst >= int(max_nonfinite):
        good = step_checkpoints(run_dir)
        where = f"the last good checkpoint is {run_dir / 'checkpoints' / 'latest.pt'} (step {good[-1]})" \
            if good else "no checkpoint was written yet"
        raise NonFiniteError(
            f"training stopped at step {step}: {worst} consecutive steps had a non-finite loss or gradient "
            f"(train.max_nonfinite={max_nonfinite}); those updates were skipped and {where}. "
            f"Lower train.optimizer.lr, add train.grad_clip, or check the objective's terms in {LOG_FILE}.")
    tally.nonfinite_max = tally.nonfinite_run.clone()  # the worst run since this check


@dataclass(eq=False)
class TrainState:
    """Everything that changes as a run trains, i.e. what a checkpoint holds besides the RNGs.

    ``weights`` (term -> 0-dim tensor) is the dict the step multiplies by; with online balancing it
    *is* ``balancer.weights``. Every field keeps its object for the whole run (restored in place).
    """

    gen: nn.Module
    ema: EMA
    opt: torch.optim.Optimizer
    schedule: CosineRestarts
    tally: Tally
    weights: dict[str, torch.Tensor]
    balancer: GradNormBalancer | None = None
    disc: nn.Module | None = None
    d_opt: torch.optim.Optimizer | None = None

    def checkpoint(self, step: int, *, config_hash: str, model: Any, model_size: Any) -> dict:
        """Everything an exact resume needs, after ``step`` optimizer steps (the RNGs read now)."""
        state = {
            "step": step, "params": self.gen.state_dict(), "params_ema": self.ema.state_dict(),
            "ema": self.ema.counters_state(),
            "optimizer": self.opt.state_dict(),
            "scheduler": {"name": "cosine_restarts", "step": step, **self.schedule.__dict__},
            "rng": rng_state(), "config_hash": config_hash,
            "model": model, "model_size": model_size,
            "trainer": self.tally.state_dict(),
            "weights": {k: v.cpu() for k, v in self.weights.items()},
        }
        if self.balancer is not None:
            state["balancer"] = self.balancer.state_dict()
        if self.disc is not None:
            state["discriminator"] = self.disc.state_dict()
            state["d_optimizer"] = self.d_opt.state_dict()
        return state

    def restore(self, ck: Mapping, device: str) -> int:
        """Load a :meth:`checkpoint` dict back (not the RNGs); returns its step."""
        self.gen.load_state_dict(ck["params"])
        self.ema.load_state_dict(ck["params_ema"])
        self.ema.load_counters(ck.get("ema"))
        self.opt.load_state_dict(ck["optimizer"])
        for k, v in ck.get("weights", {}).items():
            if k in self.weights:
                self.weights[k] = v.to(device)
        if self.balancer is not None and "balancer" in ck:
            self.balancer.load_state_dict(ck["balancer"])  # (its weights are self.weights)
        if self.disc is not None:
            self.disc.load_state_dict(ck["discriminator"])
            self.d_opt.load_state_dict(ck["d_optimizer"])
        self.tally.load_state_dict(ck["trainer"])
        return int(ck["step"])

    def score(self, evaluate: Callable[[nn.Module], float] | None) -> float:
        """Lower is better: ``evaluate(EMA generator)`` when given, else the EMA of the training loss."""
        if evaluate is not None:
            score = float(evaluate(self.ema.module))
            self.ema.module.eval()  # evaluate may have switched it to train()
            return score
        t = self.tally
        return float(t.loss_ema.item()) if t.loss_ema_seen.item() > 0 else math.inf


@dataclass(eq=False)
class RunFolder:
    """A run folder and what the run in it is: ``cfg`` (resolved, with ``model``/``model_size``), its
    ``config_hash``, the ``run_key``/``keyed`` config it is keyed by (None for a hand-made model) and
    ``init_from``, the record of the baseline a fine-tune starts from (:func:`baseline_record`)."""

    path: Path
    cfg: dict
    config_hash: str
    key: str | None = None
    keyed: dict | None = None
    init_from: dict | None = None

    def resume_or_start(self, state: TrainState, info: DistInfo, device: str) -> int:
        """Load ``checkpoints/latest.pt`` into ``state`` when there is one (the newest intact ``step_*.pt``
        when it cannot be loaded, with a warning), else start the run folder (``config.yaml``, no log).
        Returns the step to continue from."""
        seed = int(self.cfg.get("seed", 0))
        # ranks other than 0 draw their own stream (dropout differs per rank; 0 keeps the checkpointed one)
        rank_seed = seed * 1_000_003 + info.rank * 7919
        ck = load_resume_checkpoint(self.path, map_location=device)
        if ck is None:
            if info.enabled and not info.is_main:
                torch.manual_seed(rank_seed)
            if info.is_main:
                self._start()
            return 0
        if ck.get("config_hash") != self.config_hash:
            changed = _resume_changes(read_config(self.path), self.cfg)
            if changed:
                warnings.warn(f"resuming {self.path} with a changed config ({changed})",
                              stacklevel=outside_stacklevel())  # train()'s caller
        start = state.restore(ck, device)
        if info.enabled and not info.is_main:
            torch.manual_seed(rank_seed + start)
        else:
            set_rng_state(ck["rng"])
        if info.is_main:
            truncate_log(self.path, start)
        self.init_from = read_config(self.path).get("init_from")
        return start

    def _start(self) -> None:
        """``config.yaml`` (the config, its hash, the run key and keyed config, ``init_from``), no log."""
        self.path.mkdir(parents=True, exist_ok=True)
        record = dict(self.cfg)
        record["config_hash"] = self.config_hash
        if self.key is not None:  # what the run folder is keyed by (nriqa.train.run_files.keyed_config)
            record["run_key"], record["keyed"] = self.key, self.keyed
        if self.init_from is not None:
            record["init_from"] = self.init_from
        atomic_write_text(self.path / CONFIG_FILE, nconfig.dump(record))
        (self.path / LOG_FILE).unlink(missing_ok=True)

    def save(self, state: TrainState, step: int, *, keep_last: int,
             evaluate: Callable[[nn.Module], float] | None = None) -> None:
        """Save the checkpoint of ``step``; it becomes ``best.pt`` when its :meth:`TrainState.score`
        beats the best so far."""
        score, t = state.score(evaluate), state.tally
        is_best = math.isfinite(score) and score < t.best_score
        if is_best:
            t.best_score, t.best_step = score, step
        ck = state.checkpoint(step, config_hash=self.config_hash, model=self.cfg.get("model"),
                              model_size=self.cfg.get("model_size"))
        save_checkpoint(self.path, ck, keep_last=int(keep_last), is_best=is_best)

    def finish(self, state: TrainState, steps: int, started: float, *, best_by: str, world_size: int) -> None:
        """``done.json``: when and how the run ended, which checkpoint is best and by what measure
        (``best_by``), and the EMA the run is evaluated with."""
        t = state.tally
        rec = {"step": steps, "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "seconds": round(time.perf_counter() - started, 3), "config_hash": self.config_hash,
               "best_step": t.best_step, "best_score": finite_or_none(t.best_score),
               "best_by": best_by,
               "loss_ema": finite_or_none(float(t.loss_ema.item())), "world_size": world_size,
               "init_from": self.init_from, "evaluated": state.ema.card()}
        atomic_write_text(self.path / DONE_FILE, json.dumps(rec, indent=2))


def _resume_changes(saved: dict, cfg: Mapping) -> list[str]:
    """Sorted names of the ``cfg["train"]`` keys (except ``steps``: a longer run may resume a shorter
    one) and other top-level sections that differ from the saved config."""
    saved = {k: v for k, v in saved.items() if k not in ("config_hash", "init_from", "run_key", "keyed")}
    old_t, new_t = dict(saved.get("train", {})), dict(cfg.get("train", {}))
    changed = config_changes(old_t, new_t, (set(old_t) | set(new_t)) - {"steps"})
    changed += config_changes(saved, cfg, (set(saved) | set(cfg)) - {"train"})
    return sorted(changed)


def baseline_record(init_from: Path, which_weights: str) -> tuple[dict, dict]:
    """(state_dict to start a fine-tune from, record of where it came from) for ``init_from=``."""
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
        warnings.warn(f"init_from {init_from} has no done.json: starting from its step {record['step']}",
                      stacklevel=outside_stacklevel())
    return ckpt[key], record


def truncate_log(run_dir: Path, step: int) -> None:
    """Drop log rows written after the checkpoint we resume from (they will be written again)."""
    path = run_dir / LOG_FILE
    if not path.exists():
        return
    rows = [r for r in read_log_rows(run_dir) if r.get("step", 0) <= step]
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))
