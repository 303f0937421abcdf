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

from jepa.config import Checked, non_negative, positive, require
from planners.base import PlanSpace
from planners.sampling import SamplingSolver, Search, initial_std

__all__ = ["CEM", "CEMConfig", "elite_update", "initial_std", "momentum_update"]


@dataclass
class CEMConfig(Checked):
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

    def check(self) -> None:
        positive(self, "iterations")
        require(self.samples >= 2, "samples", f"must be >= 2, got {self.samples}")
        require(2 <= self.topk <= self.samples, "topk", f"must be in [2, samples={self.samples}], got {self.topk}",
                related=["samples"])
        momenta(self)
        non_negative(self, "min_std", "init_std")


def momenta(cfg: object) -> None:
    """``momentum_mean`` and ``momentum_std`` of a config are in [0, 1)."""
    for name in ("momentum_mean", "momentum_std"):
        v = getattr(cfg, name)
        require(0.0 <= v < 1.0, name, f"must be in [0, 1), got {v}")


def momentum_update(mean: Tensor, std: Tensor, elites: Tensor, momentum_mean: float,
                    momentum_std: float) -> tuple[Tensor, Tensor]:
    """One CEM update from ``elites [K, H, A]``: returns the new ``(mean [H, A], std [H, A])``."""
    new_mean = (1 - momentum_mean) * elites.mean(0) + momentum_mean * mean
    new_std = (1 - momentum_std) * elites.std(0, unbiased=True) + momentum_std * std
    return new_mean, new_std


def elite_update(search: Search, elites: Tensor, space: PlanSpace, momentum_mean: float, momentum_std: float,
                 min_std: float) -> Search:
    """:func:`momentum_update` toward ``elites [K, H, A]``, std floored at ``min_std`` on searched dims
    and 0 on pinned ones (the update CEM and iCEM share)."""
    mean, std = momentum_update(search.mean, search.std, elites, momentum_mean, momentum_std)
    std = torch.where(~space.pin_mask, std.clamp_min(min_std), torch.zeros_like(std))
    return Search(mean, std)


class CEM(SamplingSolver):
    """Batched CEM solver (see the module docstring); follows :class:`planners.base.Solver`."""

    def __init__(self, config: CEMConfig) -> None:
        self.config = config
        self.iterations, self.init_std = config.iterations, config.init_std

    def samples_at(self, iteration: int) -> int:
        return self.config.samples

    def update(self, search: Search, candidates: Tensor, costs: Tensor, space: PlanSpace, iteration: int) -> Search:
        cfg = self.config
        top = torch.topk(costs, cfg.topk, largest=False)
        return elite_update(search, candidates[top.indices], space, cfg.momentum_mean, cfg.momentum_std, cfg.min_std)
