"""The Fetch arm (gymnasium-robotics FetchReach-v4 / FetchPush-v4) as a :class:`GoalEnv` with images.

- **Actions** ``[4]`` in ``[-1, 1]``: end-effector delta ``x, y, z`` (the env moves its mocap target by
  ``0.05 m`` per unit per step) and a gripper command (ignored by these tasks, whose gripper is
  blocked closed; kept so the action layout matches an arm with a gripper, as in DROID).
- **State** ``[4]``: end-effector position ``x, y, z`` [m] in the world frame and the gripper
  opening (sum of the two finger joints) [m].
- **Images** ``[S, S, 3]`` uint8 from a fixed camera framing the workspace, rendered offscreen with
  shadows and multisampling off; the red goal marker is hidden from every image.
- **Goal images**: for ``reach`` the gripper is driven to the goal by a P-controller acting on the true
  state; for ``push`` the object is placed on the goal and, with ``goal_style="pushed"`` (the
  registry's ``fetch-push``), the gripper rests just behind it as at the end of a push toward the
  goal (``"object"``: the arm stays at its start pose). The frame is rendered and the simulator
  state restored exactly, so the episode starts as if nothing happened.
- **Goals from a simulator state** (:meth:`FetchEnv.set_goal_from_sim_state`): the gripper (reach)
  or object (push) position of a saved state becomes the goal, and that state's rendering the goal
  image — the dataset-offset protocol of the planning benchmark.
- **Success**: the env's own criterion, goal distance < 5 cm (gripper for reach, object for push).

The registry's ``fetch-push`` renders the block red, draws only the gripper of the arm
(``render_arm="gripper"``: the links above the wrist are not drawn, the fingers are blue and the
palm a translucent blue, so a block under it still shows) and uses
:data:`PUSH_CAMERA`, 66 cm from the workspace centre looking 75 degrees down, so the 5 cm block
covers about 6 x 6 pixels at 64 px (4 x 4 under :data:`TABLE_CAMERA`, the push camera before) and no
link of the arm hides it. The physics and the
success test are the env's own; only what the camera sees changes. ``fetch-reach`` keeps the
default camera and the whole arm.

Rendering needs a headless GL backend: ``MUJOCO_GL=egl`` (set here if unset) or ``osmesa``
(:func:`eval.envs.rendering.prepare_headless_rendering`, called on import).
"""

from __future__ import annotations

from dataclasses import dataclass

from eval.envs.rendering import prepare_headless_rendering

prepare_headless_rendering()

import gymnasium as gym  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402

TASKS = {"reach": "FetchReach-v4", "push": "FetchPush-v4"}
STEP_METERS = 0.05  # mocap displacement per unit action per step
GOAL_STYLES = ("object", "pushed")
ARM_RENDERINGS = ("full", "gripper")
FINGER_BODIES = ("robot0:r_gripper_finger_link", "robot0:l_gripper_finger_link")
PALM_BODY = "robot0:gripper_link"
PUSH_BEHIND = 0.055  # [m] gripper centre behind the object centre in a "pushed" goal image


@dataclass(frozen=True)
class CameraConfig:
    """A free camera looking at the table; angles in degrees, distances in metres."""

    lookat: tuple[float, float, float] = (1.3, 0.75, 0.52)
    distance: float = 1.25
    azimuth: float = 150.0
    elevation: float = -30.0


PUSH_CAMERA = CameraConfig(lookat=(1.32, 0.75, 0.42), distance=0.66, azimuth=180.0, elevation=-75.0)
TABLE_CAMERA = CameraConfig(lookat=(1.27, 0.75, 0.42), distance=0.9, azimuth=180.0, elevation=-65.0)
"""The push camera before 2026-12-02: the whole table and arm from higher up (block about 4 x 4 px)."""
OBJECT_RED = (0.9, 0.1, 0.1, 1.0)
GRIPPER_BLUE = (0.1, 0.3, 0.9, 1.0)
PALM_ALPHA = 0.35  # the palm, 8 x 12 cm seen from above, covers the block when it pushes: see through it


def _silence_adroit_notice() -> None:
    """gymnasium-robotics prints a notice about its Adroit hand rewards at import (once per process,
    on stderr); it does not concern the Fetch tasks, so drop it before the import."""
    try:
        from farama_notifications import notifications
    except ImportError:
        return
    notifications.pop("gymnasium_robotics", None)


