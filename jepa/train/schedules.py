"""Schedules as pure functions of the step (stateless, so a resumed run is exact).

Learning rate: linear warmup from ``start`` to ``base`` over ``warmup_steps``, then one of

- ``"constant"``: stay at ``base``;
- ``"wsd"`` (warmup-stable-decay): stay at ``base``, then decay linearly to ``final`` over the last
  ``decay_steps`` of ``total_steps``;
- ``"cosine"``: cosine from ``base`` to ``final`` at ``total_steps``;
- ``"linear"``: linear from ``base`` to ``final`` at ``total_steps`` (the released cooldown).

Weight decay follows a cosine between two values; EMA momentum a line between two values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class LRSchedule:
    kind: str = "wsd"
    base: float = 5e-4
    start: float = 1e-5
    final: float = 1e-6
    warmup_steps: int = 100
    decay_steps: int = 100
    total_steps: int = 1000  # trainers treat 0 as "the run's max_steps"

    def __post_init__(self) -> None:
        if self.kind not in ("constant", "wsd", "cosine", "linear"):
            raise ValueError(f"unknown LR schedule {self.kind!r}; use constant, wsd, cosine or linear")

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.start + (self.base - self.start) * step / max(1, self.warmup_steps)
        if self.kind == "constant":
            return self.base
        if self.kind == "wsd":
            decay_start = self.total_steps - self.decay_steps
            if step < decay_start:
                return self.base
            frac = min(1.0, (step - decay_start) / max(1, self.decay_steps))
            return self.base + (self.final - self.base) * frac
        frac = min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        if self.kind == "linear":
            return self.base + (self.final - self.base) * frac
        return self.final + 0.5 * (self.base - self.final) * (1 + math.cos(math.pi * frac))


def cosine_between(step: int, total_steps: int, start: float, end: float) -> float:
    """Cosine from ``start`` (step 0) to ``end`` (``total_steps``) — the weight-decay schedule."""
    frac = min(1.0, step / max(1, total_steps))
    return end + 0.5 * (start - end) * (1 + math.cos(math.pi * frac))


def linear_between(step: int, total_steps: int, start: float, end: float) -> float:
    """Line from ``start`` to ``end`` over ``total_steps`` — the EMA momentum schedule."""
    return start + (end - start) * min(1.0, step / max(1, total_steps))
