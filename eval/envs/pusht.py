"""PushT (gym-pusht) as a :class:`GoalEnv` with image observations.

- **Actions** ``[2]`` in ``[-1, 1]``: where the pusher disk should go, *relative to where it is*, in
  units of :data:`STEP_PX` workspace pixels (the 512 x 512 canvas of the env); the env's PD
  controller tracks the target for one control step (0.1 s). Relative actions compose by addition,
  so a block of ``k`` steps is the sum of its actions, as for the Fetch arm.
- **State** ``[2]``: the pusher position in units of the workspace (pixels / 512, so ``0..1``).
- **Goal images**: the T block is put on the goal pose (angle set before position, then one physics
  step — setting the position first does not land on the goal because the centre of mass is offset)
  and rendered; the simulator is then restored. The env draws its fixed goal outline in every frame.
- **Goals from a simulator state** (:meth:`PushTEnv.set_goal_from_sim_state`): the block pose of a
  saved state becomes the goal and that state's rendering the goal image (the dataset-offset
  protocol); the drawn outline does not move.
- **Rendering** (``render``): ``"env"`` is gym-pusht's own frame (drawn at 512 px, resized bilinearly);
  ``"visible"`` draws the pusher as a disk of :data:`VISIBLE_AGENT_RADIUS` workspace px instead of its
  15 px collision radius and resizes by area averaging, so at 64 px the pusher is about 8 px across
  rather than 3 and the T's 30 px bars do not alias. Only the image changes; physics, states and
  success are the env's own.
- **Success**: DINO-WM's test against the goal pose: block position error < 20 px and angle error
  < pi/9.
"""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

POSITION_TOLERANCE = 20.0
ANGLE_TOLERANCE = np.pi / 9
WORKSPACE_PX = 512.0
STEP_PX = 64.0  # pusher target offset [px] per unit action
VISIBLE_AGENT_RADIUS = 30.0  # [workspace px] the pusher's drawn radius under render="visible"
AGENT_RGB = (65, 105, 225)  # gym-pusht's pusher colour (RoyalBlue)
RENDERINGS = ("env", "visible")
SIM_STATE_SIZE = 10  # pusher x, y, vx, vy; block x, y, angle, vx, vy, angular velocity


def _angle_error(a: float, b: float) -> float:
    d = (a - b) % (2 * np.pi)
    return float(min(d, 2 * np.pi - d))


