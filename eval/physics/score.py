"""Score the twin bench: surprise curves of both twins of every pair, pairwise accuracy and AUROC.

A video's score is the maximum (or the mean) of its surprise curve (:func:`jepa.physics.surprise`)
over the defined steps, as the paper reports. Metrics, overall and per violation:

- ``pairwise_max`` / ``pairwise_mean``: how often the impossible twin scores higher than its possible
  twin (ties half);
- ``auroc_max`` / ``auroc_mean``: all impossible videos against all possible ones;
- ``localised``: how often the impossible twin's most surprising step is the event's (the steps
  whose scored future holds the event frame's tubelet, or the one after it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from eval.physics.metrics import auroc, pairwise_accuracy
from eval.physics.twins import VIOLATIONS, Pair, load_frames
from jepa.data.transforms import VideoTransform
from jepa.models.predictor import MaskedPredictor
from jepa.models.vit import VisionTransformer, feature_layer_norm
from jepa.physics import default_context_steps, summarize, surprise


@dataclass
class ScoreConfig:
    """How videos are turned into surprise curves (the same sampling as the pretraining clips)."""

    frame_step: int = 1  # keep every n-th frame
    crop_size: int = 64  # the evaluation transform: short side to crop * 256/224, centre crop
    context_steps: int | None = None  # None: the predictor's training clip less predict_steps
    predict_steps: int = 1
    mask_index: int = 1  # the predictor's mask token of the end-anchored (future) mask
    batch_size: int = 16

    def __post_init__(self) -> None:
        if self.frame_step < 1 or self.predict_steps < 1 or self.batch_size < 1:
            raise ValueError(f"frame_step, predict_steps and batch_size must be >= 1, got {self.frame_step}, "
                             f"{self.predict_steps}, {self.batch_size}")


def frames_to_clip(frames: np.ndarray, frame_step: int, crop_size: int, tubelet_size: int) -> Tensor:
    """uint8 ``[T, H, W, 3]`` -> normalised ``[3, T', crop, crop]``: every ``frame_step``-th frame,
    trimmed to a multiple of the tubelet size."""
    kept = frames[::frame_step]
    kept = kept[: len(kept) - len(kept) % tubelet_size]
    if len(kept) == 0:
        raise ValueError(f"{len(frames)} frames at step {frame_step} give no full tubelet of {tubelet_size}")
    return VideoTransform(crop_size, training=False)(kept)


def surprise_curve(encoder: VisionTransformer, predictor: MaskedPredictor, frames: np.ndarray, cfg: ScoreConfig,
                   target_encoder: VisionTransformer | None = None) -> Tensor:
    """``[T']`` surprise of uint8 ``frames [T, H, W, 3]`` (NaN where undefined)."""
    clip = frames_to_clip(frames, cfg.frame_step, cfg.crop_size, encoder.tubelet_size)
    return surprise(encoder, predictor, clip, target_encoder, cfg.context_steps, cfg.predict_steps,
                    cfg.mask_index, cfg.batch_size)


@torch.no_grad()
def copy_baseline_curve(target_encoder: VisionTransformer, frames: np.ndarray, cfg: ScoreConfig,
                        context_steps: int) -> Tensor:
    """``[T']`` surprise of a predictor that copies the last context step (a reference, no predictor):
    the L1 between the target tokens of steps ``[t, t + k)`` and those of step ``t - 1``, each window
    encoded as :func:`jepa.physics.surprise` encodes it. It shows what the target features alone
    reveal of an event."""
    clip = frames_to_clip(frames, cfg.frame_step, cfg.crop_size, target_encoder.tubelet_size)
    c, k = context_steps, cfg.predict_steps
    _, frames_n, height, width = clip.shape
    ts = target_encoder.tubelet_size
    steps = frames_n // ts
    _, gh, gw = target_encoder.token_grid(frames_n, height, width)
    out = torch.full((steps,), float("nan"))
    for t in range(c, steps - k + 1):
        window = clip[:, (t - c) * ts : (t + k) * ts].unsqueeze(0)
        tokens = feature_layer_norm(target_encoder(window).float()).view(1, c + k, gh * gw, -1)
        out[t] = (tokens[:, c:] - tokens[:, c - 1 : c]).abs().mean()
    return out


@dataclass
class PairScore:
    pair: Pair
    possible: Tensor  # [T'] surprise curves
    impossible: Tensor
    event_step: int  # tubelet step (of the sampled clip) that holds the event frame

    def summary(self, twin: str) -> dict[str, float]:
        return summarize(self.possible if twin == "possible" else self.impossible)


@dataclass
class BenchResult:
    scores: list[PairScore]
    predict_steps: int
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        groups = {"all": self.scores, **{v: [s for s in self.scores if s.pair.violation == v] for v in VIOLATIONS}}
        self.metrics = {name: self._metrics(group) for name, group in groups.items() if group}

    def _metrics(self, group: list[PairScore]) -> dict[str, float]:
        out: dict[str, float] = {"pairs": len(group)}
        for stat in ("max", "mean"):
            imp = [s.summary("impossible")[stat] for s in group]
            pos = [s.summary("possible")[stat] for s in group]
            out[f"pairwise_{stat}"] = pairwise_accuracy(imp, pos)
            out[f"auroc_{stat}"] = auroc(imp, pos)
        k = self.predict_steps
        out["localised"] = float(np.mean([s.event_step - k + 1 <= s.summary("impossible")["argmax"] <= s.event_step + 1
                                          for s in group]))
        return out

    def rows(self) -> list[dict]:
        """One CSV row per pair: its ids and both twins' max, mean and argmax."""
        out = []
        for s in self.scores:
            row = {"pair": s.pair.pair, "violation": s.pair.violation, "event_frame": s.pair.event_frame,
                   "event_step": s.event_step}
            for twin in ("possible", "impossible"):
                row.update({f"{twin}_{k}": v for k, v in s.summary(twin).items()})
            out.append(row)
        return out

    def lines(self) -> list[str]:
        """A table of the metrics (percent), one line per group."""
        cols = {"pairwise_max": "pair max", "pairwise_mean": "pair mean", "auroc_max": "AUROC max",
                "auroc_mean": "AUROC mean", "localised": "localised"}
        out = [f"{'':<9} {'pairs':>5} " + " ".join(f"{c:>10}" for c in cols.values())]
        for name, m in self.metrics.items():
            out.append(f"{name:<9} {int(m['pairs']):>5} " + " ".join(f"{100 * m[k]:>10.1f}" for k in cols))
        return out


@torch.no_grad()
def score_pairs(pairs: list[Pair], encoder: VisionTransformer, predictor: MaskedPredictor, cfg: ScoreConfig,
                target_encoder: VisionTransformer | None = None, progress: bool = True,
                copy_baseline: bool = False) -> BenchResult:
    """Surprise curves of both twins of every pair and the bench metrics; with ``copy_baseline`` the
    curves of :func:`copy_baseline_curve` (target encoder only) instead of the predictor's."""
    from tqdm import tqdm

    target_encoder = target_encoder or encoder
    c = cfg.context_steps or default_context_steps(predictor, cfg.predict_steps)
    scores = []
    for pair in tqdm(pairs, desc="surprise", disable=not progress):
        curves = [copy_baseline_curve(target_encoder, load_frames(p), cfg, c) if copy_baseline else
                  surprise_curve(encoder, predictor, load_frames(p), cfg, target_encoder)
                  for p in (pair.possible, pair.impossible)]
        first_sampled = -(-pair.event_frame // cfg.frame_step)  # the first kept frame that shows the event
        event_step = first_sampled // encoder.tubelet_size
        scores.append(PairScore(pair, curves[0], curves[1], event_step))
    return BenchResult(scores, cfg.predict_steps)
