"""Named backbones and ``load_backbone``: frozen encoders from local files, never downloaded.

A name maps to an architecture and the file names it is published under. ``load_backbone(name)``
looks for those files in ``$JEPA_HOME`` (default ``~/.cache/jepa``); when none is there it raises an
error that says where to put which file. A path loads directly:

- a folder with ``config.json`` (+ ``model.safetensors``): a Hugging Face ``VJEPA2Model``;
- a ``.pt``/``.pth`` file: an official V-JEPA 2 checkpoint or one of this project's;
- a ``.safetensors`` file: a weight-only export of this project (architecture in its metadata),
  or any encoder state dict when a ``name`` gives the architecture.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from jepa.checkpoints import (
    FORMAT,
    FORMAT_VERSION,
    CheckpointError,
    atomic_torch_save,
    drop_stray_pos_embed,
    hf_config_to_arch,
    hf_encoder_to_native,
    is_state_dict,
    load_state_dict_strict,
    official_part,
    read_safetensors,
    read_torch_file,
    save_safetensors,
)
from jepa.errors import InputError, MissingFileError
from jepa.models.predictor import MaskedPredictor
from jepa.models.vit import VIT_SIZES, VisionTransformer, build_vit


@dataclass(frozen=True)
class BackboneSpec:
    """A released backbone: architecture + where it is published (for the error message)."""

    name: str
    size: str
    img_size: int
    num_frames: int
    filename: str
    hf_repo: str
    url: str

    def build(self) -> VisionTransformer:
        return build_vit(self.size, img_size=self.img_size, num_frames=self.num_frames, tubelet_size=2,
                         patch_size=16, pos_encoding="rope_tiled")


_BASE_URL = "https://dl.fbaipublicfiles.com/vjepa2"
BACKBONES: dict[str, BackboneSpec] = {
    s.name: s
    for s in (
        BackboneSpec("vjepa2-vitl-256", "large", 256, 64, "vitl.pt", "facebook/vjepa2-vitl-fpc64-256",
                     f"{_BASE_URL}/vitl.pt"),
        BackboneSpec("vjepa2-vith-256", "huge", 256, 64, "vith.pt", "facebook/vjepa2-vith-fpc64-256",
                     f"{_BASE_URL}/vith.pt"),
        BackboneSpec("vjepa2-vitg-256", "giant", 256, 64, "vitg.pt", "facebook/vjepa2-vitg-fpc64-256",
                     f"{_BASE_URL}/vitg.pt"),
        BackboneSpec("vjepa2-vitg-384", "giant", 384, 64, "vitg-384.pt", "facebook/vjepa2-vitg-fpc64-384",
                     f"{_BASE_URL}/vitg-384.pt"),
        BackboneSpec("vjepa2-ac-vitg", "giant", 256, 64, "vjepa2-ac-vitg.pt", "",
                     f"{_BASE_URL}/vjepa2-ac-vitg.pt"),
    )
}


def list_backbones() -> list[str]:
    return sorted(BACKBONES)


def jepa_home() -> Path:
    """Folder searched for named weights: ``$JEPA_HOME`` or ``~/.cache/jepa``."""
    return Path(os.environ.get("JEPA_HOME", Path.home() / ".cache" / "jepa")).expanduser()


def _candidates(spec: BackboneSpec) -> list[Path]:
    home = jepa_home()
    out = [home / spec.filename]
    if spec.hf_repo:
        out += [home / spec.hf_repo.split("/")[-1], home / spec.hf_repo]
    return out


def resolve_checkpoint(name: str) -> Path:
    """The local file or folder that holds the weights of backbone ``name``."""
    spec = BACKBONES[name]
    for path in _candidates(spec):
        if path.exists():
            return path
    where = "\n".join(f"  {p}" for p in _candidates(spec))
    hf = f" or the Hugging Face folder of {spec.hf_repo}" if spec.hf_repo else ""
    raise MissingFileError(
        f"no local weights for {name!r}; nothing is downloaded. Put the official file {spec.filename} "
        f"(from {spec.url}){hf} at one of:\n{where}\n"
        f"(set JEPA_HOME to use another folder) or pass checkpoint=PATH."
    )


RANDOM_INIT_SEED = 12345  # offset of random-init seeds: seed 0 is never a copy of a model built at seed 0


def random_init(arch: dict, seed: int = 0) -> VisionTransformer:
    """A freshly initialised ``VisionTransformer(**arch)`` (a random-encoder baseline), its weights
    seeded by ``RANDOM_INIT_SEED + seed``; the global RNG is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_INIT_SEED + seed)
        return VisionTransformer(**arch)


