"""Multi-block 3-D masks for masked latent prediction.

On a token grid ``(T', H', W')`` a mask is the union of ``num_blocks`` blocks; the union is the
prediction **target** and its complement the **context**. One block size is drawn per batch and mask
config (spatial area ``scale * H' W'`` with an aspect ratio, temporal extent ``scale * T'``), block
positions are drawn per sample. Every sample gets one mask of each config. A config with
``temporal_anchor="end"`` places its blocks at the clip's last time steps: with one full-frame
block of ``temporal_scale`` s it hides the last ``s * T'`` steps, so the predictor learns to predict
the future from the past (what the anticipation model's predicted tokens ask of it). Index lists are truncated
to the batch minimum so they stack (as released).

The released pair (:data:`SHORT_RANGE`, :data:`LONG_RANGE`) masks about 70% and 88% of the tokens at
256 px x 16 frames.

Randomness comes only from a generator seeded by ``(seed, keys of the batch's samples)``, so a batch
gets the same masks whatever the number of data-loader workers and after a resume.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import torch
from torch import Tensor

from jepa.config import Checked, ConfigError, in_range, ordered_pair, positive

TemporalAnchor = Literal["random", "end"]
TEMPORAL_ANCHORS: tuple[str, ...] = get_args(TemporalAnchor)


@dataclass(frozen=True)
class MaskConfig(Checked):
    """Blocks of one mask: ``spatial_scale`` and ``temporal_scale`` are (low, high) fractions of the
    grid's area and length in (0, 1]; ``aspect_ratio`` a (low, high) height/width ratio."""

    num_blocks: int = 8
    spatial_scale: tuple[float, float] = (0.15, 0.15)
    aspect_ratio: tuple[float, float] = (0.75, 1.5)
    temporal_scale: tuple[float, float] = (1.0, 1.0)
    temporal_anchor: TemporalAnchor = "random"  # "random": blocks anywhere in time; "end": ending at the last step

    def check(self) -> None:
        positive(self, "num_blocks", "spatial_scale", "aspect_ratio", "temporal_scale")
        in_range(self, "spatial_scale", 0.0, 1.0)
        in_range(self, "temporal_scale", 0.0, 1.0)
        for key in ("spatial_scale", "aspect_ratio", "temporal_scale"):
            ordered_pair(self, key)
SHORT_RANGE = MaskConfig(num_blocks=8, spatial_scale=(0.15, 0.15))
LONG_RANGE = MaskConfig(num_blocks=2, spatial_scale=(0.7, 0.7))
RELEASED_MASKS = (SHORT_RANGE, LONG_RANGE)


def _uniform(gen: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    return float(gen.uniform(lo_hi[0], lo_hi[1])) if lo_hi[1] > lo_hi[0] else float(lo_hi[0])


def block_size(cfg: MaskConfig, grid: tuple[int, int, int], gen: np.random.Generator) -> tuple[int, int, int]:
    """``(t, h, w)`` extent of the blocks of one batch."""
    gt, gh, gw = grid
    t = max(1, int(gt * _uniform(gen, cfg.temporal_scale)))
    area = gh * gw * _uniform(gen, cfg.spatial_scale)
    ar = _uniform(gen, cfg.aspect_ratio)
    h = min(gh, max(1, int(round(math.sqrt(area * ar)))))
    w = min(gw, max(1, int(round(math.sqrt(area / ar)))))
    return min(t, gt), h, w


def sample_target_mask(cfg: MaskConfig, grid: tuple[int, int, int], size: tuple[int, int, int],
                       gen: np.random.Generator, max_tries: int = 20) -> np.ndarray:
    """Boolean ``[T' H' W']`` target mask: the union of ``cfg.num_blocks`` blocks of ``size``.

    Resampled when it would leave no context token.
    """
    gt, gh, gw = grid
    t, h, w = size
    for _ in range(max_tries):
        mask = np.zeros(grid, dtype=bool)
        for _ in range(cfg.num_blocks):
            t0 = gt - t if cfg.temporal_anchor == "end" else gen.integers(0, gt - t + 1)
            h0 = gen.integers(0, gh - h + 1)
            w0 = gen.integers(0, gw - w + 1)
            mask[t0 : t0 + t, h0 : h0 + h, w0 : w0 + w] = True
        if not mask.all():
            return mask.reshape(-1)
    raise ConfigError(f"masks: {cfg} on the token grid {grid} covers every token in {max_tries} tries; lower its "
                      "spatial_scale or num_blocks")


def batch_masks(cfg: MaskConfig, grid: tuple[int, int, int], batch: int,
                gen: np.random.Generator) -> tuple[Tensor, Tensor]:
    """Context and target indices ``[B, K_ctx]``, ``[B, K_tgt]`` for one mask config."""
    size = block_size(cfg, grid, gen)
    masks = [sample_target_mask(cfg, grid, size, gen) for _ in range(batch)]
    ctx = [np.flatnonzero(~m) for m in masks]
    tgt = [np.flatnonzero(m) for m in masks]
    k_ctx, k_tgt = min(map(len, ctx)), min(map(len, tgt))
    return (torch.from_numpy(np.stack([c[:k_ctx] for c in ctx])),
            torch.from_numpy(np.stack([t[:k_tgt] for t in tgt])))


class MaskCollator:
    """``collate_fn`` that stacks clips and adds one (context, target) index pair per mask config.

    Masks are drawn for the whole **global** batch (all ranks) from a generator seeded by
    ``(seed, epoch, batch number)``; each rank keeps its own rows. So the masks of a sample do not
    depend on the number of data-loader workers or processes, and a resumed run redraws them
    exactly. Samples are dicts with ``clip`` ``[3, T, H, W]``, ``epoch``, ``batch`` and ``row`` (the
    sample's row in the global batch). Returns ``{"clips": [B, 3, T, H, W], "context": [[B, K_ctx],
    ...], "target": [[B, K_tgt], ...], "skipped": int}``.
    """

    def __init__(self, configs: Sequence[MaskConfig], grid: tuple[int, int, int], global_batch: int,
                 seed: int = 0) -> None:
        self.configs, self.grid, self.global_batch, self.seed = list(configs), tuple(grid), global_batch, seed

    def masks_for(self, epoch: int, batch: int) -> list[tuple[Tensor, Tensor]]:
        gen = np.random.default_rng(np.random.SeedSequence([self.seed, epoch, batch]))
        return [batch_masks(cfg, self.grid, self.global_batch, gen) for cfg in self.configs]

    def __call__(self, samples: list[dict]) -> dict:
        epoch, batch = samples[0]["epoch"], samples[0]["batch"]
        rows = torch.tensor([s["row"] for s in samples])
        pairs = self.masks_for(epoch, batch)
        return {"clips": torch.stack([s["clip"] for s in samples]),
                "context": [ctx[rows] for ctx, _ in pairs], "target": [tgt[rows] for _, tgt in pairs],
                "skipped": sum(s.get("skipped", 0) for s in samples)}
