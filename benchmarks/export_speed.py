"""Export parity and speed: onnxruntime (and the torch.export program) against eager torch on the CPU.

    python benchmarks/export_speed.py [--models demo base] [--world-model PATH] [--threads 1]

For each world model (``demo``: the demo's sizes — the tiny CPU encoder, ViT 128 wide, depth 4,
patch 8 at 64 px, and the tiny AC predictor, 128 wide, depth 3, 4-D actions and states;
``base``: a ViT-B/16 encoder at 128 px and a 512-wide, depth-6 predictor; or a ``jepa train-ac``
file given with ``--world-model``; random weights are as good as trained ones for this), it exports
both formats with ``jepa.export``, then times, with ``--threads`` threads everywhere (median of
``--repeats`` after a warm-up):

- the encoder on one image (batch 1);
- a ``--horizon``-step rollout through the predictor step with its KV cache, at batch 1 and at
  ``--batch`` (a planner's candidate samples);

and reports the parity (largest absolute difference from eager torch on random inputs, including a
3-step rollout) that the export recorded. Writes ``<out>/summary.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path


def build_model(name: str):
    """A random world model of a named size."""
    import torch

    from jepa.models.ac_predictor import ActionConditionedPredictor
    from jepa.models.vit import build_vit
    from jepa.world_model import WorldModel

    torch.manual_seed(0)
    if name == "demo":
        enc = build_vit("tiny", img_size=64, num_frames=2, patch_size=8, embed_dim=128, depth=4, num_heads=4)
        pred = ActionConditionedPredictor(128, (8, 8), 128, 3, 4, action_dim=4, state_dim=4, predict_residual=True)
        size = 64
    elif name == "base":
        enc = build_vit("base", img_size=128, num_frames=2, patch_size=16)
        pred = ActionConditionedPredictor(768, (8, 8), 512, 6, 8, action_dim=7, state_dim=7)
        size = 128
    else:
        raise ValueError(f"unknown model {name!r}; choose demo or base, or pass --world-model")
    return WorldModel(enc, pred, {"kind": "additive", "scale": [0.05] * 3 + [0.0] * (pred.state_dim - 3)}, size).eval()


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_model(model, folders: dict, batch: int, horizon: int, repeats: int, threads: int) -> dict:
    import torch

    from jepa.export.runtime import ExportedWorldModel

    runners = {"eager torch": model, **{f"{fmt}": ExportedWorldModel(path, threads) for fmt, path in folders.items()}}
    enc, pred = model.encoder, model.predictor
    s = model.image_size
    image = torch.randn(1, 3, enc.tubelet_size, s, s)
    out = {}
    with torch.no_grad():
        for name, r in runners.items():
            encode = (lambda r=r: r.encode(image)) if name != "eager torch" else (lambda: model.encode(image))
            row = {"encoder_b1_ms": 1e3 * median_seconds(encode, repeats)}
            for b in (1, batch):
                z0 = torch.randn(b, pred.tokens_per_frame, enc.embed_dim)
                s0, acts = torch.randn(b, pred.state_dim), torch.rand(b, horizon, pred.action_dim) * 2 - 1
                roll = lambda r=r, z0=z0, s0=s0, acts=acts: r.rollout(z0, s0, acts)  # noqa: E731
                row[f"rollout{horizon}_b{b}_ms"] = 1e3 * median_seconds(roll, repeats)
            out[name] = row
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="*", default=["demo", "base"])
    p.add_argument("--world-model", default=None, help="also a world-model file of `jepa train-ac`")
    p.add_argument("--batch", type=int, default=64, help="the planner-sized batch")
    p.add_argument("--horizon", type=int, default=5, help="rollout steps")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="runs/bench_export")
    args = p.parse_args()
    import torch

    from jepa.export.write import export_world_model
    from jepa.world_model import load_world_model

    torch.set_num_threads(args.threads)
    models = {name: build_model(name) for name in args.models}
    if args.world_model:
        models[Path(args.world_model).stem] = load_world_model(args.world_model, "cpu")
    out = Path(args.out)
    results = {}
    for name, model in models.items():
        folders, parity, export_s = {}, {}, {}
        for fmt in ("onnx", "torch-export"):
            t0 = time.perf_counter()
            res = export_world_model(model, out / name / fmt, fmt)
            export_s[fmt] = time.perf_counter() - t0
            folders[fmt], parity[fmt] = res.folder, res.spec["parity"]
        params = sum(p.numel() for p in model.parameters())
        timings = time_model(model, folders, args.batch, args.horizon, args.repeats, args.threads)
        results[name] = {"params": params, "export_seconds": export_s, "parity": parity, "timings": timings}
        print(f"\n== {name} ({params / 1e6:.1f} M parameters), {args.threads} thread(s)")
        for fmt in folders:
            print(f"{fmt:>13}: export {export_s[fmt]:.1f} s; parity encoder {parity[fmt]['encoder_max_abs']:.1e}, "
                  f"3-step rollout {parity[fmt]['rollout_max_abs']:.1e}")
        keys = list(next(iter(timings.values())))
        print(f"{'runtime':>13}  " + "  ".join(f"{k:>18}" for k in keys))
        for runner, row in timings.items():
            print(f"{runner:>13}  " + "  ".join(f"{row[k]:>18.2f}" for k in keys))
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps({"results": results, "args": vars(args)}, indent=1, default=str))


if __name__ == "__main__":
    main()
