"""The planning suite: every task x {pretrained, random-init encoder, do-nothing, random actions},
over seeds, from one command.

    python benchmarks/planning_suite.py [--tasks reach push pusht] [--seeds 0 1] [key=value ...]

Each task is one of the shipped demo pipelines (``configs/demo*.yaml``, :data:`TASKS`): per seed it
runs, cached and resumable in ``<run_dir>/<task>/seed<S>/``, collect -> pretrain -> train-ac (on the
pretrained encoder, and on a random encoder of the same architecture with AC training and planning
unchanged) -> plan on held-out goals, plus the two baselines, which run the same episodes through
the same MPC loop without consulting a model. The seed moves every source of randomness: the
collection seeds, pretraining and AC initialisation and batches, the held-out goals and the planner.

It writes ``results.json`` (every run's summary and stage times) and ``results.md`` (one row per
task and arm: success reached / held as mean and min–max over seeds, median final distance, time per
planning step, wall time of the pipeline) and prints the table. Targets are checked and reported
as met or missed, never silently.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from eval.planning.pipeline import TASKS, Pipeline, PipelineConfig, StageTimer, bundled_config
from jepa.config import load_config
from jepa.files import write_json

ARMS = ("pretrained", "random-init", "do-nothing", "random-actions")
BASELINE_SOLVERS = {"do-nothing": "do-nothing", "random-actions": "random"}


@dataclass
class SuiteConfig:
    """Attributes: ``tasks`` (keys of :data:`TASKS`), ``seeds``, ``arms`` (of :data:`ARMS`),
    ``run_dir``; ``overrides``: ``task -> [key=value, ...]`` applied to that task's pipeline config
    (e.g. fewer episodes for a quick look); ``progress`` bars."""

    tasks: list[str] = field(default_factory=lambda: ["reach", "push", "pusht"])
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    arms: list[str] = field(default_factory=lambda: list(ARMS))
    run_dir: str = "runs/suite"
    overrides: dict[str, list[str]] = field(default_factory=dict)
    progress: bool = True

    def __post_init__(self) -> None:
        unknown = [t for t in self.tasks if t not in TASKS] + [a for a in self.arms if a not in ARMS]
        if unknown:
            raise ValueError(f"unknown tasks or arms {unknown}; tasks: {sorted(TASKS)}, arms: {list(ARMS)}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
            raise ValueError(f"seeds must be distinct non-negative integers, got {self.seeds}")
        bad = [t for t in self.overrides if t not in TASKS]
        if bad:
            raise ValueError(f"overrides for unknown tasks {bad}; tasks: {sorted(TASKS)}")


def task_config(suite: SuiteConfig, task: str, seed: int) -> PipelineConfig:
    """The task's pipeline config (its demo YAML plus the suite's overrides) for one seed."""
    cfg = load_config(PipelineConfig, bundled_config(TASKS[task]), suite.overrides.get(task, []))
    cfg.seed = seed
    cfg.run_dir = str(Path(suite.run_dir) / task / f"seed{seed}")
    cfg.progress = suite.progress
    return cfg


def run_task_seed(suite: SuiteConfig, task: str, seed: int) -> dict:
    """All arms of one task and seed; returns ``{"summaries": {arm: summary}, "stage_times_s": {...}}``."""
    cfg = task_config(suite, task, seed)
    root = Path(cfg.run_dir)
    root.mkdir(parents=True, exist_ok=True)
    chain, timed = Pipeline(cfg, root), StageTimer(root / "stage_times.json")
    clips = timed("collect", chain.clips)
    models: dict[str, Path] = {}
    if "pretrained" in suite.arms:
        encoder = timed("pretrain", chain.pretrain, clips)
        models["pretrained"] = timed("train-ac", chain.train_ac, clips, encoder, "ac", "pretrained")
    if "random-init" in suite.arms or not models:
        encoder = chain.root / "pretrain" / "latest.pt"
        if not encoder.exists():
            encoder = timed("pretrain", chain.pretrain, clips)  # only its architecture is used
        models["random-init"] = timed("train-ac (random-init)", chain.train_ac, clips, encoder, "ac-random",
                                      "random")
    summaries = {}
    for arm in suite.arms:
        if arm in BASELINE_SOLVERS:  # the same episodes; the model file is loaded but never consulted
            wm = next(iter(models.values()))
            summaries[arm] = timed(f"plan ({arm})", chain.plan, wm, f"plan-{arm}", BASELINE_SOLVERS[arm])
        else:
            summaries[arm] = timed(f"plan ({arm})", chain.plan, models[arm], f"plan-{arm}")
    return {"summaries": summaries, "stage_times_s": timed.total()}


def _spread(values: Sequence[float]) -> dict:
    return {"mean": statistics.fmean(values), "min": min(values), "max": max(values), "n": len(values)}


def aggregate(results: dict[str, dict[int, dict]], arms: Sequence[str]) -> list[dict]:
    """One row per task and arm: success reached / held, final distance, time per planning step and
    the pipeline's wall time (stages that arm needs), each as mean and min–max over seeds."""
    rows = []
    for task, by_seed in results.items():
        for arm in arms:
            runs = [r["summaries"][arm] for r in by_seed.values()]
            walls = [_arm_wall_time(r["stage_times_s"], arm) for r in by_seed.values()]
            rows.append({"task": task, "arm": arm, "seeds": sorted(by_seed),
                         "episodes": [s["episodes"] for s in runs],
                         "excluded_at_start": [s["excluded_at_start"] for s in runs],
                         "excluded_passive": [s.get("excluded_passive", 0) for s in runs],
                         "success": _spread([s["success_rate"] for s in runs]),
                         "held": _spread([s["held_rate"] for s in runs]),
                         "median_final_distance": _spread([s["median_final_distance"] for s in runs]),
                         "time_per_step_s": _spread([s["median_time_per_action_s"] for s in runs]),
                         "pipeline_s": _spread(walls)})
    return rows


