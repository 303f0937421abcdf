"""Does a plan's confidence predict failure? AUROC of each confidence measure against the episode
ending unsuccessful, on planning runs already made (e.g. the planning suite's).

    python benchmarks/plan_confidence.py runs/suite/*/seed*/plan-pretrained [--first-steps 3]

Each argument is a ``jepa plan`` output folder (its ``episodes.jsonl``); folders are grouped by their
parent's parent name (the suite's task). See :mod:`eval.planning.confidence` for the two AUROCs.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from eval.planning.confidence import MEASURES, confidence_auroc
from planners.mpc import read_episodes


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--first-steps", type=int, default=3)
    p.add_argument("--out", type=Path, help="write the table as JSON here")
    args = p.parse_args()
    groups = defaultdict(list)
    for run in args.runs:
        groups[run.parent.parent.name or str(run)] += read_episodes(run / "episodes.jsonl")
    print("| runs | measure | AUROC (steps) | AUROC (episodes, first steps) | failed / succeeded episodes |")
    print("|---|---|---|---|---|")
    table = {}
    for name, records in groups.items():
        table[name] = confidence_auroc(records, args.first_steps)
        for m in MEASURES:
            r = table[name][m]
            print(f"| {name} | {m} | {r['steps']:.2f} | {r['episodes']:.2f} | {r['failed']} / {r['succeeded']} |")
    if args.out:
        args.out.write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
