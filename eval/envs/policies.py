"""Exploration policies for clip collection: they see the true simulator state, the world model never does.

Each policy is ``policy(state [S], rng) -> action [4]`` in the env's action units and is reset per
episode with ``policy.reset(start_state, rng)``. Together they make diverse, useful clips: the
arm sweeps the workspace (smooth random motion and random waypoints within a radius of the start),
for pushing it also goes behind the object and pushes through it, and the gripper command toggles.
"""

from __future__ import annotations

import numpy as np


class SmoothRandomPolicy:
    """AR(1) random end-effector motion, pulled back toward the start beyond ``radius`` metres."""

    def __init__(self, radius: float = 0.2, smoothing: float = 0.8, scale: float = 0.8) -> None:
        self.radius, self.smoothing, self.scale = radius, smoothing, scale

    def reset(self, start: np.ndarray, rng: np.random.Generator) -> None:
        self.start = start[:3].copy()
        self.prev = rng.uniform(-1, 1, 3) * self.scale
        self.grip = float(rng.choice([-1.0, 1.0]))

    def __call__(self, state: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        noise = rng.normal(0, 1, 3) * self.scale
        a = self.smoothing * self.prev + (1 - self.smoothing) * noise * 2.0
        offset = state[:3] - self.start
        dist = np.linalg.norm(offset)
        if dist > self.radius:
            a -= 2.0 * offset / dist * (dist - self.radius) / 0.05
        self.prev = np.clip(a, -1, 1)
        if rng.random() < 0.1:
            self.grip = -self.grip
        return np.concatenate([self.prev, [self.grip]]).astype(np.float32)


class WaypointPolicy:
    """P-control toward random waypoints within ``radius`` of the start, with action noise."""

    def __init__(self, radius: float = 0.2, gain: float = 10.0, noise: float = 0.2, z_range=(-0.1, 0.2)) -> None:
        self.radius, self.gain, self.noise, self.z_range = radius, gain, noise, z_range

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
        a = np.clip(self.gain * delta + rng.normal(0, self.noise, 3), -1, 1)
        return np.concatenate([a, [self.grip]]).astype(np.float32)


class PushThroughPolicy:
    """For pushing: go behind the object (seen through ``object_position``), then push through it."""

    def __init__(self, object_position, gain: float = 10.0, noise: float = 0.15) -> None:
        self.object_position = object_position
        self.gain, self.noise = gain, noise

    def reset(self, start: np.ndarray, rng: np.random.Generator) -> None:
        self._plan(rng)

    def _plan(self, rng: np.random.Generator) -> None:
        angle = rng.uniform(0, 2 * np.pi)
        self.direction = np.array([np.cos(angle), np.sin(angle), 0.0])
        obj = self.object_position()
        self.phase = 0
        self.targets = [obj - 0.08 * self.direction + [0, 0, 0.05], obj - 0.06 * self.direction,
                        obj + rng.uniform(0.05, 0.15) * self.direction]

    def __call__(self, state: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        target = self.targets[self.phase]
        delta = target - state[:3]
        if np.linalg.norm(delta) < 0.015:
            self.phase += 1
            if self.phase == len(self.targets):
                self._plan(rng)
            target = self.targets[self.phase]
            delta = target - state[:3]
        a = np.clip(self.gain * delta + rng.normal(0, self.noise, 3), -1, 1)
        return np.concatenate([a, [-1.0]]).astype(np.float32)
