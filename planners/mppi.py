"""Model-predictive path integral (MPPI) over action sequences.

Each iteration perturbs the current mean with Gaussian noise, clips the candidates to the box,
scores them, and replaces the mean by the softmax-weighted average of the candidates::

    w_i  = softmax(-(c_i - min_j c_j) / temperature)
    mean <- (1 - momentum) * sum_i w_i x_i + momentum * mean

``temperature`` is in cost units: small values approach picking the best candidate, large values
approach the plain average. The std is fixed per dim and shrinks by ``std_decay`` each iteration.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from jepa.config import Checked, non_negative, positive, require
from planners.base import PlanSpace
from planners.sampling import SamplingSolver, Search


@dataclass
class MPPIConfig(Checked):
    """MPPI budget and weighting.

    Attributes:
        samples: candidate sequences per iteration (>= 2).
        iterations: update rounds (>= 1).
        temperature: softmax temperature in cost units (> 0).
        momentum: weight kept on the previous mean, in [0, 1).
        init_std: per-dim std in planner units (one value or one per dim); empty = half the box width.
        std_decay: factor applied to the std after each iteration, in (0, 1].
    """

    samples: int = 200
    iterations: int = 6
    temperature: float = 0.01
    momentum: float = 0.0
    init_std: list[float] | None = None
    std_decay: float = 0.7

    def check(self) -> None:
        positive(self, "iterations", "temperature", "std_decay")
        require(self.samples >= 2, "samples", f"must be >= 2, got {self.samples}")
        require(0.0 <= self.momentum < 1.0, "momentum", f"must be in [0, 1), got {self.momentum}")
        require(self.std_decay <= 1.0, "std_decay", f"must be in (0, 1], got {self.std_decay}")
        non_negative(self, "init_std")


def mppi_weights(costs: Tensor, temperature: float) -> Tensor:
    """``[S]`` softmax weights of ``costs [S]`` (shifted by the minimum for numerical safety)."""
    return torch.softmax(-(costs - costs.min()) / temperature, dim=0)


class MPPI(SamplingSolver):
    """MPPI solver (see the module docstring); follows :class:`planners.base.Solver`."""

    def __init__(self, config: MPPIConfig) -> None:
        self.config = config
        self.iterations, self.init_std = config.iterations, config.init_std

    def samples_at(self, iteration: int) -> int:
        return self.config.samples

    def update(self, search: Search, candidates: Tensor, costs: Tensor, space: PlanSpace, iteration: int) -> Search:
        cfg = self.config
        w = mppi_weights(costs, cfg.temperature)
        mean = (1 - cfg.momentum) * torch.einsum("s,sha->ha", w, candidates) + cfg.momentum * search.mean
        return Search(mean, search.std * cfg.std_decay)
