"""Pretraining throughput (clips/s, tokens/s) and peak memory on this machine.

    python benchmarks/pretrain_throughput.py [--steps 10] [--threads 2] [--settings tiny-cpu ...]
    python benchmarks/pretrain_throughput.py --released-src ~/src/vjepa2   # also time the released models

Times full training steps (EMA target on the full clip, context encoder and predictor per mask, L1
loss, backward, AdamW, EMA update) on random clips with the released masks, for the tiny CPU config
and ViT-L at small inputs.

With ``--released-src`` (a local checkout of facebookresearch/vjepa2; nothing is downloaded) each
setting is also timed with the released ``VisionTransformer`` and ``VisionTransformerPredictor``
(RoPE, SDPA), called as its trainer calls them (one encoder and one predictor call per mask), in the
same process and with the same masks, optimizer, loss and EMA code: only the models differ.
"""

from __future__ import annotations

import argparse
import copy
import resource
import sys
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import torch
from torch import Tensor, nn

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

# (encoder, predictor, predict(enc, pred, clips, context_idx, target_idx, mask_index) -> [B, Kt, D])
Models = tuple[nn.Module, nn.Module, Callable[..., Tensor]]


def ours(name: str) -> Models:
    size, over, frames, pixels, _, (pd, pdepth, pheads), masks = SETTINGS[name]
    enc = build_vit(size, img_size=pixels, num_frames=frames, **over)
    pred = MaskedPredictor(enc.embed_dim, enc.nominal_grid, pd, pdepth, pheads, num_mask_tokens=len(masks))
    return enc, pred, lambda e, p, x, c, t, m: p(e(x, masks=c), c, t, m)


def released(name: str, src: str) -> Models:
    """The released models at the same widths, depths, heads, patch/tubelet, RoPE and SDPA."""
    sys.path.insert(0, src)
    from src.models.predictor import VisionTransformerPredictor
    from src.models.vision_transformer import VisionTransformer

    size, over, frames, pixels, _, (pd, pdepth, pheads), masks = SETTINGS[name]
    from jepa.models.vit import VIT_SIZES

    arch = {**VIT_SIZES[size], **{k: v for k, v in over.items() if k != "patch_size"}}
    common = dict(img_size=pixels, patch_size=over["patch_size"], num_frames=frames, tubelet_size=2,
                  norm_layer=partial(nn.LayerNorm, eps=1e-6), use_rope=True, use_sdpa=True)
    enc = VisionTransformer(embed_dim=arch["embed_dim"], depth=arch["depth"], num_heads=arch["num_heads"],
                            mlp_ratio=arch["mlp_ratio"], qkv_bias=True, **common)
    pred = VisionTransformerPredictor(embed_dim=arch["embed_dim"], predictor_embed_dim=pd, depth=pdepth,
                                      num_heads=pheads, use_mask_tokens=True, num_mask_tokens=len(masks),
                                      **common)
    return enc, pred, lambda e, p, x, c, t, m: p(e(x, masks=[c]), [c], [t], mask_index=m)


def bench(name: str, models: Models, steps: int) -> tuple[float, float, float]:
    """Median seconds per full step; returns (clips/s, tokens/s, s/step)."""
    _, _, frames, pixels, batch, _, masks = SETTINGS[name]
    enc, pred, predict = models
    target = copy.deepcopy(enc).requires_grad_(False)
    opt = build_adamw({"encoder": enc, "predictor": pred})
    set_lr_wd(opt, 1e-4, 0.04)
    grid = (frames // 2, pixels // SETTINGS[name][1]["patch_size"], pixels // SETTINGS[name][1]["patch_size"])
    collate = MaskCollator(masks, grid, batch, seed=0)
    clips = torch.randn(batch, 3, frames, pixels, pixels, generator=torch.Generator().manual_seed(0))

    def step(i: int) -> None:
        b = collate([{"clip": c, "epoch": 0, "batch": i, "row": r} for r, c in enumerate(clips)])
        with torch.no_grad():
            h = feature_layer_norm(target(b["clips"]))
        preds = [predict(enc, pred, b["clips"], c, t, m)
                 for m, (c, t) in enumerate(zip(b["context"], b["target"]))]
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
    return batch / sec, batch * grid[0] * grid[1] * grid[2] / sec, sec


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    p.add_argument("--released-src", help="checkout of facebookresearch/vjepa2 to time its models too")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, median of {args.steps} steps")
    print(f"{'setting':12} {'impl':9} {'s/step':>8} {'clips/s':>8} {'tokens/s':>9} {'peak RSS GiB':>13}")
    for name in args.settings:
        impls = {"ours": partial(ours, name)}
        if args.released_src:
            impls["released"] = partial(released, name, args.released_src)
        for impl, build in impls.items():
            torch.manual_seed(0)
            clips_s, tokens_s, sec = bench(name, build(), args.steps)
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
            print(f"{name:12} {impl:9} {sec:>8.3f} {clips_s:>8.2f} {tokens_s:>9.0f} {rss:>13.2f}", flush=True)


if __name__ == "__main__":
    main()
