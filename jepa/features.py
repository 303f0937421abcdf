"""``jepa features``: embed video files with a frozen backbone into one safetensors file per video.

The output folder is a feature cache (:mod:`jepa.data.feature_cache`): each video's
``<out>/<relative path>.safetensors`` (its path relative to the folder that holds all the inputs,
e.g. ``cam1/clip.mp4.safetensors``, so same-named videos in different folders never share a file)
holds ``tokens`` ``[clips, N, D]`` (patch tokens after the final norm) and ``pooled`` ``[clips, D]``
(their mean); ``index.json`` lists them. A re-run encodes only the videos that are new or changed
(or all of them after a change of backbone weights or settings). A file that cannot be read is
reported by name and skipped; the summary counts it.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from jepa.data.feature_cache import FeatureCache, Skipped, encoder_identity, file_identity, fill_cache
from jepa.data.transforms import VideoTransform
from jepa.data.video import VideoReadError, clip_indices, is_image_path, read_frames, read_image, video_info
from jepa.device import autocast, cuda_precision, is_device_name, resolve_device

PRECISION = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


@dataclass
class FeatureRunSummary:
    written: list[Path] = field(default_factory=list)  # every readable video's file (new or up to date)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    encoded: int = 0  # videos encoded by this run (the others were up to date)


def list_videos(inputs: Sequence[str]) -> list[Path]:
    """Video paths from files and from list files (``.txt``/``.csv``: first column of each line)."""
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.suffix in (".txt", ".csv") and p.is_file():
            for line in p.read_text().splitlines():
                if line.strip():
                    entry = Path(line.split()[0])
                    out.append(entry if entry.is_absolute() else p.parent / entry)
        else:
            out.append(p)
    return out


def relative_names(videos: Sequence[Path]) -> list[str]:
    """Each video's path relative to the deepest folder that holds all of them (``/``-separated);
    distinct files get distinct names."""
    resolved = [Path(os.path.abspath(v)) for v in videos]
    if not resolved:
        return []
    root = Path(os.path.commonpath([str(p.parent) for p in resolved]))
    return [p.relative_to(root).as_posix() for p in resolved]


def load_clips(path: Path, frames: int, frame_step: int, num_clips: int, transform: VideoTransform) -> torch.Tensor:
    """``[num_clips, 3, frames, S, S]`` evenly spread clips of a video (an image is repeated)."""
    if is_image_path(path):
        image = torch.from_numpy(read_image(path))
        return transform(image.unsqueeze(0).repeat(frames, 1, 1, 1)).unsqueeze(0)
    info = video_info(path)
    idx = clip_indices(info.num_frames, frames, frame_step, rng=None, num_clips=num_clips)
    return torch.stack([transform(read_frames(path, row)) for row in idx])


class VideoItems:
    """Videos as feature-cache items: keyed by their relative names, with the file's size and
    modification time as the source; an item is ``{"path", "clips"}`` or :class:`Skipped`."""

    def __init__(self, videos: Sequence[Path], frames: int, frame_step: int, num_clips: int, size: int) -> None:
        unique = list(dict.fromkeys(Path(os.path.abspath(v)) for v in videos))  # a video listed twice is embedded once
        self.videos, self.names = unique, relative_names(unique)
        self.frames, self.frame_step, self.num_clips = frames, frame_step, num_clips
        self.transform = VideoTransform(size, training=False)

    def __len__(self) -> int:
        return len(self.videos)

    def key(self, i: int) -> str:
        return self.names[i]

    def source(self, i: int) -> dict:
        return file_identity(self.videos[i])

    def __getitem__(self, i: int) -> dict | Skipped:
        path = self.videos[i]
        try:
            return {"path": str(path), "clips": load_clips(path, self.frames, self.frame_step, self.num_clips,
                                                           self.transform)}
        except VideoReadError as e:
            return Skipped(str(path), str(e))


def embed_videos(
    model: torch.nn.Module,
    videos: list[Path],
    out_dir: Path,
    frames: int = 16,
    size: int = 256,
    frame_step: int = 4,
    num_clips: int = 1,
    batch_size: int = 4,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
    progress: bool = True,
) -> FeatureRunSummary:
    """Embed ``videos`` with ``model`` into the feature cache at ``out_dir`` (see the module docstring).

    ``batch_size`` videos go through the model at once; on CUDA it runs under autocast at ``dtype``.
    """
    device = device or torch.device("cpu")
    items = VideoItems(videos, frames, frame_step, num_clips, size)
    precision = cuda_precision(device, PRECISION[dtype])
    identity = {"encoder": encoder_identity(model), "frames": frames, "frame_step": frame_step, "clips": num_clips,
                "size": size, "precision": precision, "outputs": "tokens after the final norm; pooled = their mean"}
    cache = FeatureCache(out_dir, identity)

    def encode(batch: list[dict]) -> list[dict[str, torch.Tensor]]:
        with torch.no_grad(), autocast(device, precision):
            tokens = model(torch.cat([it["clips"] for it in batch]).to(device)).float().cpu()
        out, start = [], 0
        for it in batch:
            t = tokens[start : start + it["clips"].shape[0]]
            start += it["clips"].shape[0]
            out.append({"tokens": t.contiguous(), "pooled": t.mean(1).contiguous()})
        return out

    filled = fill_cache(cache, items, encode, batch_size=batch_size, progress=progress, desc="features",
                        metadata=lambda it: {"source": it["path"]})
    path_of = dict(zip(items.names, items.videos))
    skipped = {s.key for s in filled.skipped}
    return FeatureRunSummary(written=[cache.path(k) for k in items.names if k not in skipped],
                             skipped=[(str(path_of[s.key]), s.reason) for s in filled.skipped], encoded=filled.encoded)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _device(text: str) -> str:
    if not is_device_name(text):
        raise argparse.ArgumentTypeError(f"must be auto, cpu, cuda, cuda:N or mps, got {text!r}")
    return text


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jepa features", description=__doc__.splitlines()[0])
    p.add_argument("--backbone", required=True, help="backbone name or checkpoint path")
    p.add_argument("--checkpoint", default=None, help="weights for a named backbone")
    p.add_argument("--key", default="target_encoder", help="checkpoint part to load")
    p.add_argument("--videos", nargs="+", required=True, help="video files and/or .txt/.csv lists")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--frames", type=_positive_int, default=16)
    p.add_argument("--frame-step", type=_positive_int, default=4)
    p.add_argument("--clips", type=_positive_int, default=1, help="evenly spread clips per video")
    p.add_argument("--size", type=_positive_int, default=256)
    p.add_argument("--batch-size", type=_positive_int, default=4, help="videos per forward pass")
    p.add_argument("--device", default="auto", type=_device, help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    return p


def main(argv: Sequence[str]) -> int:
    from jepa.hub import load_backbone

    args = _parser().parse_args(list(argv))
    device = resolve_device(args.device)
    model = load_backbone(args.backbone, checkpoint=args.checkpoint, key=args.key, device=device)
    summary = embed_videos(
        model, list_videos(args.videos), args.out, frames=args.frames, size=args.size,
        frame_step=args.frame_step, num_clips=args.clips, batch_size=args.batch_size, device=device,
        dtype=getattr(torch, args.dtype),
    )
    print(f"wrote {summary.encoded} feature files to {args.out} "
          f"({len(summary.written) - summary.encoded} already up to date); skipped {len(summary.skipped)} unreadable")
    for path, _ in summary.skipped:
        print(f"  skipped {path}")
    return 0
