"""Frames collected per second (env step + render + policy + writing), end to end.

    python benchmarks/collect_throughput.py [--env fetch-reach] [--workers 2] [--episodes 40] [--steps 50]

Reports the whole run (including worker start-up and env creation) and the steady state (the run
minus the time to the first finished episode per worker).
"""

from __future__ import annotations

import argparse
import tempfile
import time

from eval.envs.collect import collect


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="fetch-reach")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--episodes", type=int, default=40)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--image-size", type=int, default=64)
    args = p.parse_args()
    print(f"{'env':12} {'workers':>7} {'episodes':>8} {'frames':>7} {'seconds':>8} {'frames/s':>9}")
    for workers in args.workers:
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            writer = collect(args.env, out, args.episodes, args.steps, workers, args.image_size, progress=False)
            sec = time.perf_counter() - start
            frames = sum(e["length"] for e in writer.index["episodes"])
            print(f"{args.env:12} {workers:>7} {args.episodes:>8} {frames:>7} {sec:>8.1f} {frames / sec:>9.1f}",
                  flush=True)


if __name__ == "__main__":
    main()
