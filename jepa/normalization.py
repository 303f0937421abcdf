"""Per-dimension normalisation of actions and proprioceptive states, so planning works in robot units.

Robot datasets mix units (metres, radians, millimetres, gripper 0..1, joint ticks); the predictor
learns better when each action and state dimension has zero mean and unit spread. The statistics
are computed once from the training data (:func:`control_statistics`), stored in the world-model
file (``"normalization"``: four lists), and applied **inside** the world model:

- training feeds the predictor ``(a - action_mean) / action_std`` and ``(s - state_mean) / state_std``
  (:meth:`ControlNormalizer.actions`, :meth:`ControlNormalizer.states`);
- ``WorldModel.rollout(z0, state0, actions)`` takes actions and states in the robot's own units,
  normalises them for the predictor, and advances the state with the state update in robot units;
  the returned states are in robot units too.

So the planner, its action bounds, the env and the state term of the objective never see
normalised values. Without statistics (``None``) the normaliser is the identity (the built-in
datasets, the released V-JEPA 2-AC model).

Window actions are what the predictor sees between two sampled frames: at a frame step ``k`` the
sum of ``k`` consecutive delta actions (``reduce="sum"``), or the last one of them for absolute
targets (``reduce="last"``); the action statistics are those of the window actions.
A dimension whose standard deviation is below ``MIN_STD`` (e.g. a gripper never used) is only
centred (its std is stored as 1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from jepa.errors import InputError

MIN_STD = 1e-6
REDUCES = ("sum", "last")
_KEYS = ("action_mean", "action_std", "state_mean", "state_std")


def window_actions(actions: np.ndarray, frame_step: int, reduce: str = "sum") -> np.ndarray:
    """Every window action of an episode: ``actions [T-1, A]`` -> ``[T-frame_step, A]``.

    Row ``p`` is the action from raw frame ``p`` to raw frame ``p + frame_step``: the sum of
    ``actions[p : p + frame_step]`` (``"sum"``) or ``actions[p + frame_step - 1]`` (``"last"``).
    """
    if reduce not in REDUCES:
        raise ValueError(f"reduce must be one of {REDUCES}, got {reduce!r}")
    if frame_step < 1:
        raise ValueError(f"frame_step must be >= 1, got {frame_step}")
    a = np.asarray(actions, dtype=np.float64)
    if reduce == "last":
        return a[frame_step - 1:]
    c = np.concatenate([np.zeros((1, a.shape[1])), np.cumsum(a, axis=0)])
    return c[frame_step:] - c[:-frame_step]


def control_statistics(states: Sequence[np.ndarray], actions: Sequence[np.ndarray], frame_step: int = 1,
                       reduce: str = "sum") -> dict[str, list[float]]:
    """Mean and std per dimension of the states (every frame) and of the window actions.

    ``states``: per episode ``[T, S]``; ``actions``: per episode ``[T-1, A]`` (raw, one per frame
    transition). Returns the ``"normalization"`` dict stored in world-model files.
    """
    if not states or len(states) != len(actions):
        raise ValueError(f"need the same number (>= 1) of state and action arrays, got {len(states)} and "
                         f"{len(actions)}")
    s = np.concatenate([np.asarray(x, dtype=np.float64) for x in states])
    a = np.concatenate([window_actions(x, frame_step, reduce) for x in actions])
    if len(a) == 0:
        raise InputError(f"no episode is longer than the frame step {frame_step}")
    if not (np.isfinite(s).all() and np.isfinite(a).all()):
        raise InputError("states or actions contain NaN or inf")

    def std(x: np.ndarray) -> list[float]:
        sd = x.std(axis=0)
        return np.where(sd < MIN_STD, 1.0, sd).tolist()

    return {"action_mean": a.mean(axis=0).tolist(), "action_std": std(a),
            "state_mean": s.mean(axis=0).tolist(), "state_std": std(s)}


class ControlNormalizer(nn.Module):
    """``(x - mean) / std`` for actions ``[..., A]`` and states ``[..., S]``; the identity without stats.

    The statistics are non-persistent buffers: the world-model file stores them as plain lists
    (:meth:`to_dict`), next to the architecture, not in the predictor's state dict.
    """

    def __init__(self, stats: Mapping[str, Sequence[float]] | None, action_dim: int, state_dim: int) -> None:
        super().__init__()
        self.enabled = stats is not None
        if stats is not None:
            missing = [k for k in _KEYS if k not in stats]
            if missing:
                raise ValueError(f"normalization statistics lack {missing}")
            for key, dim in zip(_KEYS, (action_dim, action_dim, state_dim, state_dim)):
                if len(stats[key]) != dim:
                    kind = "action" if key.startswith("action") else "state"
                    raise ValueError(f"normalization {key} has {len(stats[key])} values, the model has "
                                     f"{dim} {kind} dims")
                if key.endswith("std") and min(stats[key]) <= 0:
                    raise ValueError(f"normalization {key} must be positive, got {list(stats[key])}")
            for key in _KEYS:
                self.register_buffer(key, torch.tensor(list(stats[key]), dtype=torch.float32), persistent=False)

    def actions(self, a: Tensor) -> Tensor:
        """Robot-unit actions ``[..., A]`` -> the predictor's normalised actions."""
        return (a - self.action_mean) / self.action_std if self.enabled else a

    def states(self, s: Tensor) -> Tensor:
        """Robot-unit states ``[..., S]`` -> the predictor's normalised states."""
        return (s - self.state_mean) / self.state_std if self.enabled else s

    def to_dict(self) -> dict[str, list[float]] | None:
        return {k: getattr(self, k).tolist() for k in _KEYS} if self.enabled else None
