"""Receding-horizon control toward a goal image over any :class:`planners.protocol.GoalEnv`.

Per episode: ``reset(seed)``, read and encode the goal image once; then per step: encode the current
image, plan ``H`` actions (warm-started from the previous plan shifted by the executed actions),
execute the first ``execute_steps`` of them, and record the planning time, energy, true distance and
success. The episode stops when the env reports success, terminates, or after ``max_steps`` env
steps; there are no retries. Success is the env's own ``is_success()``.

Units: the solver searches in *planner units*; the env receives ``action * action_scale`` (element-
wise, ``[A]``). With ``action_scale = 1`` the planner works in env units directly (the released
V-JEPA 2 setting: metres per step, bounds +-maxnorm). :func:`plan_space_for_env` derives planner
bounds from the env's ``action_space`` so the two cannot disagree silently.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from planners.base import PlanSpace, Solver, shift_plan
from planners.objectives import LatentWorldModel, Objective, WorldModelCost
from planners.protocol import GoalEnv, check_env, check_image


@dataclass
class StepRecord:
    """One executed planning step. ``plan_time_s`` is wall time of encode + solve [s];
    ``distance`` is ``env.distance_to_goal()`` after the step (env units); ``action`` in env units."""

    step: int
    plan_time_s: float
    energy: float
    distance: float
    success: bool
    action: list[float]


@dataclass
class EpisodeRecord:
    """One episode: its seed, outcome and per-step records (``env_steps`` counts env actions)."""

    episode: int
    seed: int
    success: bool
    env_steps: int
    initial_distance: float
    final_distance: float
    steps: list[StepRecord] = field(default_factory=list)

    @property
    def mean_plan_time_s(self) -> float:
        return float(np.mean([s.plan_time_s for s in self.steps])) if self.steps else float("nan")


def write_jsonl(records: Sequence[EpisodeRecord], path: str | Path) -> Path:
    """Write one JSON object per episode (``NaN`` distances become ``null``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for r in records:
            f.write(json.dumps(_nan_to_none(asdict(r)), allow_nan=False) + "\n")
    return path


def read_jsonl(path: str | Path) -> list[EpisodeRecord]:
    """Read episodes written by :func:`write_jsonl` (``null`` distances come back as ``NaN``)."""
    out = []
    for i, line in enumerate(Path(path).read_text().splitlines()):
        try:
            d = json.loads(line)
            d["steps"] = [StepRecord(**{**s, "distance": _none_to_nan(s["distance"])}) for s in d["steps"]]
            for k in ("initial_distance", "final_distance"):
                d[k] = _none_to_nan(d[k])
            out.append(EpisodeRecord(**d))
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ValueError(f"{path}: line {i + 1} is not an episode record ({e})") from None
    return out


def _nan_to_none(x):
    if isinstance(x, float) and x != x:
        return None
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_nan_to_none(v) for v in x]
    return x


def _none_to_nan(x: float | None) -> float:
    return float("nan") if x is None else float(x)


def plan_space_for_env(env: GoalEnv, horizon: int, action_scale: Sequence[float] | float = 1.0,
                       pinned: Mapping[int, float] | None = None) -> PlanSpace:
    """Planner bounds = env ``action_space`` bounds / ``action_scale`` (``pinned`` in planner units)."""
    low = np.asarray(env.action_space.low, dtype=np.float64).ravel()
    high = np.asarray(env.action_space.high, dtype=np.float64).ravel()
    scale = _scale(action_scale, low.size)
    return PlanSpace(low / scale, high / scale, horizon, pinned)


def _scale(action_scale: Sequence[float] | float, action_dim: int) -> np.ndarray:
    scale = np.broadcast_to(np.asarray(action_scale, dtype=np.float64), (action_dim,)).copy()
    if (scale <= 0).any() or not np.isfinite(scale).all():
        raise ValueError(f"action_scale must be positive and finite, got {scale.tolist()}")
    return scale


