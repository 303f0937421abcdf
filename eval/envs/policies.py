"""Exploration policies for clip collection: they see the true simulator state, the world model never does.

Each policy is ``policy(state [S], rng) -> action [A]`` in the env's action units and is reset per
episode with ``policy.reset(start_state, rng)``. Positions are the first ``len(position)`` state
dims, in the env's state units; ``step`` converts a displacement into action units (state units per
unit action: 0.05 m for the Fetch arm, 0.125 workspace widths for PushT).

- :class:`SmoothRandomPolicy`, :class:`WaypointPolicy`: the arm sweeps the workspace (AR(1) random
  motion, random waypoints within a radius of the start) with a toggling gripper command.
- :class:`PushThroughPolicy` (Fetch push): go behind the object, descend, push it toward a random
  point of the goal region, repeat.
- :class:`PushTPolicy` (PushT): the same idea for the T block, mixed with random drifts.

:func:`make_policy` builds one by name, or by import path ``"package.module:Class"`` (called with the
env); :func:`default_policy` is each built-in env's mix. :class:`HeldActions` makes any of them hold
each action for ``k`` env steps (``jepa collect --hold k``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jepa.errors import InputError

FETCH_STEP = 0.05  # [m] end-effector displacement per unit action


class SmoothRandomPolicy:
    """AR(1) random end-effector motion, pulled back toward the start beyond ``radius`` (state units)."""

    def __init__(self, radius: float = 0.2, smoothing: float = 0.8, scale: float = 0.8, step: float = FETCH_STEP,
                 dims: int = 3, gripper: bool = True) -> None:
        self.radius, self.smoothing, self.scale, self.step = radius, smoothing, scale, step
        self.dims, self.gripper = dims, gripper

    def reset(self, start: np.ndarray, rng: np.random.Generator) -> None:
        self.start = start[: self.dims].copy()
        self.prev = rng.uniform(-1, 1, self.dims) * self.scale
        self.grip = float(rng.choice([-1.0, 1.0])) if self.gripper else 0.0

    def __call__(self, state: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        noise = rng.normal(0, 1, self.dims) * self.scale
        a = self.smoothing * self.prev + (1 - self.smoothing) * noise * 2.0
        offset = state[: self.dims] - self.start
        dist = np.linalg.norm(offset)
        if dist > self.radius:
            a -= 2.0 * offset / dist * (dist - self.radius) / self.step
        self.prev = np.clip(a, -1, 1)
        if not self.gripper:
            return self.prev.astype(np.float32)
        if rng.random() < 0.1:
            self.grip = -self.grip
        return np.concatenate([self.prev, [self.grip]]).astype(np.float32)


class WaypointPolicy:
    """P-control toward random waypoints within ``radius`` of the start, with action noise.
    ``hold``: env steps each action will be held for (:class:`HeldActions`); the gain is divided by
    it, so a held action covers about what ``hold`` per-step actions would."""

    def __init__(self, radius: float = 0.2, gain: float = 10.0, noise: float = 0.2, z_range=(-0.1, 0.2),
                 hold: int = 1) -> None:
        self.radius, self.gain, self.noise, self.z_range = radius, gain, noise, z_range
        self.hold = int(hold)

    def reset(self, start: np.ndarray, rng: np.random.Generator) -> None:
        self.start = start[:3].copy()
        self.grip = float(rng.choice([-1.0, 1.0]))
        self._new_waypoint(rng)

    def _new_waypoint(self, rng: np.random.Generator) -> None:
        xy = rng.uniform(-self.radius, self.radius, 2)
        z = rng.uniform(*self.z_range)
        self.waypoint = self.start + np.array([xy[0], xy[1], z])

    def __call__(self, state: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        delta = self.waypoint - state[:3]
        if np.linalg.norm(delta) < 0.02:
            self._new_waypoint(rng)
            self.grip = -self.grip
            delta = self.waypoint - state[:3]
        a = np.clip(self.gain / self.hold * delta + rng.normal(0, self.noise, 3), -1, 1)
        return np.concatenate([a, [self.grip]]).astype(np.float32)


class PushThroughPolicy:
    """For pushing with the Fetch arm: go above and behind the object (seen through
    ``object_position``), descend, then push it through toward a random point within ``region``
    metres of ``center`` (the goal region), and start over from wherever it ended.

    ``center=None`` pushes in a random direction from wherever the object is (it may then wander
    off the table). ``hold`` as in :class:`WaypointPolicy`."""

    def __init__(self, object_position, gain: float = 10.0, noise: float = 0.15,
                 center: tuple[float, float] | None = (1.34, 0.75), region: float = 0.15, hold: int = 1) -> None:
        self.object_position = object_position
        self.gain, self.noise, self.hold = gain, noise, int(hold)
        self.center = None if center is None else np.asarray(center, dtype=np.float64)
        self.region = region

    def reset(self, start: np.ndarray, rng: np.random.Generator) -> None:
        self._plan(rng)

    def _plan(self, rng: np.random.Generator) -> None:
        obj = self.object_position()
        if self.center is None:
            angle = rng.uniform(0, 2 * np.pi)
            direction, reach = np.array([np.cos(angle), np.sin(angle), 0.0]), rng.uniform(0.05, 0.15)
        else:
            target = self.center + rng.uniform(-self.region, self.region, 2)
            delta = target - obj[:2]
            reach = float(np.linalg.norm(delta))
            direction = np.array([*(delta / max(reach, 1e-6)), 0.0])
        self.phase = 0
        self.targets = [obj - 0.08 * direction + [0, 0, 0.05], obj - 0.06 * direction, obj + reach * direction]

    def __call__(self, state: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        target = self.targets[self.phase]
        delta = target - state[:3]
        if np.linalg.norm(delta) < 0.015:
            self.phase += 1
            if self.phase == len(self.targets):
                self._plan(rng)
            target = self.targets[self.phase]
            delta = target - state[:3]
        a = np.clip(self.gain / self.hold * delta + rng.normal(0, self.noise, 3), -1, 1)
        return np.concatenate([a, [-1.0]]).astype(np.float32)


class PushTPolicy:
    """For PushT: the pusher goes to a random side of the T block and pushes through its centre
    toward a random point of the workspace, with noise; ``block_position`` gives the block centre in
    state units (workspace / 512). ``hold`` as in :class:`WaypointPolicy`; a phase still gives up
    after 15 env steps."""

    def __init__(self, block_position, step: float, gain: float = 2.0, noise: float = 0.3,
                 region: tuple[float, float] = (0.25, 0.75), hold: int = 1) -> None:
        self.block_position = block_position
        self.step, self.gain, self.noise, self.region, self.hold = step, gain, noise, region, int(hold)

    def reset(self, start: np.ndarray, rng: np.random.Generator) -> None:
        self._plan(rng)

    def _plan(self, rng: np.random.Generator) -> None:
        block = self.block_position()
        target = rng.uniform(*self.region, 2)
        delta = target - block
        direction = delta / max(float(np.linalg.norm(delta)), 1e-6)
        self.phase, self.count = 0, 0
        self.targets = [block - 0.2 * direction, block + 0.5 * (delta + 0.05 * direction)]

    def __call__(self, state: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        delta = self.targets[self.phase] - state[:2]
        self.count += self.hold
        if np.linalg.norm(delta) < 0.03 or self.count > 15:
            self.phase, self.count = self.phase + 1, 0
            if self.phase == len(self.targets):
                self._plan(rng)
            delta = self.targets[self.phase] - state[:2]
        a = np.clip(self.gain / self.hold * delta / self.step + rng.normal(0, self.noise, 2), -1, 1)
        return a.astype(np.float32)


class HeldActions:
    """``policy`` asked every ``hold`` env steps, its action repeated in between (action repeat).

    With ``hold`` equal to the world model's frame step and windows that start on those boundaries
    (AC ``data.window_stride``), each training block is one constant action, which is exactly what a
    planner's action block executes (:class:`planners.base.PlanSpace`: ``action / block`` at each of
    the ``block`` steps). Without it, a block sums actions that turn within it, and the same summed
    action stands for different paths."""

    def __init__(self, policy: Any, hold: int) -> None:
        if int(hold) < 1:
            raise InputError(f"action hold must be >= 1 env step, got {hold}")
        self.policy, self.hold = policy, int(hold)

    def reset(self, start: np.ndarray, rng: np.random.Generator) -> None:
        self.policy.reset(start, rng)
        self.t, self.action = 0, None

    def __call__(self, state: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.t % self.hold == 0:
            self.action = self.policy(state, rng)
        self.t += 1
        return self.action


def make_policy(name: str, env: Any, hold: int = 1) -> Any:
    """A policy by name (``smooth-random``, ``waypoint``, ``push-through``, ``pusht-push``) or import
    path ``"package.module:Class"`` (constructed as ``Class(env)``). ``hold`` > 1: the policy's actions
    are held for that many env steps (:class:`HeldActions`), and the built-in controllers scale their
    gains to it."""
    step = float(getattr(env, "position_step", FETCH_STEP))
    dims = int(getattr(env, "position_dims", 3))
    builtins = {
        "smooth-random": lambda: SmoothRandomPolicy(step=step, dims=dims, gripper=dims == 3,
                                                    radius=0.2 if dims == 3 else 0.25),
        "waypoint": lambda: WaypointPolicy(hold=hold),
        "push-through": lambda: PushThroughPolicy(env.achieved_position, hold=hold),
        "pusht-push": lambda: PushTPolicy(lambda: env.block_pose()[:2] / 512.0, step, hold=hold),
    }
    if name in builtins:
        return held(builtins[name](), hold)
    if ":" not in name:
        raise InputError(f"unknown policy {name!r}; choose from {sorted(builtins)} or an import path "
                         "'package.module:Class'")
    from eval.envs.registry import import_object

    return held(import_object(name, "policy")(env), hold)


def held(policy: Any, hold: int) -> Any:
    """``policy`` with its actions held for ``hold`` env steps (itself when ``hold`` is 1)."""
    return HeldActions(policy, hold) if hold != 1 else policy


def default_policy(env_name: str, env: Any, episode_id: int, hold: int = 1) -> Any:
    """The built-in exploration mix of ``env_name`` for episode ``episode_id``:

    - ``fetch-reach``: smooth random (even ids) and waypoints (odd ids);
    - ``fetch-push``: push-through for 2 of every 3 episodes, else the reach mix;
    - ``pusht``: pushes for 2 of every 3 episodes, else smooth random motion.
    """
    if env_name == "pusht":
        return make_policy("pusht-push" if episode_id % 3 != 2 else "smooth-random", env, hold)
    if env_name == "fetch-push" and episode_id % 3 != 2:
        return make_policy("push-through", env, hold)
    return held(SmoothRandomPolicy() if episode_id % 2 == 0 else WaypointPolicy(hold=hold), hold)