def load_backbone(
    name_or_path: str | os.PathLike,
    checkpoint: str | os.PathLike | None = None,
    key: str = "target_encoder",
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    arch: dict | None = None,
    init: Literal["pretrained", "random"] = "pretrained",
    seed: int = 0,
) -> VisionTransformer:
    """A frozen encoder (eval mode, no gradients) from a named backbone or a checkpoint path.

    Args:
        name_or_path: a name from :func:`list_backbones`, or a path (HF folder, ``.pt``, ``.safetensors``).
        checkpoint: explicit weights for a named backbone (otherwise searched in :func:`jepa_home`).
        key: which part of a training checkpoint to load; ``"target_encoder"`` (the EMA encoder,
            used for frozen evaluation) falls back to ``"encoder"`` when absent.
        device, dtype: where and in which precision to put the module.
        arch: ``VisionTransformer`` arguments for what a bare official checkpoint does not record
            (``num_heads`` of a non-released width, the nominal ``img_size``/``num_frames``).
        init: ``"pretrained"`` (the file's weights) or ``"random"``: the same architecture freshly
            initialised by :func:`random_init` with ``seed`` (a baseline).
    """
    if init not in ("pretrained", "random"):
        raise InputError(f"init must be 'pretrained' or 'random', got {init!r}")
    name = str(name_or_path)
    if name in BACKBONES:
        path = Path(checkpoint) if checkpoint is not None else resolve_checkpoint(name)
        model = _load_path(path, key, BACKBONES[name], arch)
    elif checkpoint is not None:
        raise InputError(f"checkpoint= is only for named backbones; {name!r} is not one of {list_backbones()}")
    else:
        path = Path(name_or_path)
        if not path.exists():
            raise MissingFileError(f"{path}: no such file or folder, and not a backbone name ({list_backbones()})")
        model = _load_path(path, key, None, arch)
    if init == "random":
        model = random_init(dict(model.arch), seed)
    return freeze(model.to(device=device, dtype=dtype))


