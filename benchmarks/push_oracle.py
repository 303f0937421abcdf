"""How many of a push plan run's goals can be reached at all within its budget? Two references that
see the true simulator state, run on exactly the goals a `jepa plan` run used (same dataset, offset,
seed, exclusions), through the same env:

- **replay**: the held-out episode's own recorded actions from t (the goal frame is where they
  led, so this checks that a restored start replays to its goal), then zero actions;
- **scripted pusher** (Fetch envs, which expose the object's position): :class:`eval.envs.policies.PushThroughPolicy`
  aimed at the goal position (above and behind the block, descend, push through toward the goal;
  again from wherever the block ends), without noise. An upper-bound reference for a planner that
  sees only images. PushT has no such controller here (its goal is a pose, not a position): its
  rows report ``null``.

With ``--energy`` it also asks where planning fails, at each start, over 302 candidate plans
(:class:`EnergyCheck`: the replay as plan blocks, zero actions, 200 random plans drawn as the
solver's first iteration draws them, 100 perturbed replays):

- does the world model *prefer* the replay (which reaches the goal) to doing nothing and to random
  plans? If not, a better search cannot help;
- does the replay survive being cut into plan blocks (the planner can only express each block's
  sum, spread evenly over its env steps)?
- does the predicted energy rank the candidates as the encoder's energy of the frames the simulator
  truly renders does (a perfect predictor)? And does that measured energy follow the object's true
  distance to its goal, or rather the gripper's? The first says what the predictor loses, the second
  what the encoder and energy allow at best;
- is the candidate with the lowest predicted (or measured) energy a success?

each for the run's energy (``all`` tokens) and for the energy over the tokens where the start differs
most from the goal (``changed``, ``objective.tokens=changed``), from the same rollouts.

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
    """The run's planning energy of candidate plans at the current start (``--energy``), as the world
    model predicts it and as the encoder measures it on the frames the simulator truly renders
    (:class:`eval.planning.true_dynamics.SimulatorDynamics`: a perfect predictor).

    Candidates: the replay as plan blocks (each block the sum of its recorded actions, executed as
    that sum spread evenly over the block, as any plan is), zero actions, 200 random plans drawn as
    the CEM's first draw, and 100 perturbed replays (noise of 0.25, 0.5 and 1 x the first draw's
    std), which move the block in varied ways near the goal.

    Every candidate's two rollouts (predicted, simulated) are scored by two energies: ``all``, the
    run's own objective, and ``changed``, the same objective restricted to the tokens where the start
    differs most from the goal (``objective.tokens=changed``)."""

    PERTURBATIONS = (0.25, 0.5, 1.0)

    def __init__(self, cfg: PlanConfig, env) -> None:
        import dataclasses

        import torch

        from eval.planning.true_dynamics import SimulatorDynamics
        from jepa.world_model import load_world_model
        from planners.mpc import plan_space_for_env
        from planners.objectives import Objective, WorldModelCost

        self.torch = torch
        model = load_world_model(cfg.world_model, device=cfg.device)
        self.block = resolve_action_block(cfg, model)
        self.space = plan_space_for_env(env, cfg.horizon, cfg.action_scale, cfg.pinned, self.block)
        self.energies = {"all": Objective(dataclasses.replace(cfg.objective, tokens="all")),
                         "changed": Objective(dataclasses.replace(cfg.objective, tokens="changed"))}
        self.cost = WorldModelCost(model, self.energies["all"], self.space.action_dim, chunk=cfg.mpc.chunk)
        self.simulator = SimulatorDynamics(model, env, self.space)
        self.true_cost = WorldModelCost(self.simulator, self.energies["all"], self.space.action_dim, chunk=None)
        std = cfg.solver.cem.init_std  # the CEM's first draw; its own default (None) is half the box
        self.init_std = float(std[0]) if std else float(self.space.half_range().max())
        self.rows: list[dict] = []

    def candidates(self, recorded: np.ndarray, seed: int):
        """``[302, H, A]``: replay, zero, 200 random, 100 perturbed replays (class docstring)."""
        torch, space = self.torch, self.space
        blocks = recorded[:space.horizon * self.block].reshape(space.horizon, self.block, -1).sum(1) / space.scale
        replay = space.project(torch.as_tensor(blocks, dtype=torch.float32)[None])
        generator = torch.Generator().manual_seed(seed)
        shape = (200, space.horizon, space.action_dim)
        random = space.project(space.center() + torch.randn(shape, generator=generator) * self.init_std)
        scales = torch.tensor(self.PERTURBATIONS).repeat_interleave(34)[:100, None, None] * self.init_std
        noise = torch.randn((100, space.horizon, space.action_dim), generator=generator) * scales
        return torch.cat([replay, space.project(torch.zeros_like(replay)), random, space.project(replay + noise)])

    def _score(self, cost, plans) -> dict[str, np.ndarray]:
        """Each energy of ``cost``'s rollouts of ``plans [C, H, A]`` -> ``{energy: [C]}``."""
        values = cost.energies(plans, list(self.energies.values()))
        return {name: v.numpy() for name, v in zip(self.energies, values)}

    def __call__(self, env, start, recorded: np.ndarray) -> None:
        torch = self.torch
        if len(recorded) < self.space.horizon * self.block:
            return
        plans = self.candidates(recorded, start.seed)
        for cost in (self.cost, self.true_cost):
            cost.set_goal(env.goal_image(), start.goal_state)
            cost.set_context(env.image(), env.state())
        with torch.no_grad():
            predicted, measured = self._score(self.cost, plans), self._score(self.true_cost, plans)
        outcomes = self.simulator.outcomes
        success = np.array([o.success for o in outcomes])
        distance = np.array([o.distance for o in outcomes])  # the object's, to its goal [m]
        gripper = np.array([np.linalg.norm(o.state[:3] - start.goal_state[:3]) for o in outcomes])
        row = {"block_replay_reaches": bool(success[0]), "succeeding_candidates": float(success[1:].mean())}
        for name in self.energies:
            row[name] = _rank_row(predicted[name], measured[name], success, distance, gripper)
        self.rows.append(row)

    def summary(self) -> dict:
        if not self.rows:
            return {}
        rows = self.rows
        out = {"goals": len(rows), "block_replay_reaches": sum(r["block_replay_reaches"] for r in rows),
               "median_share_of_candidates_succeeding": float(np.median([r["succeeding_candidates"] for r in rows]))}
        for name in self.energies:
            out[name] = _summarize([r[name] for r in rows])
        return out


