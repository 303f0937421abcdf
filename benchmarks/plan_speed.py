"""Time per planning step: the fast path against a naive path, in one run.

    python benchmarks/plan_speed.py [--samples 800] [--iterations 10] [--horizons 1 2] [--naive-chunk 25]
    python benchmarks/plan_speed.py --model released --device cuda   # ViT-g + 300M predictor (GPU)

One planning step = encode the current image + a full CEM solve (``samples`` x ``iterations``) toward an
already-encoded goal, i.e. the planning time of one executed action.

- fast:  the rollout reuses the KV cache across horizon steps (``WorldModel.rollout``), samples in
  one batch or in chunks of each ``--fast-chunks`` value (one row each; on a CPU, batches that
  overflow the caches are slower per sample); on CUDA under bf16 autocast.
- naive: full recomputation of the history at every horizon step (``WorldModel.rollout_naive``, the
  released planner's rollout) with the samples pushed through in chunks of ``--naive-chunk``; the
  context and goal are still encoded once per step.

``--model cpu`` is the demo-sized model (64 px, 64 tokens of width 128, predictor 128 wide, depth 4);
``--model released`` is ViT-g/16 at 256 px (256 tokens of width 1408) with the released 24-layer,
1024-wide AC predictor, random weights (speed does not depend on them).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from jepa.models.ac_predictor import ActionConditionedPredictor, vit_ac_predictor
from jepa.models.vit import VisionTransformer, build_vit
from jepa.world_model import WorldModel
from planners import CEM, CEMConfig, Objective, ObjectiveConfig, PlanSpace, WorldModelCost

STATE_UPDATE = {"kind": "additive", "scale": [0.05, 0.05, 0.05, 0.0]}


def cpu_world() -> WorldModel:
    torch.manual_seed(0)
    enc = VisionTransformer(img_size=64, patch_size=8, num_frames=2, embed_dim=128, depth=4, num_heads=4)
    pred = ActionConditionedPredictor(128, (8, 8), 128, 4, 4, action_dim=4, state_dim=4, predict_residual=True)
    return WorldModel(enc, pred, STATE_UPDATE, 64).eval()


def released_world() -> WorldModel:
    torch.manual_seed(0)
    enc = build_vit("giant", img_size=256, num_frames=2)
    pred = vit_ac_predictor(enc.embed_dim, (16, 16), action_dim=4, state_dim=4)
    return WorldModel(enc, pred, STATE_UPDATE, 256).eval()


class NaiveRollout:
    """The world model with ``rollout`` replaced by full recomputation of the history."""

    def __init__(self, world: WorldModel) -> None:
        self.world = world

    @property
    def device(self) -> torch.device:
        return self.world.device

    def encode(self, images):
        return self.world.encode(images)

    def rollout(self, z0, state0, actions):
        return self.world.rollout_naive(z0, state0, actions)


def planning_step(world, chunk: int | None, solver: CEM, horizon: int, image: np.ndarray, goal: np.ndarray,
                  device: torch.device, bf16: bool) -> float:
    """Seconds for encode(current image) + one CEM solve."""
    cost = WorldModelCost(world, Objective(ObjectiveConfig()), 4, chunk=chunk, precision="bf16" if bf16 else "fp32")
    space = PlanSpace.symmetric([1.0, 1.0, 1.0, 0.0], 4, horizon, pinned={3: 0.0}).to(device)
    gen = torch.Generator(device=device).manual_seed(0)
    cost.set_goal(goal)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    cost.set_context(image, np.zeros(4, np.float32))
    solver.solve(cost, space, generator=gen)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=["cpu", "released"], default="cpu")
    p.add_argument("--device", default="cpu")
    p.add_argument("--samples", type=int, default=800)
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--horizons", type=int, nargs="+", default=[1, 2])
    p.add_argument("--naive-chunk", type=int, default=25)
    p.add_argument("--fast-chunks", type=int, nargs="+", default=[0, 50],
                   help="samples per rollout batch on the fast path, one row each (0 = all at once)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--skip-naive", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    world = (cpu_world() if args.model == "cpu" else released_world()).to(device)
    bf16 = device.type == "cuda"
    rng = np.random.default_rng(0)
    image, goal = (rng.integers(0, 256, (world.image_size, world.image_size, 3), dtype=np.uint8) for _ in range(2))
    solver = CEM(CEMConfig(samples=args.samples, iterations=args.iterations, topk=10))
    print(f"model {args.model} on {device} ({'bf16' if bf16 else 'fp32'}, {torch.get_num_threads()} threads), "
          f"CEM {args.samples} samples x {args.iterations} iterations; median of {args.repeats} planning steps")
    with torch.inference_mode():
        for h in args.horizons:
            paths = [(f"fast ({f'chunks of {c}' if c else 'one batch'})", world, c or None) for c in args.fast_chunks]
            if not args.skip_naive:
                paths.append((f"naive (chunks of {args.naive_chunk})", NaiveRollout(world), args.naive_chunk))
            times = {}
            for name, model, chunk in paths:
                planning_step(model, chunk, solver, h, image, goal, device, bf16)  # warm-up
                runs = [planning_step(model, chunk, solver, h, image, goal, device, bf16) for _ in range(args.repeats)]
                times[name] = statistics.median(runs)
                print(f"  horizon {h}: {name:24s} {times[name]:8.3f} s per planning step")
            if not args.skip_naive:
                naive = times[paths[-1][0]]
                for name, _, _ in paths[:-1]:
                    print(f"  horizon {h}: {name} is {naive / times[name]:.2f}x faster than naive")


if __name__ == "__main__":
    main()