def freeze(model: torch.nn.Module) -> torch.nn.Module:
    """Eval mode and ``requires_grad=False`` on every parameter."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _load_path(path: Path, key: str, spec: BackboneSpec | None, arch: dict | None) -> VisionTransformer:
    if path.is_dir():
        return _load_hf_folder(path, spec)
    if path.suffix == ".safetensors":
        state, meta = read_safetensors(path)
        model = _build(meta.get("encoder_arch"), spec, path, arch)
        state = official_part(state, key, path)
    else:
        return encoder_from_checkpoint(read_torch_file(path), path, key, spec, arch)
    load_state_dict_strict(model, drop_stray_pos_embed(state, model), str(path))
    return model


def encoder_from_checkpoint(ckpt: dict, path: str | os.PathLike, key: str = "target_encoder",
                            spec: BackboneSpec | None = None, arch: dict | None = None) -> VisionTransformer:
    """The encoder under ``key`` of an already-read ``.pt`` checkpoint dict (this project's or an official
    one), built from its recorded architecture, else ``spec``, else its tensor shapes (+ ``arch``); strict
    key check. ``path`` only names the file in errors."""
    path = Path(path)
    if not is_state_dict(ckpt) and not any(is_state_dict(ckpt.get(k)) for k in (key, "encoder", "target_encoder")):
        arch_of = ckpt.get("predictor_arch")
        what = ("an AC training checkpoint (predictor and optimizer only)"
                if isinstance(arch_of, dict) and "action_dim" in arch_of else "a checkpoint without an encoder")
        raise CheckpointError(f"{path}: {what}; a backbone is an encoder: give a pretraining checkpoint "
                              f"(latest.pt of jepa pretrain), a world_model.pt or a named backbone; parts in the "
                              f"file: {sorted(k for k, v in ckpt.items() if is_state_dict(v))}")
    saved = ckpt.get("encoder_arch") if ckpt.get("format") == FORMAT else None
    model = _build(saved, spec, path, arch, ckpt)
    state = official_part(ckpt, key, path)
    load_state_dict_strict(model, drop_stray_pos_embed(state, model), str(path))
    return model


def _load_hf_folder(path: Path, spec: BackboneSpec | None) -> VisionTransformer:
    config_path = path / "config.json"
    if not config_path.is_file():
        raise CheckpointError(f"{path}: a Hugging Face folder needs config.json")
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        raise CheckpointError(f"{path}: no *.safetensors weights next to config.json")
    arch = hf_config_to_arch(json.loads(config_path.read_text()))
    state: dict = {}
    for w in weights:
        state.update(read_safetensors(w)[0])
    model = VisionTransformer(**arch)
    load_state_dict_strict(model, hf_encoder_to_native(state), str(path))
    return model


def _build(saved: dict | None, spec: BackboneSpec | None, path: Path, arch: dict | None,
           ckpt: dict | None = None) -> VisionTransformer:
    if saved is not None:
        return VisionTransformer(**{**saved, **(arch or {})})
    if spec is not None:
        return spec.build()
    if ckpt is not None:
        return _infer_official(ckpt, path, arch)
    raise CheckpointError(f"{path}: no architecture in the file; load it by name, e.g. load_backbone(NAME, "
                          f"checkpoint='{path}') with NAME in {list_backbones()}")


def _infer_official(ckpt: dict, path: Path, arch: dict | None) -> VisionTransformer:
    """Architecture of an encoder checkpoint from its tensor shapes, plus ``arch`` for what shapes hide.

    Width, depth, MLP ratio, patch and tubelet size are read from the tensors. The number of heads is
    not visible in the weights: it comes from ``arch["num_heads"]``, else from the released size of
    that width and depth.
    """
    state = official_part(ckpt, "target_encoder", path)
    if "patch_embed.proj.weight" not in state:
        raise CheckpointError(f"{path}: no patch_embed.proj.weight; not an encoder checkpoint")
    w = state["patch_embed.proj.weight"]
    depth = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
    video = w.dim() == 5
    found = dict(embed_dim=w.shape[0], depth=depth, patch_size=w.shape[-1], in_chans=w.shape[1],
                 num_frames=16 if video else 1, tubelet_size=w.shape[2] if video else 2, img_size=256,
                 qkv_bias="blocks.0.attn.qkv.bias" in state, pos_encoding="rope_tiled")
    if "blocks.0.mlp.fc1.weight" in state:
        found["mlp_ratio"] = state["blocks.0.mlp.fc1.weight"].shape[0] / w.shape[0]
    found.update(arch or {})
    if "num_heads" not in found:
        sizes = [s for s, d in VIT_SIZES.items() if d["embed_dim"] == w.shape[0] and d["depth"] == depth]
        if not sizes:
            raise CheckpointError(f"{path}: width {w.shape[0]} and depth {depth} match no released size; "
                                  f"pass arch={{'num_heads': ...}} or load it by name")
        found["num_heads"] = VIT_SIZES[sizes[0]]["num_heads"]
    return VisionTransformer(**found)


def load_predictor(name_or_path: str | os.PathLike, key: str = "predictor", num_heads: int | None = None,
                   device: str | torch.device = "cpu", arch: dict | None = None,
                   grid: tuple[int, int, int] | None = None) -> MaskedPredictor:
    """The frozen masked-token predictor of a pretraining checkpoint (this project's or an official
    V-JEPA 2 ``.pt``, by path or by backbone name), e.g. to predict the tokens of future frames.

    This project's checkpoints record the architecture (``predictor_arch``). Otherwise width, depth,
    MLP ratio and the number of mask tokens are read from the tensors; the number of heads, which the
    weights do not show, is ``num_heads``, else the run's ``config.model.pred_num_heads``, else
    ``width // 32`` (the released 384-wide predictor has 12 heads).

    The token grid ``(T', H', W')`` that flat target indices refer to is ``grid``, else the file's
    record (``predictor_arch`` or ``encoder_arch``), else that of the named backbone (64 frames at
    256 px: ``(32, 16, 16)``); a bare official file loaded by path needs ``grid``. ``arch`` overrides
    any other :class:`MaskedPredictor` argument. An action-conditioned predictor (a V-JEPA 2-AC file
    or this project's world model) is refused with a pointer to ``jepa.load_world_model``.
    """
    name = str(name_or_path)
    path = resolve_checkpoint(name) if name in BACKBONES else Path(name_or_path)
    if path.is_dir():
        raise CheckpointError(f"{path}: loading the predictor of a Hugging Face folder is not supported; "
                              "use the official .pt checkpoint")
    if not path.is_file():
        raise MissingFileError(f"{path}: no such checkpoint file")
    ckpt = read_torch_file(path)
    state = official_part(ckpt, key, path)
    saved = ckpt.get("predictor_arch") if ckpt.get("format") == FORMAT else None
    if (saved and "action_dim" in saved) or "action_encoder.weight" in state:
        raise CheckpointError(f"{path}: this is an action-conditioned predictor (a world model), not a "
                              "masked-prediction predictor; use jepa.load_world_model")
    found = dict(saved) if saved else _infer_predictor(state, ckpt, path)
    found.update(arch or {})
    if num_heads is not None:
        found["num_heads"] = num_heads
    if grid is not None:
        found["grid"] = list(grid)
    elif "grid" not in found and name in BACKBONES:
        spec = BACKBONES[name]
        found["grid"] = [spec.num_frames // 2, spec.img_size // 16, spec.img_size // 16]
    if "grid" not in found:
        raise CheckpointError(f"{path}: the file records no token grid; pass grid=(T', H', W'), e.g. (8, 16, 16) "
                              "for 16 frames at 256 px with tubelet 2 and patch 16")
    model = MaskedPredictor(**found)
    load_state_dict_strict(model, state, str(path))
    return freeze(model.to(device))


def _infer_predictor(state: dict, ckpt: dict, path: Path) -> dict:
    """Architecture of a bare predictor state dict from its shapes (``grid`` only when the file records
    the encoder's architecture)."""
    if "predictor_embed.weight" not in state:
        raise CheckpointError(f"{path}: no predictor_embed.weight; not a masked-prediction predictor")
    if "predictor_pos_embed" in state:
        raise CheckpointError(f"{path}: the predictor has a sin-cos position table (a V-JEPA 1 predictor); "
                              "only RoPE predictors (V-JEPA 2 layout) are supported")
    width, dim = state["predictor_embed.weight"].shape
    model_cfg = ckpt.get("config", {}).get("model", {}) if isinstance(ckpt.get("config"), dict) else {}
    arch = dict(embed_dim=dim, predictor_embed_dim=width,
                depth=len({k.split(".")[1] for k in state if k.startswith("predictor_blocks.")}),
                num_heads=model_cfg.get("pred_num_heads") or width // 32,
                num_mask_tokens=len([k for k in state if k.startswith("mask_tokens.")]),
                qkv_bias="predictor_blocks.0.attn.qkv.bias" in state)
    enc = ckpt.get("encoder_arch")
    if isinstance(enc, dict):
        with torch.device("meta"):  # shapes only: no memory, no initialisation cost
            arch["grid"] = list(VisionTransformer(**enc).nominal_grid)
    if "predictor_blocks.0.mlp.fc1.weight" in state:
        arch["mlp_ratio"] = state["predictor_blocks.0.mlp.fc1.weight"].shape[0] / width
    return arch


def export_backbone(model: VisionTransformer, path: str | os.PathLike) -> Path:
    """Save an encoder for :func:`load_backbone`: ``.safetensors`` (weights + arch metadata) or ``.pt``."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return save_safetensors(model.state_dict(), path,
                                metadata={"format": FORMAT, "version": FORMAT_VERSION, "encoder_arch": model.arch})
    return atomic_torch_save({"format": FORMAT, "version": FORMAT_VERSION, "encoder_arch": model.arch,
                              "target_encoder": model.state_dict()}, path)
