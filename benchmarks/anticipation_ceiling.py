"""Label-oracle ceiling of an anticipation benchmark (:mod:`eval.anticipation.oracle`): no video is read.

    python benchmarks/anticipation_ceiling.py [--root runs/bench_anticipation/data --fps 10]

Prints the class-mean recall@5 (verb / noun / action) that knowing the action in progress at the
window's end (and its elapsed third) buys, for a few anticipation times. With ``--root`` absent the
embedded benchmark of ``configs/eval/anticipation_embedded.yaml`` is rendered first.
"""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", help="annotations folder's parent (the EPIC layout); default: render the embedded one")
    p.add_argument("--fps", type=float, help="frame rate of the annotations' frame numbers (needed with --root; "
                                             "default: the embedded benchmark's)")
    p.add_argument("--tau", type=float, nargs="+", default=[0.5, 1.0, 2.0], help="anticipation times [s]")
    args = p.parse_args()
    from eval.anticipation.epic import read_annotations
    from eval.anticipation.oracle import oracle_report

    if args.root is None:
        from eval.anticipation.run import AnticipationConfig, resolve_files
        from jepa.config import load_config

        data = load_config(AnticipationConfig, ROOT / "configs/eval/anticipation_embedded.yaml").data
        files = resolve_files(data)
        train_csv, val_csv, fps = files.train_csv, files.val_csv, data.embedded.fps
    elif args.fps is None:
        p.error("--root needs --fps (the frame rate the annotations' frame numbers count in)")
    else:
        fps = args.fps
        train_csv = Path(args.root) / "annotations/EPIC_100_train.csv"
        val_csv = Path(args.root) / "annotations/EPIC_100_validation.csv"
    train, val = read_annotations(train_csv), read_annotations(val_csv)
    print("label oracle, class-mean recall@5 (%)   verb   noun  action")
    for tau in args.tau:
        o = oracle_report(train, val, fps, tau)["overall"]
        print(f"tau_a = {tau:4.1f} s {'':20} {100 * o['verb']:6.1f} {100 * o['noun']:6.1f} {100 * o['action']:7.1f}")


if __name__ == "__main__":
    main()
