"""Energies for goal-image planning, and the cost that composes a world model with one.

The world model is anything that follows :class:`LatentWorldModel` (``jepa.world_model.WorldModel``
does). :class:`WorldModelCost` encodes the context image and the goal once per planning step, then
scores candidate action sequences ``[S, H, A] -> [S]`` by rolling them out and measuring how far the
predicted embedding is from the goal embedding (plus an optional proprioceptive term).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from jepa.config import Checked, non_negative, require
from jepa.device import autocast

PRECISIONS = ("fp32", "bf16")


@runtime_checkable
class LatentWorldModel(Protocol):
    """What planning needs from a world model.

    encode(images): uint8 ``[B, H, W, 3]`` -> embeddings ``[B, N, D]``.
    rollout(z0, state0, actions): ``z0 [B, N, D]``, ``state0 [B, S]``, ``actions [B, H, A]`` ->
        (embeddings ``[B, H, N, D]`` after each action, states ``[B, H, S]``).
    """

    def encode(self, images: np.ndarray | Tensor) -> Tensor: ...

    def rollout(self, z0: Tensor, state0: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]: ...


def l1_distance(z: Tensor, goal: Tensor) -> Tensor:
    """Mean absolute difference over tokens and dims: ``z [S, N, D]``, ``goal [N, D]`` -> ``[S]``.

    The released V-JEPA 2 energy.
    """
    return (z - goal).abs().flatten(1).mean(1)


def l2_distance(z: Tensor, goal: Tensor) -> Tensor:
    """Mean squared difference over tokens and dims: ``z [S, N, D]``, ``goal [N, D]`` -> ``[S]``."""
    return (z - goal).pow(2).flatten(1).mean(1)


DISTANCES = {"l1": l1_distance, "l2": l2_distance}


@dataclass
class ObjectiveConfig(Checked):
    """How a rollout is scored against the goal.

    Attributes:
        distance: ``"l1"`` (mean |z - goal|, released) or ``"l2"`` (mean squared difference).
        step_weights: weight per horizon step ``[H]`` on the embedding distance; empty = only the final
            step (weight 1), as released.
        state_weight: weight of the proprioceptive term (0 = off): ``distance`` between the predicted
            final state and the goal state, averaged over ``state_dims``.
        state_dims: which state dims enter the state term; empty = all.
        tokens: which patch tokens the embedding distance averages over. ``"all"`` (released) or
            ``"changed"``: at each planning step, the ``changed_fraction`` of tokens where the current
            observation differs most from the goal (per-token mean |z0 - goal|). A small object that
            must move owns few tokens, and a mean over all of them is dominated by the rest of the
            scene; the changed tokens are where the goal asks for something different.
        changed_fraction: share of tokens kept with ``tokens="changed"``, in (0, 1].
    """

    distance: Literal["l1", "l2"] = "l1"
    step_weights: list[float] | None = None
    state_weight: float = 0.0
    state_dims: list[int] | None = None
    tokens: Literal["all", "changed"] = "all"
    changed_fraction: float = 0.25

    def check(self) -> None:
        non_negative(self, "state_weight", "state_dims")
        require(all(math.isfinite(w) for w in self.step_weights or []), "step_weights",
                f"must be finite, got {self.step_weights}")
        require(0.0 < self.changed_fraction <= 1.0, "changed_fraction",
                f"must be in (0, 1], got {self.changed_fraction}")


class Objective:
    """Scores rollouts: ``z [S, H, N, D]``, ``states [S, H, Sd]`` against ``goal_z [N, D]``,
    ``goal_state [Sd]`` -> energies ``[S]``; ``tokens [K]`` (indices, from :meth:`tokens_for`)
    restricts the embedding distance to those tokens, ``None`` = all."""

    def __init__(self, config: ObjectiveConfig) -> None:
        self.config = config
        self.distance = DISTANCES[config.distance]

    def tokens_for(self, z0: Tensor, goal_z: Tensor) -> Tensor | None:
        """The token indices ``[K]`` the distance uses at a context ``z0 [N, D]``, or ``None`` for all
        (``tokens="all"``): with ``tokens="changed"``, the ``ceil(changed_fraction * N)`` tokens of
        largest mean |z0 - goal_z|, in token order."""
        if self.config.tokens == "all":
            return None
        gap = (z0.float() - goal_z.float()).abs().mean(-1)
        keep = max(1, math.ceil(self.config.changed_fraction * gap.numel()))
        return gap.topk(keep).indices.sort().values

    def __call__(self, z: Tensor, states: Tensor, goal_z: Tensor, goal_state: Tensor | None,
                 tokens: Tensor | None = None) -> Tensor:
        cfg = self.config
        horizon = z.shape[1]
        if tokens is not None:
            z, goal_z = z[:, :, tokens], goal_z[tokens]
        if cfg.step_weights:
            if len(cfg.step_weights) != horizon:
                raise ValueError(f"step_weights has {len(cfg.step_weights)} values, the horizon is {horizon}")
            energy = sum(w * self.distance(z[:, h], goal_z) for h, w in enumerate(cfg.step_weights) if w != 0)
        else:
            energy = self.distance(z[:, -1], goal_z)
        if cfg.state_weight > 0:
            if goal_state is None:
                raise ValueError("the objective has a state term (state_weight > 0) but no goal state "
                                 "was given")
            dims = cfg.state_dims or list(range(states.shape[-1]))
            state_term = self.distance(states[:, -1, None, dims], goal_state[None, dims])
            energy = energy + cfg.state_weight * state_term
        return energy


class WorldModelCost:
    """The ``[S, H, A] -> [S]`` cost a solver minimises, for one planning step.

    Call :meth:`set_goal` once per episode and :meth:`set_context` once per planning step; both
    encode a single image, never one per candidate. Candidates are rolled out in chunks of ``chunk``
    sequences (``None`` = all at once; ``0`` = :func:`auto_chunk` for this model and CPU). Gradients
    flow through the rollout unless the caller disables them, so the gradient solver can use the same
    cost. ``precision="bf16"`` runs the encoder and the rollout under bfloat16 autocast (energies stay
    fp32).
    """

    def __init__(self, world_model: LatentWorldModel, objective: Objective, action_dim: int,
                 chunk: int | None = None, precision: str = "fp32") -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"WorldModelCost: precision must be one of {PRECISIONS}, got {precision!r}")
        if chunk is not None and chunk < 0:
            raise ValueError(f"WorldModelCost: chunk must be >= 0 or None, got {chunk}")
        self.world_model = world_model
        self.objective = objective
        self.action_dim = action_dim
        self.chunk = auto_chunk_for(world_model) if chunk == 0 else chunk
        self.precision = precision
        self.goal_z: Tensor | None = None
        self.goal_state: Tensor | None = None
        self.z0: Tensor | None = None
        self.state0: Tensor | None = None

    def set_goal(self, goal_image: np.ndarray, goal_state: np.ndarray | None = None) -> Tensor:
        """Encode the goal image ``[H, W, 3]`` uint8 once; returns ``goal_z [N, D]``."""
        with self._autocast():
            self.goal_z = self.world_model.encode(np.asarray(goal_image)[None])[0].float()
        self.goal_state = None if goal_state is None else torch.as_tensor(
            np.asarray(goal_state), dtype=torch.float32, device=self.goal_z.device)
        return self.goal_z

    def set_context(self, image: np.ndarray, state: np.ndarray) -> None:
        """Encode the current image ``[H, W, 3]`` uint8 and hold the state ``[Sd]``."""
        with self._autocast():
            self.z0 = self.world_model.encode(np.asarray(image)[None])
        self.state0 = torch.as_tensor(np.asarray(state), dtype=torch.float32, device=self.z0.device)[None]

    def __call__(self, actions: Tensor) -> Tensor:
        """Energies ``[S]`` of ``actions [S, H, A]`` under this cost's objective."""
        return self.energies(actions, [self.objective])[0]

    def energies(self, actions: Tensor, objectives: Sequence[Objective]) -> list[Tensor]:
        """Energies ``[S]`` of ``actions [S, H, A]`` under each of ``objectives``, from one rollout
        per candidate (a comparison of energies pays for the rollouts once)."""
        if self.z0 is None or self.goal_z is None:
            raise RuntimeError("WorldModelCost: call set_goal() and set_context() before scoring actions")
        if actions.ndim != 3 or actions.shape[-1] != self.action_dim:
            raise ValueError(f"WorldModelCost: expected actions [S, H, {self.action_dim}], "
                             f"got {tuple(actions.shape)}")
        device = actions.device
        actions = actions.to(self.z0.device)
        step = self.chunk or actions.shape[0]
        tokens = [o.tokens_for(self.z0[0], self.goal_z) for o in objectives]
        out: list[list[Tensor]] = [[] for _ in objectives]
        for a in actions.split(step):
            s = a.shape[0]
            with self._autocast():
                z, states = self.world_model.rollout(self.z0.expand(s, -1, -1), self.state0.expand(s, -1), a)
            for o, t, parts in zip(objectives, tokens, out):
                parts.append(o(z.float(), states.float(), self.goal_z, self.goal_state, t))
        return [torch.cat(parts).float().to(device) for parts in out]

    def _autocast(self) -> contextlib.AbstractContextManager:
        return autocast(getattr(self.world_model, "device", "cpu"), self.precision)


