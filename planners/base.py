"""What every solver shares: the search space, the result, the ``Solver`` protocol, input checks.

A solver minimises a cost over action sequences. The cost is any callable ``[S, H, A] -> [S]``
(``S`` candidate sequences of ``H`` actions of ``A`` dims, lower is better); the solver knows
nothing about encoders or predictors (see :mod:`planners.objectives` for the world-model cost).
Actions are in *planner units*; :mod:`planners.mpc` maps them to env units.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

CostFn = Callable[[Tensor], Tensor]
"""Cost over candidates: actions ``[S, H, A]`` -> energies ``[S]`` (lower is better)."""


class PlanSpace:
    """The box the solver searches, and how its actions become env actions.

    Args:
        low, high: ``[A]`` per-dimension bounds in planner units; ``low <= high`` everywhere.
        horizon: number of planned actions ``H`` in a plan (>= 1).
        pinned: ``{dim: value}`` dimensions that are not searched but held at ``value`` (planner units)
            in every candidate and in the returned plan (e.g. a gripper kept open).
        scale: env units per planner unit, one value or ``[A]`` (> 0): the env receives
            ``action * scale`` (1 = the planner works in env units, as the released V-JEPA 2 planner).
        block: env steps per planned action (an *action block*, the peers' frameskip). A planned
            action is the **sum** of its block's delta actions, so the env receives
            ``action * scale / block`` at each of the ``block`` steps; the world model must have been
            trained on windows at ``frame_step = block`` (whose actions are summed the same way).
    """

    def __init__(self, low: Sequence[float] | Tensor, high: Sequence[float] | Tensor, horizon: int,
                 pinned: Mapping[int, float] | None = None, scale: Sequence[float] | float = 1.0,
                 block: int = 1) -> None:
        low_t = torch.as_tensor(low, dtype=torch.float32).flatten()
        high_t = torch.as_tensor(high, dtype=torch.float32).flatten()
        if low_t.numel() == 0 or low_t.shape != high_t.shape:
            raise ValueError(f"action bounds: low {tuple(low_t.shape)} and high {tuple(high_t.shape)} "
                             "must be non-empty vectors of the same length")
        if not (torch.isfinite(low_t).all() and torch.isfinite(high_t).all()):
            raise ValueError(f"action bounds must be finite, got low={low_t.tolist()} high={high_t.tolist()}")
        inverted = (low_t > high_t).nonzero().flatten().tolist()
        if inverted:
            raise ValueError(f"action bounds are inverted (low > high) in dims {inverted}: "
                             f"low={low_t.tolist()} high={high_t.tolist()}")
        if int(horizon) < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        if int(block) < 1:
            raise ValueError(f"action block must be >= 1 env step, got {block}")
        self.low, self.high, self.horizon, self.block = low_t, high_t, int(horizon), int(block)
        self.scale = action_scale(scale, low_t.numel())
        self.pin_mask = torch.zeros_like(low_t, dtype=torch.bool)
        self.pin_values = torch.zeros_like(low_t)
        for dim, value in (pinned or {}).items():
            if not 0 <= int(dim) < low_t.numel():
                raise ValueError(f"pinned dim {dim} is outside the {low_t.numel()} action dims")
            if not low_t[dim] <= value <= high_t[dim]:
                raise ValueError(f"pinned dim {dim} = {value} is outside its bounds "
                                 f"[{low_t[dim]}, {high_t[dim]}]")
            self.pin_mask[int(dim)] = True
            self.pin_values[int(dim)] = float(value)

    @classmethod
    def symmetric(cls, maxnorm: Sequence[float] | float, action_dim: int, horizon: int,
                  pinned: Mapping[int, float] | None = None) -> PlanSpace:
        """Bounds ``[-maxnorm, maxnorm]`` per dim (a scalar applies to every dim)."""
        m = torch.as_tensor(maxnorm, dtype=torch.float32).expand(action_dim)
        return cls(-m, m, horizon, pinned)

    @classmethod
    def for_action_space(cls, action_space, horizon: int, pinned: Mapping[int, float] | None = None,
                         scale: Sequence[float] | float = 1.0, block: int = 1) -> PlanSpace:
        """Bounds from a gymnasium ``Box``: env bounds x ``block`` / ``scale`` (``pinned`` in planner
        units), so the planner's box and the env's cannot disagree silently."""
        low = np.asarray(action_space.low, dtype=np.float64).ravel()
        high = np.asarray(action_space.high, dtype=np.float64).ravel()
        factor = int(block) / action_scale(scale, low.size)
        return cls(low * factor, high * factor, horizon, pinned, scale, block)

    @property
    def action_dim(self) -> int:
        return self.low.numel()

    @property
    def pinned(self) -> dict[int, float]:
        return {int(d): float(self.pin_values[d]) for d in self.pin_mask.nonzero().flatten()}

    @property
    def device(self) -> torch.device:
        return self.low.device

    def to(self, device: torch.device | str) -> PlanSpace:
        """A copy on ``device`` (where the solver will sample)."""
        out = PlanSpace(self.low, self.high, self.horizon, self.pinned, self.scale, self.block)
        out.low, out.high = self.low.to(device), self.high.to(device)
        out.pin_mask, out.pin_values = self.pin_mask.to(device), self.pin_values.to(device)
        return out

    def with_horizon(self, horizon: int) -> PlanSpace:
        """The same box, scale and block with another horizon."""
        return PlanSpace(self.low, self.high, horizon, self.pinned, self.scale, self.block).to(self.device)

    def project(self, actions: Tensor) -> Tensor:
        """Clip ``[..., A]`` actions to the box and overwrite pinned dims with their values."""
        clipped = torch.maximum(torch.minimum(actions, self.high), self.low)
        return torch.where(self.pin_mask, self.pin_values, clipped)

    def center(self) -> Tensor:
        """The mid-point plan ``[H, A]`` (pins applied): the default initial mean."""
        return self.project(((self.low + self.high) / 2).expand(self.horizon, -1).clone())

    def half_range(self) -> Tensor:
        """``[A]`` half the width of the box (0 on pinned dims): the default initial std."""
        return torch.where(self.pin_mask, torch.zeros_like(self.low), (self.high - self.low) / 2)

    def env_actions(self, action: Tensor, action_space) -> list[np.ndarray]:
        """One planned action ``[A]`` (planner units) -> the ``block`` float32 env actions that execute
        it, each ``action * scale / block``, clipped to ``action_space`` (float rounding)."""
        a = action.detach().cpu().double().numpy() * self.scale / self.block
        low, high = np.asarray(action_space.low).ravel(), np.asarray(action_space.high).ravel()
        step = np.clip(a, low, high).astype(np.float32).reshape(action_space.shape)
        return [step.copy() for _ in range(self.block)]

    def check_plan(self, plan: Tensor, what: str = "plan") -> Tensor:
        """Validate a ``[H, A]`` plan (shape, finite) and return it as float32 on this space's device."""
        plan = torch.as_tensor(plan)
        if plan.shape != (self.horizon, self.action_dim):
            raise ValueError(f"{what}: expected shape ({self.horizon}, {self.action_dim}) = [H, A], "
                             f"got {tuple(plan.shape)}")
        if not torch.isfinite(plan).all():
            raise ValueError(f"{what} contains NaN or inf: {plan.tolist()}")
        return plan.to(self.device, torch.float32)


def action_scale(scale: Sequence[float] | float, action_dim: int) -> np.ndarray:
    """``[A]`` float64 env units per planner unit from one value or one per dim (positive, finite)."""
    out = np.broadcast_to(np.asarray(scale, dtype=np.float64), (action_dim,)).copy()
    if (out <= 0).any() or not np.isfinite(out).all():
        raise ValueError(f"action_scale must be positive and finite, got {out.tolist()}")
    return out


@dataclass
class PlanConfidence:
    """How much to trust a plan (computed by the solver from its last iteration).

    Attributes:
        elite_spread: the final sampling std (elites for CEM/iCEM, the starts for the gradient
            solver), averaged over searched dims and divided by the box's half width: 0 = the search
            has converged to one plan, about 1 = it is as spread as at the start. Lower is surer.
        energy_gap: mean energy of the last iteration's candidates minus the plan's energy (cost
            units): how much better the plan is than a typical candidate. Higher is surer.
        disagreement: for ensembles of world models, the spread of their energies for the plan
            (``None`` when the cost has one model).
    """

    elite_spread: float
    energy_gap: float
    disagreement: float | None = None


@dataclass
class PlanResult:
    """What a solver returns.

    Attributes:
        plan: ``[H, A]`` the chosen action sequence, in planner units, inside the space.
        energy: cost of ``plan`` (same units as the cost function).
        energies: per iteration, the lowest cost among that iteration's candidates.
        stds: per iteration, the mean sampling std over searched dims after the update (sampling
            solvers only; empty otherwise).
        evaluations: number of candidate sequences the cost function scored.
        confidence: :class:`PlanConfidence` of the plan (``None`` for solvers that cannot say).
    """

    plan: Tensor
    energy: float
    energies: list[float] = field(default_factory=list)
    stds: list[float] = field(default_factory=list)
    evaluations: int = 0
    confidence: PlanConfidence | None = None


def spread_of(std: Tensor, space: PlanSpace) -> float:
    """Mean of ``std [H, A]`` over searched dims, relative to the box's half width (0 if all pinned)."""
    searched = ~space.pin_mask
    half = space.half_range()
    if not bool(searched.any()):
        return 0.0
    rel = std[:, searched] / half[searched].clamp_min(1e-12)
    return float(rel.mean())


@runtime_checkable
class Solver(Protocol):
    """Minimises a cost over action sequences in a :class:`PlanSpace`.

    ``init`` (``[H, A]``, optional) is a starting plan, e.g. :func:`shift_plan` of the previous one;
    ``generator`` seeds all randomness so a seeded call is bitwise repeatable.

    Solvers that keep state between the solves of one episode (iCEM's elites) also define
    ``reset()`` (called by :func:`planners.mpc.run_episode` when an episode starts) and
    ``shift(steps)`` (called after ``steps`` planned actions were executed); both are optional.
    """

    def solve(self, cost_fn: CostFn, space: PlanSpace, init: Tensor | None = None,
              generator: torch.Generator | None = None) -> PlanResult: ...


def evaluate(cost_fn: CostFn, candidates: Tensor) -> Tensor:
    """Call ``cost_fn`` on ``[S, H, A]`` and check it returns ``[S]`` finite energies."""
    costs = cost_fn(candidates)
    if not isinstance(costs, Tensor) or costs.shape != (candidates.shape[0],):
        shape = tuple(costs.shape) if isinstance(costs, Tensor) else type(costs).__name__
        raise ValueError(f"cost function must return energies [S] = [{candidates.shape[0]}], got {shape}")
    bad = (~torch.isfinite(costs)).sum().item()
    if bad:
        raise ValueError(f"cost function returned NaN/inf for {bad} of {costs.numel()} candidates")
    return costs


def initial_plan(space: PlanSpace, init: Tensor | None) -> Tensor:
    """``init`` validated and projected into the space, or the space's centre."""
    if init is None:
        return space.center()
    return space.project(space.check_plan(init, "initial plan"))


def shift_plan(plan: Tensor, space: PlanSpace, steps: int = 1) -> Tensor:
    """Warm start: drop the first ``steps`` executed actions of ``plan [H, A]`` and pad the end with
    the space's centre, so the result is again ``[H, A]``."""
    plan = space.check_plan(plan, "previous plan")
    if steps < 0:
        raise ValueError(f"shift steps must be >= 0, got {steps}")
    steps = min(steps, space.horizon)
    return torch.cat([plan[steps:], space.center()[:steps]], 0)


def normal(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> Tensor:
    """Standard normal samples drawn from ``generator`` (which must live on ``device``)."""
    return torch.randn(shape, generator=generator, device=device)
