"""Receding-horizon control toward a goal image over any :class:`planners.protocol.GoalEnv`.

Per episode: ``reset(seed)`` (or an env the caller has already put in its start state), read and
encode the goal image once; then per planning step: encode the current image, plan ``H`` actions
(warm-started from the previous plan shifted by the executed actions), execute the first
``execute_steps`` of them, and record the planning time, energy, confidence, true distance and
success of every env step. Success is the env's own ``is_success()``.

Units and blocks are the :class:`~planners.base.PlanSpace`'s: one planned action becomes
``space.block`` env actions of ``action * scale / block``; the budget ``max_steps`` counts env steps.

An episode stops when the budget is spent, the env terminates, at the first success
(``stop_on_success``, the default), or when the plan's confidence stays low
(``low_confidence``). Two success numbers come out: **reached** (the state entered the success
region at some step: ``EpisodeRecord.success``) and **held** (it is still there at the end:
``EpisodeRecord.held``; meaningful with ``stop_on_success=False``, which keeps planning after the
first success until the budget is spent).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from jepa.config import Checked, non_negative, positive, require
from jepa.errors import InputError
from jepa.files import finite_json
from planners.base import PlanResult, PlanSpace, Solver, shift_plan
from planners.objectives import LatentWorldModel, Objective, WorldModelCost
from planners.protocol import GoalEnv, check_env, check_image


@dataclass
class StepRecord:
    """One executed env step. ``plan_time_s`` is wall time of encode + solve of the plan it came from
    [s]; ``distance`` is ``env.distance_to_goal()`` after the step (env units); ``action`` in env
    units; ``elite_spread`` / ``energy_gap``: the plan's :class:`~planners.base.PlanConfidence`
    (``None`` when the solver gives none); ``new_plan``: this step is the first of a new plan."""

    step: int
    plan_time_s: float
    energy: float
    distance: float
    success: bool
    action: list[float]
    elite_spread: float | None = None
    energy_gap: float | None = None
    new_plan: bool = True


@dataclass
class EpisodeRecord:
    """One MPC episode: its seed, outcome and per-step records.

    ``success``: the success region was reached at some step (or at the start); ``held``: the env
    reported success after the last step; ``first_success_step``: env steps until first success;
    ``stop_reason``: ``success``, ``budget``, ``terminated``, ``low_confidence`` or ``handover``.
    """

    episode: int
    seed: int
    success: bool
    env_steps: int
    initial_distance: float
    final_distance: float
    held: bool = False
    first_success_step: int | None = None
    stop_reason: str = "budget"
    steps: list[StepRecord] = field(default_factory=list)

    @property
    def mean_plan_time_s(self) -> float:
        return float(np.mean([s.plan_time_s for s in self.steps])) if self.steps else float("nan")


def write_episodes(records: Sequence[EpisodeRecord], path: str | Path,
                   extra: Sequence[dict] | None = None) -> Path:
    """Write one JSON object per episode (``NaN`` numbers become ``null``), merged with the matching
    ``extra`` dict when given (e.g. where the episode's start and goal came from)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = list(extra) if extra is not None else [{}] * len(records)
    if len(extra) != len(records):
        raise ValueError(f"write_episodes: {len(records)} records but {len(extra)} extra dicts")
    with path.open("w") as f:
        for r, e in zip(records, extra):
            f.write(json.dumps(finite_json({**asdict(r), **e}), allow_nan=False) + "\n")
    return path


def read_episodes(path: str | Path) -> list[EpisodeRecord]:
    """Read episodes written by :func:`write_episodes` (``null`` numbers come back as ``NaN``; extra
    keys are dropped)."""
    out = []
    for i, line in enumerate(Path(path).read_text().splitlines()):
        try:
            d = json.loads(line)
            d = {k: v for k, v in d.items() if k in EpisodeRecord.__dataclass_fields__}
            d["steps"] = [StepRecord(**{**s, "distance": _none_to_nan(s["distance"]),
                                        "energy": _none_to_nan(s["energy"])}) for s in d["steps"]]
            for k in ("initial_distance", "final_distance"):
                d[k] = _none_to_nan(d[k])
            out.append(EpisodeRecord(**d))
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ValueError(f"{path}: line {i + 1} is not an episode record ({e})") from None
    return out


def _none_to_nan(x: float | None) -> float:
    return float("nan") if x is None else float(x)


def plan_space_for_env(env: GoalEnv, horizon: int, action_scale: Sequence[float] | float = 1.0,
                       pinned: dict[int, float] | None = None, action_block: int = 1) -> PlanSpace:
    """:meth:`PlanSpace.for_action_space` of ``env.action_space``."""
    return PlanSpace.for_action_space(env.action_space, horizon, pinned, action_scale, action_block)


@dataclass
class MPCConfig(Checked):
    """Attributes:
    max_steps: env-step budget per episode (>= 1); a planned action costs ``block`` env steps.
    execute_steps: planned actions of each plan executed before replanning (1 <= k <= horizon).
    warm_start: start each solve from the previous plan shifted by the executed actions.
    stop_on_success: end the episode at the first success (``False``: keep planning until the
        budget is spent, so ``held`` says whether the success lasted).
    precision: ``fp32`` or ``bf16`` (autocast of the encoder and rollout).
    chunk: candidates rolled out per batch (``None`` = all at once; 0 = chosen from the CPU's cache
        size, :func:`planners.objectives.auto_chunk`).
    low_confidence: what to do when the plan's confidence stays low for ``confidence_patience``
        planning steps: ``ignore``, ``stop`` the episode, or ``handover`` to the caller's fallback.
    confidence_measure: ``energy_gap`` (low when below ``confidence_threshold``) or
        ``elite_spread`` (low when above it).
    """

    max_steps: int = 50
    execute_steps: int = 1
    warm_start: bool = True
    stop_on_success: bool = True
    precision: Literal["fp32", "bf16"] = "fp32"
    chunk: int | None = None
    low_confidence: Literal["ignore", "stop", "handover"] = "ignore"
    confidence_measure: Literal["energy_gap", "elite_spread"] = "energy_gap"
    confidence_threshold: float = 0.0
    confidence_patience: int = 3

    def check(self) -> None:
        positive(self, "max_steps", "execute_steps", "confidence_patience")
        non_negative(self, "chunk")
        require(math.isfinite(self.confidence_threshold), "confidence_threshold",
                f"must be finite, got {self.confidence_threshold}")


Fallback = Callable[[GoalEnv, int], None]
"""Takes over a low-confidence episode: ``fallback(env, remaining_env_steps)``."""


def check_model_fits_env(world_model: LatentWorldModel | None, env: GoalEnv) -> None:
    """A clear error when the world model was trained on actions of another size than the env's
    (models without an ``action_dim`` attribute are not checked)."""
    action_dim = int(np.prod(env.action_space.shape))
    model_dim = getattr(world_model, "action_dim", None)
    if model_dim is not None and int(model_dim) != action_dim:
        raise InputError(f"the world model has {model_dim} action dims, the env {action_dim}: it was "
                         "trained on another robot or env")


def check_episode_inputs(env: GoalEnv, space: PlanSpace, config: MPCConfig,
                         world_model: LatentWorldModel | None = None) -> None:
    """Raise a clear error if the env, the plan space, the config and the world model disagree."""
    check_env(env)
    action_dim = int(np.prod(env.action_space.shape))
    if space.action_dim != action_dim:
        raise ValueError(f"the plan space has {space.action_dim} action dims, the env's action_space "
                         f"has {action_dim}")
    check_model_fits_env(world_model, env)
    if config.execute_steps > space.horizon:
        raise ValueError(f"execute_steps ({config.execute_steps}) must be <= the horizon ({space.horizon})")


class _Episode:
    """The state of one running episode: the record, the last plan, the low-confidence streak."""

    def __init__(self, env: GoalEnv, space: PlanSpace, config: MPCConfig, record: EpisodeRecord,
                 image_size: tuple[int, int], observations: list[np.ndarray] | None) -> None:
        self.env, self.space, self.config, self.record = env, space, config, record
        self.image_size, self.observations = image_size, observations
        self.plan: torch.Tensor | None = None
        self.low_streak = 0

    @property
    def over(self) -> bool:
        r = self.record
        return r.stop_reason != "budget" or r.env_steps >= self.config.max_steps

    def replan(self, cost: WorldModelCost, solver: Solver, generator: torch.Generator) -> tuple[PlanResult, float]:
        """Encode the current image, solve from the warm start; returns the result and the wall time [s]."""
        env, cfg = self.env, self.config
        image = check_image(env.image(), "env.image()", size=self.image_size)
        t0 = time.perf_counter()
        cost.set_context(image, env.state())
        warm = self.plan is not None and cfg.warm_start
        init = shift_plan(self.plan, self.space, cfg.execute_steps) if warm else None
        result = solver.solve(cost, self.space, init=init, generator=generator)
        elapsed = time.perf_counter() - t0
        self.plan = self.space.check_plan(result.plan, "solver plan")
        return result, elapsed

    def confident(self, result: PlanResult) -> bool:
        """Track the low-confidence streak; False once it reaches the patience."""
        cfg, c = self.config, result.confidence
        if cfg.low_confidence == "ignore" or c is None:
            return True
        low = (c.energy_gap < cfg.confidence_threshold if cfg.confidence_measure == "energy_gap"
               else c.elite_spread > cfg.confidence_threshold)
        self.low_streak = self.low_streak + 1 if low else 0
        return self.low_streak < cfg.confidence_patience

    def execute(self, result: PlanResult, plan_time: float) -> None:
        """Run the first ``execute_steps`` planned actions, ``block`` env steps each, within the budget."""
        env, cfg, rec = self.env, self.config, self.record
        conf = result.confidence
        first = True
        for planned in self.plan[: cfg.execute_steps]:
            for action in self.space.env_actions(planned, env.action_space):
                if rec.env_steps >= cfg.max_steps:
                    return
                _, _, terminated, truncated, _ = env.step(action)
                rec.env_steps += 1
                ok = bool(env.is_success())
                if ok and rec.first_success_step is None:
                    rec.first_success_step = rec.env_steps
                rec.success = rec.success or ok
                if self.observations is not None:
                    self.observations.append(np.asarray(env.image()))
                rec.steps.append(StepRecord(step=rec.env_steps, plan_time_s=plan_time, energy=result.energy,
                                            distance=float(env.distance_to_goal()), success=ok,
                                            action=action.tolist(),
                                            elite_spread=None if conf is None else conf.elite_spread,
                                            energy_gap=None if conf is None else conf.energy_gap,
                                            new_plan=first))
                first = False
                if terminated or truncated:
                    rec.stop_reason = "terminated"
                    return
                if ok and cfg.stop_on_success:
                    rec.stop_reason = "success"
                    return


def run_episode(env: GoalEnv, world_model: LatentWorldModel, solver: Solver, space: PlanSpace,
                objective: Objective, config: MPCConfig, seed: int, episode: int = 0,
                goal_state: np.ndarray | None = None, generator: torch.Generator | None = None,
                observations: list[np.ndarray] | None = None, reset: bool = True,
                fallback: Fallback | None = None) -> EpisodeRecord:
    """Drive ``env`` toward its goal image with receding-horizon planning; see the module docstring.

    ``reset=False`` takes the env as the caller left it (e.g. restored to a dataset state with a
    goal set from another); otherwise ``env.reset(seed=seed)`` starts the episode.
    ``observations``, when given, receives the image ``[H, W, 3]`` before the first and after every
    env step (for episode videos). ``fallback`` takes over when ``config.low_confidence ==
    "handover"``. ``generator`` seeds the solver (default: seeded with ``seed``); with the same seed,
    env and model the episode is bitwise repeatable.
    """
    check_episode_inputs(env, space, config, world_model)
    generator = generator or torch.Generator(device=space.device).manual_seed(seed)
    if reset:
        env.reset(seed=seed)
    goal = check_image(env.goal_image(), "env.goal_image()")
    first = check_image(env.image(), "env.image()")
    if goal.shape != first.shape:
        raise ValueError(f"env.goal_image() is {goal.shape[:2]} but env.image() is {first.shape[:2]}: the goal "
                         "must be seen by the same camera at the same size")
    if observations is not None:
        observations.append(first)
    cost = WorldModelCost(world_model, objective, space.action_dim, chunk=config.chunk, precision=config.precision)
    cost.set_goal(goal, goal_state)
    start_ok = bool(env.is_success())
    record = EpisodeRecord(episode=episode, seed=seed, success=start_ok, env_steps=0,
                           initial_distance=float(env.distance_to_goal()), final_distance=float("nan"),
                           first_success_step=0 if start_ok else None,
                           stop_reason="success" if start_ok and config.stop_on_success else "budget")
    if hasattr(solver, "reset"):
        solver.reset()
    run = _Episode(env, space, config, record, tuple(goal.shape[:2]), observations)
    while not run.over:
        result, plan_time = run.replan(cost, solver, generator)
        if not run.confident(result):
            record.stop_reason = "low_confidence" if config.low_confidence == "stop" else "handover"
            if config.low_confidence == "handover" and fallback is not None:
                fallback(env, config.max_steps - record.env_steps)
            break
        run.execute(result, plan_time)
        if hasattr(solver, "shift"):
            solver.shift(config.execute_steps)
    record.held = bool(env.is_success())
    record.final_distance = float(env.distance_to_goal())
    return record
