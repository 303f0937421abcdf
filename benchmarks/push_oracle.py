"""How many of a push plan run's goals can be reached at all within its budget? Two references that
see the true simulator state, run on exactly the goals a `jepa plan` run used (same dataset, offset,
seed, exclusions), through the same env:

- **replay**: the held-out episode's own recorded actions from t (the goal frame is where they
  led, so this checks that a restored start replays to its goal), then zero actions;
- **scripted pusher**: :class:`eval.envs.policies.PushThroughPolicy` aimed at the goal position
  (above and behind the block, descend, push through toward the goal; again from wherever the
  block ends), without noise. An upper-bound reference for a planner that sees only images.

With ``--energy`` it also asks the run's world model whether it *prefers* the replayed actions (which
reach the goal by construction): at each start, the planner's energy of the recorded 25 steps (as
the plan's blocks, summed per block) against doing nothing and against 200 random plans drawn as the
solver's first iteration draws them. If the replay scores no better than doing nothing, a better
search cannot help; the model's energy is what fails.

    python benchmarks/push_oracle.py RUN/plan-pretrained [RUN/...] [--energy]

Each argument is a plan output folder (its ``config.yaml`` names the goals and the world model);
prints one JSON line per folder.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from eval.envs.policies import PushThroughPolicy
from eval.envs.registry import make_env
from eval.planning.benchmark import PlanConfig, resolve_action_block
from eval.planning.goals import Goals
from jepa.config import load_config
from jepa.data.trajectories import TrajectoryDataset
from jepa.errors import InputError


def _plan_settings(plan_dir: Path) -> PlanConfig:
    path = plan_dir / "config.yaml"
    if not path.exists():
        raise InputError(f"{path}: not found; give the output folder of a `jepa plan` run")
    cfg = load_config(PlanConfig, str(path), [])
    if cfg.goals.source != "dataset":
        raise InputError(f"{path}: goals.source={cfg.goals.source!r}; this check needs dataset goals")
    return cfg


def _run(env, actions, budget: int) -> tuple[bool, bool]:
    """Steps ``actions(step)`` for ``budget`` env steps; (reached at some step, held at the end)."""
    reached = False
    for k in range(budget):
        env.step(actions(k))
        reached = reached or env.is_success()
    return reached, env.is_success()


def _replay(env, recorded: np.ndarray, budget: int) -> tuple[bool, bool]:
    """The recorded actions ``[T, A]`` from the start, then zero actions."""
    zero = np.zeros(env.action_space.shape, np.float32)
    return _run(env, lambda k: recorded[k] if k < len(recorded) else zero, budget)


def _scripted_push(env, budget: int) -> tuple[bool, bool]:
    """The push-through policy aimed at the goal position, without noise, on the true state."""
    pusher = PushThroughPolicy(env.achieved_position, noise=0.0, center=tuple(env.goal_position()[:2]), region=0.0)
    rng = np.random.default_rng(0)
    pusher.reset(env.state(), rng)
    return _run(env, lambda k: pusher(env.state(), rng), budget)


class EnergyCheck:
    """The run's planning energy of given plans at the current start (``--energy``)."""

    def __init__(self, cfg: PlanConfig, env) -> None:
        import torch

        from jepa.world_model import load_world_model
        from planners.mpc import plan_space_for_env
        from planners.objectives import Objective, WorldModelCost

        self.torch = torch
        model = load_world_model(cfg.world_model, device=cfg.device)
        self.block = resolve_action_block(cfg, model)
        self.space = plan_space_for_env(env, cfg.horizon, cfg.action_scale, cfg.pinned, self.block)
        self.cost = WorldModelCost(model, Objective(cfg.objective), self.space.action_dim, chunk=cfg.mpc.chunk)
        std = cfg.solver.cem.init_std  # the CEM's first draw; its own default (None) is half the box
        self.init_std = float(std[0]) if std else float(self.space.half_range().max())
        self.rows: list[dict] = []

    def __call__(self, env, start, recorded: np.ndarray) -> None:
        torch, space = self.torch, self.space
        steps = space.horizon * self.block
        if len(recorded) < steps:
            return
        blocks = recorded[:steps].reshape(space.horizon, self.block, -1).sum(1) / space.scale
        replay = space.project(torch.as_tensor(blocks, dtype=torch.float32)[None])
        generator = torch.Generator().manual_seed(start.seed)
        noise = torch.randn((200, space.horizon, space.action_dim), generator=generator) * self.init_std
        random = space.project(space.center() + noise)
        self.cost.set_goal(env.goal_image(), start.goal_state)
        self.cost.set_context(env.image(), env.state())
        with torch.no_grad():
            e = self.cost(torch.cat([replay, space.project(torch.zeros_like(replay)), random]))
        self.rows.append({"replay": float(e[0]), "zero": float(e[1]),
                          "random_below_replay": float((e[2:] < e[0]).float().mean())})

    def summary(self) -> dict:
        if not self.rows:
            return {}
        below = [r["random_below_replay"] for r in self.rows]
        return {"goals": len(self.rows),
                "replay_below_zero": sum(r["replay"] < r["zero"] for r in self.rows),
                "median_replay_over_zero": float(np.median([r["replay"] / r["zero"] for r in self.rows])),
                "median_share_of_random_plans_below_replay": float(np.median(below))}


def check_plan_run(plan_dir: Path, energy: bool = False) -> dict:
    cfg = _plan_settings(plan_dir)
    budget = cfg.mpc.max_steps
    data = TrajectoryDataset(cfg.goals.dataset)
    by_id = {int(data.load(i).info.get("id", i)): i for i in range(len(data))}
    env = make_env(cfg.env, image_size=cfg.image_size)
    counts = {"replay": [0, 0], "scripted pusher": [0, 0]}
    try:
        scorer = EnergyCheck(cfg, env) if energy else None
        goals = Goals(env, cfg.goals, cfg.seed, budget)
        for start in goals.starts(cfg.episodes):
            saved = np.array(env.get_sim_state(), copy=True)
            recorded = data.load(by_id[start.origin["dataset_episode"]]).actions[start.origin["t"]:]
            if scorer is not None:
                scorer(env, start, recorded)
            results = {"replay": _replay(env, recorded, budget)}
            env.set_sim_state(saved)
            results["scripted pusher"] = _scripted_push(env, budget)
            for name, (reached, held) in results.items():
                counts[name][0] += reached
                counts[name][1] += held
    finally:
        env.close()
    return {"plan_run": str(plan_dir), "goals": cfg.episodes, "budget": budget,
            **{name: {"reached": r, "held": h} for name, (r, h) in counts.items()},
            **({"energy": scorer.summary()} if scorer is not None else {})}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("plan_dirs", nargs="+", type=Path)
    p.add_argument("--energy", action="store_true", help="also score the replay with the run's world model")
    args = p.parse_args()
    for plan_dir in args.plan_dirs:
        print(json.dumps(check_plan_run(plan_dir, args.energy)))


if __name__ == "__main__":
    main()
