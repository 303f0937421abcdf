"""Embed a video with a frozen V-JEPA 2 backbone.

    python examples/frozen_backbone.py --backbone vjepa2-vitl-256 --video clip.mp4   # released weights
    python examples/frozen_backbone.py --backbone runs/demo/pretrain/latest.pt --video clip.mp4
    python examples/frozen_backbone.py --tiny      # no files needed: a random tiny ViT and a rendered clip

Released weights are read from local files only (``$JEPA_HOME``, default ``~/.cache/jepa``; a missing
file is an error that says where to put it). The clip goes through the released evaluation
transform (short side to crop*256/224, centre crop, ImageNet normalisation).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

import jepa
from jepa.data.transforms import VideoTransform
from jepa.data.video import clip_indices, read_frames, video_info


def tiny_backbone_and_clip(folder: Path) -> tuple[str, np.ndarray]:
    """A random tiny ViT exported as a project checkpoint, and 16 frames rendered on the simulated arm."""
    from eval.envs.fetch import FetchEnv
    from jepa.hub import export_backbone

    env = FetchEnv("reach", image_size=64)
    env.reset(seed=0)
    frames = [env.image()]
    for t in range(15):
        env.step(np.array([np.sin(t / 3), np.cos(t / 3), 0.2, 0.0], np.float32))
        frames.append(env.image())
    env.close()
    model = jepa.build_vit("tiny", img_size=64, num_frames=16, patch_size=16)
    return str(export_backbone(model, folder / "tiny_backbone.safetensors")), np.stack(frames)


def load_clip(path: str, frames: int, frame_step: int) -> np.ndarray:
    """``frames`` frames ``[T, H, W, 3]`` uint8 from the middle of a video file (evaluation sampling)."""
    return read_frames(path, clip_indices(video_info(path).num_frames, frames, frame_step, rng=None)[0])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbone", help="a name from jepa.list_backbones() or a checkpoint path")
    p.add_argument("--video", help="a video file")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--frame-step", type=int, default=4)
    p.add_argument("--size", type=int, default=256, help="crop size in pixels")
    p.add_argument("--tiny", action="store_true", help="random tiny backbone + a rendered clip (no files)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.tiny:
            backbone, clip = tiny_backbone_and_clip(Path(tmp))
            args.size = 64
        else:
            if not (args.backbone and args.video):
                p.error("give --backbone and --video, or --tiny")
            backbone, clip = args.backbone, load_clip(args.video, args.frames, args.frame_step)
        encoder = jepa.load_backbone(backbone)  # frozen, eval mode
        x = VideoTransform(args.size, training=False)(clip)[None]  # [1, 3, T, S, S]
        with torch.inference_mode():
            out = encoder.encode(x)
    print(f"backbone: {backbone}")
    print(f"clip {tuple(clip.shape)} -> input {tuple(x.shape)} -> tokens {tuple(out.tokens.shape)} "
          f"[B, N, D], pooled {tuple(out.pooled.shape)} [B, D]")
    print(f"pooled vector: norm {out.pooled.norm():.3f}, first values {out.pooled[0, :4].tolist()}")


if __name__ == "__main__":
    main()
