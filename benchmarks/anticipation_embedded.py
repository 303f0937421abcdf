"""Embedded action-anticipation benchmark: a small pretrained encoder vs a random one of the same shape.

    python benchmarks/anticipation_embedded.py [--steps 300] [--out runs/bench_anticipation]

1. renders the embedded arm benchmark (``configs/eval/anticipation_embedded.yaml``; no download);
2. pretrains the tiny CPU encoder (``configs/pretrain/tiny_cpu.yaml``'s model) for ``--steps`` steps
   on unlabelled video of the same scene: ``--pretrain-data benchmark`` (default) uses the training
   split's videos without their labels (self-supervised pretraining on the target domain, as
   V-JEPA's video mixture contains its evaluation datasets), in clips as long as the evaluation's
   (``--frames`` frames, every 2nd), or with ``--unlabelled-videos N`` the videos of N more scripted
   episodes rendered with another seed (more unlabelled video than labelled); ``explore`` uses exploration clips from
   ``jepa collect --env fetch-push`` (default camera, 2-frame clips, batch 64); ``--future-mask``
   adds a third mask hiding the clip's last half (use it with longer clips, e.g. ``--frames 16``);
3. runs ``jepa eval anticipation`` twice with the same probes and data: on the pretrained target
   encoder, and on a freshly initialised encoder of the same architecture;
   with ``--future-tokens`` a third run probes the pretrained encoder's tokens extended by the
   frozen pretraining predictor's tokens of the action start (V-JEPA 2's anticipation model);
   ``--seeds N`` repeats every evaluation with ``meta.seed`` 0..N-1 (probe initialisation and batch
   order; for the random encoder also its weights): differences of a few points are within that spread;
4. prints class-mean recall@5 (verb / noun / action; overall, unseen participants, tail classes)
   of each run and the mean over seeds, and writes them to ``<out>/summary.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def explore_data(run_dir: Path, episodes: int) -> list[str]:
    """Exploration clips of the push env (random waypoints and pushes, default camera): the same
    scene, but none of the benchmark's scripted tasks, viewpoints or labels."""
    from eval.envs.collect import collect

    clips = run_dir / "clips"
    if not (clips / "index.json").is_file():
        collect("fetch-push", clips, episodes=episodes, steps=25, workers=2, image_size=64)
    return [f"data.paths=[{clips}]"]


