"""Training logs: one row per log interval, appended to ``log.jsonl`` and mirrored to TensorBoard.

Row columns, in this order: ``step``, ``total``, ``loss/<term>``, ``weight/<term>``,
``gradnorm/<term>`` (rows whose interval measured them), ``lr``, ``lr_flow`` (models with a flow
network), ``grad_norm``, ``nonfinite``, ``d_loss`` (adversarial runs), ``conflict_rate``
(``project_conflicts``), ``frames_per_s``, ``peak_mem_mb``. Losses and norms are means over the
interval's finite steps (null when it had none).
"""
from __future__ import annotations

import json
import math
import resource
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import torch

from .run_files import LOG_FILE

if TYPE_CHECKING:
    from .state import Tally


def finite_or_none(v: float) -> float | None:
    """JSON has no NaN/Inf: they are written as null."""
    return v if math.isfinite(v) else None


def peak_memory_mb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def log_row(step: int, tally: "Tally", weights: Mapping[str, torch.Tensor], lrs: Mapping[str, float], *,
            seconds: float, frames: int, device: str, d_loss: bool, conflicts: bool) -> dict[str, Any]:
    """The row for the interval ending at ``step`` (one host read of every device value).

    ``lrs``: ``lr`` (and ``lr_flow``); ``d_loss``/``conflicts``: whether the run has those columns.
    """
    acc, names = tally.acc, list(tally.acc_terms)
    norm_names = list(tally.norms) if (tally.norms_measured and tally.norms) else []
    values = torch.stack([acc[k].float() for k in acc] + [tally.acc_terms[k].float() for k in names]
                         + [weights[k].float() for k in weights]
                         + [tally.norms[k].float().to(device) for k in norm_names]).tolist()
    it = iter(values)
    sums = {k: next(it) for k in acc}
    term_vals = {k: next(it) for k in names}
    weight_vals = {k: next(it) for k in weights}
    norm_vals = {k: next(it) for k in norm_names}

    n_ok = max(sums["finite"], 1.0)

    def mean(v: float) -> float | None:  # over the finite steps of the interval
        return finite_or_none(v / n_ok) if sums["finite"] else None

    row: dict[str, Any] = {"step": step, "total": mean(sums["total"])}
    for k in names:
        row[f"loss/{k}"] = mean(term_vals[k])
    for k, v in weight_vals.items():
        row[f"weight/{k}"] = v
    for k, v in norm_vals.items():
        row[f"gradnorm/{k}"] = finite_or_none(v)
    row.update(lrs)
    row["grad_norm"] = mean(sums["grad_norm"])
    row["nonfinite"] = int(sums["nonfinite"])
    if d_loss:
        row["d_loss"] = finite_or_none(sums["d_loss"] / max(tally.acc_steps, 1))
    if conflicts:
        row["conflict_rate"] = sums["conflict"] / max(tally.acc_steps, 1)
    row["frames_per_s"] = frames / seconds if seconds > 0 else None
    row["peak_mem_mb"] = peak_memory_mb(device)
    return row


def append_row(run_dir: Path, row: Mapping[str, Any]) -> None:
    with open(run_dir / LOG_FILE, "a") as fh:
        fh.write(json.dumps(row) + "\n")


class TensorBoard:
    """Scalars of each log row under ``run_dir/tensorboard`` (a no-op when disabled or missing)."""

    def __init__(self, enabled: bool, run_dir: Path):
        self.writer = None
        if not enabled:
            return
        try:  # an optional dependency: imported only when a run asks for it
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
