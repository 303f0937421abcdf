"""Surprise on the embedded twin bench: a small pretrained encoder + predictor vs a random-init pair.

    python benchmarks/surprise_embedded.py [--steps 500] [--seeds 2] [--jobs 2] [--out runs/bench_surprise]

1. renders the twin bench (:mod:`eval.physics.twins`, default settings: 16 pairs per violation —
   vanish, teleport, colour — of 48-frame videos at 64 px) and ``--videos`` whole possible-only
   episodes of the same scenes (other seeds) as a trajectory dataset for pretraining; no download;
2. per seed: pretrains the tiny CPU model (``configs/pretrain/tiny_cpu.yaml``'s model) for ``--steps``
   steps on ``--frames``-frame clips of those episodes, with two future masks (``temporal_anchor:
   end``) on the clip's last tubelet (all of it; four small blocks of it), so the predictor learns
   to predict the next tubelet from the past; ``meta.seed`` is the seed;
3. scores both twins of every pair with :func:`jepa.surprise` (context = the pretraining clip less
   one tubelet, the future mask's token), for the pretrained pair (EMA target encoder as context
   and target encoder) and for a freshly initialised encoder + predictor of the same architecture
   (its weights drawn with the same seed);
   and, as a reference, a predictor that copies the last context step (the pretrained target
   encoder only: what its features reveal of the event);
4. prints pairwise accuracy and AUROC (of the max and of the mean surprise) overall and per
   violation, the mean and min-max over seeds, and writes ``<out>/summary.json`` and a CSV of
   per-pair scores per run.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def future_masks(clip_steps: int) -> list[str]:
    """Overrides: two end-anchored masks on the clip's last tubelet step — the whole frame (mask token
    0, the one the surprise uses) and four small blocks of it (token 1) — so every target is predicted
    from the past. (The tiny config's masks span the whole clip; with them the predictor learns to
    fill hidden regions with the empty table, which is what the surprise then measures.)"""
    s = 1.0 / clip_steps
    whole = f"{{num_blocks: 1, spatial_scale: [1.0, 1.0], aspect_ratio: [1.0, 1.0], temporal_scale: [{s}, {s}], " \
            "temporal_anchor: end}"
    blocks = f"{{num_blocks: 4, spatial_scale: [0.15, 0.15], temporal_scale: [{s}, {s}], temporal_anchor: end}}"
    return [f"masks=[{whole}, {blocks}]", "model.num_mask_tokens=2"]


def pretrain(run_dir: Path, episodes: Path, steps: int, frames: int, frame_step: int, batch: int,
             seed: int, lr: float, threads: int = 1) -> Path:
    """Tiny JEPA pretraining on the rendered episodes; returns the checkpoint (reused if present)."""
    import torch

    from jepa.config import load_config
    from jepa.train.pretrain import PretrainConfig, run_pretraining

    ckpt = run_dir / "latest.pt"
    if ckpt.is_file():
        return ckpt
    torch.set_num_threads(threads)
    cfg = load_config(PretrainConfig, ROOT / "configs/pretrain/tiny_cpu.yaml", [
        "data.source=trajectories", f"data.paths=[{episodes}]", f"data.frames_per_clip={frames}",
        f"data.frame_step={frame_step}", f"optimization.global_batch={batch}", *future_masks(frames // 2),
        f"optimization.max_steps={steps}", f"meta.run_dir={run_dir}", f"meta.checkpoint_every={steps}",
        f"meta.seed={seed}", "meta.device=cpu", f"optimization.lr.base={lr}", "optimization.lr.warmup_steps=30",
    ])
    run_pretraining(cfg)
    return ckpt


def pretrain_all(out: Path, episodes: Path, args) -> list[Path]:
    """Checkpoints of seeds ``0 .. args.seeds - 1``, ``args.jobs`` pretrained at once (worker processes)."""
    jobs = [(out / f"pretrain-seed{seed}", episodes, args.steps, args.frames, args.frame_step, args.batch, seed,
             args.lr, args.threads) for seed in range(args.seeds)]
    if args.jobs <= 1:
        return [pretrain(*job) for job in jobs]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context("spawn")) as pool:
        return list(pool.map(pretrain, *zip(*jobs)))


def models(ckpt: Path, init: str, seed: int):
    """``(context encoder, predictor, target encoder)``: the checkpoint's, or random of its architecture."""
    import torch

    from jepa.hub import freeze, load_backbone, load_predictor
    from jepa.models.predictor import MaskedPredictor
    from jepa.models.vit import VisionTransformer

    target = load_backbone(ckpt, key="target_encoder")
    predictor = load_predictor(ckpt)
    if init == "pretrained":
        return target, predictor, target
    torch.manual_seed(seed)
    encoder = freeze(VisionTransformer(**target.arch))
    return encoder, freeze(MaskedPredictor(**predictor.arch)), encoder


