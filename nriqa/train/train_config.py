"""``cfg["train"]`` as plain data: :class:`TrainConfig`, its defaults and its validation."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping

from nriqa.errors import ConfigError

#: the objective key of the adversarial term (its weight and gradient norm are logged under this name)
GAN_TERM = "gan"


@dataclass
class TrainConfig:
    """``cfg["train"]`` with defaults (``nriqa/profiles/demo.yaml`` sets the common ones).

    Beyond the demo profile's keys: ``tensorboard`` (write ``run_dir/tensorboard``; skipped with a
    warning when the package is missing), ``balance`` (``{reference, shares, every, ema, clip}``,
    used when ``objective`` has ``weights: gradnorm``; defaults from ``cfg["weights"]``:
    ``reference``, ``target_share``, ``balance_every``), ``project_conflicts`` (PCGrad-style, one
    process only), ``d_lr``/``d_optimizer`` (discriminator Adam), ``init_weights`` (``ema`` |
    ``params`` of the ``init_from`` baseline), ``loss_ema_decay`` (smoothing of the loss that picks
    ``best.pt``), ``ddp_find_unused``, ``ema_warmup`` (the EMA's decay ramps up as ``min(ema_decay, (1+n)/(10+n))``
    over this run's updates ``n``, so a short fine-tune's EMA represents it; false: constant
    ``ema_decay``). ``grad_clip`` 0/null = off; ``gradnorm_every`` 0 = off;
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
    ema_warmup: bool = True
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
            raise ConfigError("cfg must be a resolved profile with a cfg['train'] mapping "
                              "(see nriqa/profiles/demo.yaml)")
        t = dict(cfg["train"])
        unknown = sorted(set(t) - set(cls.__dataclass_fields__))
        if unknown:
            warnings.warn(f"train: ignoring unknown keys {unknown}", stacklevel=3)  # 3: the caller of train()
        for k in unknown:
            t.pop(k)
        if "steps" not in t or "objective" not in t:
            raise ConfigError("cfg['train'] needs 'steps' and 'objective'")
        out = cls(**t)
        out.check()
        return out

    def check(self) -> None:
        def bad(name, expect, got):
            raise ConfigError(f"train.{name} must be {expect}, got {got!r}")

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

    def d_optimizer_cfg(self) -> dict:
        """The discriminator's optimizer: Adam with betas (0.9, 0.99) at ``d_lr`` (default: the
        generator's lr), overridden key by key by ``d_optimizer``."""
        return {"name": "adam", "lr": self.d_lr or self.optimizer.get("lr", 1e-4), "betas": [0.9, 0.99],
                **dict(self.d_optimizer)}


def resolve_flag(value: Any, device: str) -> bool:
    """``amp``/``channels_last``: ``auto`` (or null) means on for CUDA, off elsewhere."""
    return device.startswith("cuda") if value in (None, "auto") else bool(value)
