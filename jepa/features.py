"""``jepa features``: embed video files with a frozen backbone into one safetensors file per video.

Each output ``<out>/<video stem>.safetensors`` holds ``tokens`` ``[clips, N, D]`` (patch tokens after
the final norm) and ``pooled`` ``[clips, D]`` (their mean). A file that cannot be read is reported
by name and skipped; the summary counts it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from jepa.data.transforms import VideoTransform
from jepa.data.video import VideoReadError, clip_indices, is_image_path, read_frames, read_image, video_info
from jepa.device import resolve_device


@dataclass
class FeatureRunSummary:
    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


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


def load_clips(path: Path, frames: int, frame_step: int, num_clips: int, transform: VideoTransform) -> torch.Tensor:
    """``[num_clips, 3, frames, S, S]`` evenly spread clips of a video (an image is repeated)."""
    if is_image_path(path):
        image = torch.from_numpy(read_image(path))
        return transform(image.unsqueeze(0).repeat(frames, 1, 1, 1)).unsqueeze(0)
    info = video_info(path)
    idx = clip_indices(info.num_frames, frames, frame_step, rng=None, num_clips=num_clips)
    return torch.stack([transform(read_frames(path, row)) for row in idx])


def _batches(videos: list[Path], load, summary: FeatureRunSummary, batch_size: int) -> Iterator[tuple]:
    names, clips = [], []
    for path in videos:
        try:
            clip = load(path)
        except VideoReadError as e:
            print(f"skipped: {e}", file=sys.stderr)
            summary.skipped.append((str(path), str(e)))
            continue
        names.append((path, clip.shape[0]))
        clips.append(clip)
        if len(names) == batch_size:
            yield names, torch.cat(clips)
            names, clips = [], []
    if names:
        yield names, torch.cat(clips)


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
) -> FeatureRunSummary:
    """Embed ``videos`` with ``model`` and write ``out_dir/<stem>.safetensors`` for each readable one."""
    from safetensors.torch import save_file

    device = device or torch.device("cpu")
    out_dir.mkdir(parents=True, exist_ok=True)
    transform = VideoTransform(size, training=False)
    summary = FeatureRunSummary()
    load = lambda p: load_clips(p, frames, frame_step, num_clips, transform)  # noqa: E731
    use_autocast = device.type == "cuda" and dtype != torch.float32
    autocast = torch.autocast("cuda", dtype=dtype) if use_autocast else nullcontext()
    bar = tqdm(total=len(videos), desc="features", unit="video")
    for names, clips in _batches(videos, load, summary, batch_size):
        with torch.no_grad(), autocast:
            tokens = model(clips.to(device)).float().cpu()
        start = 0
        for path, n in names:
            t = tokens[start : start + n]
            start += n
            target = out_dir / f"{path.stem}.safetensors"
            save_file({"tokens": t.contiguous(), "pooled": t.mean(1).contiguous()}, str(target),
                      metadata={"source": str(path)})
            summary.written.append(target)
        bar.update(len(names))
    bar.update(len(summary.skipped))
    bar.close()
    return summary


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jepa features", description=__doc__.splitlines()[0])
    p.add_argument("--backbone", required=True, help="backbone name or checkpoint path")
    p.add_argument("--checkpoint", default=None, help="weights for a named backbone")
    p.add_argument("--key", default="target_encoder", help="checkpoint part to load")
    p.add_argument("--videos", nargs="+", required=True, help="video files and/or .txt/.csv lists")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--frame-step", type=int, default=4)
    p.add_argument("--clips", type=int, default=1, help="evenly spread clips per video")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=4, help="videos per forward pass")
    p.add_argument("--device", default="auto")
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
    print(f"wrote {len(summary.written)} feature files to {args.out}; skipped {len(summary.skipped)} unreadable")
    for path, _ in summary.skipped:
        print(f"  skipped {path}")
    return 0
