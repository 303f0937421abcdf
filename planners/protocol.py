"""The env protocol: what collection, MPC and the planning benchmark need from an environment.

Any object with the gymnasium API (``reset``, ``step``, ``action_space``, ``close``) plus five
accessors plugs in: a simulated arm, PushT, or a driver for a real arm. Images are ``uint8`` arrays
``[H, W, 3]``; states are ``float32`` vectors ``[S]``; actions are ``float32`` vectors ``[A]`` inside
``action_space`` (a ``gymnasium.spaces.Box``).

A minimal real-arm driver::

    class MyArm:
        action_space = gymnasium.spaces.Box(-0.05, 0.05, (4,))    # dx, dy, dz [m], gripper

        def reset(self, seed=None, options=None):
            self.robot.home(); return self.image(), {}
        def step(self, action):
            self.robot.move_delta(action[:3]); self.robot.grip(action[3])
            return self.image(), 0.0, False, False, {"is_success": self.is_success()}
        def image(self): return self.camera.read_rgb()               # [H, W, 3] uint8
        def state(self): return self.robot.ee_xyz_and_gripper()      # [4] float32
        def goal_image(self): return self.stored_goal_rgb            # [H, W, 3] uint8
        def is_success(self): return self.operator_says_done()
        def distance_to_goal(self): return float("nan")              # unknown on a real arm
        def close(self): self.robot.stop()
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class GoalEnv(Protocol):
    """An environment that can be driven toward a goal image.

    Methods:
        reset(seed, options) -> (obs, info); step(action) -> (obs, reward, terminated, truncated,
            info): the gymnasium API; ``obs`` may be anything, the accessors below are what the
            project reads.
        image() -> ``[H, W, 3]`` uint8: the current camera image.
        state() -> ``[S]`` float32: proprioceptive state (e.g. end-effector xyz + gripper opening).
        goal_image() -> ``[H, W, 3]`` uint8: the goal configuration seen by the same camera.
        is_success() -> bool: the env's own success criterion (e.g. within 5 cm of the goal).
        distance_to_goal() -> float: true distance to the goal in the env's units (for logging and
            plots only; never used by a planner). ``nan`` when unknown.
    """

    action_space: Any

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]: ...

    def step(self, action: np.ndarray) -> tuple[Any, float, bool, bool, dict]: ...

    def image(self) -> np.ndarray: ...

    def state(self) -> np.ndarray: ...

    def goal_image(self) -> np.ndarray: ...

    def is_success(self) -> bool: ...

    def distance_to_goal(self) -> float: ...

    def close(self) -> None: ...


def check_env(env: object) -> None:
    """Raise ``TypeError`` naming every missing member if ``env`` does not follow :class:`GoalEnv`."""
    required = ["action_space", "reset", "step", "image", "state", "goal_image", "is_success",
                "distance_to_goal", "close"]
    missing = [name for name in required if not hasattr(env, name)]
    if missing:
        raise TypeError(f"{type(env).__name__} does not follow the GoalEnv protocol; missing: {missing}")


def check_image(image: np.ndarray, what: str, size: tuple[int, int] | None = None) -> np.ndarray:
    """Validate an ``[H, W, 3]`` uint8 image (optionally of a given ``(H, W)``) and return it."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(f"{what}: expected an [H, W, 3] uint8 image, got {image.dtype} {image.shape}")
    if size is not None and tuple(image.shape[:2]) != tuple(size):
        raise ValueError(f"{what}: expected size {tuple(size)}, got {tuple(image.shape[:2])}")
    return image
