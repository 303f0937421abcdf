"""The planning suite: tasks x {pretrained, random-init, do-nothing, random actions} x seeds.

    python benchmarks/planning_suite.py                       # reach, push, pusht; seeds 0 1; all arms
    python benchmarks/planning_suite.py --tasks push --seeds 0 1 2
    python benchmarks/planning_suite.py --tasks push "push:plan.overrides=[episodes=5]"

Every stage is cached in ``--run-dir`` (default ``runs/suite``): a re-run resumes, and adding a
seed or a task only runs what is missing. Overrides ``TASK:key=value`` apply to that task's
pipeline config (``configs/demo*.yaml``). Prints the table and writes ``results.md`` and
``results.json`` (see :mod:`eval.planning.suite`).
"""

from __future__ import annotations

import argparse
import sys

from eval.planning.suite import ARMS, TASKS, SuiteConfig, run_suite


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=sorted(TASKS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    p.add_argument("--run-dir", default="runs/suite")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("overrides", nargs="*", help="TASK:key=value for that task's pipeline config")
    args = p.parse_args(argv)
    overrides: dict[str, list[str]] = {}
    for o in args.overrides:
        task, sep, kv = o.partition(":")
        if not sep or "=" not in kv:
            p.error(f"override {o!r} must look like TASK:key=value")
        overrides.setdefault(task, []).append(kv)
    cfg = SuiteConfig(tasks=args.tasks, seeds=args.seeds, arms=args.arms, run_dir=args.run_dir,
                      overrides=overrides, progress=not args.no_progress)
    _, md = run_suite(cfg)
    print(md.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
