"""Video classification on frozen features: ``jepa eval classify CONFIG.yaml [key=value ...]``.

Data are official-format video lists (one ``path label`` line per video, no header; see
:func:`jepa.data.clips.read_video_csv`). Each video gives ``num_segments`` clips of
``frames_per_clip`` frames at ``frame_step`` spread evenly over it; the clips' tokens are
concatenated (``[num_segments * N, D]``), as the released multi-clip evaluation. At test time each
clip is seen in ``num_views`` spatial views (short side resized to the crop size, crops spread along
the long side) and the probe's softmax scores are averaged over views. Training features use one
centre view (features are encoded once and cached, so there is no training augmentation).

A grid of attentive probes (learning rate x weight decay) is trained with cross-entropy; the best
on validation top-1 is reported with the whole grid in ``<run_dir>/results.json``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from eval.anticipation.metrics import topk_accuracy
from eval.probes.frozen import (
    BackboneConfig,
    EvalMetaConfig,
    ProbeConfig,
    cached_features,
    probe_sweep,
    start_run,
)
from eval.probes.probe import FeatureSet, SweepResult, fit_sweep
from jepa.config import Checked, config_parser, non_negative, parse_config, positive, require
from jepa.data.clips import read_video_csv
from jepa.data.feature_cache import Skipped, file_identity
from jepa.data.transforms import normalize_frames
from jepa.data.video import VideoReadError, clip_indices, is_image_path, read_frames, read_image, video_info
from jepa.errors import SkipBudgetError
from jepa.files import write_json


@dataclass
class ClassifyDataConfig(Checked):
    train_csv: str = ""
    val_csv: str = ""
    num_classes: int = 0  # 0 = largest label + 1
    frames_per_clip: int = 8
    frame_step: int = 2
    num_segments: int = 1  # clips per video, tokens concatenated (released: 2-8)
    num_views: int = 1  # spatial views per clip at test time (released: 3)
    crop_size: int = 64

    def check(self) -> None:
        non_negative(self, "num_classes")
        positive(self, "frames_per_clip", "frame_step", "num_segments", "num_views", "crop_size")


@dataclass
class ClassifyConfig(Checked):
    data: ClassifyDataConfig = field(default_factory=ClassifyDataConfig)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    probe: ProbeConfig = field(default_factory=lambda: ProbeConfig(loss="ce"))
    meta: EvalMetaConfig = field(default_factory=lambda: EvalMetaConfig(run_dir="runs/eval/classify"))

    def check(self) -> None:
        require(not self.backbone.future_tokens, "backbone.future_tokens",
                "backbone.future_tokens is for action anticipation; classification probes the observed clip's "
                "tokens only")
        if self.backbone.checkpoint is None:
            require(self.data.frames_per_clip >= self.backbone.tubelet_size, "data.frames_per_clip",
                    f"must be at least backbone.tubelet_size={self.backbone.tubelet_size}, "
                    f"got {self.data.frames_per_clip}", ["backbone.tubelet_size"])


def spatial_views(frames: np.ndarray, crop: int, num_views: int) -> Tensor:
    """uint8 ``[T, H, W, 3]`` -> normalised ``[V, 3, T, crop, crop]``.

    The short side is resized to ``crop``; ``V`` crops are spread evenly along the long side
    (``V == 1``: the centre crop).
    """
    x = normalize_frames(frames)  # [T, 3, H, W]
    h, w = x.shape[-2:]
    size = (crop, max(crop, round(w * crop / h))) if h <= w else (max(crop, round(h * crop / w)), crop)
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    long_axis = 3 if size[1] >= size[0] else 2
    span = x.shape[long_axis] - crop
    starts = [span // 2] if num_views == 1 else np.linspace(0, span, num_views).round().astype(int).tolist()
    views = [x.narrow(long_axis, s, crop) for s in starts]
    return torch.stack([v.permute(1, 0, 2, 3) for v in views])


class ClassificationClips(torch.utils.data.Dataset):
    """Item ``i``: ``{"key", "clips": [V, C, 3, T, S, S], "labels": {"label": int}}`` or :class:`Skipped`;
    feature-cache items (:class:`eval.probes.frozen.ProbeItems`) whose source is the video file's path,
    size and modification time."""

    def __init__(self, csv: str | Path, d: ClassifyDataConfig, num_views: int) -> None:
        self.rows, self.d, self.num_views = read_video_csv(csv), d, num_views

    def __len__(self) -> int:
        return len(self.rows)

    def key(self, i: int) -> str:
        return str(self.rows[i][0])

    def source(self, i: int) -> dict:
        return {"video": file_identity(self.rows[i][0])}

    def labels(self, i: int) -> dict[str, int]:
        return {"label": int(self.rows[i][1])}

    def _frames(self, path: Path) -> list[np.ndarray]:
        d = self.d
        if is_image_path(path):
            return [np.repeat(read_image(path)[None], d.frames_per_clip, 0)] * d.num_segments
        info = video_info(path)
        idx = clip_indices(info.num_frames, d.frames_per_clip, d.frame_step, rng=None, num_clips=d.num_segments)
        return [read_frames(path, row) for row in idx]

    def __getitem__(self, i: int):
        path, label = self.rows[i]
        try:
            clips = [spatial_views(f, self.d.crop_size, self.num_views) for f in self._frames(path)]
        except VideoReadError as e:
            return Skipped(str(path), str(e))
        return {"key": str(path), "clips": torch.stack(clips, dim=1), "labels": {"label": label}}


def classification_metrics(scores: dict[str, Tensor], labels: dict[str, Tensor]) -> dict[str, float]:
    s, y = scores["label"], labels["label"]
    return {"top1": topk_accuracy(s, y, 1), "top5": topk_accuracy(s, y, min(5, s.shape[1]))}


@dataclass
class ClassifyResult:
    sweep: SweepResult
    counts: dict[str, int]
    run_dir: Path
    seconds: float

    def lines(self) -> list[str]:
        b = self.sweep.best
        return [f"videos: train {self.counts['train']} (skipped {self.counts['train_skipped']}), "
                f"val {self.counts['val']} (skipped {self.counts['val_skipped']})",
                f"best probe: lr {b['lr']:g}, weight decay {b['weight_decay']:g} (of {len(self.sweep.grid)})",
                f"top-1 {100 * b['top1']:.1f}%  top-5 {100 * b['top5']:.1f}%"]


def train_classifier(cfg: ClassifyConfig, train: FeatureSet, val: FeatureSet, device: torch.device,
                     grid: Sequence[int] | None = None) -> SweepResult:
    """Grid of attentive probes on features ``[M, V, N, D]``; best on val top-1. ``grid``: one clip's tokens."""
    p = cfg.probe
    if len(train) == 0 or len(val) == 0:
        raise SkipBudgetError("no training or validation video could be read (see the skipped messages above)")
    classes = cfg.data.num_classes or 1 + int(max(train.labels["label"].max(), val.labels["label"].max()))
    sweep = probe_sweep(p, classes, train, device, cfg.meta.seed, grid)
    return fit_sweep(sweep, train, val, p.epochs, p.batch_size, classification_metrics, "top1", seed=cfg.meta.seed)


