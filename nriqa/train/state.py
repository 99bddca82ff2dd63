"""What a run carries across steps and across processes: the on-device tally and the host half of
the non-finite guard, the checkpoint dict, starting or resuming a run folder, and the records of
where a run came from and how it ended.

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
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import torch

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
from .log import finite_or_none
from .run_files import CONFIG_FILE, DONE_FILE, LOG_FILE, config_changes, read_config, read_log_rows

if TYPE_CHECKING:
    from .trainer import _Trainer


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


def checkpoint(tr: "_Trainer", step: int) -> None:
    """Save the checkpoint of ``step``; it becomes ``best.pt`` when its score beats the best so far:
    ``evaluate(EMA generator)`` when the trainer has one, else the EMA of the training loss."""
    t = tr.tally
    if tr.evaluate is not None:
        score = float(tr.evaluate(tr.ema.module))
        tr.ema.module.eval()  # evaluate may have switched it to train()
    else:
        score = float(t.loss_ema.item()) if t.loss_ema_seen.item() > 0 else math.inf
    is_best = math.isfinite(score) and score < t.best_score
    if is_best:
        t.best_score, t.best_step = score, step
    save_checkpoint(tr.run_dir, checkpoint_state(tr, step), keep_last=int(tr.tc.keep_last), is_best=is_best)


def checkpoint_state(tr: "_Trainer", step: int) -> dict:
    """Everything an exact resume needs, after ``step`` optimizer steps."""
    state = {
        "step": step, "params": tr.gen.state_dict(), "params_ema": tr.ema.state_dict(),
        "ema": tr.ema.counters_state(),
        "optimizer": tr.opt.state_dict(),
        "scheduler": {"name": "cosine_restarts", "step": step, **tr.schedule.__dict__},
        "rng": rng_state(), "config_hash": tr.hash,
        "model": tr.cfg.get("model"), "model_size": tr.cfg.get("model_size"),
        "trainer": tr.tally.state_dict(),
        "weights": {k: v.cpu() for k, v in tr.weights.items()},
    }
    if tr.balancer is not None:
        state["balancer"] = tr.balancer.state_dict()
    if tr.disc is not None:
        state["discriminator"] = tr.disc.state_dict()
        state["d_optimizer"] = tr.d_opt.state_dict()
    return state


def resume_or_start(tr: "_Trainer") -> int:
    """Load ``checkpoints/latest.pt`` into the trainer when there is one (the newest intact ``step_*.pt``
    when it cannot be loaded, with a warning), else start the run folder (``config.yaml``, no log).
    Returns the step to continue from."""
    run_dir, info = tr.run_dir, tr.info
    seed = int(tr.cfg.get("seed", 0))
    # ranks other than 0 draw their own stream (dropout differs per rank; 0 keeps the checkpointed one)
    rank_seed = seed * 1_000_003 + info.rank * 7919
    ck = load_resume_checkpoint(run_dir, map_location=tr.device)
    if ck is None:
        if info.enabled and not info.is_main:
            torch.manual_seed(rank_seed)
        if info.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            record = dict(tr.cfg)
            record["config_hash"] = tr.hash
            if tr.key is not None:  # what the run folder is keyed by (nriqa.train.run_files.keyed_config)
                record["run_key"], record["keyed"] = tr.key, tr.keyed
            if tr.init_record is not None:
                record["init_from"] = tr.init_record
            atomic_write_text(run_dir / CONFIG_FILE, nconfig.dump(record))
            (run_dir / LOG_FILE).unlink(missing_ok=True)
        return 0

    if ck.get("config_hash") != tr.hash:
        changed = _resume_changes(read_config(run_dir), tr.cfg)
        if changed:
            warnings.warn(f"resuming {run_dir} with a changed config ({changed})", stacklevel=4)  # 4: train()'s caller
    tr.gen.load_state_dict(ck["params"])
    tr.ema.load_state_dict(ck["params_ema"])
    tr.ema.load_counters(ck.get("ema"))
    tr.opt.load_state_dict(ck["optimizer"])
    for k, v in ck.get("weights", {}).items():
        if k in tr.weights:
            tr.weights[k] = v.to(tr.device)
    if tr.balancer is not None and "balancer" in ck:
        tr.balancer.load_state_dict(ck["balancer"])
        tr.weights = tr.balancer.weights
    if tr.disc is not None:
        tr.disc.load_state_dict(ck["discriminator"])
        tr.d_opt.load_state_dict(ck["d_optimizer"])
    tr.tally.load_state_dict(ck["trainer"])
    start = int(ck["step"])
    if info.enabled and not info.is_main:
        torch.manual_seed(rank_seed + start)
    else:
        set_rng_state(ck["rng"])
    if info.is_main:
        truncate_log(run_dir, start)
    tr.init_record = read_config(run_dir).get("init_from")
    return start


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
        warnings.warn(f"init_from {init_from} has no done.json: starting from its step {record['step']}", stacklevel=3)
    return ckpt[key], record


def truncate_log(run_dir: Path, step: int) -> None:
    """Drop log rows written after the checkpoint we resume from (they will be written again)."""
    path = run_dir / LOG_FILE
    if not path.exists():
        return
    rows = [r for r in read_log_rows(run_dir) if r.get("step", 0) <= step]
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def write_done(tr: "_Trainer", steps: int, started: float) -> None:
    """``done.json``: when and how the run ended, which checkpoint is best and by what measure."""
    rec = {"step": steps, "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "seconds": round(time.perf_counter() - started, 3), "config_hash": tr.hash,
           "best_step": tr.tally.best_step, "best_score": finite_or_none(tr.tally.best_score),
           "best_by": "evaluate" if tr.evaluate is not None else "train_loss_ema",
           "loss_ema": finite_or_none(float(tr.tally.loss_ema.item())), "world_size": tr.info.world_size,
           "init_from": tr.init_record, "evaluated": tr.ema.card()}
    atomic_write_text(tr.run_dir / DONE_FILE, json.dumps(rec, indent=2))
