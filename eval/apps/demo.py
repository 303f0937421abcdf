"""The main job: ``jepa demo [reach|push|CONFIG.yaml] [key=value ...] [--fresh]``.

From nothing to goal-image MPC on the simulated Fetch arm, as the cached stages of
:mod:`eval.planning.pipeline` inside one run folder: collect clips, pretrain a small encoder,
train the action-conditioned predictor on it, plan toward held-out goal images.

- ``jepa demo`` (or ``jepa demo reach``): ``configs/demo.yaml``, FetchReach, into ``runs/demo``;
- ``jepa demo push``: ``configs/demo_push.yaml``, FetchPush (the object must move), into
  ``runs/demo-push``;
- ``jepa demo pusht``: ``configs/demo_pusht.yaml``, PushT with dataset-offset goals, into
  ``runs/demo-pusht``.

A re-run resumes where the last one stopped (finished stages are skipped, training resumes from
its checkpoint); ``--fresh`` deletes the run folder first. The report (``report.md``) holds the
success rates, time per planning step, per-stage wall times, loss curves, rollout errors against
the copy-last-frame baseline, the energy landscape and episode GIFs.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from eval.planning.pipeline import TASKS, Pipeline, PipelineConfig, StageTimer, bundled_config
from jepa.config import config_parser, load_config, parse_config, save_config
from jepa.files import atomic_write_text

DemoConfig = PipelineConfig


def _curve(path: Path, keys: Sequence[str]) -> dict[str, tuple[list, list]]:
    from eval.planning.artifacts import read_metrics

    rows = read_metrics(path) if path.exists() else []
    return {k: ([r["step"] for r in rows if k in r], [r[k] for r in rows if k in r]) for k in keys
            if any(k in r for r in rows)}


def summary_lines(summary: dict) -> list[str]:
    """The headline numbers of a planning summary, as markdown list items."""
    return [f"- success rate (reached): **{summary['success_rate']:.0%}** ({summary['successes']}/"
            f"{summary['episodes']} held-out goals); held at the end: {summary['held_rate']:.0%}; goals "
            f"excluded as already solved at the start: {summary['excluded_at_start']}",
            f"- time per planning step: mean {summary['mean_time_per_action_s']:.3f} s, "
            f"median {summary['median_time_per_action_s']:.3f} s",
            f"- final distance to goal: median {summary['median_final_distance']:.4f} (initial mean "
            f"{summary['mean_initial_distance']:.4f}; env units)"]


def write_report(root: Path, summary: dict, times: dict[str, float], env: str) -> Path:
    """``report.md`` with the figures and links to the artefacts (paths relative to ``root``)."""
    from eval.planning.artifacts import plot_curves

    pre = _curve(root / "pretrain" / "metrics.jsonl", ["loss"])
    if pre:
        plot_curves(pre, root / "pretrain_loss.png", "L1 loss", "pretraining (masked latent prediction)")
    ac = _curve(root / "ac" / "metrics.jsonl", ["teacher_forcing", "rollout", "total"])
    if ac:
        plot_curves(ac, root / "ac_loss.png", "L1 loss", "action-conditioned predictor")
    val_path = root / "ac" / "validation.json"
    val = json.loads(val_path.read_text()) if val_path.exists() else {}
    lines = [f"# JEPA world model demo: goal-image MPC on {env}", "", *summary_lines(summary), "",
             "| stage | wall time [s] |", "|---|---|"]
    lines += [f"| {k} | {v:.0f} |" for k, v in times.items()]
    lines += ["", "## Rollout error on held-out clips (L1, lower is better)", "",
              "| steps | predictor | copy last frame |", "|---|---|---|"]
    lines += [f"| {k} | {val[f'rollout_l1_{k}']:.4f} | {val[f'copy_last_l1_{k}']:.4f} |" for k in (2, 4)
              if f"rollout_l1_{k}" in val]
    lines += [""]
    for title, img in [("Pretraining loss", "pretrain_loss.png"), ("AC training loss", "ac_loss.png"),
                       ("Energy landscape of the first action", "plan/energy_landscape.png")]:
        if (root / img).exists():
            lines += [f"## {title}", "", f"![{title}]({img})", ""]
    gifs = sorted((root / "plan").glob("episode_*.gif"))
    if gifs:
        lines += ["## Episodes (observation | goal)", ""] + [f"![{g.stem}](plan/{g.name})" for g in gifs]
    lines += ["", "Per-episode records: `plan/episodes.jsonl`."]
    path = root / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def run_demo(cfg: PipelineConfig, fresh: bool = False) -> dict:
    """All stages (cached) and the report; returns the planning summary plus stage times [s]."""
    root = Path(cfg.run_dir)
    if fresh and root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    save_config(cfg, root / "demo.yaml")
    chain, timed = Pipeline(cfg, root), StageTimer(root / "stage_times.json")
    clips = timed("collect", chain.clips)
    encoder = timed("pretrain", chain.pretrain, clips)
    world_model = timed("train-ac", chain.train_ac, clips, encoder)
    summary = timed("plan", chain.plan, world_model)
    times = timed.total()
    report = write_report(root, summary, times, cfg.collect.env)
    return {**summary, "stage_times_s": times, "report": str(report)}


def load_demo_config(argv: Sequence[str]) -> tuple[PipelineConfig, bool]:
    """``jepa demo`` arguments -> the config and ``--fresh``; a first argument ``reach``, ``push`` or
    ``pusht`` names a shipped demo."""
    argv = list(argv)
    named = argv[0] if argv and argv[0] in TASKS else None
    p = config_parser("jepa demo", __doc__.splitlines()[0],
                      "reach (default), push, pusht, or a YAML config", "collect.episodes=100")
    p.add_argument("--fresh", action="store_true", help="delete the run folder and start over")
    if named is None:
        cfg, args = parse_config(p, PipelineConfig, argv)
        return cfg, args.fresh
    args = p.parse_args(argv[1:])
    overrides = ([args.config] if args.config else []) + list(args.overrides)
    return load_config(PipelineConfig, bundled_config(TASKS[named]), overrides), args.fresh


def main(argv: Sequence[str]) -> int:
    cfg, fresh = load_demo_config(argv)
    result = run_demo(cfg, fresh=fresh)
    t = result["stage_times_s"]
    print(f"{cfg.collect.env} success rate: {result['success_rate']:.0%} ({result['successes']}/{result['episodes']} "
          f"held-out goals; held at the end {result['held_rate']:.0%}; {result['excluded_at_start']} goals excluded "
          "as already solved)")
    print(f"time per planning step: mean {result['mean_time_per_action_s']:.3f} s, "
          f"median {result['median_time_per_action_s']:.3f} s")
    print("stage wall times [s]: " + ", ".join(f"{k} {v:.0f}" for k, v in t.items()))
    print(f"report: {result['report']}  (artefacts in {cfg.run_dir})")
    return 0
