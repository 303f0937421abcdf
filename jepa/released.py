"""Released world models by name: V-JEPA 2-AC (``vjepa2-ac-vitg``) from its official checkpoint.

``jepa.load_world_model("vjepa2-ac-vitg")`` reads ``vjepa2-ac-vitg.pt`` (published at
``https://dl.fbaipublicfiles.com/vjepa2/vjepa2-ac-vitg.pt``) from ``$JEPA_HOME`` (default
``~/.cache/jepa``) and never downloads: a missing file is an error naming the file and the folder.

The official AC file is a training checkpoint: a dict with the parts ``encoder`` and
``target_encoder`` (the frozen ViT-g, identical: post-training never updates them), ``predictor``,
and optimiser state; module keys carry the DDP prefix ``module.``. The encoder and predictor are
loaded as released (prefixes stripped, strict key check):

- encoder: ViT-g/16 (``vit_giant_xformers``: 1408 wide, 40 blocks, 22 heads, 3-D RoPE), Conv3d tubelets;
- predictor: :class:`~jepa.models.ac_predictor.ActionConditionedPredictor` at the released size (1024
  wide, 24 blocks, 16 heads, 7-D actions and states, no extrinsics token), whose parameter names are
  the released ones.

The world model comes with the released preprocessing: images resized to 256 x 256 and
ImageNet-normalised, each image repeated into one 2-frame tubelet, tokens layer-normed without affine
parameters (what the predictor was trained on); and with the released state update
(:class:`~jepa.world_model.PoseStateUpdate`: xyz [m] += delta, Euler-xyz rotation composed, gripper
clipped to [0, 1]). It has no action/state normalisation: the release feeds robot units.

An official AC file given by path (not by name) is read the same way, its architecture inferred
from the tensor shapes (the number of heads, which shapes do not show, assumes the released head
width of 64).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from jepa.checkpoints import (
    FORMAT,
    CheckpointError,
    drop_stray_pos_embed,
    is_state_dict,
    load_state_dict_strict,
    official_part,
    read_torch_file,
    strip_prefixes,
)
from jepa.hub import BACKBONES, encoder_from_checkpoint, freeze, resolve_checkpoint
from jepa.models.ac_predictor import ActionConditionedPredictor
from jepa.models.vit import VisionTransformer
from jepa.world_model import WorldModel

RELEASED_HEAD_DIM = 64


@dataclass(frozen=True)
class WorldModelSpec:
    """A released world model: the backbone entry that names its file and encoder, the predictor's
    constructor arguments (besides ``embed_dim`` and ``grid``, which follow the encoder) and the
    state update."""

    name: str
    backbone: str
    predictor: dict = field(default_factory=dict)
    state_update: dict = field(default_factory=lambda: {"kind": "pose"})

    def build_predictor(self, encoder: VisionTransformer) -> ActionConditionedPredictor:
        grid = encoder.token_grid(encoder.tubelet_size, *encoder.img_size)[1:]
        return ActionConditionedPredictor(encoder.embed_dim, grid, **self.predictor)


WORLD_MODELS: dict[str, WorldModelSpec] = {
    s.name: s
    for s in (
        WorldModelSpec("vjepa2-ac-vitg", "vjepa2-ac-vitg",
                       dict(predictor_embed_dim=1024, depth=24, num_heads=16, mlp_ratio=4.0, action_dim=7,
                            state_dim=7, use_extrinsics=False)),
    )
}


def list_world_models() -> list[str]:
    return sorted(WORLD_MODELS)


def is_official_ac(ckpt: dict) -> bool:
    """An official V-JEPA 2-AC checkpoint: not this project's format, a predictor with an action encoder."""
    if ckpt.get("format") == FORMAT or not is_state_dict(ckpt.get("predictor")):
        return False
    return "action_encoder.weight" in strip_prefixes(ckpt["predictor"])


def load_released_world_model(name: str, checkpoint: str | os.PathLike | None = None,
                              device: str | torch.device = "cpu") -> WorldModel:
    """The released world model ``name`` from ``checkpoint`` or its official file in ``$JEPA_HOME``."""
    if name not in WORLD_MODELS:
        raise ValueError(f"unknown world model {name!r}; released: {list_world_models()}")
    spec = WORLD_MODELS[name]
    path = Path(checkpoint) if checkpoint is not None else resolve_checkpoint(spec.backbone)
    ckpt = read_torch_file(path)
    if not is_official_ac(ckpt):
        raise CheckpointError(f"{path}: not an official V-JEPA 2-AC checkpoint (no 'predictor' part with an "
                              f"action_encoder); {name!r} needs the file {BACKBONES[spec.backbone].filename}")
    return official_ac_world_model(ckpt, path, spec).to(device).eval()


def official_ac_world_model(ckpt: dict, path: str | os.PathLike, spec: WorldModelSpec | None = None) -> WorldModel:
    """A :class:`WorldModel` from an official AC checkpoint dict (architecture from ``spec`` or the shapes)."""
    path = Path(path)
    key = "encoder" if is_state_dict(ckpt.get("encoder")) else "target_encoder"
    encoder = freeze(encoder_from_checkpoint(ckpt, path, key, BACKBONES[spec.backbone] if spec else None))
    state = official_part(ckpt, "predictor", path)
    if spec is not None:
        predictor = spec.build_predictor(encoder)
        state_update = spec.state_update
    else:
        predictor = ActionConditionedPredictor(**infer_ac_arch(state, encoder, path))
        state_update = {"kind": "pose"}
    load_state_dict_strict(predictor, drop_stray_pos_embed(state, predictor), f"{path} [predictor]")
    return WorldModel(encoder, predictor, state_update, encoder.img_size[0])


def infer_ac_arch(state: dict, encoder: VisionTransformer, path: str | os.PathLike) -> dict:
    """``ActionConditionedPredictor`` arguments of an official AC predictor state dict, from its shapes."""
    need = ("predictor_embed.weight", "action_encoder.weight", "state_encoder.weight",
            "predictor_blocks.0.mlp.fc1.weight")
    missing = [k for k in need if k not in state]
    if missing:
        raise CheckpointError(f"{path}: the predictor lacks {missing}; not a V-JEPA 2-AC predictor")
    width, dim = state["predictor_embed.weight"].shape
    if dim != encoder.embed_dim:
        raise CheckpointError(f"{path}: the predictor takes {dim}-wide tokens, the encoder gives {encoder.embed_dim}")
    if width % RELEASED_HEAD_DIM:
        raise CheckpointError(f"{path}: predictor width {width} is not a multiple of the released head width "
                              f"{RELEASED_HEAD_DIM}; build it by name or with WorldModelSpec")
    grid = encoder.token_grid(encoder.tubelet_size, *encoder.img_size)[1:]
    arch = dict(embed_dim=dim, grid=grid, predictor_embed_dim=width, num_heads=width // RELEASED_HEAD_DIM,
                depth=len({k.split(".")[1] for k in state if k.startswith("predictor_blocks.")}),
                mlp_ratio=state["predictor_blocks.0.mlp.fc1.weight"].shape[0] / width,
                action_dim=state["action_encoder.weight"].shape[1], state_dim=state["state_encoder.weight"].shape[1],
                qkv_bias="predictor_blocks.0.attn.qkv.bias" in state)
    if "extrinsics_encoder.weight" in state:
        arch["extrinsics_dim"] = state["extrinsics_encoder.weight"].shape[1]
    return arch
