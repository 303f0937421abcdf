"""PushT (gym-pusht) as a :class:`GoalEnv` with image observations.

- **Actions** ``[2]``: the absolute target position of the pusher disk in the 512 x 512 workspace
  (pixels of the env's internal canvas), tracked by the env's PD controller.
- **State** ``[2]``: the pusher position (same units).
- **Goal images**: the T block is put on the goal pose (angle set before position, then one physics
  step — setting the position first does not land on the goal because the centre of mass is offset)
  and rendered; the simulator is then restored. The env draws its goal outline in every frame.
- **Success**: DINO-WM's test: block position error < 20 and angle error < pi/9.
"""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

POSITION_TOLERANCE = 20.0
ANGLE_TOLERANCE = np.pi / 9


def _angle_error(a: float, b: float) -> float:
    d = (a - b) % (2 * np.pi)
    return float(min(d, 2 * np.pi - d))


class PushTEnv:
    """PushT with ``image_size`` square images; follows :class:`planners.protocol.GoalEnv`."""

    def __init__(self, image_size: int = 64) -> None:
        import gym_pusht  # noqa: F401  (registers the env)

        self.image_size = image_size
        self._env = gym.make("gym_pusht/PushT-v0", obs_type="pixels_agent_pos",
                             observation_width=image_size, observation_height=image_size)
        self._u = self._env.unwrapped
        self.action_space = gym.spaces.Box(0.0, 512.0, (2,), np.float32)
        self.state_dim = 2
        self._goal_image: np.ndarray | None = None
        self._last_image: np.ndarray | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        obs, _ = self._env.reset(seed=seed, options=options)
        self._goal_image = None
        self._last_image = obs["pixels"].copy()
        return self._last_image, self._info()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (2,) or not np.all(np.isfinite(action)):
            raise ValueError(f"PushT action must be 2 finite numbers, got {action!r}")
        obs, reward, _, truncated, _ = self._env.step(np.clip(action, 0, 512))
        self._last_image = obs["pixels"].copy()
        return self._last_image, float(reward), self.is_success(), bool(truncated), self._info()

    def close(self) -> None:
        self._env.close()

    def image(self) -> np.ndarray:
        return self._last_image if self._last_image is not None else self._u._render().copy()

    def state(self) -> np.ndarray:
        return np.array(self._u.agent.position, dtype=np.float32)

    def block_pose(self) -> np.ndarray:
        return np.array([*self._u.block.position, self._u.block.angle], dtype=np.float64)

    def distance_to_goal(self) -> float:
        return float(np.linalg.norm(self.block_pose()[:2] - np.asarray(self._u.goal_pose[:2])))

    def is_success(self) -> bool:
        pose, goal = self.block_pose(), np.asarray(self._u.goal_pose)
        return self.distance_to_goal() < POSITION_TOLERANCE and _angle_error(pose[2], goal[2]) < ANGLE_TOLERANCE

    def goal_image(self) -> np.ndarray:
        if self._goal_image is None:
            saved = self._save()
            try:
                self._put_block(np.asarray(self._u.goal_pose, dtype=np.float64))
                self._goal_image = self._u._render().copy()
            finally:
                self._restore(saved)
        return self._goal_image

    def _put_block(self, pose: np.ndarray) -> None:
        block = self._u.block
        block.angle = float(pose[2])  # angle first: the position setter depends on it
        block.position = (float(pose[0]), float(pose[1]))
        block.velocity = (0.0, 0.0)
        block.angular_velocity = 0.0
        self._u.space.step(self._u.dt)

    def _save(self) -> tuple:
        a, b = self._u.agent, self._u.block
        return (tuple(a.position), tuple(a.velocity), b.angle, tuple(b.position), tuple(b.velocity),
                b.angular_velocity)

    def _restore(self, saved: tuple) -> None:
        a, b = self._u.agent, self._u.block
        a.position, a.velocity = saved[0], saved[1]
        b.angle, b.position, b.velocity, b.angular_velocity = saved[2], saved[3], saved[4], saved[5]
        self._u.space.reindex_shapes_for_body(a)
        self._u.space.reindex_shapes_for_body(b)

    def _info(self) -> dict:
        return {"is_success": self.is_success(), "distance": self.distance_to_goal()}
