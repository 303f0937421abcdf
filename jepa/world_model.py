"""A latent world model: a frozen encoder plus an action-conditioned predictor.

- ``encode(images)`` embeds each image on its own (a single image into a video encoder becomes one
  tubelet of repeated frames) and layer-norms the tokens without affine parameters, as released.
- ``rollout(z0, state0, actions)`` predicts the embeddings after each action autoregressively with a
  KV cache (each predicted frame is layer-normed before it is fed back, as in the release), and
  advances the proprioceptive state with a known update, because the planner has no observation
  of future states. Actions and states are in the robot's own units; with normalisation statistics
  (:mod:`jepa.normalization`, stored in the file) the predictor gets them normalised, while the
  state update and the returned states stay in robot units:

  - :class:`AdditiveStateUpdate`: ``state += scale * action`` per dimension (the simulated Fetch arm:
    end-effector xyz moves ``0.05 m`` per unit action; the gripper dimension gets scale 0);
  - :class:`PoseStateUpdate`: the release's analytic end-effector update for 7-D DROID states:
    ``xyz += dxyz``, rotation ``R <- R_delta R`` in Euler "xyz", gripper ``+= delta`` clipped to [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from jepa.checkpoints import CheckpointError
from jepa.config import Checked, ConfigError, non_empty, require
from jepa.data.transforms import normalize_frames
from jepa.errors import InputError, MissingFileError
from jepa.models.ac_predictor import ActionConditionedPredictor
from jepa.models.vit import VisionTransformer, feature_layer_norm
from jepa.normalization import ControlNormalizer


class AdditiveStateUpdate(nn.Module):
    """``state [B, S] + scale [S] * action[:, :S]`` (dimensions beyond the action's are unchanged)."""

    def __init__(self, scale: list[float]) -> None:
        super().__init__()
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32), persistent=False)

    def forward(self, state: Tensor, action: Tensor) -> Tensor:
        k = min(state.shape[-1], action.shape[-1], self.scale.numel())
        delta = torch.zeros_like(state)
        delta[..., :k] = action[..., :k] * self.scale[:k]
        return state + delta


def _euler_xyz_to_matrix(e: Tensor) -> Tensor:
    """Extrinsic x-y-z Euler angles ``[..., 3]`` -> rotation matrices ``[..., 3, 3]`` (R = Rz Ry Rx)."""
    cx, cy, cz = e.cos().unbind(-1)
    sx, sy, sz = e.sin().unbind(-1)
    row0 = torch.stack([cy * cz, sx * sy * cz - cx * sz, cx * sy * cz + sx * sz], -1)
    row1 = torch.stack([cy * sz, sx * sy * sz + cx * cz, cx * sy * sz - sx * cz], -1)
    row2 = torch.stack([-sy, sx * cy, cx * cy], -1)
    return torch.stack([row0, row1, row2], -2)


def _matrix_to_euler_xyz(r: Tensor) -> Tensor:
    """Inverse of :func:`_euler_xyz_to_matrix` (away from gimbal lock)."""
    y = torch.asin((-r[..., 2, 0]).clamp(-1, 1))
    x = torch.atan2(r[..., 2, 1], r[..., 2, 2])
    z = torch.atan2(r[..., 1, 0], r[..., 0, 0])
    return torch.stack([x, y, z], -1)


class PoseStateUpdate(nn.Module):
    """The released analytic update of a 7-D state (xyz [m], Euler xyz [rad], gripper 0..1)."""

    def forward(self, state: Tensor, action: Tensor) -> Tensor:
        # full precision even inside a bf16 autocast region (the rollout's): autocast would run the
        # rotation products in bf16, an error of ~1e-3 rad per step
        with torch.autocast(state.device.type, enabled=False):
            dtype = torch.promote_types(torch.promote_types(state.dtype, action.dtype), torch.float32)
            return self._update(state.to(dtype), action.to(dtype))

    @staticmethod
    def _update(state: Tensor, action: Tensor) -> Tensor:
        xyz = state[..., :3] + action[..., :3]
        rot = _euler_xyz_to_matrix(action[..., 3:6]) @ _euler_xyz_to_matrix(state[..., 3:6])
        grip = (state[..., 6:7] + action[..., 6:7]).clamp(0, 1)
        return torch.cat([xyz, _matrix_to_euler_xyz(rot), grip], dim=-1)


