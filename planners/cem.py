"""Cross-entropy method (CEM) over action sequences, batched in torch.

Each iteration samples ``samples`` sequences ``[S, H, A]`` from a per-step, per-dim Gaussian,
clips them to the box (pinned dims held), scores them with the cost, and moves the Gaussian toward
the ``topk`` lowest-cost sequences (the elites) with momentum, as in the released V-JEPA 2 planner::

    mean <- (1 - momentum_mean) * elite_mean + momentum_mean * mean
    std  <- (1 - momentum_std)  * elite_std  + momentum_std  * std      (elite_std unbiased)

The plan returned is the final mean (clipped), as released. Momentum 0 is plain CEM; momentum near
1 keeps the distribution where it was, so the std shrinks by at most a factor ``momentum_std`` per
iteration.

Released settings (``WorldModel`` in ``notebooks/utils``): 400 samples x 10 iterations, topk 10,
horizon 2, momentum 0.15/0.15, bounds +-0.05 m on xyz (``maxnorm``) and +-0.75 on the gripper,
initial std ``maxnorm`` on xyz and 1.0 on the gripper. ``configs/plan/solvers/cem_released.yaml`` holds the
800-sample variant; the defaults here are CPU-sized.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from planners.base import CostFn, PlanResult, PlanSpace, evaluate, initial_plan, normal


@dataclass
class CEMConfig:
    """CEM budget and update rule.

    Attributes:
        samples: candidate sequences per iteration.
        iterations: sampling/update rounds.
        topk: number of elites (2 <= topk <= samples).
        momentum_mean, momentum_std: weight kept on the previous mean/std, in [0, 1).
        init_std: per-dim initial std in planner units (length A, or one value for every dim);
            empty means half the box width per dim.
        min_std: floor on the std of searched dims, so the search never freezes completely.
    """

    samples: int = 200
    iterations: int = 6
    topk: int = 10
    momentum_mean: float = 0.15
    momentum_std: float = 0.15
    init_std: list[float] | None = None
    min_std: float = 0.0

    def __post_init__(self) -> None:
        if self.samples < 2 or self.iterations < 1:
            raise ValueError(f"CEM needs samples >= 2 and iterations >= 1, got "
                             f"{self.samples}, {self.iterations}")
        if not 2 <= self.topk <= self.samples:
            raise ValueError(f"CEM topk must be in [2, samples={self.samples}], got {self.topk}")
        for name in ("momentum_mean", "momentum_std"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"CEM {name} must be in [0, 1), got {getattr(self, name)}")
        if self.min_std < 0:
            raise ValueError(f"CEM min_std must be >= 0, got {self.min_std}")


def initial_std(space: PlanSpace, init_std: list[float] | None) -> Tensor:
    """``[H, A]`` initial std: ``init_std`` (one value or one per dim) or half the box width; 0 where
    pinned."""
    if init_std:
        std = torch.as_tensor(init_std, dtype=torch.float32, device=space.device)
        if std.numel() not in (1, space.action_dim) or (std < 0).any():
            raise ValueError(f"init_std must hold 1 or {space.action_dim} non-negative values, "
                             f"got {init_std}")
        std = std.expand(space.action_dim)
    else:
        std = space.half_range()
    return torch.where(space.pin_mask, torch.zeros_like(std), std).expand(space.horizon, -1).clone()


def momentum_update(mean: Tensor, std: Tensor, elites: Tensor, momentum_mean: float,
                    momentum_std: float) -> tuple[Tensor, Tensor]:
    """One CEM update from ``elites [K, H, A]``: returns the new ``(mean [H, A], std [H, A])``."""
    new_mean = (1 - momentum_mean) * elites.mean(0) + momentum_mean * mean
    new_std = (1 - momentum_std) * elites.std(0, unbiased=True) + momentum_std * std
    return new_mean, new_std


class CEM:
    """Batched CEM solver (see the module docstring); follows :class:`planners.base.Solver`."""

    def __init__(self, config: CEMConfig) -> None:
        self.config = config

    @torch.no_grad()
    def solve(self, cost_fn: CostFn, space: PlanSpace, init: Tensor | None = None,
              generator: torch.Generator | None = None) -> PlanResult:
        cfg = self.config
        mean = initial_plan(space, init)
        std = initial_std(space, cfg.init_std)
        searched = ~space.pin_mask
        energies, stds = [], []
        for _ in range(cfg.iterations):
            noise = normal((cfg.samples, space.horizon, space.action_dim), generator, space.device)
            candidates = space.project(mean + std * noise)
            costs = evaluate(cost_fn, candidates)
            top = torch.topk(costs, cfg.topk, largest=False)
            elites = candidates[top.indices]
            mean, std = momentum_update(mean, std, elites, cfg.momentum_mean, cfg.momentum_std)
            std = torch.where(searched, std.clamp_min(cfg.min_std), torch.zeros_like(std))
            energies.append(float(top.values[0]))
            stds.append(float(std[:, searched].mean()) if searched.any() else 0.0)
        plan = space.project(mean)
        energy = float(evaluate(cost_fn, plan[None])[0])
        return PlanResult(plan=plan, energy=energy, energies=energies, stds=stds,
                          evaluations=cfg.samples * cfg.iterations + 1)
