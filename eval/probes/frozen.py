"""The frozen-backbone side shared by every probe evaluation (anticipation, classification).

Configs for the backbone, the probe grid and the run; building the frozen encoder (a checkpoint's
weights or a random init of its shape); the identity that keys feature caches; caching the
encoder's tokens; and building probes.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from eval.probes.features_cache import FeatureCache, FeatureSet, build_feature_cache
from eval.probes.probe import MultiHeadAttentiveClassifier, ProbeSweep, steps_per_epoch, token_statistics
from jepa.config import save_config
from jepa.device import resolve_device

RANDOM_INIT_SEED = 12345


# ------------------------------------------------------------------------------------------ config

@dataclass
class BackboneConfig:
    checkpoint: str | None = None  # project / official checkpoint, HF folder, or a named backbone
    key: str = "target_encoder"
    init: str = "pretrained"  # "pretrained" or "random": same architecture, freshly initialised
    # Architecture of a random encoder when no checkpoint is given.
    size: str = "tiny"
    embed_dim: int = 128
    depth: int = 4
    num_heads: int = 4
    patch_size: int = 8
    tubelet_size: int = 2
    # Anticipation only: append the frozen pretraining predictor's tokens of the time the action starts
    # (tau_a after the window) to the observed tokens, as V-JEPA 2's anticipation model does.
    future_tokens: bool = False
    predictor_checkpoint: str | None = None  # default: ``checkpoint``
    future_steps: int = 1  # predicted tubelet steps
    future_mask_index: int = 1  # the mask token that fills them (released: 1)
    # Probe these blocks' (final-normed) outputs concatenated along channels, [B, N, len * D]
    # (0-based, negative counts from the end; e.g. [0, -1]); null: the last block only.
    out_layers: list[int] | None = None


@dataclass
class ProbeConfig:
    depth: int = 1  # blocks in the pooler, counting the cross-attention block (released: 4)
    num_heads: int = 4  # attention heads (released: 16)
    lrs: list[float] = field(default_factory=lambda: [1e-3, 3e-4])
    weight_decays: list[float] = field(default_factory=lambda: [1e-4, 1e-2])
    epochs: int = 20
    batch_size: int = 32
    loss: str = "focal"  # "focal" (sigmoid focal, as released) or "ce"
    warmup_epochs: int = 0
    positions: bool = False  # add a fixed sin-cos table of the token grid to the probe input (not released)
    standardize: bool = False  # standardize each (token, channel) by training-set statistics (not released)


@dataclass
class EvalMetaConfig:
    run_dir: str = "runs/eval"
    device: str = "auto"
    seed: int = 0
    batch_size: int = 8  # encoder batch when caching features
    num_workers: int = 0
    feature_dtype: str = "float16"
    progress: bool = True


# ------------------------------------------------------------------------------------------ backbone

def build_backbone(b: BackboneConfig, crop_size: int, frames_per_clip: int, device: str | torch.device = "cpu",
                   seed: int = 0) -> nn.Module:
    """The frozen encoder: the checkpoint's weights, or (``init: random``) fresh weights of its shape.

    Without a checkpoint, ``init: random`` builds ``b.size`` with ``b``'s overrides for clips of
    ``frames_per_clip`` frames at ``crop_size`` pixels.
    """
    from jepa.hub import freeze, load_backbone
    from jepa.models.vit import VisionTransformer, build_vit

    if b.checkpoint is not None:
        model = load_backbone(b.checkpoint, key=b.key)
        if b.init == "pretrained":
            return model.to(device)
        arch = dict(model.arch)
    elif b.init == "random":
        model = build_vit(b.size, img_size=crop_size, num_frames=frames_per_clip, patch_size=b.patch_size,
                          tubelet_size=b.tubelet_size, embed_dim=b.embed_dim, depth=b.depth, num_heads=b.num_heads)
        arch = dict(model.arch)
    else:
        raise ValueError("backbone.init=pretrained needs backbone.checkpoint=PATH (or use backbone.init=random)")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_INIT_SEED + seed)  # not the default seed 0, so never a copy of a model built at 0
        model = VisionTransformer(**arch)
    return freeze(model).to(device)


class ConcatLayers(nn.Module):
    """``clips -> [B, N, len(layers) * D]``: the final-normed outputs of blocks ``layers`` of a
    :class:`~jepa.models.vit.VisionTransformer`, concatenated along channels in block order.

    ``layers`` are 0-based block indices; negative ones count from the end (``-1``: the last block).
    """

    def __init__(self, encoder: nn.Module, layers: Sequence[int]) -> None:
        super().__init__()
        depth = len(encoder.blocks)
        bad = [i for i in layers if not -depth <= i < depth]
        if not layers or bad:
            raise ValueError(f"backbone.out_layers must name blocks in [-{depth}, {depth}) of this "
                             f"{depth}-block encoder, got {list(layers)}")
        self.encoder, self.layers = encoder, sorted({i % depth for i in layers})

    @property
    def embed_dim(self) -> int:
        return len(self.layers) * self.encoder.embed_dim

    def token_grid(self, frames: int, height: int, width: int) -> tuple[int, int, int]:
        return self.encoder.token_grid(frames, height, width)

    def forward(self, clips: Tensor) -> Tensor:
        return torch.cat(self.encoder(clips, out_layers=self.layers), dim=-1)


def backbone_identity(b: BackboneConfig, seed: int) -> dict:
    """What determines the encoder's weights (part of a feature cache's identity)."""
    out = {"checkpoint": b.checkpoint, "key": b.key, "init": b.init, "seed": seed}
    if b.checkpoint and Path(b.checkpoint).exists():
        st = Path(b.checkpoint).stat()
        out.update(size=st.st_size, mtime=st.st_mtime)
    if b.checkpoint is None:
        out.update(arch=[b.size, b.embed_dim, b.depth, b.num_heads, b.patch_size, b.tubelet_size])
    if b.out_layers:
        out["out_layers"] = list(b.out_layers)
    if b.future_tokens:
        pred = Path(b.predictor_checkpoint or b.checkpoint or "")
        out["future"] = {"predictor": str(pred), "steps": b.future_steps, "mask_index": b.future_mask_index,
                         "mtime": pred.stat().st_mtime if pred.is_file() else None}
    return out


def start_run(cfg, crop_size: int, frames_per_clip: int) -> tuple[Path, torch.device, nn.Module, dict]:
    """Shared start of a frozen-backbone evaluation: the run folder with its ``config.yaml``, the
    device, the frozen encoder and the identity that keys its feature caches. ``cfg`` has
    ``backbone`` (:class:`BackboneConfig`) and ``meta`` (:class:`EvalMetaConfig`)."""
    run_dir = Path(cfg.meta.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.yaml")
    device = resolve_device(cfg.meta.device)
    encoder = build_backbone(cfg.backbone, crop_size, frames_per_clip, device, cfg.meta.seed)
    if cfg.backbone.out_layers:
        encoder = ConcatLayers(encoder, cfg.backbone.out_layers)
    return run_dir, device, encoder, backbone_identity(cfg.backbone, cfg.meta.seed)


# ------------------------------------------------------------------------------------------ features

def cached_features(name: str, dataset: torch.utils.data.Dataset, encoder: nn.Module, cache_dir: Path, meta: dict,
                    cfg: EvalMetaConfig, device: torch.device) -> tuple[FeatureSet, int]:
    """Load the cache at ``cache_dir`` if it was built with the same ``meta``, else (re)build it.

    Returns the features and the number of skipped segments (unreadable video or empty window).
    """
    meta = json.loads(json.dumps(meta))  # as stored (tuples become lists), so equal settings compare equal
    if FeatureCache.exists(cache_dir):
        cache = FeatureCache(cache_dir)
        if cache.meta.get("identity") == meta:
            return cache.load(), int(cache.meta.get("skipped", 0))
    if cache_dir.exists():
        shutil.rmtree(cache_dir)
    summary = build_feature_cache(lambda x: encoder(x), dataset, cache_dir, batch_size=cfg.batch_size,
                                  num_workers=cfg.num_workers, device=device, meta={"identity": meta},
                                  dtype=getattr(torch, cfg.feature_dtype), progress=cfg.progress,
                                  desc=f"encode {name}")
    # record the skip count in the index so a reused cache reports it too
    cache = FeatureCache(cache_dir)
    cache.update_meta(skipped=len(summary.skipped))
    return cache.load(), len(summary.skipped)


# ------------------------------------------------------------------------------------------ probes

def probe_builder(p: ProbeConfig, dim: int, classes: dict[str, int] | int, grid: Sequence[int] | None = None,
                  stats: tuple[Tensor, Tensor] | None = None):
    """A function making one fresh probe (multi-head for a dict of classes), with positions and
    standardization (``stats``: mean and std ``[N, D]``) when the config asks for them."""
    from eval.probes.probe import AttentiveClassifier, Standardized, WithPositions

    def build() -> nn.Module:
        if isinstance(classes, int):
            probe = AttentiveClassifier(dim, classes, depth=p.depth, num_heads=p.num_heads)
        else:
            probe = MultiHeadAttentiveClassifier(dim, classes, depth=p.depth, num_heads=p.num_heads)
        if p.positions:
            if grid is None:
                raise ValueError("probe.positions needs the token grid of the backbone")
            probe = WithPositions(probe, dim, grid)
        if p.standardize:
            if stats is None:
                raise ValueError("probe.standardize needs the training features' statistics")
            probe = Standardized(probe, *stats)
        return probe

    return build


def probe_sweep(p: ProbeConfig, classes: dict[str, int] | int, train: FeatureSet, device: str | torch.device,
                seed: int, grid: Sequence[int] | None = None) -> ProbeSweep:
    """The lr x wd grid of probes of ``p`` for ``train`` features ``[M, V, N, D]`` (schedules sized by
    ``p.epochs`` over ``train``; standardization statistics from ``train`` when ``p.standardize``)."""
    steps = steps_per_epoch(len(train), p.batch_size)
    stats = token_statistics(train.features) if p.standardize else None
    return ProbeSweep(probe_builder(p, train.features.shape[-1], classes, grid, stats), p.lrs, p.weight_decays,
                      total_steps=p.epochs * steps, loss=p.loss, warmup_steps=p.warmup_epochs * steps, device=device,
                      seed=seed)
