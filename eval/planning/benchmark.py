"""The planning benchmark: ``jepa plan CONFIG.yaml [key=value ...]``.

Runs goal-image MPC (:func:`planners.mpc.run_episode`) with a trained world model on ``episodes``
held-out goals (:mod:`eval.planning.goals`: the env's own goals from env seeds ``seed, seed+1, ...``
— collection uses seeds from 0, so keep ``seed`` far above the number of collected episodes — or
dataset-offset goals from a held-out dataset) and writes to ``out_dir``:

- ``episodes.jsonl``: one :class:`planners.mpc.EpisodeRecord` per episode (time to plan, energy,
  confidence, true distance and success of every env step) plus where its start and goal came from;
- ``summary.json``: success rates (reached, held), goals excluded as already satisfied, mean and
  median time per planning step [s], final distances [env units];
- ``episode_XXX.gif``: observation beside goal for the first ``gifs`` episodes;
- ``energy_landscape.png``: the energy over a 2-D grid of first actions (dims ``landscape_dims``) at
  the first step of the first episode, with the action that truly brings the env closest to its
  goal marked (found by simulating every grid action from the saved simulator state; envs without
  ``get_sim_state`` get no marker).

The solver can be a baseline (``solver.name=do-nothing`` or ``random``): the same episodes, no world
model consulted. ``dynamics=simulator`` keeps the world model's encoder but replaces its predictor by
the simulator (:mod:`eval.planning.true_dynamics`): planning with a perfect predictor, the ceiling of
this encoder's energy. Envs are built-in names or import paths (:func:`eval.envs.registry.make_env`).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from eval.planning.goals import GoalConfig, Goals
from eval.planning.true_dynamics import SimulatorDynamics
from jepa.config import (
    Checked,
    ConfigError,
    config_parser,
    known_device,
    non_negative,
    parse_config,
    positive,
    require,
    save_config,
)
from jepa.errors import InputError
from jepa.files import write_json
from planners.base import PlanSpace
from planners.mpc import (
    EpisodeRecord,
    MPCConfig,
    check_model_fits_env,
    plan_space_for_env,
    run_episode,
    write_episodes,
)
from planners.objectives import Objective, ObjectiveConfig, WorldModelCost
from planners.registry import SolverConfig, solver_from_config

BASELINES = ("do-nothing", "random")


@dataclass
class PlanConfig(Checked):
    """Attributes:
    world_model: a ``world_model.pt`` written by ``jepa train-ac`` (or a released model name).
    env: built-in env name (``fetch-reach``, ``fetch-push``, ``pusht``) or ``package.module:Class``;
        image_size in pixels; env_options: keyword arguments of the env (as the clips were collected).
    episodes, seed: number of goals and the first seed (env seeds for env goals; the draw of start
        frames for dataset goals; the solver's seeds).
    goals: where starts and goals come from (:class:`eval.planning.goals.GoalConfig`).
    horizon: planned actions per plan; action_scale: env units per planner unit (one value or one
        per dim); action_block: env steps per planned action (``0`` = the world model's training
        frame step); pinned: ``{dim: value}`` action dims held fixed (planner units), e.g. the Fetch
        gripper.
    dynamics: ``learned`` (the world model's predictor) or ``simulator`` (every candidate simulated in
        the env and its frames encoded: a perfect predictor; slow, for diagnosis).
    gifs: how many episodes get a GIF; landscape: draw the energy landscape (resolution points per axis).
    threads: torch CPU threads (0 = torch's default).
    """

    world_model: str = "runs/ac-tiny/world_model.pt"
    env: str = "fetch-reach"
    env_options: dict[str, Any] = field(default_factory=dict)
    image_size: int = 64
    episodes: int = 20
    seed: int = 100_000
    goals: GoalConfig = field(default_factory=GoalConfig)
    horizon: int = 1
    action_scale: list[float] = field(default_factory=lambda: [1.0])
    action_block: int = 0
    pinned: dict[int, float] = field(default_factory=dict)
    solver: SolverConfig = field(default_factory=SolverConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    mpc: MPCConfig = field(default_factory=lambda: MPCConfig(max_steps=20))
    dynamics: Literal["learned", "simulator"] = "learned"
    out_dir: str = "runs/plan"
    gifs: int = 4
    landscape: bool = True
    landscape_dims: list[int] = field(default_factory=lambda: [0, 1])
    landscape_resolution: int = 15
    device: str = "cpu"
    threads: int = 0
    progress: bool = True

    def check(self) -> None:
        positive(self, "episodes", "image_size", "horizon", "action_scale")
        non_negative(self, "action_block", "gifs", "threads", "landscape_dims")
        require(self.landscape_resolution >= 2, "landscape_resolution",
                f"must be >= 2, got {self.landscape_resolution}")
        require(len(self.landscape_dims) == 2, "landscape_dims",
                f"must name two action dims, got {self.landscape_dims}")
        require(self.mpc.execute_steps <= self.horizon, "mpc.execute_steps",
                f"must be <= horizon ({self.horizon}), got {self.mpc.execute_steps}", related=["horizon"])
        known_device(self, "device")


@dataclass
class PlanSummary:
    """Aggregates over episodes. Times in seconds per planning step (one solve, which serves
    ``execute_steps`` planned actions of ``action_block`` env steps each); distances in env units.

    ``success_rate``: reached the success region at some step; ``held_rate``: in it at the end of
    the episode (episodes stop at the first success unless ``mpc.stop_on_success=false``);
    ``excluded_at_start``: candidate goals skipped because they were satisfied before any action;
    ``excluded_passive``: skipped because doing nothing reaches them (``goals.exclude_passive``)."""

    episodes: int
    successes: int
    success_rate: float
    held: int
    held_rate: float
    excluded_at_start: int
    mean_time_per_action_s: float
    median_time_per_action_s: float
    mean_initial_distance: float
    mean_final_distance: float
    median_final_distance: float
    env_steps: int
    excluded_passive: int = 0

    @classmethod
    def of(cls, records: Sequence[EpisodeRecord], excluded: int = 0, excluded_passive: int = 0) -> PlanSummary:
        if not records:
            raise InputError("a planning summary needs at least one episode")
        times = [s.plan_time_s for r in records for s in r.steps if s.new_plan]
        finals = [r.final_distance for r in records]
        wins, held = sum(r.success for r in records), sum(r.held for r in records)
        n = len(records)
        return cls(episodes=n, successes=wins, success_rate=wins / n, held=held, held_rate=held / n,
                   excluded_at_start=excluded,
                   mean_time_per_action_s=float(np.mean(times)) if times else 0.0,
                   median_time_per_action_s=float(statistics.median(times)) if times else 0.0,
                   mean_initial_distance=float(np.mean([r.initial_distance for r in records])),
                   mean_final_distance=float(np.mean(finals)), median_final_distance=float(np.median(finals)),
                   env_steps=sum(r.env_steps for r in records), excluded_passive=excluded_passive)

    def lines(self) -> list[str]:
        return [f"success rate (reached): {self.success_rate:.0%} ({self.successes}/{self.episodes}); "
                f"held at the end: {self.held_rate:.0%}; excluded as already solved: {self.excluded_at_start}, "
                f"as solved by doing nothing: {self.excluded_passive}",
                f"time per planning step: mean {self.mean_time_per_action_s:.3f} s, "
                f"median {self.median_time_per_action_s:.3f} s",
                f"final distance: mean {self.mean_final_distance:.4f}, median {self.median_final_distance:.4f} "
                f"(initial mean {self.mean_initial_distance:.4f})"]


def true_best_action(env, space: PlanSpace, xs: np.ndarray, dims: tuple[int, int],
                     base: torch.Tensor) -> tuple[float, float] | None:
    """The grid action (planner units) whose execution (one planned action: ``space.block`` env
    steps) leaves the env closest to its goal. Each candidate is simulated from the same saved
    simulator state, which is restored afterwards. ``None`` when the env cannot save its state."""
    if not (hasattr(env, "get_sim_state") and hasattr(env, "set_sim_state")):
        return None
    saved = env.get_sim_state()
    best, best_d = None, float("inf")
    try:
        for x in xs:
            for y in xs:
                a = base.detach().cpu().clone()
                a[dims[0]], a[dims[1]] = float(x), float(y)
                env.set_sim_state(saved)
                for step in space.env_actions(space.project(a), env.action_space):
                    env.step(step)
                d = float(env.distance_to_goal())
                if d < best_d:
                    best, best_d = (float(x), float(y)), d
    finally:
        env.set_sim_state(saved)
    return best


def draw_energy_landscape(env, world_model, cfg: PlanConfig, space: PlanSpace, out: Path) -> Path:
    """Energy over a grid of first actions at the env's current (start) state."""
    from eval.planning.artifacts import energy_grid, plot_energy_landscape

    one_step = space.with_horizon(1)
    cost = WorldModelCost(world_model, Objective(cfg.objective), space.action_dim,
                          chunk=cfg.mpc.chunk, precision=cfg.mpc.precision)
    cost.set_goal(env.goal_image())
    cost.set_context(env.image(), env.state())
    dims = (cfg.landscape_dims[0], cfg.landscape_dims[1])
    low = float(max(space.low[dims[0]], space.low[dims[1]]))
    high = float(min(space.high[dims[0]], space.high[dims[1]]))
    base = one_step.center()[0]
    xs, ys, energies = energy_grid(cost, base, dims, low, high, cfg.landscape_resolution)
    best = true_best_action(env, one_step, xs, dims, base)
    return plot_energy_landscape(xs, ys, energies, out, true_best=best,
                                 labels=(f"action dim {dims[0]}", f"action dim {dims[1]}"))


def resolve_action_block(cfg: PlanConfig, world_model) -> int:
    """``cfg.action_block``, or the world model's training frame step when 0; a clear error when
    they disagree (a model trained on k-step windows predicts k env steps per action)."""
    trained = int(getattr(world_model, "frame_step", 1))
    if cfg.action_block == 0:
        return trained
    if cfg.action_block != trained:
        raise ConfigError(f"action_block={cfg.action_block}, but the world model {cfg.world_model} was trained "
                          f"on windows at frame_step={trained}: one planned action must span the same env steps")
    return cfg.action_block


def run_benchmark(cfg: PlanConfig) -> tuple[PlanSummary, list[EpisodeRecord]]:
    """All episodes of ``cfg`` and their artefacts; returns the summary and the records."""
    from tqdm import tqdm

    from eval.envs.registry import make_env
    from eval.planning.artifacts import write_episode_gif
    from jepa.world_model import load_world_model

    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "config.yaml")
    world_model = load_world_model(cfg.world_model, device=cfg.device)
    env = make_env(cfg.env, image_size=cfg.image_size, **cfg.env_options)
    try:
        check_model_fits_env(world_model, env)
        block = resolve_action_block(cfg, world_model)
        space = plan_space_for_env(env, cfg.horizon, cfg.action_scale, cfg.pinned, block).to(world_model.device)
        if cfg.dynamics == "simulator":
            world_model = SimulatorDynamics(world_model, env, space)
        solver, objective = solver_from_config(cfg.solver), Objective(cfg.objective)
        goals = Goals(env, cfg.goals, cfg.seed, cfg.mpc.max_steps)
        records, origins = [], []
        bar = tqdm(total=cfg.episodes, desc="plan episodes", unit="episode", disable=not cfg.progress)
        for i, start in enumerate(goals.starts(cfg.episodes)):
            frames: list[np.ndarray] | None = [] if i < cfg.gifs else None
            records.append(run_episode(env, world_model, solver, space, objective, cfg.mpc, seed=start.seed,
                                       episode=i, goal_state=start.goal_state, observations=frames, reset=False))
            origins.append(start.origin)
            if frames is not None:
                write_episode_gif(frames, env.goal_image(), out / f"episode_{i:03d}.gif")
            bar.update(1)
            bar.set_postfix(success=f"{sum(r.success for r in records)}/{len(records)}")
        bar.close()
        write_episodes(records, out / "episodes.jsonl", origins)
        summary = PlanSummary.of(records, goals.excluded, goals.excluded_passive)
        write_json(out / "summary.json", asdict(summary))  # strict JSON: a NaN distance becomes null
        if cfg.landscape and cfg.solver.name not in BASELINES:
            next(Goals(env, cfg.goals, cfg.seed, cfg.mpc.max_steps).starts(1))  # the first episode's start again
            draw_energy_landscape(env, world_model, cfg, space, out / "energy_landscape.png")
    finally:
        env.close()
    return summary, records


def main(argv: Sequence[str]) -> int:
    p = config_parser("jepa plan", __doc__.splitlines()[0],
                      "YAML config (defaults: the tiny Fetch reach run)", "episodes=5 solver.cem.samples=400")
    cfg, _ = parse_config(p, PlanConfig, argv)
    summary, _ = run_benchmark(cfg)
    for line in summary.lines():
        print(line)
    print(f"artefacts: {cfg.out_dir}")
    return 0
