"""Seconds per planning step: the library's planner options against the released V-JEPA 2 planner.

    python benchmarks/plan_speed.py --released-src /tmp/vjepa2 [--settings h1 h2 demo] [--rounds 3]
    python benchmarks/plan_speed.py --model released --device cuda            # ViT-g + 300M predictor

One planning step = encode the current image + one CEM solve toward an already-encoded goal: the
planning time of one executed action. Settings: ``h1``/``h2`` are the released sample counts
(800 samples x 10 iterations, top 10, horizon 1 or 2); ``demo`` is the reach demo's (200 x 3, top 20,
horizon 1).

The model is the demo's world model shape (64 px, 8 x 8 tokens of width 128, AC predictor 128 wide,
depth 3, 4 heads), with the released action and state layout (7-D: xyz, Euler angles, gripper; the
rotation pinned at 0, as the released notebook does) and the released pose update, random weights.

- ``released``: ``--released-src`` (a local checkout of facebookresearch/vjepa2; nothing is
  downloaded): its ``VisionTransformerPredictorAC`` at the same size, loaded with the same weights as
  the library's predictor (the outputs are compared first), driven by its notebook planner
  (``notebooks/utils/world_model_wrapper.WorldModel.infer_next_action``: full recomputation of the
  history per horizon step, the per-sample SciPy pose update, one batch of all samples).
- ``library ...``: :class:`planners.cem.CEM` on :class:`planners.objectives.WorldModelCost` (KV cache
  across horizon steps), one row per option, each measured on its own: ``one batch``; ``auto chunk``
  (batches sized from the CPU cache, :func:`planners.objectives.auto_chunk`); ``+ bf16`` (autocast;
  on a CPU with AVX-512 BF16); ``+ compile`` (``torch.compile`` of the predictor).

Rows alternate within each round (A/B in one process), and the median over rounds is reported with
the ratio to the released planner, the FLOPs of one step (counted by ``torch.utils.flop_counter``),
the achieved GFLOP/s, minor page faults per step, and the CPU's FP32 peak from ``lscpu`` (cores x
frequency x FLOP per cycle of its widest FMA: 64 for AVX-512, assuming two FMA units).
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import resource
import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch

from jepa.models.ac_predictor import ActionConditionedPredictor, vit_ac_predictor
from jepa.models.vit import VisionTransformer, build_vit
from jepa.world_model import WorldModel
from planners import CEM, CEMConfig, Objective, ObjectiveConfig, PlanSpace, WorldModelCost

SETTINGS = {"h1": (800, 10, 10, 1), "h2": (800, 10, 10, 2), "demo": (200, 3, 20, 1)}
MAXNORM = 0.05  # released xyz bound [m]; the gripper is bounded at +-0.75 with initial std 1


@dataclass
class Option:
    name: str
    chunk: int | None
    precision: str = "fp32"
    compile: bool = False


def demo_world(device: torch.device) -> WorldModel:
    torch.manual_seed(0)
    enc = VisionTransformer(img_size=64, patch_size=8, num_frames=2, embed_dim=128, depth=4, num_heads=4)
    pred = ActionConditionedPredictor(128, (8, 8), 128, 3, 4, action_dim=7, state_dim=7)
    return WorldModel(enc, pred, {"kind": "pose"}, 64).to(device).eval()


def released_size_world(device: torch.device) -> WorldModel:
    torch.manual_seed(0)
    enc = build_vit("giant", img_size=256, num_frames=2)
    pred = vit_ac_predictor(enc.embed_dim, (16, 16))
    return WorldModel(enc, pred, {"kind": "pose"}, 256).to(device).eval()


def plan_space(horizon: int, device: torch.device) -> PlanSpace:
    high = [MAXNORM] * 3 + [0.0] * 3 + [0.75]
    return PlanSpace([-h for h in high], high, horizon, pinned={3: 0.0, 4: 0.0, 5: 0.0}).to(device)


def library_step(world: WorldModel, option: Option, setting: str, image, goal, device) -> float:
    samples, iterations, topk, horizon = SETTINGS[setting]
    cost = WorldModelCost(world, Objective(ObjectiveConfig()), 7, chunk=option.chunk, precision=option.precision)
    solver = CEM(CEMConfig(samples=samples, iterations=iterations, topk=topk, momentum_mean=0.15,
                           momentum_std=0.15, init_std=[MAXNORM] * 3 + [0.0] * 3 + [1.0]))
    cost.set_goal(goal)
    _sync(device)
    t0 = time.perf_counter()
    cost.set_context(image, np.zeros(7, np.float32))
    solver.solve(cost, plan_space(horizon, device), generator=torch.Generator(device=device).manual_seed(0))
    _sync(device)
    return time.perf_counter() - t0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class Released:
    """The released predictor (same weights as ``world.predictor``) behind the released notebook planner."""

    def __init__(self, src: str, world: WorldModel) -> None:
        sys.path.insert(0, src)
        sys.path.insert(0, os.path.join(src, "notebooks"))
        from src.models.ac_predictor import VisionTransformerPredictorAC
        from utils.world_model_wrapper import WorldModel as ReleasedWorldModel

        logging.getLogger("utils.mpc_utils").setLevel(logging.WARNING)  # it logs every CEM iteration

        arch = world.predictor.arch
        pred = VisionTransformerPredictorAC(
            img_size=(64, 64), patch_size=8, num_frames=16, tubelet_size=2, embed_dim=arch["embed_dim"],
            predictor_embed_dim=arch["predictor_embed_dim"], depth=arch["depth"], num_heads=arch["num_heads"],
            use_rope=True, action_embed_dim=7).to(world.device).eval()
        missing, unexpected = pred.load_state_dict(world.predictor.state_dict(), strict=False)
        if missing or [k for k in unexpected if not k.startswith("rope")]:
            raise RuntimeError(f"released predictor keys differ: missing {missing}, unexpected {unexpected}")
        self.world, self.predictor = world, pred
        self.wrapper_cls = ReleasedWorldModel

    def max_output_difference(self) -> float:
        g = torch.Generator().manual_seed(1)
        z = torch.randn(4, 2 * 64, 128, generator=g)
        a, s = torch.randn(4, 2, 7, generator=g) * 0.05, torch.randn(4, 2, 7, generator=g) * 0.1
        with torch.no_grad():
            return float((self.predictor(z, a, s) - self.world.predictor(z, a, s)).abs().max())

    def step(self, setting: str, image, goal, device) -> float:
        samples, iterations, topk, horizon = SETTINGS[setting]
        args = {"rollout": horizon, "samples": samples, "topk": topk, "cem_steps": iterations, "momentum_mean": 0.15,
                "momentum_std": 0.15, "maxnorm": MAXNORM, "verbose": False}
        wm = self.wrapper_cls(None, self.predictor, 64, None, mpc_args=args, device=device)
        goal_rep = self.world.encode(goal[None])[None]  # [1, 1, N, D], layer-normed as the release does
        torch.manual_seed(0)
        _sync(device)
        t0 = time.perf_counter()
        rep = self.world.encode(image[None])[None]
        wm.infer_next_action(rep, torch.zeros(1, 1, 7, device=device), goal_rep)
        _sync(device)
        return time.perf_counter() - t0


def step_flops(world: WorldModel, setting: str, device) -> float:
    """FLOPs of one planning step of the library (encode + every candidate's rollout)."""
    from torch.utils.flop_counter import FlopCounterMode

    samples, iterations, _, horizon = SETTINGS[setting]
    cost = WorldModelCost(world, Objective(ObjectiveConfig()), 7)
    image = np.zeros((world.image_size, world.image_size, 3), np.uint8)
    cost.set_goal(image)
    with FlopCounterMode(display=False) as fc:
        cost.set_context(image, np.zeros(7, np.float32))
        cost(torch.zeros(samples, horizon, 7, device=device))
    return fc.get_total_flops() / samples * (samples * iterations + 1)


def cpu_peak_gflops(threads: int) -> tuple[float, str]:
    """FP32 peak of ``threads`` cores [GFLOP/s] from the CPU's frequency and widest FMA, and the flags."""
    flags = open("/proc/cpuinfo").read()
    mhz = max(float(line.split(":")[1]) for line in flags.splitlines() if line.startswith("cpu MHz"))
    width = 512 if " avx512f" in flags else 256 if " avx2" in flags else 128
    per_cycle = 2 * 2 * width // 32  # two FMA units x 2 FLOP per FMA x fp32 lanes
    names = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16") if f" {f}" in flags]
    return threads * mhz / 1000 * per_cycle, f"{mhz:.0f} MHz, {per_cycle} FLOP/cycle, flags: {' '.join(names)}"


def bf16_supported() -> bool:
    return " avx512_bf16" in open("/proc/cpuinfo").read() or " amx_bf16" in open("/proc/cpuinfo").read()


def measure(fn) -> tuple[float, int]:
    """Seconds and minor page faults of one call."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    sec = fn()
    return sec, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def options(device: torch.device, with_compile: bool) -> list[Option]:
    out = [Option("library, one batch", None), Option("library, auto chunk", 0)]
    if device.type == "cuda" or bf16_supported():
        out.append(Option("library, auto chunk + bf16", 0, "bf16"))
    if with_compile:
        out.append(Option("library, auto chunk + compile", 0, compile=True))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=["demo", "released"], default="demo")
    p.add_argument("--device", default="cpu")
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=sorted(SETTINGS))
    p.add_argument("--released-src", help="checkout of facebookresearch/vjepa2 (its planner is timed too)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--compile", action="store_true", help="also time torch.compile of the predictor")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    world = demo_world(device) if args.model == "demo" else released_size_world(device)
    compiled = None
    if args.compile:  # a copy, so the other rows keep the eager predictor
        compiled = WorldModel(world.encoder, copy.deepcopy(world.predictor), {"kind": "pose"}, world.image_size).eval()
        compiled.predictor.forward_step = torch.compile(compiled.predictor.forward_step, dynamic=True)
    released = Released(args.released_src, world) if args.released_src else None
    rng = np.random.default_rng(0)
    image, goal = (rng.integers(0, 256, (world.image_size, world.image_size, 3), dtype=np.uint8) for _ in range(2))
    peak, cpu = cpu_peak_gflops(args.threads) if device.type == "cpu" else (float("nan"), device.type)
    print(f"model {args.model} on {device}, {torch.get_num_threads()} threads; CPU: {cpu}; "
          f"FP32 peak {peak:.0f} GFLOP/s")
    if released is not None:
        print(f"released vs library predictor outputs: max abs difference {released.max_output_difference():.2e}")
    with torch.inference_mode():
        for setting in args.settings:
            runs: dict[str, list[tuple[float, int]]] = {}
            paths = {o.name: (lambda s, o=o: library_step(compiled if o.compile else world, o, s, image, goal, device))
                     for o in options(device, args.compile)}
            if released is not None:
                paths = {"released (notebook CEM)": lambda s: released.step(s, image, goal, device), **paths}
            for fn in paths.values():
                fn(setting)  # warm-up (and compilation)
            for _ in range(args.rounds):
                for name, fn in paths.items():
                    runs.setdefault(name, []).append(measure(lambda fn=fn, s=setting: fn(s)))
            flops = step_flops(world, setting, device)
            base = statistics.median(t for t, _ in runs["released (notebook CEM)"]) if released else None
            samples, iterations, topk, horizon = SETTINGS[setting]
            print(f"\n{setting}: {samples} samples x {iterations} iterations, top {topk}, horizon {horizon}; "
                  f"{flops / 1e9:.1f} GFLOP per step (library); median of {args.rounds} rounds")
            for name, ts in runs.items():
                sec = statistics.median(t for t, _ in ts)
                faults = statistics.median(f for _, f in ts)
                ratio = f"{base / sec:5.2f}x" if base else "   - "
                print(f"  {name:34s} {sec:8.3f} s  {ratio}  {flops / sec / 1e9:7.1f} GFLOP/s  "
                      f"{faults / 1e3:8.1f}k minor faults")


if __name__ == "__main__":
    main()