@dataclass
class StateUpdateConfig(Checked):
    """How the planner advances the proprioceptive state: ``additive`` (``state += scale * action``
    per dimension; the default is the simulated Fetch arm, 0.05 m per unit action, gripper fixed),
    ``pose`` (:class:`PoseStateUpdate`; ``scale`` is not used), or ``fit`` (AC training estimates the
    additive scale from the data, :func:`fit_additive_scale`, and stores it as ``additive``)."""

    kind: Literal["additive", "pose", "fit"] = "additive"
    scale: list[float] = field(default_factory=lambda: [0.05, 0.05, 0.05, 0.0])

    def check(self) -> None:
        if self.kind == "additive":
            non_empty(self, "scale")
        for i, v in enumerate(self.scale):
            require(math.isfinite(v), f"scale[{i}]", f"must be finite, got {v!r}")


def fit_additive_scale(states: Sequence[np.ndarray], actions: Sequence[np.ndarray]) -> tuple[list[float], list[float]]:
    """Least-squares per-dimension scale of ``state[t+1] - state[t] ~= scale * action[t]`` over episodes
    (``states`` ``[T, S]``, ``actions`` ``[T-1, A]`` each), and the fraction of the state change's
    variance it explains (R^2) per dimension. State dims without a matching action dim (``i >= A``), or
    whose action never moves, get scale 0 and R^2 0."""
    ds = np.concatenate([np.diff(np.asarray(s, dtype=np.float64), axis=0) for s in states])
    a = np.concatenate([np.asarray(x, dtype=np.float64) for x in actions])
    scale, r2 = [], []
    for i in range(ds.shape[1]):
        denom = float((a[:, i] ** 2).sum()) if i < a.shape[1] else 0.0
        k = float((a[:, i] * ds[:, i]).sum()) / denom if denom > 0 else 0.0
        resid, total = ((ds[:, i] - k * a[:, i]) ** 2).sum() if denom > 0 else 0.0, (ds[:, i] ** 2).sum()
        scale.append(k)
        r2.append(float(1 - resid / total) if denom > 0 and total > 0 else 0.0)
    return scale, r2


def state_update_config(spec: StateUpdateConfig | Mapping) -> StateUpdateConfig:
    """A :class:`StateUpdateConfig`, also from the plain dict that world-model files store (older files
    hold ``{"kind": "pose"}`` without a scale); an unknown key is an error."""
    if isinstance(spec, StateUpdateConfig):
        return spec
    unknown = sorted(set(spec) - {f.name for f in fields(StateUpdateConfig)})
    if unknown:
        raise ConfigError(f"state update {dict(spec)!r}: unknown key(s) {unknown}; use kind and scale")
    return StateUpdateConfig(**{k: (list(v) if k == "scale" else v) for k, v in spec.items()})


def build_state_update(spec: StateUpdateConfig | Mapping) -> nn.Module:
    """The state-update module of ``spec`` (a :class:`StateUpdateConfig` or its dict)."""
    spec = state_update_config(spec)
    if spec.kind == "fit":
        raise ValueError("state_update.kind=fit is resolved by AC training (it estimates an additive scale from "
                         "the data); a world model stores the fitted additive update")
    if spec.kind == "additive":
        return AdditiveStateUpdate(list(spec.scale))
    return PoseStateUpdate()


