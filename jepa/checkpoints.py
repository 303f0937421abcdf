"""Checkpoint files: atomic writes, strict loading, and key conversion from other layouts.

Three layouts are read:

- **Official V-JEPA 2** ``.pt`` files: a dict with parts ``encoder``, ``target_encoder``,
  ``predictor`` (...); keys carry ``module.`` and ``backbone.`` prefixes (DDP and the multi-mask
  wrapper); RoPE models still hold stray ``pos_embed`` entries. Prefixes are stripped and stray
  position tables dropped.
- **Hugging Face** ``VJEPA2Model`` folders (``config.json`` + ``model.safetensors``): keys are renamed
  and the separate ``query``/``key``/``value`` projections are merged into the fused ``qkv``
  (rows ``[q | k | v]``).
- **The project's own** checkpoints: a dict with ``format: "jepa-worldkit"``, ``encoder_arch``
  (constructor arguments) and state-dict parts; weight-only exports are safetensors files with the
  architecture stored as JSON metadata.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from jepa.errors import JepaError
from jepa.files import atomic_path, atomic_write

FORMAT = "jepa-worldkit"
FORMAT_VERSION = 1


class CheckpointError(JepaError, ValueError):
    """A checkpoint file is missing, unreadable or does not match the model."""


# ---------------------------------------------------------------- writing

def atomic_torch_save(obj: object, path: str | Path) -> Path:
    """``torch.save`` written atomically (:func:`atomic_write`)."""
    return atomic_write(path, lambda f: torch.save(obj, f))


def save_safetensors(state_dict: Mapping[str, Tensor], path: str | Path, metadata: dict | None = None) -> Path:
    """Weight-only export (atomic). ``metadata`` values are JSON-encoded into the file header."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().contiguous().cpu() for k, v in state_dict.items()}
    meta = {k: json.dumps(v) for k, v in (metadata or {}).items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return Path(path)


def read_safetensors(path: str | Path) -> tuple[dict[str, Tensor], dict]:
    """Tensors and JSON-decoded metadata of a safetensors file."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = {k: json.loads(v) for k, v in (f.metadata() or {}).items() if _is_json(v)}
            return {k: f.get_tensor(k) for k in f.keys()}, meta
    except Exception as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from None


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
        return True
    except ValueError:
        return False


def read_torch_file(path: str | Path) -> dict:
    """A ``.pt`` checkpoint as a dict (tensors only; no pickled code is executed)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path}: cannot read checkpoint; the file is damaged, truncated or not a PyTorch "
                              f"checkpoint ({type(e).__name__}: {str(e)[:200]})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict checkpoint, got {type(obj).__name__}")
    return obj


# ---------------------------------------------------------------- key conversion

def strip_prefixes(state_dict: Mapping[str, Tensor], prefixes: tuple[str, ...] = ("module.", "backbone.")):
    """Remove wrapper prefixes (DDP ``module.``, the multi-mask ``backbone.``) from every key."""
    out = {}
    for key, value in state_dict.items():
        for prefix in prefixes:
            key = key.replace(prefix, "")
        out[key] = value
    return out


def is_state_dict(obj: object) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(isinstance(v, Tensor) for v in obj.values())


def official_part(checkpoint: Mapping, key: str, path: str | Path = "<checkpoint>") -> dict[str, Tensor]:
    """The state dict under ``key`` of an official or own checkpoint, prefixes stripped.

    ``key="target_encoder"`` falls back to ``"encoder"`` when the file has no target encoder (as
    the official evaluation code does). A bare state dict is returned as is.
    """
    if is_state_dict(checkpoint):
        return strip_prefixes(checkpoint)
    candidates = [key] + (["encoder"] if key == "target_encoder" else [])
    for name in candidates:
        part = checkpoint.get(name)
        if is_state_dict(part):
            return strip_prefixes(part)
    parts = [k for k, v in checkpoint.items() if is_state_dict(v)]
    raise CheckpointError(f"{path}: no state dict under {candidates}; parts in the file: {parts}")


