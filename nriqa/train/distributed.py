"""DistributedDataParallel plumbing: one process per device under ``torchrun``.

NCCL on GPU, gloo on CPU. Every rank draws the same global batch from the deterministic
sampler and keeps the rows ``rank::world_size`` (a distinct, rank-strided slice); gradients
are averaged over ranks, so every rank takes the same optimizer step. Rank 0 writes logs and
checkpoints.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from nriqa.errors import ConfigError


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialized_here: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device_kind: str) -> DistInfo:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE`` > 1); a no-op otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    here = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_kind == "cuda" else "gloo")
        here = True
    return DistInfo(rank=rank, world_size=world, local_rank=local, initialized_here=here)


def teardown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.barrier()
        if info.initialized_here:
            dist.destroy_process_group()


def wrap(model: nn.Module, info: DistInfo, device: str, find_unused: bool = False) -> nn.Module:
    """``model`` itself on one process, else a DistributedDataParallel around it (gradients averaged)."""
    if not info.enabled:
        return model
    return DistributedDataParallel(model, device_ids=[info.local_rank] if device.startswith("cuda") else None,
                                   find_unused_parameters=find_unused)


def all_finite(loss: torch.Tensor, norm: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """On-device bool: ``loss`` and ``norm`` finite here and, under DDP, on every rank (no host sync)."""
    finite = torch.isfinite(loss) & torch.isfinite(norm)
    if info.enabled:
        flag = finite.float()
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        finite = flag > 0
    return finite


def shard(batch: dict, info: DistInfo) -> dict:
    """This rank's rows of a global batch: ``x[rank::world_size]`` for every tensor."""
    if not info.enabled:
        return batch
    out = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            if v.shape[0] % info.world_size:
                raise ConfigError(f"data.batch_size ({v.shape[0]}) must be divisible by the number of "
                                  f"processes ({info.world_size})")
            v = v[info.rank :: info.world_size]
        out[k] = v
    return out


def average_gradients(params: list[torch.nn.Parameter], info: DistInfo) -> None:
    """All-reduce (mean) the ``.grad`` of ``params`` in one flat buffer (used for the discriminator)."""
    if not info.enabled:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= info.world_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()
