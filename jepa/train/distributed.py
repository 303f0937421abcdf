"""Process groups for ``torchrun``: gloo on CPU, NCCL on GPU; single-process runs need no launcher."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group described by torchrun's environment (``WORLD_SIZE`` > 1), else none."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(),
                    local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def wrap_ddp(module: nn.Module, info: DistInfo, device: torch.device) -> nn.Module:
    """DDP-wrap ``module`` in a multi-process run; return it unchanged otherwise."""
    if info.world_size <= 1:
        return module
    ids = [device.index if device.index is not None else info.local_rank] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids)


def wrap_fsdp(module: nn.Module, info: DistInfo) -> nn.Module:
    """Shard a model that does not fit one GPU (FSDP, full sharding). Needs a CUDA process group."""
    if info.world_size <= 1:
        return module
    from torch.distributed.fsdp import FullyShardedDataParallel

    return FullyShardedDataParallel(module)


def unwrap(module: nn.Module) -> nn.Module:
    return getattr(module, "module", module)


def all_reduce_mean(value: float, info: DistInfo) -> float:
    if info.world_size <= 1:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item()) / info.world_size
