"""SIGReg: a sketched isotropic-Gaussian regulariser for embeddings (LeJEPA, Balestriero & LeCun 2025).

An anti-collapse term offered *beside* the EMA target of JEPA pretraining, never instead of it. A batch
of embeddings ``z [N, D]`` is projected on ``M`` random unit directions; each 1-D projection is compared
with a standard normal by the Epps-Pulley statistic

    T = N * integral over t of |phi_N(t) - exp(-t^2 / 2)|^2 * exp(-t^2 / 2) dt

where ``phi_N(t) = mean_n exp(i t x_n)`` is the empirical characteristic function. The integrand is even
in ``t``, so it is integrated on ``[0, t_max]`` by the trapezoid rule and doubled. The loss is the mean
of ``T`` over the directions: near ``1`` for standard-normal embeddings, of order ``N`` for a collapsed
batch (every row the same), so its gradient spreads the embeddings of different inputs apart.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def sigreg_directions(dim: int, slices: int, seed: int, device: torch.device | str = "cpu") -> Tensor:
    """``[dim, slices]`` unit-norm random directions, drawn from ``seed`` alone.

    Training draws them from ``(meta.seed, step)``, so every process of a distributed run, and a run
    resumed at that step, projects on the same directions.
    """
    g = torch.Generator().manual_seed(int(seed))
    a = torch.randn(dim, slices, generator=g)
    return (a / a.norm(dim=0, keepdim=True)).to(device)


class SIGReg(nn.Module):
    """The Epps-Pulley statistic of random 1-D projections, averaged over the projections.

    Args:
        knots: trapezoid nodes on ``[0, t_max]`` (at least 2).
        t_max: the upper end of the integral; ``exp(-t^2/2)`` is below 0.012 past 3.
    """

    def __init__(self, knots: int = 17, t_max: float = 3.0):
        super().__init__()
        if knots < 2 or t_max <= 0:
            raise ValueError(f"SIGReg needs knots >= 2 and t_max > 0, got knots={knots}, t_max={t_max}")
        t = torch.linspace(0.0, t_max, knots)
        dt = t_max / (knots - 1)
        trapezoid = torch.full((knots,), 2.0 * dt)  # doubled: the integral over [-t_max, t_max]
        trapezoid[[0, -1]] = dt
        phi = torch.exp(-0.5 * t.square())  # the standard normal's characteristic function
        self.register_buffer("t", t, persistent=False)
        self.register_buffer("phi", phi, persistent=False)
        self.register_buffer("weights", trapezoid * phi, persistent=False)  # quadrature x window exp(-t^2/2)

    def forward(self, z: Tensor, directions: Tensor) -> Tensor:
        """``z [N, D]`` (float), ``directions [D, M]`` -> the scalar mean statistic over the ``M`` slices."""
        if z.dim() != 2 or directions.dim() != 2 or directions.shape[0] != z.shape[1]:
            raise ValueError(f"SIGReg takes z [N, D] and directions [D, M], got {tuple(z.shape)} and "
                             f"{tuple(directions.shape)}")
        x = (z.float() @ directions.float()).unsqueeze(-1) * self.t  # [N, M, K]
        err = (x.cos().mean(0) - self.phi).square() + x.sin().mean(0).square()  # [M, K]
        return (err @ self.weights).mean() * z.shape[0]
