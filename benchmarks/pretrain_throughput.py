"""Pretraining throughput (clips/s, tokens/s) and peak memory on this machine.

    python benchmarks/pretrain_throughput.py [--steps 10] [--threads 2]

Times full training steps (context encoder, predictor, EMA target, backward, AdamW, EMA update) on
random clips with the released masks, for the tiny CPU config and ViT-L at a small input.
"""

from __future__ import annotations

import argparse
import copy
import resource
import time

import numpy as np
import torch

from jepa.masks import MaskCollator, MaskConfig
from jepa.models.predictor import MaskedPredictor
from jepa.models.vit import build_vit, feature_layer_norm
from jepa.train.ema import ema_update
from jepa.train.optim import build_adamw, set_lr_wd
from jepa.train.pretrain import gather_tokens, jepa_loss

SETTINGS = {
    # name: (vit size, overrides, frames, pixels, batch, predictor (dim, depth, heads), masks)
    "tiny-cpu": ("tiny", dict(embed_dim=128, depth=4, num_heads=4, patch_size=8), 2, 64, 64, (96, 3, 4),
                 [MaskConfig(4, (0.15, 0.15)), MaskConfig(1, (0.5, 0.5))]),
    "vitl-2x64": ("large", dict(patch_size=16), 2, 64, 2, (384, 12, 12),
                  [MaskConfig(8, (0.15, 0.15)), MaskConfig(2, (0.7, 0.7))]),
    "vitl-16x128": ("large", dict(patch_size=16), 16, 128, 1, (384, 12, 12),
                    [MaskConfig(8, (0.15, 0.15)), MaskConfig(2, (0.7, 0.7))]),
}


def bench(name: str, steps: int) -> tuple[float, float, float]:
    size, over, frames, pixels, batch, (pd, pdepth, pheads), masks = SETTINGS[name]
    enc = build_vit(size, img_size=pixels, num_frames=frames, **over)
    target = copy.deepcopy(enc).requires_grad_(False)
    pred = MaskedPredictor(enc.embed_dim, enc.nominal_grid, pd, pdepth, pheads, num_mask_tokens=len(masks))
    opt = build_adamw({"encoder": enc, "predictor": pred})
    set_lr_wd(opt, 1e-4, 0.04)
    collate = MaskCollator(masks, enc.nominal_grid, batch, seed=0)
    clips = torch.randn(batch, 3, frames, pixels, pixels)

    def step(i: int) -> None:
        b = collate([{"clip": c, "epoch": 0, "batch": i, "row": r} for r, c in enumerate(clips)])
        with torch.no_grad():
            h = feature_layer_norm(target(b["clips"]))
        preds = [pred(enc(b["clips"], masks=c), c, t, m) for m, (c, t) in enumerate(zip(b["context"], b["target"]))]
        loss = jepa_loss(preds, [gather_tokens(h, t) for t in b["target"]])
        opt.zero_grad()
        loss.backward()
        opt.step()
        ema_update(target, enc, 0.999)

    step(0)
    times = []
    for i in range(steps):
        t0 = time.perf_counter()
        step(i + 1)
        times.append(time.perf_counter() - t0)
    sec = float(np.median(times))
    tokens = batch * enc.nominal_grid[0] * enc.nominal_grid[1] * enc.nominal_grid[2]
    return batch / sec, tokens / sec, sec


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--settings", nargs="+", default=list(SETTINGS))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, median of {args.steps} steps")
    print(f"{'setting':12} {'s/step':>8} {'clips/s':>8} {'tokens/s':>9} {'peak RSS GiB':>13}")
    for name in args.settings:
        clips_s, tokens_s, sec = bench(name, args.steps)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"{name:12} {sec:>8.3f} {clips_s:>8.2f} {tokens_s:>9.0f} {rss:>13.2f}", flush=True)


if __name__ == "__main__":
    main()