def _arm_wall_time(times: dict[str, float], arm: str) -> float:
    """Wall time of the stages one arm's result needs (collection, its training, its planning)."""
    needs = {"collect", f"plan ({arm})"}
    if arm == "pretrained":
        needs |= {"pretrain", "train-ac"}
    elif arm == "random-init":
        needs |= {"train-ac (random-init)"}
    return sum(v for k, v in times.items() if k in needs)


def _pct(d: dict) -> str:
    return f"{d['mean']:.0%} [{d['min']:.0%}–{d['max']:.0%}]"


def markdown_table(rows: Sequence[dict]) -> str:
    """The suite's table (mean [min–max] over seeds)."""
    lines = ["| task | arm | success (reached) | held at end | median final distance | time / planning step | "
             "pipeline wall time | goals per seed (excluded: at start + by doing nothing) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        d, t, w = r["median_final_distance"], r["time_per_step_s"], r["pipeline_s"]
        goals = ", ".join(f"{n} ({x} + {p})" for n, x, p in
                          zip(r["episodes"], r["excluded_at_start"], r["excluded_passive"]))
        lines.append(f"| {r['task']} | {r['arm']} | {_pct(r['success'])} | {_pct(r['held'])} | "
                     f"{d['mean']:.3f} [{d['min']:.3f}–{d['max']:.3f}] | {t['mean']:.3f} s | "
                     f"{w['mean'] / 60:.1f} min | {goals} |")
    return "\n".join(lines)


def gap_lines(rows: Sequence[dict]) -> list[str]:
    """Pretrained minus random-init success per task: a result only when it exceeds both the spread between
    seeds and twice the binomial standard error of the difference (the goals are few)."""
    by = {(r["task"], r["arm"]): r for r in rows}
    out = []
    for task in dict.fromkeys(r["task"] for r in rows):
        p, q = by.get((task, "pretrained")), by.get((task, "random-init"))
        if p is None or q is None:
            continue
        gap = p["success"]["mean"] - q["success"]["mean"]
        if min(p["success"]["n"], q["success"]["n"]) < 2:
            out.append(f"- {task}: pretrained - random-init = {gap:+.0%} on one seed: no spread between "
                       "seeds to compare it with (run at least 2 seeds)")
            continue
        spread = max(p["success"]["max"] - p["success"]["min"], q["success"]["max"] - q["success"]["min"])
        noise = 2 * math.hypot(_standard_error(p), _standard_error(q))
        verdict = "a result" if abs(gap) > max(spread, noise) else "not a result"
        out.append(f"- {task}: pretrained - random-init = {gap:+.0%} (mean over seeds): {verdict} — the spread "
                   f"between seeds is {spread:.0%}, twice the binomial standard error of the difference over "
                   f"all goals {noise:.0%}")
    return out


def _standard_error(row: dict) -> float:
    """Binomial standard error of a row's mean success rate over all its goals (every seed's)."""
    n, rate = sum(row["episodes"]), row["success"]["mean"]
    return math.sqrt(rate * (1 - rate) / n) if n else 0.0


def run_suite(cfg: SuiteConfig) -> tuple[list[dict], Path]:
    """Every task and seed (cached), then the tables; returns the rows and the markdown path."""
    root = Path(cfg.run_dir)
    results = {task: {seed: run_task_seed(cfg, task, seed) for seed in cfg.seeds} for task in cfg.tasks}
    rows = aggregate(results, cfg.arms)
    write_json(root / "results.json", {"rows": rows, "runs": {t: {str(s): r for s, r in by.items()}
                                                              for t, by in results.items()}})
    text = "\n".join(["# Planning suite", "", markdown_table(rows), "", *gap_lines(rows), ""])
    (root / "results.md").write_text(text)
    return rows, root / "results.md"
