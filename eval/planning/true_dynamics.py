"""A world model whose predictor is the simulator: planning with a perfect predictor.

:class:`SimulatorDynamics` encodes images with a trained world model's encoder, but its
``rollout`` does not predict: it replays every candidate plan in the env itself, from the env's
current simulator state (restored afterwards), and encodes the frames rendered after each planned
action. Goal-image MPC with it (``jepa plan ... dynamics=simulator``) measures what the encoder's
energy allows when the predictor makes no error:

- the ceiling of any predictor trained on top of this encoder, for this task and energy;
- a comparison of encoders (pretrained vs random-init) with the predictor factored out.

It needs an env that can save and restore its simulator state (``get_sim_state`` /
``set_sim_state``, as the built-in Fetch and PushT envs do). Each candidate costs ``H x block`` env
steps and ``H`` renders, so it is far slower than a learned predictor: a diagnosis, not a planner.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from jepa.errors import InputError
from planners.base import PlanSpace


class Outcome(NamedTuple):
    """Where one simulated candidate plan truly ended: the env's own success test, its distance to
    the goal (env units) and the state ``[S]``."""

    success: bool
    distance: float
    state: np.ndarray


class SimulatorDynamics:
    """Follows :class:`planners.objectives.LatentWorldModel`.

    Args:
        world_model: a trained world model; only its ``encode`` (and ``device``, ``action_dim``,
            ``frame_step``) are used.
        env: the env being planned in. Candidates start from its simulator state at the time of
            ``rollout``, which is restored before ``rollout`` returns.
        space: the plan space, which turns a planned action into its ``block`` env actions exactly as
            execution does (:meth:`planners.base.PlanSpace.env_actions`).

    After each ``rollout``, ``outcomes`` holds one :class:`Outcome` per candidate, at the end of its plan.
    """

    def __init__(self, world_model, env, space: PlanSpace) -> None:
        if not (hasattr(env, "get_sim_state") and hasattr(env, "set_sim_state")):
            raise InputError(f"dynamics=simulator needs an env that saves and restores its simulator state "
                             f"(get_sim_state / set_sim_state); {type(env).__name__} does not")
        self.world_model, self.env, self.space = world_model, env, space
        self.device = world_model.device
        self.action_dim = world_model.action_dim
        self.frame_step = world_model.frame_step
        self.env_steps = 0  # simulated env steps, all rollouts together
        self.outcomes: list[Outcome] = []

    def encode(self, images: np.ndarray | Tensor) -> Tensor:
        """uint8 ``[B, H, W, 3]`` -> embeddings ``[B, N, D]`` (the world model's encoder)."""
        return self.world_model.encode(images)

    def _step(self, action: np.ndarray) -> None:
        quiet = getattr(self.env, "step_sim_only", None)  # no render per env step where the env offers it
        if quiet is not None:
            quiet(action)
        else:
            self.env.step(action)
        self.env_steps += 1

    def simulate(self, actions: Tensor) -> tuple[np.ndarray, np.ndarray]:
        """``actions [B, H, A]`` (planner units) -> the frames rendered after each planned action
        ``[B, H, h, w, 3]`` uint8 and the states there ``[B, H, S]``; fills ``outcomes``."""
        b, h, _ = actions.shape
        start = np.array(self.env.get_sim_state(), copy=True)
        frames, states, self.outcomes = [], [], []
        try:
            for plan in actions.detach().float().cpu():
                self.env.set_sim_state(start)
                for action in plan:
                    for env_action in self.space.env_actions(action, self.env.action_space):
                        self._step(env_action)
                    frames.append(self.env.image())
                    states.append(np.asarray(self.env.state(), dtype=np.float32))
                self.outcomes.append(Outcome(bool(self.env.is_success()), float(self.env.distance_to_goal()),
                                             states[-1]))
        finally:
            self.env.set_sim_state(start)
        return (np.stack(frames).reshape(b, h, *frames[0].shape),
                np.stack(states).reshape(b, h, -1))

    @torch.no_grad()
    def rollout(self, z0: Tensor, state0: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
        """``actions [B, H, A]`` -> the encoded true frames ``[B, H, N, D]`` and true states
        ``[B, H, S]``. ``z0`` and ``state0`` are not used: the start is the env's simulator state."""
        frames, states = self.simulate(actions)
        b, h = frames.shape[:2]
        z = self.encode(frames.reshape(b * h, *frames.shape[2:]))
        return z.reshape(b, h, *z.shape[1:]), torch.as_tensor(states, device=z.device)
