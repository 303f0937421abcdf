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
from typing import Literal

from jepa.config import Checked, non_negative, positive


@dataclass
class LRSchedule(Checked):
    """Learning-rate schedule (see the module docstring). The caller passes the run's length to
    :meth:`__call__`; ``total_steps`` overrides it when the schedule spans more (or fewer) steps than
    the run, e.g. a cooldown that stops part-way into its decay."""

    kind: Literal["constant", "wsd", "cosine", "linear"] = "wsd"
    base: float = 5e-4
    start: float = 1e-5
    final: float = 1e-6
    warmup_steps: int = 100
    decay_steps: int = 100
    total_steps: int | None = None  # null: the run's length, given by the trainer

    def check(self) -> None:
        non_negative(self, "base", "start", "final", "warmup_steps", "decay_steps")
        positive(self, "total_steps")

    def span(self, run_steps: int) -> int:
        """Steps the schedule spans: ``total_steps``, else the run's ``run_steps``."""
        return self.total_steps if self.total_steps is not None else run_steps

    def __call__(self, step: int, run_steps: int) -> float:
        """Learning rate at ``step`` of a run of ``run_steps`` optimizer steps."""
        total_steps = self.span(run_steps)
        if step < self.warmup_steps:
            return self.start + (self.base - self.start) * step / max(1, self.warmup_steps)
        if self.kind == "constant":
            return self.base
        if self.kind == "wsd":
            decay_start = total_steps - self.decay_steps
            if step < decay_start:
                return self.base
            frac = min(1.0, (step - decay_start) / max(1, self.decay_steps))
            return self.base + (self.final - self.base) * frac
        frac = min(1.0, (step - self.warmup_steps) / max(1, total_steps - self.warmup_steps))
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
