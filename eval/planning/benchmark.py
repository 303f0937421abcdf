"""The planning benchmark: ``jepa plan CONFIG.yaml [key=value ...]``.

Runs goal-image MPC (:func:`planners.mpc.run_episode`) with a trained world model for ``episodes``
held-out goals (env seeds ``seed, seed+1, ...``; collection uses seeds from 0, so keep ``seed`` far
above the number of collected episodes) and writes to ``out_dir``:

- ``episodes.jsonl``: one :class:`planners.mpc.EpisodeRecord` per episode (time to plan, energy,
  true distance and success of every step);
- ``summary.json``: success rate, mean and median time per action [s], final distances [env units];
- ``episode_XXX.gif``: observation beside goal for the first ``gifs`` episodes;
- ``energy_landscape.png``: the energy over a 2-D grid of first actions (dims ``landscape_dims``) at
  the first step of episode 0, with the action that truly brings the arm closest marked (found by
  simulating every grid action from the saved simulator state; envs without ``get_sim_state`` get
  no marker).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from jepa.config import config_parser, parse_config, save_config
from planners.base import PlanSpace
from planners.mpc import EpisodeRecord, MPCConfig, plan_space_for_env, run_episode, write_jsonl
from planners.objectives import Objective, ObjectiveConfig, WorldModelCost
from planners.registry import SolverConfig, solver_from_config


@dataclass
class PlanConfig:
    """Attributes:
    world_model: a ``world_model.pt`` written by ``jepa train-ac``.
    env: built-in env name (``fetch-reach``, ``fetch-push``, ``pusht``); image_size in pixels.
    episodes, seed: number of goals and the first env seed.
    horizon: actions per plan; action_scale: env units per planner unit (one value or one per dim);
        pinned: ``{dim: value}`` action dims held fixed (planner units), e.g. the Fetch gripper.
    gifs: how many episodes get a GIF; landscape: draw the energy landscape (resolution points per axis).
    threads: torch CPU threads (0 = torch's default).
    """

    world_model: str = "runs/ac-tiny/world_model.pt"
    env: str = "fetch-reach"
    image_size: int = 64
    episodes: int = 20
    seed: int = 100_000
    horizon: int = 1
    action_scale: list[float] = field(default_factory=lambda: [1.0])
    pinned: dict[int, float] = field(default_factory=lambda: {3: 0.0})
    solver: SolverConfig = field(default_factory=SolverConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    mpc: MPCConfig = field(default_factory=lambda: MPCConfig(max_steps=20))
    out_dir: str = "runs/plan"
    gifs: int = 4
    landscape: bool = True
    landscape_dims: list[int] = field(default_factory=lambda: [0, 1])
    landscape_resolution: int = 15
    device: str = "cpu"
    threads: int = 0
    progress: bool = True


@dataclass
class PlanSummary:
    """Aggregates over episodes; times in seconds per executed action, distances in env units."""

    episodes: int
    successes: int
    success_rate: float
    mean_time_per_action_s: float
    median_time_per_action_s: float
    mean_final_distance: float
    median_final_distance: float
    env_steps: int

    @classmethod
    def of(cls, records: Sequence[EpisodeRecord]) -> PlanSummary:
        times = [s.plan_time_s for r in records for s in r.steps]
        finals = [r.final_distance for r in records]
        wins = sum(r.success for r in records)
        return cls(episodes=len(records), successes=wins, success_rate=wins / max(len(records), 1),
                   mean_time_per_action_s=float(np.mean(times)) if times else float("nan"),
                   median_time_per_action_s=float(statistics.median(times)) if times else float("nan"),
                   mean_final_distance=float(np.mean(finals)), median_final_distance=float(np.median(finals)),
                   env_steps=sum(r.env_steps for r in records))

    def lines(self) -> list[str]:
        return [f"success rate: {self.success_rate:.0%} ({self.successes}/{self.episodes})",
                f"time per action: mean {self.mean_time_per_action_s:.3f} s, "
                f"median {self.median_time_per_action_s:.3f} s",
                f"final distance: mean {self.mean_final_distance:.4f}, median {self.median_final_distance:.4f}"]


def true_best_action(env, space: PlanSpace, xs: np.ndarray, dims: tuple[int, int],
                     base: torch.Tensor, scale: np.ndarray) -> tuple[float, float] | None:
    """The grid action (planner units) whose one env step leaves the arm closest to the goal.

    Each candidate is simulated from the same saved simulator state, which is restored afterwards.
    ``None`` when the env cannot save and restore its state.
    """
    if not (hasattr(env, "get_sim_state") and hasattr(env, "set_sim_state")):
        return None
    saved = env.get_sim_state()
    best, best_d = None, float("inf")
    try:
        for x in xs:
            for y in xs:
                a = base.detach().cpu().double().numpy().copy()
                a[dims[0]], a[dims[1]] = x, y
                a = space.project(torch.as_tensor(a, dtype=torch.float32)).double().numpy()
                env.set_sim_state(saved)
                env.step(np.clip(a * scale, env.action_space.low, env.action_space.high).astype(np.float32))
                d = float(env.distance_to_goal())
                if d < best_d:
                    best, best_d = (float(x), float(y)), d
    finally:
        env.set_sim_state(saved)
    return best


def draw_energy_landscape(env, world_model, cfg: PlanConfig, space: PlanSpace, out: Path) -> Path:
    """Energy over a grid of first actions at the first step of the episode with seed ``cfg.seed``."""
    from eval.planning.artifacts import energy_grid, plot_energy_landscape

    env.reset(seed=cfg.seed)
    one_step = PlanSpace(space.low, space.high, 1, space.pinned)
    cost = WorldModelCost(world_model, Objective(cfg.objective), space.action_dim,
                          chunk=cfg.mpc.chunk, precision=cfg.mpc.precision)
    cost.set_goal(env.goal_image())
    cost.set_context(env.image(), env.state())
    dims = (cfg.landscape_dims[0], cfg.landscape_dims[1])
    low = float(max(space.low[dims[0]], space.low[dims[1]]))
    high = float(min(space.high[dims[0]], space.high[dims[1]]))
    base = one_step.center()[0]
    xs, ys, energies = energy_grid(cost, base, dims, low, high, cfg.landscape_resolution)
    scale = np.broadcast_to(np.asarray(cfg.action_scale, dtype=np.float64), (space.action_dim,))
    best = true_best_action(env, one_step, xs, dims, base, scale)
    return plot_energy_landscape(xs, ys, energies, out, true_best=best,
                                 labels=(f"action dim {dims[0]}", f"action dim {dims[1]}"))


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
    env = make_env(cfg.env, image_size=cfg.image_size)
    space = plan_space_for_env(env, cfg.horizon, cfg.action_scale, cfg.pinned).to(world_model.device)
    solver, objective = solver_from_config(cfg.solver), Objective(cfg.objective)
    records = []
    bar = tqdm(range(cfg.episodes), desc="plan episodes", unit="episode", disable=not cfg.progress)
    for i in bar:
        frames: list[np.ndarray] = []
        rec = run_episode(env, world_model, solver, space, objective, cfg.mpc, seed=cfg.seed + i, episode=i,
                          action_scale=cfg.action_scale, observations=frames)
        records.append(rec)
        if i < cfg.gifs:
            write_episode_gif(frames, env.goal_image(), out / f"episode_{i:03d}.gif")
        bar.set_postfix(success=f"{sum(r.success for r in records)}/{len(records)}")
    write_jsonl(records, out / "episodes.jsonl")
    summary = PlanSummary.of(records)
    (out / "summary.json").write_text(json.dumps(asdict(summary), indent=1))
    if cfg.landscape:
        draw_energy_landscape(env, world_model, cfg, space, out / "energy_landscape.png")
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