class PushTEnv:
    """PushT with ``image_size`` square images; follows :class:`planners.protocol.GoalEnv`."""

    def __init__(self, image_size: int = 64, render: str = "env") -> None:
        import gym_pusht  # noqa: F401  (registers the env)

        if render not in RENDERINGS:
            raise ValueError(f"unknown PushT render {render!r}; choose from {RENDERINGS}")
        self.image_size = image_size
        self.render = render
        obs_type = "pixels_agent_pos" if render == "env" else "state"  # "visible" draws its own frame
        self._env = gym.make("gym_pusht/PushT-v0", obs_type=obs_type,
                             observation_width=image_size, observation_height=image_size)
        self._u = self._env.unwrapped
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.state_dim = 2
        self.position_dims, self.position_step = 2, STEP_PX / WORKSPACE_PX  # for exploration policies
        self._goal_pose = np.zeros(3)
        self._goal_image: np.ndarray | None = None
        self._last_image: np.ndarray | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        obs, _ = self._env.reset(seed=seed, options=options)
        self._goal_pose = np.asarray(self._u.goal_pose, dtype=np.float64).copy()
        self._goal_image = None
        self._last_image = self._observation(obs)
        return self._last_image, self._info()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, reward, _, truncated, _ = self._env.step(self._target(action))
        self._last_image = self._observation(obs)
        return self._last_image, float(reward), self.is_success(), bool(truncated), self._info()

    def step_sim_only(self, action: np.ndarray) -> None:
        """Apply an action with the same physics as :meth:`step`, past the gymnasium wrappers.

        Planning with the simulator (:mod:`eval.planning.true_dynamics`) steps thousands of candidate
        actions from a restored state; through the wrappers they would count toward gym-pusht's
        300-step time limit and truncate the episode being executed. No frame is kept: the next
        :meth:`image` renders the new state.
        """
        self._u.step(self._target(action))
        self._last_image = None

    def _target(self, action: np.ndarray) -> np.ndarray:
        """A relative move ``[2]`` in [-1, 1] -> the pusher's absolute target [workspace px]."""
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (2,) or not np.all(np.isfinite(action)):
            raise ValueError(f"PushT action must be 2 finite numbers, got {action!r}")
        target = np.asarray(self._u.agent.position) + STEP_PX * np.clip(action, -1.0, 1.0)
        return np.clip(target, 0.0, WORKSPACE_PX)

    def close(self) -> None:
        self._env.close()

    def image(self) -> np.ndarray:
        if self._last_image is None:
            self._last_image = self._render()
        return self._last_image

    def state(self) -> np.ndarray:
        return (np.asarray(self._u.agent.position, dtype=np.float64) / WORKSPACE_PX).astype(np.float32)

    def block_pose(self) -> np.ndarray:
        return np.array([*self._u.block.position, self._u.block.angle], dtype=np.float64)

    def goal_pose(self) -> np.ndarray:
        return self._goal_pose.copy()

    def distance_to_goal(self) -> float:
        return float(np.linalg.norm(self.block_pose()[:2] - self._goal_pose[:2]))

    def is_success(self) -> bool:
        angle = _angle_error(self.block_pose()[2], self._goal_pose[2])
        return self.distance_to_goal() < POSITION_TOLERANCE and angle < ANGLE_TOLERANCE

    def goal_image(self) -> np.ndarray:
        if self._goal_image is None:
            saved = self.get_sim_state()
            try:
                self._put_block(self._goal_pose)
                self._goal_image = self._render()
            finally:
                self.set_sim_state(saved)
        return self._goal_image

    # ------------------------------------------------------------------ simulator state
    def get_sim_state(self) -> np.ndarray:
        """``[10]`` float64: pusher position and velocity, block position, angle, velocity and spin."""
        a, b = self._u.agent, self._u.block
        return np.array([*a.position, *a.velocity, *b.position, b.angle, *b.velocity, b.angular_velocity],
                        dtype=np.float64)

    def set_sim_state(self, state: np.ndarray) -> None:
        """Restore a :meth:`get_sim_state` vector exactly (no physics step)."""
        s = np.asarray(state, dtype=np.float64)
        if s.shape != (SIM_STATE_SIZE,) or not np.isfinite(s).all():
            raise ValueError(f"PushT sim state must be {SIM_STATE_SIZE} finite numbers, got shape {s.shape}")
        a, b = self._u.agent, self._u.block
        a.position, a.velocity = (s[0], s[1]), (s[2], s[3])
        b.angle = float(s[6])  # angle before position: the position setter depends on it
        b.position, b.velocity, b.angular_velocity = (s[4], s[5]), (s[7], s[8]), float(s[9])
        self._u.space.reindex_shapes_for_body(a)
        self._u.space.reindex_shapes_for_body(b)
        self._last_image = self._render()

    def set_goal_from_sim_state(self, state: np.ndarray) -> None:
        """Make the block pose saved in ``state`` the goal, and that state's rendering the goal image;
        the current simulator state is left unchanged."""
        saved = self.get_sim_state()
        try:
            self.set_sim_state(state)
            self._goal_pose = self.block_pose()
            self._goal_image = self._render()
        finally:
            self.set_sim_state(saved)

    def _observation(self, obs: dict) -> np.ndarray:
        return obs["pixels"].copy() if self.render == "env" else self._render()

    def _render(self) -> np.ndarray:
        """``[H, W, 3]`` uint8, the current frame under :attr:`render`."""
        if self.render == "env":
            return np.asarray(self._u.get_obs()["pixels"]).copy()
        import cv2
        import pygame

        screen = self._u._draw()  # 512 x 512: goal outline, block, pusher
        x, y = self._u.agent.position  # pygame's and pymunk's axes agree in gym-pusht's drawing
        pygame.draw.circle(screen, AGENT_RGB, (round(x), round(y)), round(VISIBLE_AGENT_RADIUS))
        full = np.transpose(np.array(pygame.surfarray.pixels3d(screen)), (1, 0, 2))
        return cv2.resize(full, (self.image_size, self.image_size), interpolation=cv2.INTER_AREA)

    def _put_block(self, pose: np.ndarray) -> None:
        block = self._u.block
        block.angle = float(pose[2])  # angle first: the position setter depends on it
        block.position = (float(pose[0]), float(pose[1]))
        block.velocity = (0.0, 0.0)
        block.angular_velocity = 0.0
        self._u.space.step(self._u.dt)

    def _info(self) -> dict:
        return {"is_success": self.is_success(), "distance": self.distance_to_goal()}