def cache_bytes() -> int:
    """Size of the CPU's largest cache [bytes] (Linux sysfs; 32 MiB when it cannot be read)."""
    from pathlib import Path

    sizes = []
    for f in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        text = f.read_text().strip().upper()
        unit = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        try:
            sizes.append(int(text.rstrip("KMG")) * unit)
        except ValueError:
            continue
    return max(sizes, default=32 << 20)


def auto_chunk(tokens_per_sample: int, width: int, mlp_ratio: float = 4.0, cache: int | None = None) -> int:
    """Candidates per rollout batch so that one transformer block's activations of a batch
    (``tokens x width x (1 + 3 + mlp_ratio + 1)`` fp32 values per candidate: input, q/k/v, MLP
    hidden, output) fill about half the largest CPU cache: larger batches spill to memory and
    page-fault on fresh allocations, smaller ones waste per-call overhead (BENCHMARKS.md)."""
    per_sample = tokens_per_sample * width * (5 + mlp_ratio) * 4
    return max(1, int((cache or cache_bytes()) // 2 // max(per_sample, 1)))


def auto_chunk_for(world_model: LatentWorldModel) -> int | None:
    """:func:`auto_chunk` for a world model with a ``predictor`` that exposes ``tokens_per_step`` and
    ``arch["predictor_embed_dim"]``; ``None`` (one batch) for other models or on a GPU."""
    predictor = getattr(world_model, "predictor", None)
    device = torch.device(getattr(world_model, "device", "cpu"))
    if predictor is None or device.type != "cpu" or not hasattr(predictor, "tokens_per_step"):
        return None
    arch = getattr(predictor, "arch", {})
    return auto_chunk(predictor.tokens_per_step, int(arch.get("predictor_embed_dim", 1024)),
                      float(arch.get("mlp_ratio", 4.0)))
