"""Process groups for ``torchrun``: gloo on CPU, NCCL on GPU; single-process runs need no launcher."""

from __future__ import annotations

import os
from collections.abc import Sequence
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


def wait_for_all(info: DistInfo) -> None:
    """Barrier over the processes (nothing in a single-process run). Training ends with it, so no rank
    returns (and exits) while rank 0 is still writing the final checkpoint: a gloo process that
    exits while its peer is still working can abort at interpreter shutdown."""
    if info.world_size > 1 and dist.is_initialized():
        dist.barrier()


def finish_distributed() -> None:
    """End of a ``torchrun`` process: wait for every rank, then destroy the process group (a no-op
    when there is none). The command entry points call it after their last collective."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def all_reduce_gradients(modules: Sequence[nn.Module], info: DistInfo) -> None:
    """Average gradients over processes (one flat all-reduce; same result as DDP)."""
    if info.world_size <= 1:
        return
    grads = [p.grad for m in modules for p in m.parameters() if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= info.world_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def shard_fsdp(module: nn.Module, info: DistInfo) -> nn.Module:
    """Shard ``module`` over the processes (FSDP2 ``fully_shard``): every transformer block is its
    own unit, then the rest of the module. Parameters become DTensors; gradients are reduce-scattered
    and averaged by FSDP itself. Unchanged in a single-process run. Works with gloo (CPU) and NCCL."""
    if info.world_size <= 1:
        return module
    from torch.distributed.fsdp import fully_shard

    from jepa.models.blocks import Block

    for child in module.modules():
        if isinstance(child, Block):
            fully_shard(child)
    fully_shard(module)
    return module


def _trainable(modules: dict[str, nn.Module]) -> nn.ModuleDict:
    return nn.ModuleDict({k: m for k, m in modules.items() if any(p.requires_grad for p in m.parameters())})


def full_state_dicts(modules: dict[str, nn.Module], optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Unsharded (full, on CPU) state dicts of FSDP-sharded ``modules`` and of ``optimizer``, whose
    parameters are those of the modules that have trainable ones. A collective: every rank calls it."""
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_model_state_dict,
        get_optimizer_state_dict,
    )

    opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
    models = {k: get_model_state_dict(m, options=opts) for k, m in modules.items()}
    return models, get_optimizer_state_dict(_trainable(modules), optimizer, options=opts)


def load_full_state_dicts(modules: dict[str, nn.Module], optimizer: torch.optim.Optimizer, models: dict,
                          optim: dict) -> None:
    """Inverse of :func:`full_state_dicts` (every rank calls it with the same full state dicts)."""
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    opts = StateDictOptions(full_state_dict=True)
    for k, m in modules.items():
        set_model_state_dict(m, models[k], options=opts)
    set_optimizer_state_dict(_trainable(modules), optimizer, optim, options=opts)
