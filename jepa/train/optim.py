"""AdamW with the released parameter groups: no weight decay on biases and 1-D parameters (norms)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn


def param_groups(modules: Mapping[str, nn.Module], lr_scale: Mapping[str, float] | None = None) -> list[dict]:
    """Two groups per named module: weights (decayed) and biases/norms (``wd_exclude``)."""
    groups = []
    for name, module in modules.items():
        decay, no_decay = [], []
        for pname, p in module.named_parameters():
            if not p.requires_grad:
                continue
            (no_decay if p.ndim < 2 or pname.endswith(".bias") else decay).append(p)
        scale = (lr_scale or {}).get(name, 1.0)
        groups.append({"params": decay, "name": f"{name}.decay", "lr_scale": scale, "wd_exclude": False})
        groups.append({"params": no_decay, "name": f"{name}.no_decay", "lr_scale": scale, "wd_exclude": True})
    return [g for g in groups if g["params"]]


def build_adamw(modules: Mapping[str, nn.Module], betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                lr_scale: Mapping[str, float] | None = None) -> torch.optim.AdamW:
    # foreach: one multi-tensor update instead of a Python loop over parameters (torch's CPU default)
    return torch.optim.AdamW(param_groups(modules, lr_scale), lr=0.0, betas=betas, eps=eps, weight_decay=0.0,
                             foreach=True)


def set_lr_wd(optimizer: torch.optim.Optimizer, lr: float, weight_decay: float) -> None:
    """Apply this step's learning rate and weight decay to every group."""
    for g in optimizer.param_groups:
        g["lr"] = lr * g.get("lr_scale", 1.0)
        g["weight_decay"] = 0.0 if g.get("wd_exclude") else weight_decay