def _summarize(rows: list[dict]) -> dict:
    """One energy's :func:`_rank_row` over the starts: counts of successes and of replays below zero
    actions, medians of the rest."""
    out = {"replay_below_zero": sum(r["replay"] < r["zero"] for r in rows),
           "median_replay_over_zero": float(np.median([r["replay"] / r["zero"] for r in rows]))}
    for key in rows[0]:
        if key.endswith("succeeds"):
            out[key] = sum(r[key] for r in rows)
        elif key not in ("replay", "zero"):
            out[f"median_{key}"] = float(np.median([r[key] for r in rows]))
    return out


def _rank_row(predicted: np.ndarray, measured: np.ndarray, success: np.ndarray, distance: np.ndarray,
              gripper: np.ndarray) -> dict:
    """One start's comparison of one energy's predicted and measured values over the candidates
    (index 0 the replay, 1 zero actions, 2..201 the random plans)."""
    from scipy.stats import spearmanr

    rest = slice(1, None)  # every candidate but the exact replay
    return {"replay": float(predicted[0]), "zero": float(predicted[1]),
            "share_of_random_plans_below_replay": float((predicted[2:202] < predicted[0]).mean()),
            "rank_predicted_vs_measured": float(spearmanr(predicted, measured)[0]),
            "rank_measured_vs_object_distance": float(spearmanr(measured, distance)[0]),
            "rank_predicted_vs_object_distance": float(spearmanr(predicted, distance)[0]),
            "rank_measured_vs_gripper_distance": float(spearmanr(measured, gripper)[0]),
            "predicted_best_succeeds": bool(success[rest][np.argmin(predicted[rest])]),
            "measured_best_succeeds": bool(success[rest][np.argmin(measured[rest])])}


def check_plan_run(plan_dir: Path, energy: bool = False) -> dict:
    cfg = _plan_settings(plan_dir)
    budget = cfg.mpc.max_steps
    data = TrajectoryDataset(cfg.goals.dataset)
    by_id = {int(data.load(i).info.get("id", i)): i for i in range(len(data))}
    env = make_env(cfg.env, image_size=cfg.image_size, **cfg.env_options)
    scripted = hasattr(env, "achieved_position")  # the push-through controller needs the object's position
    counts = {"replay": [0, 0], **({"scripted pusher": [0, 0]} if scripted else {})}
    try:
        scorer = EnergyCheck(cfg, env) if energy else None
        goals = Goals(env, cfg.goals, cfg.seed, budget)
        for start in goals.starts(cfg.episodes):
            saved = np.array(env.get_sim_state(), copy=True)
            recorded = data.load(by_id[start.origin["dataset_episode"]]).actions[start.origin["t"]:]
            if scorer is not None:
                scorer(env, start, recorded)
            results = {"replay": _replay(env, recorded, budget)}
            if scripted:
                env.set_sim_state(saved)
                results["scripted pusher"] = _scripted_push(env, budget)
            for name, (reached, held) in results.items():
                counts[name][0] += reached
                counts[name][1] += held
    finally:
        env.close()
    return {"plan_run": str(plan_dir), "goals": cfg.episodes, "budget": budget,
            **{name: {"reached": r, "held": h} for name, (r, h) in counts.items()},
            **({} if scripted else {"scripted pusher": None}),
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
