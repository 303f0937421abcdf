"""World-model rollout throughput with and without the KV cache, and AC-training peak memory.

    python benchmarks/rollout_throughput.py [--sequences 200] [--horizons 1 2 4 8] [--threads 2]

Rollout: ``sequences`` candidate action sequences from one context frame (64 tokens of width 128,
predictor 128 wide, depth 4), reported as sequences x steps per second. Training memory: peak RSS
of AC training steps (teacher forcing + 2-step rollout) at batch 32, in a fresh process.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time

import torch

from jepa.models.ac_predictor import ActionConditionedPredictor
from jepa.models.vit import feature_layer_norm
from jepa.world_model import WorldModel


def make_world(tokens_side: int = 8, width: int = 128, depth: int = 4) -> WorldModel:
    from jepa.models.vit import VisionTransformer

    torch.manual_seed(0)
    enc = VisionTransformer(img_size=tokens_side * 8, patch_size=8, num_frames=2, embed_dim=width, depth=1,
                            num_heads=4)
    pred = ActionConditionedPredictor(width, (tokens_side, tokens_side), width, depth, 4, action_dim=4,
                                      state_dim=4, predict_residual=True)
    return WorldModel(enc, pred, {"kind": "additive", "scale": [0.05, 0.05, 0.05, 0.0]}, tokens_side * 8).eval()


def time_call(fn, repeats: int = 3) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def training_memory(batch: int) -> float:
    from jepa.train.ac_losses import ac_losses

    world = make_world()
    opt = torch.optim.AdamW(world.predictor.parameters())
    z = feature_layer_norm(torch.randn(batch, 3, 64, 128))
    for _ in range(3):
        loss = ac_losses(world.predictor, z, torch.randn(batch, 2, 4), torch.randn(batch, 3, 4), 2)["total"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sequences", type=int, default=200)
    p.add_argument("--horizons", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--train-memory", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.train_memory:
        print(f"{training_memory(args.train_memory):.3f}")
        return
    world = make_world()
    z0 = feature_layer_norm(torch.randn(1, 64, 128)).expand(args.sequences, -1, -1)
    s0 = torch.zeros(args.sequences, 4)
    print(f"torch {torch.__version__}, {args.threads} threads, {args.sequences} sequences, 64 tokens x 128")
    print(f"{'horizon':>7} {'cached s':>9} {'naive s':>9} {'cached seq*steps/s':>19} "
          f"{'naive seq*steps/s':>18} {'speed-up':>8}")
    with torch.no_grad():
        for h in args.horizons:
            actions = torch.randn(args.sequences, h, 4)
            cached = time_call(lambda a=actions: world.rollout(z0, s0, a))
            naive = time_call(lambda a=actions: world.rollout_naive(z0, s0, a))
            n = args.sequences * h
            print(f"{h:>7} {cached:>9.3f} {naive:>9.3f} {n / cached:>19.0f} {n / naive:>18.0f} {naive / cached:>7.2f}x",
                  flush=True)
    out = subprocess.run([sys.executable, __file__, "--train-memory", "32", "--threads", str(args.threads)],
                         capture_output=True, text=True, check=True)
    print(f"AC training peak RSS (batch 32, 3 frames x 64 tokens x 128, predictor 128/4): {float(out.stdout):.2f} GiB")


if __name__ == "__main__":
    main()