def benchmark_data(run_dir: Path, data_root: Path, frames: int) -> list[str]:
    """The benchmark's training videos as an unlabelled video list (``path 0`` lines)."""
    from eval.anticipation.epic import read_annotations

    segments = read_annotations(data_root / "annotations" / "EPIC_100_train.csv")
    videos = sorted({(s.participant_id, s.video_id) for s in segments})
    lines = [f"{(data_root / 'videos' / p / 'videos' / v).resolve()}.MP4 0" for p, v in videos]
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "train_videos.csv").write_text("\n".join(lines) + "\n")
    batch = max(8, 128 // frames)  # about the tiny config's tokens per batch
    return ["data.source=csv", f"data.paths=[{run_dir / 'train_videos.csv'}]", f"data.frames_per_clip={frames}",
            "data.frame_step=2", f"optimization.global_batch={batch}"]


# The tiny config's two multi-block masks plus a future mask: the last half of the clip hidden, so the
# predictor learns to predict later tokens from earlier ones (mask token 2).
FUTURE_MASKS = ("masks=[{num_blocks: 4, spatial_scale: [0.15, 0.15]}, {num_blocks: 1, spatial_scale: [0.5, 0.5]}, "
                "{num_blocks: 1, spatial_scale: [1.0, 1.0], aspect_ratio: [1.0, 1.0], temporal_scale: [0.5, 0.5], "
                "temporal_anchor: end}]", "model.num_mask_tokens=3")


def pretrain(run_dir: Path, steps: int, data_overrides: list[str]) -> Path:
    """Tiny JEPA pretraining; returns the checkpoint (reused if present)."""
    from jepa.config import load_config
    from jepa.train.pretrain import PretrainConfig, run_pretraining

    ckpt = run_dir / "latest.pt"
    if ckpt.is_file():
        return ckpt
    cfg = load_config(PretrainConfig, ROOT / "configs/pretrain/tiny_cpu.yaml", [
        *data_overrides,
        f"optimization.max_steps={steps}", f"meta.run_dir={run_dir}", f"meta.checkpoint_every={steps}",
    ])
    run_pretraining(cfg)
    return ckpt


def evaluate(config: Path, overrides: list[str]):
    from eval.anticipation.run import AnticipationConfig, run_anticipation
    from jepa.config import load_config

    return run_anticipation(load_config(AnticipationConfig, config, overrides))


def print_table(results: dict, encoders: list[str]) -> None:
    """Overall recall@5 per encoder: the mean over seeds, and the spread (min-max) when several."""
    import numpy as np

    print("\nclass-mean recall@5 (%)           verb          noun          action")
    for init in encoders:
        rows = [r["report"]["overall"] for r in results.values() if r["encoder"] == init]
        cells = []
        for head in ("verb", "noun", "action"):
            v = 100 * np.array([o[head] for o in rows])
            cells.append(f"{v.mean():5.1f}" + (f" ({v.min():.0f}-{v.max():.0f})" if len(v) > 1 else " " * 8))
        print(f"{init + ' encoder':<31} {'  '.join(cells)}")
    if any(r["seed"] for r in results.values()):
        print("mean over seeds (min-max); the seed draws the probes' initialisation and order, and the random "
              "encoder's weights")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300, help="pretraining steps")
    p.add_argument("--pretrain-data", choices=("benchmark", "explore"), default="benchmark",
                   help="unlabelled training videos of the benchmark, or exploration clips of the push env")
    p.add_argument("--frames", type=int, default=8, help="clip length for --pretrain-data benchmark")
    p.add_argument("--unlabelled-videos", type=int, default=0,
                   help="pretrain on this many extra rendered videos (seed 1) instead of the training split's")
    p.add_argument("--episodes", type=int, default=100, help="exploration clips for --pretrain-data explore")
    p.add_argument("--out", default="runs/bench_anticipation")
    p.add_argument("--config", default=str(ROOT / "configs/eval/anticipation_embedded.yaml"))
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 avoids thrashing on a shared CPU)")
    p.add_argument("--future-tokens", action="store_true",
                   help="also evaluate the pretrained encoder + predicted tokens of the action start")
    p.add_argument("--seeds", type=int, default=1,
                   help="evaluate each encoder with this many seeds (meta.seed 0..N-1) and report the mean")
    p.add_argument("--future-mask", action="store_true",
                   help="pretrain with a third mask hiding the clip's last half (future prediction); the "
                        "future-token run then uses its mask token")
    p.add_argument("overrides", nargs="*", help="key=value overrides of the anticipation config")
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    t0 = time.time()
    from eval.anticipation.run import AnticipationConfig, resolve_files
    from jepa.config import load_config

    data_over = [f"data.embedded_root={out / 'data'}", *args.overrides]
    resolve_files(load_config(AnticipationConfig, args.config, data_over).data)  # render the benchmark
    t_data = time.time() - t0
    suffix = "-futuremask" if args.future_mask else ""
    pre_dir = out / f"pretrain-{args.pretrain_data}{suffix}"
    if args.pretrain_data == "benchmark" and args.unlabelled_videos:
        from eval.anticipation.embedded import ensure

        pre_dir = out / f"pretrain-unlabelled{args.unlabelled_videos}{suffix}"
        bench_cfg = load_config(AnticipationConfig, args.config, data_over).data.embedded
        extra = replace(bench_cfg, train_videos=args.unlabelled_videos, val_videos=1, seed=bench_cfg.seed + 1)
        ensure(out / f"unlabelled{args.unlabelled_videos}", extra)
        data = benchmark_data(pre_dir, out / f"unlabelled{args.unlabelled_videos}", args.frames)
    elif args.pretrain_data == "benchmark":
        data = benchmark_data(pre_dir, out / "data", args.frames)
    else:
        data = explore_data(pre_dir, args.episodes)
    if args.future_mask:
        data = [*data, *FUTURE_MASKS]
    ckpt = pretrain(pre_dir, args.steps, data)
    t_pre = time.time() - t0 - t_data
    runs = {"pretrained": ["backbone.init=pretrained"], "random": ["backbone.init=random"]}
    if args.future_tokens:
        runs["pretrained+future"] = ["backbone.init=pretrained", "backbone.future_tokens=true",
                                     "backbone.out_layers=null",
                                     f"backbone.future_mask_index={2 if args.future_mask else 1}"]
    results = {}
    for init, backbone in runs.items():
        for seed in range(args.seeds):
            name = init if seed == 0 else f"{init}-seed{seed}"
            res = evaluate(Path(args.config), [*data_over, f"backbone.checkpoint={ckpt}", *backbone,
                                               f"meta.seed={seed}", f"meta.run_dir={out / name}"])
            results[name] = {"report": res.report, "best": res.sweep.best, "counts": res.counts,
                             "seconds": res.seconds, "encoder": init, "seed": seed}
            print(f"== {init} encoder, seed {seed}")
            for line in res.lines():
                print(line)
    print_table(results, list(runs))
    total = time.time() - t0
    print(f"wall time: {total:.0f} s (data {t_data:.0f} s, pretraining {t_pre:.0f} s, "
          f"evaluation {total - t_data - t_pre:.0f} s)")
    (out / "summary.json").write_text(json.dumps({"results": results, "pretrain_steps": args.steps, "seeds": args.seeds,
                                                  "unlabelled_videos": args.unlabelled_videos,
                                                  "pretrain_data": args.pretrain_data,
                                                  "seconds": total}, indent=1))


if __name__ == "__main__":
    main()
