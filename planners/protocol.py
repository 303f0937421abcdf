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

from jepa.errors import JepaError


class EnvProtocolError(JepaError, TypeError):
    """An env does not follow :class:`GoalEnv` (the message names the env and what is missing or wrong)."""


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


REQUIRED = ("action_space", "reset", "step", "image", "state", "goal_image", "is_success", "distance_to_goal",
            "close")


def check_env(env: object, call: bool = False) -> None:
    """Raise ``TypeError`` naming every missing member if ``env`` does not follow :class:`GoalEnv`.

    With ``call=True`` also run each method once on a reset env (``reset(seed=0)``, the accessors,
    one ``step`` of the action box's centre, ``reset`` again) and check what they return: a
    gymnasium ``Box`` action space with finite bounds, ``[H, W, 3]`` uint8 images of one size,
    a finite float32 state vector, a bool success and a float distance. Each problem is named.
    """
    name = type(env).__name__
    missing = [m for m in REQUIRED if not hasattr(env, m)]
    if missing:
        raise EnvProtocolError(f"{name} does not follow the GoalEnv protocol; missing: {missing}")
    if call:
        _check_calls(env, name)


def _check_calls(env: Any, name: str) -> None:
    space = env.action_space
    low, high = getattr(space, "low", None), getattr(space, "high", None)
    if low is None or high is None or not (np.isfinite(low).all() and np.isfinite(high).all()):
        raise EnvProtocolError(f"{name}.action_space must be a gymnasium Box with finite low/high bounds, "
                               f"got {space!r}")
    problems = []
    result = env.reset(seed=0)
    if not (isinstance(result, tuple) and len(result) == 2):
        problems.append(f"reset() must return (obs, info), got {type(result).__name__}")
    image = np.asarray(env.image())
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        problems.append(f"image() must be [H, W, 3] uint8, got {image.dtype} {image.shape}")
    goal = np.asarray(env.goal_image())
    if goal.shape != image.shape or goal.dtype != np.uint8:
        problems.append(f"goal_image() must be uint8 of image()'s shape {image.shape}, got {goal.dtype} {goal.shape}")
    state = np.asarray(env.state())
    if state.ndim != 1 or state.dtype != np.float32 or not np.isfinite(state).all():
        problems.append(f"state() must be a finite float32 vector [S], got {state.dtype} {state.shape}")
    if not isinstance(env.is_success(), (bool, np.bool_)):
        problems.append(f"is_success() must return a bool, got {type(env.is_success()).__name__}")
    if not isinstance(env.distance_to_goal(), (float, np.floating)):
        problems.append(f"distance_to_goal() must return a float, got {type(env.distance_to_goal()).__name__}")
    stepped = env.step(((np.asarray(low) + np.asarray(high)) / 2).astype(np.float32))
    if not (isinstance(stepped, tuple) and len(stepped) == 5):
        problems.append("step(action) must return (obs, reward, terminated, truncated, info)")
    elif np.asarray(env.state()).shape != state.shape:
        problems.append(f"state() changed shape after a step: {state.shape} -> {np.asarray(env.state()).shape}")
    env.reset(seed=0)
    if problems:
        raise EnvProtocolError(f"{name} does not follow the GoalEnv protocol: " + "; ".join(problems))


def check_image(image: np.ndarray, what: str, size: tuple[int, int] | None = None) -> np.ndarray:
    """Validate an ``[H, W, 3]`` uint8 image (optionally of a given ``(H, W)``) and return it."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(f"{what}: expected an [H, W, 3] uint8 image, got {image.dtype} {image.shape}")
    if size is not None and tuple(image.shape[:2]) != tuple(size):
        raise ValueError(f"{what}: expected size {tuple(size)}, got {tuple(image.shape[:2])}")
    return image