class FetchEnv:
    """Fetch ``reach``/``push`` with image observations; follows :class:`planners.protocol.GoalEnv`.

    ``reset(seed)`` is deterministic per seed; ``step(action)`` returns the image as observation.
    ``object_rgba`` recolours the block (push); ``goal_style`` chooses the push goal image and
    ``render_arm`` whether images show the whole arm or only its (blue) gripper (module docstring).
    ``max_episode_steps`` is gymnasium's time limit (the registered 50 would end longer planning
    budgets early; the planner's own budget is what counts).
    """

    def __init__(self, task: str = "reach", image_size: int = 64, camera: CameraConfig | None = None,
                 max_episode_steps: int = 100_000, object_rgba: tuple[float, ...] | None = None,
                 goal_style: str = "object", render_arm: str = "full") -> None:
        if task not in TASKS:
            raise ValueError(f"unknown Fetch task {task!r}; choose from {sorted(TASKS)}")
        if goal_style not in GOAL_STYLES:
            raise ValueError(f"unknown goal_style {goal_style!r}; choose from {GOAL_STYLES}")
        if render_arm not in ARM_RENDERINGS:
            raise ValueError(f"unknown render_arm {render_arm!r}; choose from {ARM_RENDERINGS}")
        _silence_adroit_notice()
        import gymnasium_robotics

        gym.register_envs(gymnasium_robotics)
        self.task = task
        self.image_size = image_size
        self.camera_config = camera or CameraConfig()
        self._env = gym.make(TASKS[task], max_episode_steps=max_episode_steps)
        self._u = self._env.unwrapped
        self.action_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
        self.state_dim = 4
        self.position_dims, self.position_step = 3, STEP_METERS  # for exploration policies
        self.goal_style = goal_style
        self.render_arm = render_arm
        self._setup_rendering(object_rgba)
        self._goal_image: np.ndarray | None = None

    # ------------------------------------------------------------------ rendering
    def _setup_rendering(self, object_rgba: tuple[float, ...] | None) -> None:
        model = self._u.model
        if object_rgba is not None and self._u.has_object:
            model.geom_rgba[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "object0")] = object_rgba
        model.vis.quality.shadowsize = 0
        model.vis.quality.offsamples = 0
        model.vis.global_.offwidth = max(self.image_size, 1)
        model.vis.global_.offheight = max(self.image_size, 1)
        for i in range(model.nsite):
            if model.site(i).name.startswith("target"):
                model.site_rgba[i, 3] = 0.0
        for i in range(model.ngeom):  # the mocap crosshair (thin green lines) is a control aid, not the scene
            if model.body_mocapid[model.geom_bodyid[i]] >= 0:
                model.geom_rgba[i, 3] = 0.0
        if self.render_arm == "gripper":
            self._draw_gripper_only(model)
        self._renderer = mujoco.Renderer(model, self.image_size, self.image_size)
        self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
        self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        cam = mujoco.MjvCamera()
        cam.type = mujoco.mjtCamera.mjCAMERA_FREE
        cam.lookat[:] = self.camera_config.lookat
        cam.distance = self.camera_config.distance
        cam.azimuth = self.camera_config.azimuth
        cam.elevation = self.camera_config.elevation
        self._camera = cam

    @staticmethod
    def _draw_gripper_only(model) -> None:
        """Hide every robot geom but the gripper's (geom colours only: collisions are unchanged)."""
        for i in range(model.ngeom):
            body = model.body(model.geom_bodyid[i]).name
            if body in FINGER_BODIES:
                model.geom_rgba[i] = GRIPPER_BLUE
            elif body == PALM_BODY:
                model.geom_rgba[i] = (*GRIPPER_BLUE[:3], PALM_ALPHA)
            elif body.startswith("robot0:"):
                model.geom_rgba[i, 3] = 0.0

    def image(self) -> np.ndarray:
        self._renderer.update_scene(self._u.data, camera=self._camera)
        return self._renderer.render().copy()

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        self._env.reset(seed=seed, options=options)
        self._goal_image = None
        return self.image(), self._info()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        action = np.asarray(action, dtype=np.float32)
        if action.shape != (4,) or not np.all(np.isfinite(action)):
            raise ValueError(f"Fetch action must be 4 finite numbers, got {action!r}")
        _, reward, terminated, truncated, _ = self._env.step(np.clip(action, -1.0, 1.0))
        return self.image(), float(reward), bool(terminated), bool(truncated), self._info()

    def close(self) -> None:
        self._renderer.close()
        self._env.close()

    # ------------------------------------------------------------------ protocol accessors
    def state(self) -> np.ndarray:
        return proprio_state(self._u)

    def goal_position(self) -> np.ndarray:
        return np.asarray(self._u.goal, dtype=np.float64).copy()

    def achieved_position(self) -> np.ndarray:
        """Gripper position (reach) or object position (push) [m]."""
        if self._u.has_object:
            return self._u._utils.get_site_xpos(self._u.model, self._u.data, "object0").copy()
        return self._u._utils.get_site_xpos(self._u.model, self._u.data, "robot0:grip").copy()

    def distance_to_goal(self) -> float:
        return float(np.linalg.norm(self.achieved_position() - self.goal_position()))

    def is_success(self) -> bool:
        return self.distance_to_goal() < self._u.distance_threshold

    def goal_image(self) -> np.ndarray:
        if self._goal_image is None:
            self._goal_image = self._render_goal()
        return self._goal_image

    def _info(self) -> dict:
        return {"is_success": self.is_success(), "distance": self.distance_to_goal()}

    # ------------------------------------------------------------------ simulator state
    def get_sim_state(self) -> np.ndarray:
        m, d = self._u.model, self._u.data
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        state = np.empty(mujoco.mj_stateSize(m, spec))
        mujoco.mj_getState(m, d, state, spec)
        return state

    def set_sim_state(self, state: np.ndarray) -> None:
        m, d = self._u.model, self._u.data
        mujoco.mj_setState(m, d, state, mujoco.mjtState.mjSTATE_INTEGRATION)
        mujoco.mj_forward(m, d)

    def set_goal_from_sim_state(self, state: np.ndarray) -> None:
        """Make the configuration saved in ``state`` (:meth:`get_sim_state`) the goal: its gripper
        (reach) or object (push) position is what success and distance are judged against, and its
        rendering is the goal image. The current simulator state is left unchanged."""
        saved = self.get_sim_state()
        try:
            self.set_sim_state(state)
            self._u.goal = self.achieved_position().copy()
            self._goal_image = self.image()
        finally:
            self.set_sim_state(saved)

    def _render_goal(self) -> np.ndarray:
        saved = self.get_sim_state()
        try:
            if not self._u.has_object:
                drive_gripper_to(self, self.goal_position(), max_steps=40)
            elif self.goal_style == "pushed":
                self._pose_after_push(self.achieved_position(), self.goal_position())
            else:
                self._place_object(self.goal_position())
            return self.image()
        finally:
            self.set_sim_state(saved)

    def _pose_after_push(self, start: np.ndarray, goal: np.ndarray) -> None:
        """The object on ``goal`` and the gripper resting just behind it, on the side it was pushed
        from (coming from ``start``), at the object's height."""
        direction = goal[:2] - start[:2]
        norm = np.linalg.norm(direction)
        direction = direction / norm if norm > 1e-6 else np.array([1.0, 0.0])
        self._place_object(np.array([goal[0] + 1.0, goal[1], goal[2]]))  # out of the gripper's way
        behind = np.array([*(goal[:2] - PUSH_BEHIND * direction), goal[2] + 0.01])
        drive_gripper_to(self, behind, max_steps=60)
        self._place_object(goal)

    def _place_object(self, xyz: np.ndarray) -> None:
        """Put the object at rest at ``xyz`` [m] (orientation kept)."""
        m, d = self._u.model, self._u.data
        qpos = self._u._utils.get_joint_qpos(m, d, "object0:joint").copy()
        qpos[:3] = xyz[:3]
        self._u._utils.set_joint_qpos(m, d, "object0:joint", qpos)
        self._u._utils.set_joint_qvel(m, d, "object0:joint", np.zeros(6))
        mujoco.mj_forward(m, d)

    def step_sim_only(self, action: np.ndarray) -> None:
        """Apply an action without rendering (for scripted controllers and goal images)."""
        self._u._set_action(np.clip(np.asarray(action, dtype=np.float64), -1, 1))
        self._u._mujoco_step(action)
        self._u._step_callback()


def proprio_state(u) -> np.ndarray:
    """End-effector xyz [m] and gripper opening [m] of a gymnasium-robotics Fetch env."""
    grip = u._utils.get_site_xpos(u.model, u.data, "robot0:grip")
    fingers = [u._utils.get_joint_qpos(u.model, u.data, f"robot0:{s}_gripper_finger_joint")[0] for s in "rl"]
    return np.array([*grip, sum(fingers)], dtype=np.float32)


def drive_gripper_to(env: FetchEnv, target: np.ndarray, max_steps: int = 40, gain: float = 10.0,
                     tolerance: float = 0.005) -> bool:
    """P-control of the end effector toward ``target`` [m] on the true state, without rendering."""
    for _ in range(max_steps):
        delta = np.asarray(target) - env.state()[:3]
        if np.linalg.norm(delta) < tolerance:
            return True
        env.step_sim_only(np.concatenate([np.clip(gain * delta, -1, 1), [0.0]]))
    return bool(np.linalg.norm(np.asarray(target) - env.state()[:3]) < tolerance * 2)
