"""Baselines that run the same MPC loop without consulting the world model.

- :class:`DoNothing`: every planned action is zero (clipped into the box, pins held): for delta
  actions the arm or pusher stays where it is; the object moves only if something else moves it.
- :class:`RandomActions`: every planned action is drawn uniformly from the box (seeded by the
  solver's generator), the usual random-policy baseline.

Both follow :class:`planners.base.Solver`; they never call the cost, so planning them is free and
their episodes show what the env does on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from planners.base import CostFn, PlanResult, PlanSpace


@dataclass
class DoNothingConfig:
    """No settings: the plan is all zeros."""


@dataclass
class RandomActionsConfig:
    """No settings: each action is uniform in the box."""


class DoNothing:
    """The zero plan (module docstring)."""

    def __init__(self, config: DoNothingConfig | None = None) -> None:
        self.config = config or DoNothingConfig()

    def solve(self, cost_fn: CostFn, space: PlanSpace, init: Tensor | None = None,
              generator: torch.Generator | None = None) -> PlanResult:
        plan = space.project(torch.zeros(space.horizon, space.action_dim, device=space.device))
        return PlanResult(plan=plan, energy=float("nan"))


class RandomActions:
    """A uniform random plan in the box (module docstring)."""

    def __init__(self, config: RandomActionsConfig | None = None) -> None:
        self.config = config or RandomActionsConfig()

    def solve(self, cost_fn: CostFn, space: PlanSpace, init: Tensor | None = None,
              generator: torch.Generator | None = None) -> PlanResult:
        u = torch.rand((space.horizon, space.action_dim), generator=generator, device=space.device)
        plan = space.project(space.low + u * (space.high - space.low))
        return PlanResult(plan=plan, energy=float("nan"))