@dataclass
class MPCConfig:
    """Attributes:
    max_steps: env-step budget per episode (>= 1).
    execute_steps: actions of each plan executed before replanning (1 <= k <= horizon).
    warm_start: start each solve from the previous plan shifted by the executed actions.
    precision: ``fp32`` or ``bf16`` (autocast of the encoder and rollout; the fast path on CUDA).
    chunk: candidates rolled out per batch (``None`` = all at once). On a CPU, chunks of about 50
        beat one large batch (BENCHMARKS.md, planning speed; not measured on a GPU).
    """

    max_steps: int = 50
    execute_steps: int = 1
    warm_start: bool = True
    precision: str = "fp32"
    chunk: int | None = None


def run_episode(env: GoalEnv, world_model: LatentWorldModel, solver: Solver, space: PlanSpace,
                objective: Objective, config: MPCConfig, seed: int, episode: int = 0,
                action_scale: Sequence[float] | float = 1.0, goal_state: np.ndarray | None = None,
                generator: torch.Generator | None = None,
                observations: list[np.ndarray] | None = None) -> EpisodeRecord:
    """Drive ``env`` toward its goal image with receding-horizon planning; see the module docstring.

    ``observations``, when given, receives the image ``[H, W, 3]`` before the first and after every
    executed action (for episode videos).

    ``generator`` seeds the solver (default: a CPU generator seeded with ``seed``); with the same
    seed, env and model the episode is bitwise repeatable.
    """
    check_env(env)
    action_dim = int(np.prod(env.action_space.shape))
    if space.action_dim != action_dim:
        raise ValueError(f"the plan space has {space.action_dim} action dims, the env's action_space "
                         f"has {action_dim}")
    if not 1 <= config.execute_steps <= space.horizon or config.max_steps < 1:
        raise ValueError(f"need 1 <= execute_steps <= horizon ({space.horizon}) and max_steps >= 1, got "
                         f"{config.execute_steps}, {config.max_steps}")
    scale = _scale(action_scale, action_dim)
    generator = generator or torch.Generator(device=space.device).manual_seed(seed)
    env.reset(seed=seed)
    goal = check_image(env.goal_image(), "env.goal_image()")
    first = check_image(env.image(), "env.image()")
    if goal.shape != first.shape:
        raise ValueError(f"env.goal_image() is {goal.shape[:2]} but env.image() is {first.shape[:2]}: "
                         "the goal must "
                         "be seen by the same camera at the same size")
    if observations is not None:
        observations.append(first)
    cost = WorldModelCost(world_model, objective, action_dim, chunk=config.chunk, precision=config.precision)
    cost.set_goal(goal, goal_state)
    record = EpisodeRecord(episode=episode, seed=seed, success=bool(env.is_success()), env_steps=0,
                           initial_distance=float(env.distance_to_goal()), final_distance=float("nan"))
    plan = None
    while not record.success and record.env_steps < config.max_steps:
        image = check_image(env.image(), "env.image()", size=goal.shape[:2])
        t0 = time.perf_counter()
        cost.set_context(image, env.state())
        warm = plan is not None and config.warm_start
        init = shift_plan(plan, space, config.execute_steps) if warm else None
        result = solver.solve(cost, space, init=init, generator=generator)
        plan_time = time.perf_counter() - t0
        plan = space.check_plan(result.plan, "solver plan")
        ended = False
        for a in plan[:config.execute_steps]:
            if record.env_steps >= config.max_steps:
                break
            action = _to_env(a, scale, env.action_space)
            _, _, terminated, truncated, _ = env.step(action)
            ended = bool(terminated or truncated)
            record.env_steps += 1
            record.success = bool(env.is_success())
            if observations is not None:
                observations.append(np.asarray(env.image()))
            record.steps.append(StepRecord(step=record.env_steps, plan_time_s=plan_time, energy=result.energy,
                                           distance=float(env.distance_to_goal()), success=record.success,
                                           action=action.tolist()))
            if record.success or ended:
                break
        if ended:
            break
    record.final_distance = float(env.distance_to_goal())
    return record


def _to_env(action: torch.Tensor, scale: np.ndarray, action_space) -> np.ndarray:
    """Planner-unit action ``[A]`` -> env-unit float32 action, clipped to the action space (float
    rounding)."""
    a = action.detach().cpu().double().numpy() * scale
    low, high = np.asarray(action_space.low).ravel(), np.asarray(action_space.high).ravel()
    return np.clip(a, low, high).astype(np.float32).reshape(action_space.shape)
