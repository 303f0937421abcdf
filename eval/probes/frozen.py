"""The frozen-backbone side shared by every probe evaluation (anticipation, classification).

Configs for the backbone, the probe grid and the run; building the frozen encoder (a checkpoint's
weights or a random init of its shape, :func:`jepa.hub.load_backbone`); caching the encoder's tokens
in the feature cache (:mod:`jepa.data.feature_cache`); and building probes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import torch
from torch import Tensor, nn

from eval.probes.probe import (
    FeatureSet,
    Loss,
    MultiHeadAttentiveClassifier,
    ProbeSweep,
    steps_per_epoch,
    token_statistics,
)
from jepa.config import Checked, ConfigError, known_device, non_empty, non_negative, positive
from jepa.data.feature_cache import CacheItems, FeatureCache, encoder_identity, fill_cache
from jepa.device import autocast, cuda_precision, resolve_device
from jepa.models.vit import ViTArchConfig

# ------------------------------------------------------------------------------------------ config


@dataclass
class BackboneConfig(ViTArchConfig):
    """The frozen encoder. The architecture fields (:class:`~jepa.models.vit.ViTArchConfig`) are used
    only by ``init: random`` without a checkpoint; a checkpoint brings its own."""

    checkpoint: str | None = None  # project / official checkpoint, HF folder, or a named backbone
    key: str = "target_encoder"
    init: Literal["pretrained", "random"] = "pretrained"  # "random": same architecture, freshly initialised
    # Anticipation only: append the frozen pretraining predictor's tokens of the time the action starts
    # (tau_a after the window) to the observed tokens, as V-JEPA 2's anticipation model does.
    future_tokens: bool = False
    predictor_checkpoint: str | None = None  # default: ``checkpoint``
    future_steps: int = 1  # predicted tubelet steps
    future_mask_index: int = 1  # the mask token that fills them (released: 1)
    # Probe these blocks' (final-normed) outputs concatenated along channels, [B, N, len * D]
    # (0-based, negative counts from the end; e.g. [0, -1]); null: the last block only.
    out_layers: list[int] | None = None

    def check(self) -> None:
        super().check()
        positive(self, "future_steps")
        non_negative(self, "future_mask_index")
        non_empty(self, "out_layers")


@dataclass
class ProbeConfig(Checked):
    depth: int = 1  # blocks in the pooler, counting the cross-attention block (released: 4)
    num_heads: int = 4  # attention heads (released: 16)
    lrs: list[float] = field(default_factory=lambda: [1e-3, 3e-4])
    weight_decays: list[float] = field(default_factory=lambda: [1e-4, 1e-2])
    epochs: int = 20
    batch_size: int = 32
    loss: Loss = "focal"  # "focal" (sigmoid focal, as released) or "ce"
    warmup_epochs: int = 0
    positions: bool = False  # add a fixed sin-cos table of the token grid to the probe input (not released)
    standardize: bool = False  # standardize each (token, channel) by training-set statistics (not released)

    def check(self) -> None:
        positive(self, "depth", "num_heads", "epochs", "batch_size")
        non_empty(self, "lrs", "weight_decays")
        non_negative(self, "lrs", "weight_decays", "warmup_epochs")


@dataclass
class EvalMetaConfig(Checked):
    run_dir: str = "runs/eval"
    device: str = "auto"
    seed: int = 0
    batch_size: int = 8  # encoder batch when caching features
    num_workers: int = 0
    feature_dtype: Literal["float16", "bfloat16", "float32"] = "float16"
    progress: bool = True

    def check(self) -> None:
        known_device(self, "device")
        positive(self, "batch_size")
        non_negative(self, "num_workers")


# ------------------------------------------------------------------------------------------ backbone

def build_backbone(b: BackboneConfig, crop_size: int, frames_per_clip: int, device: str | torch.device = "cpu",
                   seed: int = 0) -> nn.Module:
    """The frozen encoder: the checkpoint's weights, or (``init: random``) fresh weights of its shape
    (:func:`jepa.hub.random_init`, seeded by ``seed``).

    Without a checkpoint, ``init: random`` builds ``b``'s architecture for clips of
    ``frames_per_clip`` frames at ``crop_size`` pixels.
    """
    from jepa.hub import freeze, load_backbone, random_init

    if b.checkpoint is not None:
        return load_backbone(b.checkpoint, key=b.key, device=device, init=b.init, seed=seed)
    if b.init != "random":
        raise ConfigError("backbone.init=pretrained needs backbone.checkpoint=PATH (or use backbone.init=random)")
    return freeze(random_init(b.kwargs(crop_size, frames_per_clip), seed)).to(device)


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
            raise ConfigError(f"backbone.out_layers must name blocks in [-{depth}, {depth}) of this "
                             f"{depth}-block encoder, got {list(layers)}")
        self.encoder, self.layers = encoder, sorted({i % depth for i in layers})

    @property
    def embed_dim(self) -> int:
        return len(self.layers) * self.encoder.embed_dim

    def token_grid(self, frames: int, height: int, width: int) -> tuple[int, int, int]:
        return self.encoder.token_grid(frames, height, width)

    def forward(self, clips: Tensor) -> Tensor:
        return torch.cat(self.encoder(clips, out_layers=self.layers), dim=-1)


def backbone_settings(b: BackboneConfig) -> dict:
    """What the frozen backbone does beyond its weights (part of its feature cache's identity)."""
    out: dict = {"out_layers": list(b.out_layers) if b.out_layers else None}
    if b.future_tokens:
        out["future"] = {"steps": b.future_steps, "mask_index": b.future_mask_index}
    return out


def start_run(cfg, crop_size: int, frames_per_clip: int) -> tuple[Path, torch.device, nn.Module]:
    """Shared start of a frozen-backbone evaluation: the run folder with its ``config.yaml``, the
    device and the frozen encoder. ``cfg`` has ``backbone`` (:class:`BackboneConfig`) and ``meta``
    (:class:`EvalMetaConfig`)."""
    from jepa.config import save_config

    run_dir = Path(cfg.meta.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.yaml")
    device = resolve_device(cfg.meta.device)
    encoder = build_backbone(cfg.backbone, crop_size, frames_per_clip, device, cfg.meta.seed)
    tubelet = encoder.tubelet_size if encoder.is_video else 1
    if frames_per_clip < tubelet:
        raise ConfigError(f"data.frames_per_clip={frames_per_clip} is less than the backbone's tubelet size {tubelet}")
    if cfg.backbone.out_layers:
        encoder = ConcatLayers(encoder, cfg.backbone.out_layers)
    return run_dir, device, encoder


# ------------------------------------------------------------------------------------------ features

class ProbeItems(CacheItems, Protocol):
    """A probe dataset: cache items (:class:`~jepa.data.feature_cache.CacheItems`) whose readable item
    holds ``clips [V, C, 3, T, H, W]``, plus ``labels(i) -> {name: int}`` known without reading."""

    def labels(self, i: int) -> dict[str, int]: ...


@torch.no_grad()
def encode_clips(encoder, clips: Tensor) -> Tensor:
    """``clips [B, V, C, 3, T, H, W]`` -> tokens ``[B, V, C * N, D]`` (the C clips' tokens concatenated)."""
    b, v, c = clips.shape[:3]
    tokens = encoder(clips.flatten(0, 2))
    return tokens.reshape(b, v, c * tokens.shape[1], tokens.shape[2])


def cached_features(name: str, dataset: ProbeItems, encoder: nn.Module, cache_dir: Path, backbone: BackboneConfig,
                    data: dict, cfg: EvalMetaConfig, device: torch.device) -> tuple[FeatureSet, int]:
    """The encoder's tokens ``[M, V, N, D]`` of every readable item of ``dataset``, from the feature
    cache at ``cache_dir``: an item is encoded again only when its source (video file, annotation)
    changed, or for every item when the encoder's weights, ``backbone``'s settings or the
    preprocessing ``data`` (frames, fps, crop, ...) changed. On CUDA the encoder runs under bf16 autocast.

    Returns the features with their labels and the number of skipped items (unreadable video or
    empty window).
    """
    precision = cuda_precision(device, "bf16")
    identity = {"encoder": encoder_identity(encoder), "backbone": backbone_settings(backbone), "data": data,
                "precision": precision, "dtype": cfg.feature_dtype}
    cache = FeatureCache(cache_dir, identity)
    dtype = getattr(torch, cfg.feature_dtype)

    def encode(items: list[dict]) -> list[dict[str, Tensor]]:
        with autocast(device, precision):
            tokens = encode_clips(encoder, torch.stack([it["clips"] for it in items]).to(device)).float().cpu()
        return [{"features": t.to(dtype)} for t in tokens]

    summary = fill_cache(cache, dataset, encode, batch_size=cfg.batch_size, num_workers=cfg.num_workers,
                         progress=cfg.progress, desc=f"encode {name}")
    keep = [i for i in range(len(dataset)) if cache.skipped(dataset.key(i)) is None]
    labels = [dataset.labels(i) for i in keep]
    names = list(labels[0]) if labels else []
    feats = [cache.get(dataset.key(i))["features"] for i in keep]
    features = torch.stack(feats) if feats else torch.empty(0)
    return FeatureSet(features, {n: torch.tensor([lab[n] for lab in labels], dtype=torch.int64) for n in names},
                      [dataset.key(i) for i in keep]), len(summary.skipped)


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
                raise ConfigError("probe.positions needs the token grid of the backbone")
            probe = WithPositions(probe, dim, grid)
        if p.standardize:
            if stats is None:
                raise ConfigError("probe.standardize needs the training features' statistics")
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