_HF_BLOCK_RENAMES = {
    "norm1": "norm1",
    "norm2": "norm2",
    "attention.proj": "attn.proj",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
}


def hf_encoder_to_native(hf_state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Convert a Hugging Face ``VJEPA2Model`` state dict's encoder part to this project's keys."""
    out: dict[str, Tensor] = {}
    qkv: dict[tuple[int, str], dict[str, Tensor]] = {}
    for key, value in hf_state.items():
        if not key.startswith("encoder."):
            continue  # predictor / pooler / classifier parts belong to other modules
        rest = key[len("encoder."):]
        if rest.startswith("embeddings.patch_embeddings.proj."):
            out["patch_embed.proj." + rest.rsplit(".", 1)[1]] = value
        elif rest.startswith("layernorm."):
            out["norm." + rest.rsplit(".", 1)[1]] = value
        elif rest.startswith("layer."):
            _, idx, sub = rest.split(".", 2)
            module, param = sub.rsplit(".", 1)
            if module in ("attention.query", "attention.key", "attention.value"):
                qkv.setdefault((int(idx), param), {})[module.split(".")[1]] = value
            elif module in _HF_BLOCK_RENAMES:
                out[f"blocks.{idx}.{_HF_BLOCK_RENAMES[module]}.{param}"] = value
            else:
                out[f"blocks.{idx}.{sub}"] = value  # left as is: the strict load reports it
        else:
            out[rest] = value
    for (idx, param), parts in qkv.items():
        missing = {"query", "key", "value"} - parts.keys()
        if missing:
            raise CheckpointError(f"layer {idx}: attention {param} lacks {sorted(missing)} projections")
        out[f"blocks.{idx}.attn.qkv.{param}"] = torch.cat([parts["query"], parts["key"], parts["value"]], 0)
    return out


def hf_config_to_arch(config: Mapping) -> dict:
    """``VisionTransformer`` constructor arguments from a Hugging Face ``VJEPA2Config`` dict."""
    try:
        return dict(
            img_size=int(config["crop_size"]),
            patch_size=int(config["patch_size"]),
            num_frames=int(config["frames_per_clip"]),
            tubelet_size=int(config["tubelet_size"]),
            in_chans=int(config.get("in_chans", 3)),
            embed_dim=int(config["hidden_size"]),
            depth=int(config["num_hidden_layers"]),
            num_heads=int(config["num_attention_heads"]),
            mlp_ratio=float(config.get("mlp_ratio", 4.0)),
            qkv_bias=bool(config.get("qkv_bias", True)),
            norm_eps=float(config.get("layer_norm_eps", 1e-6)),
            pos_encoding="rope_tiled",
        )
    except KeyError as e:
        raise CheckpointError(f"Hugging Face config lacks the field {e.args[0]!r}") from None


# ---------------------------------------------------------------- strict loading

def load_state_dict_strict(model: nn.Module, state_dict: Mapping[str, Tensor], source: str) -> None:
    """Load ``state_dict`` into ``model``; raise ONE error listing missing, unexpected and mis-shaped keys.

    Non-persistent buffers are not expected in the file. A fixed sin-cos ``pos_embed`` buffer missing
    from a file is allowed (it is recomputed, not learned).
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict and k != "pos_embed"]
    unexpected = [k for k in state_dict if k not in expected]
    misshaped = [
        f"{k}: file {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or misshaped:
        lines = [f"{source} does not match {type(model).__name__}:"]
        for title, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)):
            if keys:
                shown = ", ".join(keys[:20]) + (f", ... ({len(keys)} in all)" if len(keys) > 20 else "")
                lines.append(f"  {title} keys ({len(keys)}): {shown}")
        raise CheckpointError("\n".join(lines))
    model.load_state_dict(dict(state_dict), strict=False)  # every key was checked above


def drop_stray_pos_embed(state_dict: dict[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """Drop ``pos_embed``-like entries the model does not have (RoPE models in official files)."""
    own = model.state_dict()
    return {k: v for k, v in state_dict.items() if not (k.endswith("pos_embed") and k not in own)}
