"""Clip collection: ``jepa collect --env NAME_OR_PATH --episodes N --steps T --out DIR [--policy P]``.

Episodes are collected by worker processes with scripted exploration policies
(:mod:`eval.envs.policies`) and written in the trajectory format (:mod:`jepa.data.trajectories`),
with the simulator state of every frame when the env can save it (``get_sim_state``), so any
moment of an episode can be restored exactly later. Re-running on an existing folder extends it:
new episodes continue the ids (and so the seeds, ``seed + id``) instead of overwriting anything.
Several ``jepa collect`` runs may write into one folder at once: each reserves its block of ids
under the dataset's lock before it starts (:meth:`jepa.data.trajectories.TrajectoryWriter.reserve_ids`),
and every finished episode is added to the index under the lock, so the dataset lists the union.

``--env`` is a built-in name or an import path ``package.module:Class`` of any class that follows
:class:`planners.protocol.GoalEnv`; ``--policy`` is ``auto`` (the built-in env's own mix, or
``smooth-random`` for other envs), a policy name or an import path.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from jepa.data.trajectories import TrajectoryWriter, write_episode_file
from jepa.errors import InputError

ENV_META = {
    "fetch-reach": dict(
        fps=25.0, action_kind="delta",
        state_semantics="end-effector x, y, z [m] (world frame), gripper opening [m]",
        action_semantics="end-effector delta x, y, z [units of 0.05 m per step, in -1..1], gripper command",
    ),
    "pusht": dict(
        fps=10.0, action_kind="delta",
        state_semantics="pusher x, y [workspace widths: pixels / 512, 0..1]",
        action_semantics="pusher target relative to the pusher [units of 64 workspace px, in -1..1]",
    ),
}
ENV_META["fetch-push"] = ENV_META["fetch-reach"]


@dataclass(frozen=True)
class CollectJob:
    env: str
    out: str
    steps: int
    image_size: int
    seed: int
    policy: str = "auto"
    env_options: tuple[tuple[str, Any], ...] = ()  # keyword arguments of the env, as sorted items
    meta: dict | None = None  # the dataset's description: episodes are checked against its dims and size
    hold: int = 1  # env steps each policy action is held for (HeldActions)


def env_metadata(name: str, env: Any, image_size: int, env_options: dict | None = None, hold: int = 1) -> dict:
    """The dataset metadata of ``env``: dims from the env itself, semantics from the built-in table or
    the env's own ``fps`` / ``state_semantics`` / ``action_semantics`` / ``action_kind`` attributes;
    ``env_options`` (the env's keyword arguments) when there are any; ``action_hold`` when the
    policy's actions are held for ``hold`` > 1 env steps."""
    known = ENV_META.get(name, {})
    meta = {"env": name, "image_size": image_size, "camera": "fixed workspace camera",
            "action_dim": int(np.prod(env.action_space.shape)), "state_dim": int(np.asarray(env.state()).size)}
    for key, default in (("fps", 10.0), ("action_kind", "delta"), ("state_semantics", "unspecified"),
                         ("action_semantics", "unspecified")):
        meta[key] = known.get(key, getattr(env, key, default))
    if env_options:
        meta["env_options"] = dict(env_options)
    if hold > 1:
        meta["action_hold"] = int(hold)
    return meta


def _policy(job: CollectJob, env, episode_id: int):
    from eval.envs.policies import default_policy, make_policy

    if job.policy != "auto":
        return make_policy(job.policy, env, job.hold)
    if job.env in ENV_META:
        return default_policy(job.env, env, episode_id, job.hold)
    return make_policy("smooth-random", env, job.hold)


_WORKER_ENVS: dict[tuple, Any] = {}


def _worker_env(job: CollectJob):
    """One env per process and (name, size, options): creating a MuJoCo env and its renderer is slow."""
    key = (job.env, job.image_size, job.env_options)
    if key not in _WORKER_ENVS:
        from eval.envs.registry import make_env

        _WORKER_ENVS[key] = make_env(job.env, image_size=job.image_size, **dict(job.env_options))
    return _WORKER_ENVS[key]


def collect_episode(env, policy, steps: int, seed: int) -> dict[str, np.ndarray]:
    """Run one scripted episode: ``frames [T+1,H,W,3]``, ``states [T+1,S]``, ``actions [T,A]`` and, when
    the env can save it, ``sim_states [T+1,K]``."""
    rng = np.random.default_rng(seed)
    image, _ = env.reset(seed=seed)
    policy.reset(env.state(), rng)
    sim = hasattr(env, "get_sim_state")
    frames, states, actions = [image], [env.state()], []
    sims = [env.get_sim_state()] if sim else []
    for _ in range(steps):
        action = policy(env.state(), rng)
        image, *_ = env.step(action)
        frames.append(image)
        states.append(env.state())
        actions.append(action)
        if sim:
            sims.append(env.get_sim_state())
    out = {"frames": np.stack(frames), "states": np.stack(states).astype(np.float32),
           "actions": np.stack(actions).astype(np.float32)}
    if sim:
        out["sim_states"] = np.stack(sims).astype(np.float64)
    return out


def _run_job(args: tuple[CollectJob, int]) -> dict:
    job, episode_id = args
    env = _worker_env(job)
    seed = job.seed + episode_id
    ep = collect_episode(env, _policy(job, env, episode_id), job.steps, seed)
    return write_episode_file(job.out, episode_id, ep["frames"], ep["states"], ep["actions"], {"seed": seed},
                              sim_states=ep.get("sim_states"), meta=job.meta)


def collect(env: str, out: str | Path, episodes: int, steps: int, workers: int = 2, image_size: int = 64,
            seed: int = 0, progress: bool = True, policy: str = "auto",
            env_options: dict | None = None, hold: int = 1) -> TrajectoryWriter:
    """Add ``episodes`` episodes of ``steps`` actions to the dataset at ``out`` (created if needed);
    ``env_options`` are keyword arguments of the env (e.g. ``{"render": "visible"}`` for PushT);
    ``hold``: env steps each policy action is held for (recorded as the dataset's ``action_hold``;
    a dataset never mixes two holds)."""
    from eval.envs.registry import make_env

    if episodes < 1 or steps < 1 or image_size < 1 or workers < 0 or hold < 1:
        raise InputError(f"collect needs episodes, steps, image size and hold >= 1 and workers >= 0, got "
                         f"{episodes}, {steps}, {image_size}, {hold}, {workers}")
    options = dict(env_options or {})
    probe = make_env(env, image_size=image_size, **options)
    try:
        probe.reset(seed=seed)
        meta = env_metadata(env, probe, image_size, options, hold)
    finally:
        probe.close()
    writer = TrajectoryWriter(out, meta)
    job = CollectJob(env=env, out=str(out), steps=steps, image_size=image_size, seed=seed, policy=policy,
                     env_options=tuple(sorted(options.items())), hold=int(hold),
                     meta={k: writer.index.get(k) for k in ("image_size", "state_dim", "action_dim")})
    ids = writer.reserve_ids(episodes)  # under the dataset's lock: a concurrent collector takes other ids
    with tqdm(total=episodes, desc=f"collect {env}", unit="episode", disable=not progress) as bar:
        if workers <= 1:
            try:
                for entry in map(_run_job, [(job, i) for i in ids]):
                    writer.add([entry])
                    bar.update(1)
            finally:  # in this process the env is not a worker's: close it now, not at interpreter exit
                cached = _WORKER_ENVS.pop((env, image_size, job.env_options), None)
                if cached is not None:
                    cached.close()
        else:
            with mp.get_context("spawn").Pool(workers) as pool:
                for entry in pool.imap_unordered(_run_job, [(job, i) for i in ids]):
                    writer.add([entry])
                    bar.update(1)
    return writer


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jepa collect", description="collect robot clips in a simulated env")
    p.add_argument("--env", required=True, help="built-in env (fetch-reach, fetch-push, pusht) or package.module:Class")
    p.add_argument("--episodes", type=int, required=True)
    p.add_argument("--steps", type=int, required=True, help="actions per episode (frames = steps + 1)")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0, help="episode i uses seed + i")
    p.add_argument("--policy", default="auto", help="auto, a policy name or package.module:Class")
    p.add_argument("--hold", type=int, default=1, metavar="K",
                   help="hold each policy action for K env steps (action repeat; match the AC frame step)")
    p.add_argument("--env-option", action="append", default=[], metavar="KEY=VALUE",
                   help="a keyword argument of the env, e.g. render=visible for pusht (repeatable)")
    return p


def parse_env_options(items: Sequence[str]) -> dict[str, Any]:
    """``["key=value", ...]`` as a dict; values are parsed as YAML scalars (``1``, ``0.5``, ``true``)."""
    import yaml

    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--env-option {item!r}: expected KEY=VALUE")
        options[key] = yaml.safe_load(value)
    return options


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    writer = collect(args.env, args.out, args.episodes, args.steps, args.workers, args.image_size, args.seed,
                     policy=args.policy, env_options=parse_env_options(args.env_option), hold=args.hold)
    total = len(writer.index["episodes"])
    frames = sum(e["length"] for e in writer.index["episodes"])
    print(f"{args.out}: {total} episodes, {frames} frames ({args.episodes} added)")
    return 0
