"""Clip collection: ``jepa collect --env fetch-reach --episodes N --steps T --out DIR``.

Episodes are collected by worker processes with scripted exploration policies and written in the
trajectory format (:mod:`jepa.data.trajectories`). Re-running on an existing folder extends it: new
episodes continue the ids (and so the seeds, ``seed + id``) instead of overwriting anything.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from jepa.data.trajectories import TrajectoryWriter, write_episode_file


@dataclass(frozen=True)
class CollectJob:
    env: str
    out: str
    steps: int
    image_size: int
    seed: int


ENV_META = {
    "fetch-reach": dict(
        fps=25.0, state_dim=4, action_dim=4,
        state_semantics="end-effector x, y, z [m] (world frame), gripper opening [m]",
        action_semantics="end-effector delta x, y, z [units of 0.05 m per step, in -1..1], gripper command",
    ),
    "pusht": dict(
        fps=10.0, state_dim=2, action_dim=2,
        state_semantics="pusher x, y [workspace px, 0..512]",
        action_semantics="absolute pusher target x, y [workspace px, 0..512]",
    ),
}
ENV_META["fetch-push"] = ENV_META["fetch-reach"]


def _policy_for(name: str, env, episode_id: int):
    from eval.envs import policies

    if name == "pusht":
        return _PushTRandomPolicy()
    if name == "fetch-push" and episode_id % 3 != 2:
        return policies.PushThroughPolicy(env.achieved_position)
    if episode_id % 2 == 0:
        return policies.SmoothRandomPolicy()
    return policies.WaypointPolicy()


class _PushTRandomPolicy:
    """Smooth random pusher targets that drift around the block so it gets touched and moved."""

    def reset(self, start: np.ndarray, rng: np.random.Generator) -> None:
        self.target = start.astype(np.float64).copy()

    def __call__(self, state: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        self.target = np.clip(self.target + rng.normal(0, 25, 2), 40, 472)
        return self.target.astype(np.float32)


_WORKER_ENV = None


def _worker_env(name: str, image_size: int):
    global _WORKER_ENV
    if _WORKER_ENV is None:
        from eval.envs.registry import make_env

        _WORKER_ENV = make_env(name, image_size=image_size)
    return _WORKER_ENV


def collect_episode(env, name: str, episode_id: int, steps: int, seed: int):
    """Run one scripted episode; returns ``frames [T+1,H,W,3], states [T+1,S], actions [T,A]``."""
    rng = np.random.default_rng(seed)
    image, _ = env.reset(seed=seed)
    policy = _policy_for(name, env, episode_id)
    policy.reset(env.state(), rng)
    frames, states, actions = [image], [env.state()], []
    for _ in range(steps):
        action = policy(env.state(), rng)
        image, *_ = env.step(action)
        frames.append(image)
        states.append(env.state())
        actions.append(action)
    return np.stack(frames), np.stack(states).astype(np.float32), np.stack(actions).astype(np.float32)


def _run_job(args: tuple[CollectJob, int]) -> dict:
    job, episode_id = args
    env = _worker_env(job.env, job.image_size)
    seed = job.seed + episode_id
    frames, states, actions = collect_episode(env, job.env, episode_id, job.steps, seed)
    return write_episode_file(job.out, episode_id, frames, states, actions, {"seed": seed})


def collect(env: str, out: str | Path, episodes: int, steps: int, workers: int = 2, image_size: int = 64,
            seed: int = 0, progress: bool = True) -> TrajectoryWriter:
    """Add ``episodes`` episodes of ``steps`` actions to the dataset at ``out`` (created if needed)."""
    if env not in ENV_META:
        raise ValueError(f"unknown env {env!r}; choose from {sorted(ENV_META)}")
    meta = {"env": env, "image_size": image_size, "camera": "fixed workspace camera", **ENV_META[env]}
    writer = TrajectoryWriter(out, meta)
    job = CollectJob(env=env, out=str(out), steps=steps, image_size=image_size, seed=seed)
    ids = [writer.next_id + i for i in range(episodes)]
    bar = tqdm(total=episodes, desc=f"collect {env}", unit="episode", disable=not progress)
    if workers <= 1:
        results = map(_run_job, [(job, i) for i in ids])
        for entry in results:
            writer.add([entry])
            bar.update(1)
    else:
        with mp.get_context("spawn").Pool(workers) as pool:
            for entry in pool.imap_unordered(_run_job, [(job, i) for i in ids]):
                writer.add([entry])
                bar.update(1)
    bar.close()
    return writer


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jepa collect", description="collect robot clips in a simulated env")
    p.add_argument("--env", required=True, choices=sorted(ENV_META))
    p.add_argument("--episodes", type=int, required=True)
    p.add_argument("--steps", type=int, required=True, help="actions per episode (frames = steps + 1)")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0, help="episode i uses seed + i")
    return p


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    writer = collect(args.env, args.out, args.episodes, args.steps, args.workers, args.image_size, args.seed)
    total = len(writer.index["episodes"])
    frames = sum(e["length"] for e in writer.index["episodes"])
    print(f"{args.out}: {total} episodes, {frames} frames ({args.episodes} added)")
    return 0
