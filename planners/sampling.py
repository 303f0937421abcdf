"""The loop every sampling solver shares: propose -> project -> evaluate -> update.

A sampling solver keeps a Gaussian search distribution (:class:`Search`: ``mean`` and ``std``, both
``[H, A]`` in planner units) and, per iteration, proposes candidates ``[S, H, A]``, clips them into
the :class:`~planners.base.PlanSpace` (pinned dims held), scores them with the cost and updates the
distribution. Subclasses define :meth:`SamplingSolver.update` (and, if they sample differently,
:meth:`SamplingSolver.propose`); CEM, MPPI and iCEM are each one small file on top of this.
The returned plan is the final mean, clipped into the box, with its energy and a
:class:`~planners.base.PlanConfidence`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from planners.base import CostFn, PlanConfidence, PlanResult, PlanSpace, evaluate, initial_plan, normal, spread_of


@dataclass
class Search:
    """The search distribution: ``mean [H, A]`` and ``std [H, A]`` (planner units)."""

    mean: Tensor
    std: Tensor


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


class SamplingSolver:
    """Base of the sampling solvers (module docstring); follows :class:`planners.base.Solver`.

    Subclasses set ``iterations`` and ``init_std`` and implement :meth:`update`.
    """

    iterations: int
    init_std: list[float] | None

    def reset(self) -> None:
        """An episode starts (stateless solvers: nothing to do)."""

    def shift(self, steps: int) -> None:
        """``steps`` planned actions were executed (stateless solvers: nothing to do)."""

    def samples_at(self, iteration: int) -> int:
        """Candidates proposed at ``iteration``."""
        raise NotImplementedError

    def propose(self, search: Search, space: PlanSpace, iteration: int, generator: torch.Generator | None) -> Tensor:
        """Candidates ``[S, H, A]`` before projection: Gaussian samples around the mean."""
        noise = normal((self.samples_at(iteration), space.horizon, space.action_dim), generator, space.device)
        return search.mean + search.std * noise

    def update(self, search: Search, candidates: Tensor, costs: Tensor, space: PlanSpace, iteration: int) -> Search:
        """The next distribution from the scored ``candidates [S, H, A]`` and ``costs [S]``."""
        raise NotImplementedError

    def finish(self, search: Search, candidates: Tensor, costs: Tensor, space: PlanSpace) -> None:
        """Called once after the last iteration (e.g. to keep elites for the next solve)."""

    def converged(self, search: Search, space: PlanSpace) -> bool:
        """Stop before ``iterations`` when this returns True (never, by default)."""
        return False

    @torch.no_grad()
    def solve(self, cost_fn: CostFn, space: PlanSpace, init: Tensor | None = None,
              generator: torch.Generator | None = None) -> PlanResult:
        search = Search(initial_plan(space, init), initial_std(space, self.init_std))
        searched = ~space.pin_mask
        energies, stds, evaluations = [], [], 0
        for it in range(self.iterations):
            candidates = space.project(self.propose(search, space, it, generator))
            costs = evaluate(cost_fn, candidates)
            evaluations += candidates.shape[0]
            search = self.update(search, candidates, costs, space, it)
            energies.append(float(costs.min()))
            stds.append(float(search.std[:, searched].mean()) if searched.any() else 0.0)
            if self.converged(search, space):
                break
        self.finish(search, candidates, costs, space)
        plan = space.project(search.mean)
        energy = float(evaluate(cost_fn, plan[None])[0])
        confidence = PlanConfidence(elite_spread=spread_of(search.std, space),
                                    energy_gap=float(costs.mean()) - energy)
        return PlanResult(plan=plan, energy=energy, energies=energies, stds=stds, evaluations=evaluations + 1,
                          confidence=confidence)