def write_rows(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def print_table(results: list[dict]) -> None:
    """Mean (min-max) over seeds of each metric, per init and group."""
    import numpy as np

    keys = ("pairwise_max", "pairwise_mean", "auroc_max", "auroc_mean", "localised")
    print(f"\n{'init':<11} {'group':<9} " + " ".join(f"{k:>17}" for k in keys))
    for init in dict.fromkeys(r["init"] for r in results):
        runs = [r for r in results if r["init"] == init]
        for group in runs[0]["metrics"]:
            cells = []
            for k in keys:
                v = 100 * np.array([r["metrics"][group][k] for r in runs])
                cells.append(f"{v.mean():5.1f} ({v.min():3.0f}-{v.max():3.0f})" if len(v) > 1 else f"{v[0]:17.1f}")
            print(f"{init:<11} {group:<9} " + " ".join(f"{c:>17}" for c in cells))
    print("percent; mean (min-max) over seeds; pairwise = impossible twin more surprising than its possible twin")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=500, help="pretraining steps per seed")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (the tiny config's 5e-4 stalls at "
                   "predicting the empty table for a few hundred steps)")
    p.add_argument("--jobs", type=int, default=1, help="pretrain this many seeds at once (1 thread each)")
    p.add_argument("--seeds", type=int, default=2, help="pretraining (and random-init) seeds 0..N-1")
    p.add_argument("--videos", type=int, default=150, help="pretraining episodes to render (every window is a clip)")
    p.add_argument("--frames", type=int, default=8, help="frames per pretraining clip (4 tubelets)")
    p.add_argument("--frame-step", type=int, default=1, help="frame stride of clips and of the scored videos")
    p.add_argument("--batch", type=int, default=16, help="pretraining clips per step")
    p.add_argument("--pairs", type=int, default=16, help="twin pairs per violation")
    p.add_argument("--out", default="runs/bench_surprise")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 avoids thrashing on a shared CPU)")
    args = p.parse_args()
    import torch

    from eval.physics.score import ScoreConfig, score_pairs
    from eval.physics.twins import TwinBenchConfig, ensure, render_episodes

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    t0 = time.time()
    pairs = ensure(out / "bench", TwinBenchConfig(pairs_per_violation=args.pairs))
    videos = render_episodes(out / "episodes", args.videos, TwinBenchConfig())
    t_data = time.time() - t0
    score_cfg = ScoreConfig(frame_step=args.frame_step, mask_index=0)
    t1 = time.time()
    ckpts = pretrain_all(out, videos, args)
    t_pre = time.time() - t1
    results = []
    for seed, ckpt in enumerate(ckpts):
        for init in ("pretrained", "random", "copy"):
            encoder, predictor, target = models(ckpt, "random" if init == "random" else "pretrained", seed)
            res = score_pairs(pairs, encoder, predictor, score_cfg, target, copy_baseline=init == "copy")
            write_rows(out / f"scores-{init}-seed{seed}.csv", res.rows())
            print(f"== {init}, seed {seed}")
            for line in res.lines():
                print(line)
            results.append({"init": init, "seed": seed, "metrics": res.metrics})
    print_table(results)
    total = time.time() - t0
    print(f"wall time: {total:.0f} s (data {t_data:.0f} s, pretraining {t_pre:.0f} s, "
          f"scoring {total - t_data - t_pre:.0f} s)")
    (out / "summary.json").write_text(json.dumps({"results": results, "args": vars(args), "seconds": total},
                                                 indent=1))


if __name__ == "__main__":
    main()
