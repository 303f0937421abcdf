"""Action anticipation with a frozen encoder on the embedded arm benchmark (EPIC-KITCHENS-100 protocol).

    python examples/anticipation_benchmark.py --checkpoint runs/pretrain-tiny/latest.pt   # your encoder
    python examples/anticipation_benchmark.py --tiny      # no files needed: tiny videos, random tiny ViT

The benchmark's videos (scripted pick-and-place and push tasks on the simulated Fetch arm) are
rendered on first use and annotated in the official CSV layout; the encoder stays frozen, its
features are cached, and a small grid of attentive probes predicts the next action's verb, noun and
(verb, noun) pair 1 s before it starts. The same code reads the real EPIC-KITCHENS-100 files
(``configs/eval/anticipation_ek100_vitl.yaml``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from eval.anticipation.run import AnticipationConfig, run_anticipation
from jepa.config import load_config

ROOT = Path(__file__).resolve().parents[1]
TINY = [  # a few seconds of video at 32 px, a 1-block random ViT, two probes trained for 3 epochs
    "data.embedded.train_videos=2", "data.embedded.val_videos=1", "data.embedded.participants=1",
    "data.embedded.unseen_participants=0", "data.embedded.tasks_per_video=[1,2]", "data.embedded.image_size=32",
    "data.crop_size=32", "data.frames_per_clip=4", "backbone.init=random", "backbone.embed_dim=32",
    "backbone.depth=1", "backbone.num_heads=2", "probe.num_heads=2", "probe.epochs=3", "probe.lrs=[1e-3]",
    "probe.weight_decays=[1e-4,1e-2]", "meta.progress=false",
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", help="encoder checkpoint (e.g. a pretraining run's latest.pt)")
    p.add_argument("--out", default="runs/examples/anticipation", help="folder for the videos and results")
    p.add_argument("--tiny", action="store_true", help="tiny videos and a random tiny encoder (seconds)")
    args = p.parse_args()
    if not (args.tiny or args.checkpoint):
        p.error("give --checkpoint, or --tiny")
    out = Path(args.out) / ("tiny" if args.tiny else "embedded")
    overrides = [f"data.embedded_root={out / 'data'}", f"meta.run_dir={out / 'run'}"]
    overrides += TINY if args.tiny else [f"backbone.checkpoint={args.checkpoint}"]
    cfg = load_config(AnticipationConfig, ROOT / "configs/eval/anticipation_embedded.yaml", overrides)
    result = run_anticipation(cfg)
    for line in result.lines():
        print(line)
    o = result.report["overall"]
    print(f"verb/noun/action recall@5: {100 * o['verb']:.1f} / {100 * o['noun']:.1f} / {100 * o['action']:.1f} %")
    print(f"submission (challenge JSON): {result.run_dir / 'submission.json'}")


if __name__ == "__main__":
    main()
