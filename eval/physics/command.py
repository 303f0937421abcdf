"""``jepa surprise VIDEO... --backbone NAME_OR_CKPT``: did something impossible happen in these videos?

Per video: the surprise at every tubelet step (:func:`jepa.physics.surprise`: the pretraining
predictor's L1 error on the next step given the past window, against the layer-normed target
tokens), its maximum and mean (as the paper reports), ``<out>/<stem>.csv`` (one row per step:
``step, first_frame, time_s, surprise``; steps without a full context are empty), and
``<out>/<stem>.png`` (surprise over time, the video's frames beneath). ``<out>/summary.csv`` lists
every video's max, mean and time of the max. Unreadable videos are reported and skipped.

The backbone is a checkpoint of ``jepa pretrain`` or an official V-JEPA 2 ``.pt`` (path or name):
both encoders and the predictor come from it. The future mask token, the frame step and the context
length default to what the checkpoint's pretraining used (its end-anchored mask; its clips), else
the released predictor's token 1, step 4 and the predictor's nominal clip.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch


def pretraining_defaults(backbone: str) -> dict:
    """``mask_index`` and ``frame_step`` of a project checkpoint's pretraining config (empty otherwise)."""
    from jepa.checkpoints import CheckpointError, read_torch_file
    from jepa.hub import BACKBONES

    if backbone in BACKBONES or not Path(backbone).is_file() or Path(backbone).suffix not in (".pt", ".pth"):
        return {}
    try:
        config = read_torch_file(backbone).get("config")
    except CheckpointError:
        return {}
    if not isinstance(config, dict):
        return {}
    out = {}
    masks = config.get("masks") or []
    ends = [i for i, m in enumerate(masks) if isinstance(m, dict) and m.get("temporal_anchor") == "end"]
    if ends:  # mask config i trains mask token i (modulo the number of tokens)
        out["mask_index"] = ends[0]
    step = (config.get("data") or {}).get("frame_step")
    if step:
        out["frame_step"] = int(step)
    return out


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jepa surprise", description=__doc__.splitlines()[0])
    p.add_argument("videos", nargs="+", help="video files and/or .txt/.csv lists of them")
    p.add_argument("--backbone", required=True, help="pretraining checkpoint (path) or backbone name")
    p.add_argument("--checkpoint", default=None, help="weights for a named backbone")
    p.add_argument("--context-key", default="target_encoder", choices=("target_encoder", "encoder"),
                   help="checkpoint part that encodes the past (the target is always the target encoder)")
    p.add_argument("--out", type=Path, default=Path("runs/surprise"))
    p.add_argument("--frame-step", type=int, default=None, help="keep every n-th frame (default: the pretraining's)")
    p.add_argument("--size", type=int, default=None, help="crop size (default: the encoder's image size)")
    p.add_argument("--context-steps", type=int, default=None, help="past tubelet steps (default: training clip - 1)")
    p.add_argument("--predict-steps", type=int, default=1)
    p.add_argument("--mask-index", type=int, default=None, help="predictor mask token of the future")
    p.add_argument("--max-frames", type=int, default=None, help="read at most this many (sampled) frames")
    p.add_argument("--batch-size", type=int, default=16, help="windows per forward pass")
    p.add_argument("--device", default="auto")
    return p


def _load(args):
    from jepa.device import resolve_device
    from jepa.hub import load_backbone, load_predictor

    device = resolve_device(args.device)
    weights = args.checkpoint or args.backbone
    target = load_backbone(args.backbone, checkpoint=args.checkpoint, key="target_encoder", device=device)
    context = target if args.context_key == "target_encoder" else load_backbone(
        args.backbone, checkpoint=args.checkpoint, key="encoder", device=device)
    predictor = load_predictor(weights, device=device)
    return context, predictor, target


def read_video(path: Path, frame_step: int, max_frames: int | None) -> tuple[np.ndarray, float]:
    """Every ``frame_step``-th frame (uint8 ``[T, H, W, 3]``) and the video's frame rate."""
    from jepa.data.video import read_frames, video_info

    info = video_info(path)
    idx = np.arange(0, info.num_frames, frame_step)[: max_frames or None]
    return read_frames(path, idx), info.fps


def write_curve(path: Path, values: torch.Tensor, frames_per_step: int, fps: float) -> None:
    """``step, first_frame, time_s, surprise`` per tubelet step (first_frame in the original video)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(("step", "first_frame", "time_s", "surprise"))
        for t, v in enumerate(values.tolist()):
            w.writerow((t, t * frames_per_step, f"{t * frames_per_step / fps:.4f}",
                        "" if math.isnan(v) else f"{v:.6f}"))


def main(argv: Sequence[str]) -> int:
    from eval.physics.plot import plot_surprise
    from eval.physics.score import frames_to_clip
    from jepa.data.video import VideoReadError
    from jepa.features import list_videos
    from jepa.physics import summarize, surprise

    args = _parser().parse_args(list(argv))
    defaults = pretraining_defaults(args.checkpoint or args.backbone)
    frame_step = args.frame_step or defaults.get("frame_step", 4)
    mask_index = args.mask_index if args.mask_index is not None else defaults.get("mask_index", 1)
    context, predictor, target = _load(args)
    size = args.size or context.img_size[0]
    ts = context.tubelet_size
    rows, skipped = [], []
    for path in list_videos(args.videos):
        try:
            frames, fps = read_video(path, frame_step, args.max_frames)
            clip = frames_to_clip(frames, 1, size, ts)
            values = surprise(context, predictor, clip, target, args.context_steps, args.predict_steps, mask_index,
                              args.batch_size)
            s = summarize(values)
        except (VideoReadError, ValueError) as e:
            print(f"skipped {path}: {e}", file=sys.stderr)
            skipped.append(str(path))
            continue
        step_seconds = ts * frame_step / fps
        write_curve(args.out / f"{path.stem}.csv", values, ts * frame_step, fps)
        times = np.arange(len(values)) * step_seconds
        plot_surprise(args.out / f"{path.stem}.png", times, values.numpy(), frames,
                      np.arange(len(frames)) * frame_step / fps, title=path.name)
        rows.append((str(path), s["max"], s["mean"], s["argmax"] * step_seconds))
        print(f"{path}: max {s['max']:.4f} at {s['argmax'] * step_seconds:.2f} s, mean {s['mean']:.4f} "
              f"({int((~values.isnan()).sum())} steps)")
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "summary.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(("video", "max", "mean", "time_of_max_s"))
        w.writerows([(v, f"{a:.6f}", f"{b:.6f}", f"{c:.3f}") for v, a, b, c in rows])
    print(f"{len(rows)} videos scored, {len(skipped)} skipped; CSVs and plots in {args.out} "
          f"(frame step {frame_step}, mask token {mask_index})")
    return 0 if rows or not skipped else 1
