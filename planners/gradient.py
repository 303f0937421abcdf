"""Gradient descent on the action sequence through a differentiable cost (Adam, projected).

``starts`` sequences are optimised in parallel: the first starts from ``init`` (or the box centre),
the others from ``init`` plus Gaussian noise of std ``init_noise`` times half the box width. After
every Adam step the actions are clipped back into the box and pinned dims reset. The lowest-cost
sequence seen is returned. The cost must be differentiable in the actions (a world model rollout
without ``torch.no_grad``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from jepa.config import Checked, non_negative, positive
from planners.base import CostFn, PlanConfidence, PlanResult, PlanSpace, evaluate, initial_plan, normal, spread_of


@dataclass
class GradientConfig(Checked):
    """Attributes:
    iterations: Adam steps (>= 1).
    lr: Adam learning rate in planner units per step (> 0).
    starts: sequences optimised in parallel (>= 1).
    init_noise: std of the extra starts' noise, as a fraction of half the box width (>= 0).
    """

    iterations: int = 100
    lr: float = 0.05
    starts: int = 4
    init_noise: float = 0.5

    def check(self) -> None:
        positive(self, "iterations", "starts", "lr")
        non_negative(self, "init_noise")


class GradientSolver:
    """Projected Adam over ``[starts, H, A]``; follows :class:`planners.base.Solver`."""

    def __init__(self, config: GradientConfig) -> None:
        self.config = config

    def solve(self, cost_fn: CostFn, space: PlanSpace, init: Tensor | None = None,
              generator: torch.Generator | None = None) -> PlanResult:
        cfg = self.config
        start = initial_plan(space, init)
        noise = normal((cfg.starts, space.horizon, space.action_dim), generator, space.device)
        noise[0] = 0
        x = space.project(start + cfg.init_noise * space.half_range() * noise).requires_grad_(True)
        opt = torch.optim.Adam([x], lr=cfg.lr)
        best_plan, best = start, float("inf")
        energies = []
        for _ in range(cfg.iterations + 1):
            with torch.enable_grad():
                costs = evaluate(cost_fn, x)
                if not costs.requires_grad:
                    raise ValueError("gradient solver: the cost function is not differentiable in the "
                                     "actions "
                                     "(was it computed under torch.no_grad?)")
            i = int(costs.detach().argmin())
            energies.append(float(costs.detach()[i]))
            if energies[-1] < best:
                best, best_plan = energies[-1], x[i].detach().clone()
            if len(energies) > cfg.iterations:
                break
            opt.zero_grad()
            costs.sum().backward()
            opt.step()
            with torch.no_grad():
                x.copy_(space.project(x))
        final = costs.detach()
        spread = spread_of(x.detach().std(0, unbiased=False), space) if cfg.starts > 1 else 0.0
        confidence = PlanConfidence(elite_spread=spread, energy_gap=float(final.mean()) - best)
        return PlanResult(plan=best_plan, energy=best, energies=energies[1:],
                          evaluations=cfg.starts * (cfg.iterations + 1), confidence=confidence)
