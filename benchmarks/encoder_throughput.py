"""Encoder forward throughput (clips/s, no grad, fp32) on this machine.

    python benchmarks/encoder_throughput.py [--threads 2] [--sizes tiny large] [--inputs 2x64 16x256]
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from jepa.models import build_vit


def time_forward(model: torch.nn.Module, x: torch.Tensor, min_seconds: float, max_iters: int) -> float:
    """Seconds per forward pass (after one warm-up)."""
    with torch.no_grad():
        model(x)
        n, start = 0, time.perf_counter()
        while n < max_iters and (n == 0 or time.perf_counter() - start < min_seconds):
            model(x)
            n += 1
    return (time.perf_counter() - start) / n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--sizes", nargs="+", default=["tiny", "large"])
    p.add_argument("--inputs", nargs="+", default=["2x64", "16x256"], help="FRAMESxPIXELS")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--min-seconds", type=float, default=5.0)
    p.add_argument("--max-iters", type=int, default=50)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, {platform.processor() or platform.machine()}")
    print(f"{'model':8} {'input':>8} {'tokens':>7} {'batch':>5} {'s/forward':>10} {'clips/s':>9}")
    for size in args.sizes:
        for spec in args.inputs:
            frames, pixels = (int(v) for v in spec.split("x"))
            model = build_vit(size, img_size=pixels, num_frames=frames, patch_size=16, tubelet_size=2).eval()
            x = torch.randn(args.batch, 3, frames, pixels, pixels)
            sec = time_forward(model, x, args.min_seconds, args.max_iters)
            tokens = frames // 2 * (pixels // 16) ** 2
            print(f"{size:8} {spec:>8} {tokens:>7} {args.batch:>5} {sec:>10.4f} {args.batch / sec:>9.2f}", flush=True)
            del model


if __name__ == "__main__":
    main()