class WorldModel(nn.Module):
    """Frozen ``encoder`` + ``predictor`` + a state update (a :class:`StateUpdateConfig` or its dict);
    see the module docstring.

    ``normalization``: per-dimension action/state statistics (:func:`jepa.normalization.control_statistics`)
    applied to the predictor's inputs; ``None`` = the predictor takes robot units as they are.
    ``frame_step``: env steps between the frames it was trained on (one planned action block).
    """

    def __init__(self, encoder: VisionTransformer, predictor: ActionConditionedPredictor,
                 state_update: StateUpdateConfig | Mapping, image_size: int, normalization: dict | None = None,
                 frame_step: int = 1) -> None:
        super().__init__()
        self.frame_step = int(frame_step)  # env steps between the frames it was trained on (one action block)
        self.encoder = encoder.eval().requires_grad_(False)
        self.predictor = predictor
        self.state_update_spec = asdict(state_update_config(state_update))  # stored in files as a dict
        self.state_update = build_state_update(self.state_update_spec)
        self.image_size = image_size
        self.normalizer = ControlNormalizer(normalization, predictor.action_dim, predictor.state_dim)

    @property
    def device(self) -> torch.device:
        return next(self.predictor.parameters()).device

    @property
    def action_dim(self) -> int:
        """Size of the action vectors the predictor was trained on."""
        return self.predictor.action_dim

    @property
    def state_dim(self) -> int:
        """Size of the proprioceptive state vectors the predictor was trained on."""
        return self.predictor.state_dim

    def preprocess(self, images: np.ndarray | Tensor) -> Tensor:
        """uint8 ``[B, H, W, 3]`` -> normalised float ``[B, 3, S, S]`` on the model's device."""
        x = normalize_frames(torch.as_tensor(np.asarray(images) if not isinstance(images, Tensor) else images))
        x = x.to(self.device)
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        return x

    @torch.no_grad()
    def encode(self, images: np.ndarray | Tensor) -> Tensor:
        """Layer-normed tokens ``[B, N, D]`` of uint8 images ``[B, H, W, 3]`` (or float ``[B, 3, S, S]``)."""
        x = images if isinstance(images, Tensor) and images.is_floating_point() else self.preprocess(images)
        return feature_layer_norm(self.encoder(x.to(self.device)))

    def normalize_controls(self, actions: Tensor, states: Tensor) -> tuple[Tensor, Tensor]:
        """Robot-unit ``actions [..., A]`` and ``states [..., S]`` as the predictor takes them."""
        return self.normalizer.actions(actions), self.normalizer.states(states)

    def check_controls(self, states: Tensor, actions: Tensor) -> None:
        """A clear error when states ``[..., S]`` or actions ``[..., A]`` have another size than the model
        was trained on (an env or robot other than its own)."""
        for what, x, dim in (("states", states, self.state_dim), ("actions", actions, self.action_dim)):
            if x.shape[-1] != dim:
                raise InputError(f"the world model takes {dim}-D {what}, got {x.shape[-1]}-D {what}: it was trained "
                                 "on another robot or env")

    def rollout(self, z0: Tensor, state0: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
        """``z0 [B, N, D]``, ``state0 [B, S]``, ``actions [B, H, A]`` -> ``(z [B, H, N, D], states [B, H, S])``.

        Actions and states in robot units (normalised internally for the predictor)."""
        self.check_controls(state0, actions)
        cache = self.predictor.new_cache()
        z, state = z0, state0
        zs, states = [], []
        for h in range(actions.shape[1]):
            a, s = self.normalize_controls(actions[:, h], state)
            z = feature_layer_norm(self.predictor.forward_step(z, a, s, cache))
            state = self.state_update(state, actions[:, h])
            zs.append(z)
            states.append(state)
        return torch.stack(zs, 1), torch.stack(states, 1)

    def rollout_naive(self, z0: Tensor, state0: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
        """The same rollout by full recomputation of the history at every step (no KV cache)."""
        self.check_controls(state0, actions)
        frames, acts, sts = [z0], [], []
        state = state0
        outs, states = [], []
        for h in range(actions.shape[1]):
            acts.append(actions[:, h])
            sts.append(state)
            pred = self.predictor(torch.cat(frames, 1), *self.normalize_controls(torch.stack(acts, 1),
                                                                                  torch.stack(sts, 1)))
            z = feature_layer_norm(pred[:, -z0.shape[1]:])
            state = self.state_update(state, actions[:, h])
            frames.append(z)
            outs.append(z)
            states.append(state)
        return torch.stack(outs, 1), torch.stack(states, 1)

    def save(self, path: str | Path, extra: dict | None = None) -> Path:
        """Atomic checkpoint with both parts and their architectures."""
        from jepa.checkpoints import FORMAT, FORMAT_VERSION, atomic_torch_save

        return atomic_torch_save({"format": FORMAT, "version": FORMAT_VERSION, "encoder_arch": self.encoder.arch,
                                  "target_encoder": self.encoder.state_dict(), "predictor_arch": self.predictor.arch,
                                  "predictor": self.predictor.state_dict(), "image_size": self.image_size,
                                  "state_update": self.state_update_spec, "frame_step": self.frame_step,
                                  "normalization": self.normalizer.to_dict(), **(extra or {})}, path)


def load_world_model(name_or_path: str | Path, device: str | torch.device = "cpu",
                     checkpoint: str | Path | None = None) -> WorldModel:
    """A world model by name (a released one, :func:`jepa.released.list_world_models`) or by path.

    A path is a file written by :meth:`WorldModel.save` (strict key check on both parts) or an
    official V-JEPA 2-AC checkpoint (architecture read from its tensors). A name reads its official
    file from ``$JEPA_HOME`` (or ``checkpoint``) and never downloads; a missing file is an error that
    says where to put which file.
    """
    from jepa.checkpoints import load_state_dict_strict, read_torch_file
    from jepa.released import WORLD_MODELS, is_official_ac, load_released_world_model, official_ac_world_model

    if str(name_or_path) in WORLD_MODELS:
        return load_released_world_model(str(name_or_path), checkpoint, device)
    if checkpoint is not None:
        raise InputError(f"checkpoint= is only for released world models ({sorted(WORLD_MODELS)}); "
                         f"{name_or_path!r} is not one")
    path = name_or_path
    if not Path(path).exists():
        raise MissingFileError(f"{path}: no such file, and not a released world model ({sorted(WORLD_MODELS)})")
    if Path(path).is_dir():
        raise CheckpointError(f"{path}: is a folder; expected a world_model.pt file (written by jepa train-ac)")
    ckpt = read_torch_file(path)
    if "predictor_arch" in ckpt and "encoder_arch" not in ckpt and "optimizer" in ckpt:
        raise CheckpointError(f"{path}: an AC training checkpoint (predictor and optimizer only), not a world "
                              "model; give the world_model.pt next to it, written when jepa train-ac finishes")
    if is_official_ac(ckpt):
        return official_ac_world_model(ckpt, path).to(device).eval()
    check_world_model_file(ckpt, path)
    try:
        encoder = VisionTransformer(**ckpt["encoder_arch"])
        predictor = ActionConditionedPredictor(**ckpt["predictor_arch"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: the recorded architecture cannot be built ({e})") from None
    load_state_dict_strict(encoder, ckpt["target_encoder"], f"{path} [encoder]")
    load_state_dict_strict(predictor, ckpt["predictor"], f"{path} [predictor]")
    model = WorldModel(encoder, predictor, ckpt["state_update"], int(ckpt["image_size"]), ckpt.get("normalization"),
                       int(ckpt.get("frame_step", 1)))
    return model.to(device).eval()


def check_world_model_file(ckpt: dict, path: str | Path) -> None:
    """Raise :class:`~jepa.checkpoints.CheckpointError` unless ``ckpt`` is a world model written by
    :meth:`WorldModel.save`; a pretraining checkpoint is named as such, with the file to give instead."""
    arch = ckpt.get("predictor_arch")
    if isinstance(arch, dict) and "action_dim" not in arch:
        raise CheckpointError(f"{path}: a pretraining checkpoint (masked predictor), not a world model; give the "
                              "world_model.pt that jepa train-ac writes (its model.encoder can be this file)")
    missing = [k for k in ("encoder_arch", "predictor_arch", "target_encoder", "predictor", "state_update",
                           "image_size") if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: not a world-model checkpoint (lacks {missing}); give a world_model.pt "
                              "written by jepa train-ac, an official V-JEPA 2-AC file or a released name")