def run_classification(cfg: ClassifyConfig) -> ClassifyResult:
    """Cache features of both lists, train the probe grid, write ``results.json``."""
    t0 = time.time()
    run_dir, device, encoder = start_run(cfg, cfg.data.crop_size, cfg.data.frames_per_clip)
    feats, skipped = {}, {}
    d = cfg.data
    for name, csv, views in (("train", d.train_csv, 1), ("val", d.val_csv, d.num_views)):
        ds = ClassificationClips(csv, d, views)
        data = {"frames_per_clip": d.frames_per_clip, "frame_step": d.frame_step, "num_segments": d.num_segments,
                "crop_size": d.crop_size, "views": views}
        feats[name], skipped[name] = cached_features(name, ds, encoder, run_dir / "features" / name, cfg.backbone,
                                                     data, cfg.meta, device)
    grid = encoder.token_grid(cfg.data.frames_per_clip, cfg.data.crop_size, cfg.data.crop_size)
    result = train_classifier(cfg, feats["train"], feats["val"], device, grid)
    counts = {"train": len(feats["train"]), "train_skipped": skipped["train"], "val": len(feats["val"]),
              "val_skipped": skipped["val"]}
    out = ClassifyResult(result, counts, run_dir, time.time() - t0)
    write_json(run_dir / "results.json", {"best": result.best, "grid": result.grid, "counts": counts,
                                          "seconds": out.seconds})
    return out


def main(argv: Sequence[str]) -> int:
    p = config_parser("jepa eval classify", __doc__.splitlines()[0],
                      "YAML config", "data.train_csv=train.csv")
    cfg, _ = parse_config(p, ClassifyConfig, argv)
    res = run_classification(cfg)
    for line in res.lines():
        print(line)
    print(f"outputs: {res.run_dir / 'results.json'} in {res.seconds:.0f} s")
    return 0
