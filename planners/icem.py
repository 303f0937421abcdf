"""iCEM: the sample-efficient cross-entropy method (Pinneri et al., CoRL 2020), batched in torch.

CEM (:mod:`planners.cem`) plus five changes that need fewer samples for the same plan:

- **colored noise**: samples are temporally correlated along the horizon, with a power spectrum
  ``1 / f**beta`` (``beta = 0`` is CEM's white noise, 2 is smoother); at horizon 1 it is white;
- **a decaying population**: iteration ``i`` draws ``max(min_samples, samples / decay**i)``;
- **elites kept across iterations**: a fraction ``keep_elites`` of each iteration's elites (with
  their energies, the cost being deterministic) joins the next iteration's candidates;
- **elites kept across MPC steps** (``shift_elites``): after :meth:`ICEM.shift` they are shifted by
  the executed actions, padded with the box centre, and re-scored in the next solve;
- **the mean as a candidate** at the last iteration;

and an early stop once the search has converged (relative spread below ``converge_spread``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from jepa.config import Checked, in_range, non_negative, positive, require
from planners.base import PlanSpace, spread_of
from planners.cem import elite_update, momenta
from planners.sampling import SamplingSolver, Search


@dataclass
class ICEMConfig(Checked):
    """iCEM budget and update rule (module docstring).

    Attributes:
        samples: candidates at the first iteration; iteration ``i`` draws ``samples / decay**i``,
            at least ``min_samples`` (default ``2 * topk``).
        iterations: maximum sampling/update rounds.
        topk: number of elites.
        decay: population decay factor per iteration (>= 1; 1 = a constant population).
        beta: colored-noise exponent (>= 0).
        keep_elites: fraction of the elites carried into the next iteration (0..1).
        shift_elites: also carry them, shifted, into the next MPC step.
        add_mean: score the mean at the last iteration.
        momentum_mean, momentum_std, init_std, min_std: as in :class:`planners.cem.CEMConfig`.
        converge_spread: stop early when the std relative to the box half width is below this (0 = never).
    """

    samples: int = 200
    iterations: int = 3
    topk: int = 20
    min_samples: int = 0
    decay: float = 1.25
    beta: float = 2.0
    keep_elites: float = 0.3
    shift_elites: bool = True
    add_mean: bool = True
    momentum_mean: float = 0.0
    momentum_std: float = 0.0
    init_std: list[float] | None = None
    min_std: float = 0.0
    converge_spread: float = 0.0

    def check(self) -> None:
        positive(self, "iterations")
        require(2 <= self.topk <= self.samples, "topk", f"must be in [2, samples={self.samples}], got {self.topk}",
                related=["samples"])
        require(self.min_samples == 0 or self.min_samples >= self.topk, "min_samples",
                f"must be 0 (2 x topk) or >= topk ({self.topk}), got {self.min_samples}", related=["topk"])
        require(self.decay >= 1, "decay", f"must be >= 1, got {self.decay}")
        in_range(self, "keep_elites", 0, 1)
        non_negative(self, "beta", "min_std", "converge_spread", "init_std")
        momenta(self)


def colored_noise(samples: int, horizon: int, dims: int, beta: float, generator: torch.Generator | None,
                  device: torch.device) -> Tensor:
    """``[S, H, A]`` unit-variance Gaussian noise, temporally correlated along ``H`` with power spectrum
    ``1 / f**beta`` (white for ``beta = 0`` or ``H = 1``)."""
    if beta == 0 or horizon == 1:
        return torch.randn((samples, horizon, dims), generator=generator, device=device)
    freqs = torch.fft.rfftfreq(horizon, device=device)
    freqs[0] = freqs[1]  # the constant component gets the lowest frequency's weight
    amplitude = freqs.pow(-beta / 2)
    spec = torch.randn((samples, dims, freqs.numel(), 2), generator=generator, device=device)
    coeffs = torch.complex(spec[..., 0], spec[..., 1]) * amplitude
    signal = torch.fft.irfft(coeffs, n=horizon)  # [S, A, H]
    # exact per-step variance of irfft of complex normal coefficients: the imaginary parts of the
    # constant (and, for even H, Nyquist) terms are dropped, every other term counts 4 times
    weight = torch.full_like(amplitude, 4.0)
    weight[0] = 1.0
    if horizon % 2 == 0:
        weight[-1] = 1.0
    std = (weight * amplitude.pow(2)).sum().sqrt() / horizon
    return (signal / std).transpose(1, 2).contiguous()


class ICEM(SamplingSolver):
    """iCEM solver (see the module docstring); follows :class:`planners.base.Solver`."""

    def __init__(self, config: ICEMConfig) -> None:
        self.config = config
        self.iterations, self.init_std = config.iterations, config.init_std
        self._kept: tuple[Tensor, Tensor] | None = None  # elites of this solve and their energies
        self._carried: Tensor | None = None  # elites of the previous MPC step, shifted

    def reset(self) -> None:
        self._carried = None

    def shift(self, steps: int) -> None:
        if self._carried is None or not self.config.shift_elites:
            self._carried = None
            return
        h = self._carried.shape[1]
        steps = min(max(int(steps), 0), h)
        pad = self._center[None].expand(self._carried.shape[0], -1, -1)[:, :steps]
        self._carried = torch.cat([self._carried[:, steps:], pad], 1)

    def samples_at(self, iteration: int) -> int:
        cfg = self.config
        floor = cfg.min_samples or 2 * cfg.topk
        return max(floor, int(cfg.samples / cfg.decay**iteration))

    def _n_keep(self) -> int:
        return int(math.floor(self.config.keep_elites * self.config.topk))

    def propose(self, search: Search, space: PlanSpace, iteration: int, generator: torch.Generator | None) -> Tensor:
        cfg = self.config
        noise = colored_noise(self.samples_at(iteration), space.horizon, space.action_dim, cfg.beta, generator,
                              space.device)
        parts = [search.mean + search.std * noise]
        if iteration == 0:
            self._kept = None
            self._center = space.center()
            if self._carried is not None and self._carried.shape[1:] == (space.horizon, space.action_dim):
                parts.append(self._carried.to(space.device))
        if cfg.add_mean and iteration == cfg.iterations - 1:
            parts.append(search.mean[None])
        return torch.cat(parts)

    def update(self, search: Search, candidates: Tensor, costs: Tensor, space: PlanSpace, iteration: int) -> Search:
        cfg = self.config
        if self._kept is not None:
            candidates, costs = torch.cat([candidates, self._kept[0]]), torch.cat([costs, self._kept[1]])
        top = torch.topk(costs, min(cfg.topk, costs.numel()), largest=False)
        elites = candidates[top.indices]
        keep = self._n_keep()
        self._kept = (elites[:keep], top.values[:keep]) if keep else None
        return elite_update(search, elites, space, cfg.momentum_mean, cfg.momentum_std, cfg.min_std)

    def converged(self, search: Search, space: PlanSpace) -> bool:
        return self.config.converge_spread > 0 and spread_of(search.std, space) < self.config.converge_spread

    def finish(self, search: Search, candidates: Tensor, costs: Tensor, space: PlanSpace) -> None:
        self._carried = self._kept[0].clone() if (self._kept is not None and self.config.shift_elites) else None
