"""How well a plan's confidence predicts that the episode will fail.

For each measure of :class:`planners.base.PlanConfidence` the score of *doubt* is the elite spread
(higher = less sure) or the negated energy gap (a small gap = less sure). Two AUROCs per measure:

- **steps**: every planning step of every episode, labelled by whether its episode ended
  unsuccessful (a step of a failing episode should look less sure than one of a succeeding episode);
- **episodes**: the mean doubt over an episode's first ``first_steps`` planning steps (what a robot
  knows early, when it could still hand over).

0.5 is chance, 1 a perfect warning. Episodes that needed no planning step (goals reached at once)
carry no confidence and are left out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from eval.physics.metrics import auroc
from planners.mpc import EpisodeRecord

MEASURES = {"elite_spread": lambda s: s.elite_spread, "energy_gap": lambda s: -s.energy_gap}


def _doubts(rec: EpisodeRecord, measure: str) -> list[float]:
    get = MEASURES[measure]
    return [get(s) for s in rec.steps if s.new_plan and s.elite_spread is not None]


def confidence_auroc(records: Sequence[EpisodeRecord], first_steps: int = 3) -> dict[str, dict[str, float]]:
    """``{measure: {"steps": auroc, "episodes": auroc, "failed": n, "succeeded": n}}`` (NaN where one
    class is empty)."""
    out = {}
    for measure in MEASURES:
        rows = [(r.success, _doubts(r, measure)) for r in records]
        rows = [(ok, d) for ok, d in rows if d]
        fail_steps = [x for ok, d in rows if not ok for x in d]
        ok_steps = [x for ok, d in rows if ok for x in d]
        fail_eps = [float(np.mean(d[:first_steps])) for ok, d in rows if not ok]
        ok_eps = [float(np.mean(d[:first_steps])) for ok, d in rows if ok]
        both = bool(fail_steps) and bool(ok_steps)
        out[measure] = {"steps": auroc(fail_steps, ok_steps) if both else float("nan"),
                        "episodes": auroc(fail_eps, ok_eps) if both else float("nan"),
                        "failed": len(fail_eps), "succeeded": len(ok_eps)}
    return out
