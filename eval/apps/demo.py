"""The main job: ``jepa demo [CONFIG.yaml] [key=value ...] [--fresh]``.

From nothing to goal-image MPC on the simulated Fetch arm, in four cached stages inside one run
folder (default ``runs/demo``):

1. ``clips/``     — ``jepa collect``: scripted exploration clips (extended up to ``collect.episodes``);
2. ``pretrain/``  — ``jepa pretrain``: a small ViT by masked latent prediction (resumes from its checkpoint);
3. ``ac/``        — ``jepa train-ac``: the action-conditioned predictor on the frozen encoder;
4. ``plan/``      — ``jepa plan``: MPC episodes toward held-out goal images.

A re-run resumes where the last one stopped (finished stages are skipped, training resumes from
its checkpoint); ``--fresh`` deletes the run folder first. The report (``report.md``) holds the
success rate, time per action, per-stage wall times, loss curves, rollout errors against the
copy-last-frame baseline, the energy landscape and episode GIFs.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from jepa.config import config_parser, load_config, parse_config, save_config


@dataclass
class CollectStage:
    env: str = "fetch-reach"
    episodes: int = 400
    steps: int = 25
    image_size: int = 64
    workers: int = 2


@dataclass
class TrainStage:
    """A stage driven by another command's config file plus ``key=value`` overrides."""

    config: str = ""
    overrides: list[str] = field(default_factory=list)


@dataclass
class DemoConfig:
    """Defaults equal ``configs/demo.yaml`` (a test keeps them in step), so a bare ``jepa demo`` runs the
    measured embedded default."""

    run_dir: str = "runs/demo"
    collect: CollectStage = field(default_factory=CollectStage)
    pretrain: TrainStage = field(default_factory=lambda: TrainStage(
        "configs/pretrain/tiny_cpu.yaml", ["optimization.max_steps=900"]))
    ac: TrainStage = field(default_factory=lambda: TrainStage(
        "configs/ac/tiny_cpu.yaml", ["optimization.max_steps=600"]))
    plan: TrainStage = field(default_factory=lambda: TrainStage("configs/plan/fetch_reach.yaml"))
    progress: bool = True


# ----------------------------------------------------------------------------------- stages

def stage_collect(cfg: DemoConfig, root: Path) -> Path:
    from eval.envs.collect import collect
    from jepa.data.trajectories import TrajectoryWriter

    out = root / "clips"
    c = cfg.collect
    have = len(TrajectoryWriter(out, {}).index["episodes"]) if (out / "index.json").exists() else 0
    if have < c.episodes:
        collect(c.env, out, c.episodes - have, c.steps, workers=c.workers, image_size=c.image_size,
                progress=cfg.progress)
    return out


def stage_pretrain(cfg: DemoConfig, root: Path, clips: Path) -> Path:
    from jepa.train.pretrain import PretrainConfig, run_pretraining

    run_dir = root / "pretrain"
    pc = load_config(PretrainConfig, cfg.pretrain.config or None,
                     [f"data.paths=[{clips}]", f"meta.run_dir={run_dir}", f"meta.progress={cfg.progress}",
                      f"data.crop_size={cfg.collect.image_size}", *cfg.pretrain.overrides])
    run_pretraining(pc)
    return run_dir / "latest.pt"


def stage_ac(cfg: DemoConfig, root: Path, clips: Path, encoder: Path) -> Path:
    from jepa.train.ac import ACConfig, train_ac

    run_dir = root / "ac"
    if (run_dir / "world_model.pt").exists() and (run_dir / "validation.json").exists():
        return run_dir / "world_model.pt"
    ac = load_config(ACConfig, cfg.ac.config or None,
                     [f"data.path={clips}", f"model.encoder={encoder}", f"meta.run_dir={run_dir}",
                      f"meta.progress={cfg.progress}", *cfg.ac.overrides])
    train_ac(ac)
    return run_dir / "world_model.pt"


def stage_plan(cfg: DemoConfig, root: Path, world_model: Path) -> dict:
    from eval.planning.benchmark import PlanConfig, run_benchmark

    out = root / "plan"
    if (out / "summary.json").exists():
        return json.loads((out / "summary.json").read_text())
    pc = load_config(PlanConfig, cfg.plan.config or None,
                     [f"world_model={world_model}", f"out_dir={out}", f"env={cfg.collect.env}",
                      f"image_size={cfg.collect.image_size}", f"progress={cfg.progress}", *cfg.plan.overrides])
    summary, _ = run_benchmark(pc)
    return asdict(summary)


# ----------------------------------------------------------------------------------- report

def _curve(path: Path, keys: Sequence[str]) -> dict[str, tuple[list, list]]:
    from eval.planning.artifacts import read_jsonl

    rows = read_jsonl(path) if path.exists() else []
    return {k: ([r["step"] for r in rows if k in r], [r[k] for r in rows if k in r]) for k in keys
            if any(k in r for r in rows)}


def write_report(root: Path, summary: dict, times: dict[str, float]) -> Path:
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
    lines = ["# JEPA world model demo: goal-image MPC on the simulated Fetch arm", "",
             f"- success rate: **{summary['success_rate']:.0%}** ({summary['successes']}/{summary['episodes']})",
             f"- time per action: mean {summary['mean_time_per_action_s']:.3f} s, "
             f"median {summary['median_time_per_action_s']:.3f} s",
             f"- final distance to goal: median {summary['median_final_distance'] * 100:.1f} cm", "",
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
    path.write_text("\n".join(lines) + "\n")
    return path


def run_demo(cfg: DemoConfig, fresh: bool = False) -> dict:
    """All four stages (cached) and the report; returns the planning summary plus stage times [s]."""
    root = Path(cfg.run_dir)
    if fresh and root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    save_config(cfg, root / "demo.yaml")
    times_path = root / "stage_times.json"
    times: dict[str, float] = json.loads(times_path.read_text()) if times_path.exists() else {}

    def timed(name: str, fn, *args):
        t0 = time.perf_counter()
        out = fn(*args)
        times[name] = times.get(name, 0.0) + time.perf_counter() - t0
        times_path.write_text(json.dumps(times, indent=1))
        return out

    clips = timed("collect", stage_collect, cfg, root)
    encoder = timed("pretrain", stage_pretrain, cfg, root, clips)
    world_model = timed("train-ac", stage_ac, cfg, root, clips, encoder)
    summary = timed("plan", stage_plan, cfg, root, world_model)
    times["total"] = sum(v for k, v in times.items() if k != "total")
    times_path.write_text(json.dumps(times, indent=1))
    report = write_report(root, summary, times)
    return {**summary, "stage_times_s": times, "report": str(report)}


def main(argv: Sequence[str]) -> int:
    p = config_parser("jepa demo", __doc__.splitlines()[0],
                      "YAML config (default: configs/demo.yaml settings)", "collect.episodes=100")
    p.add_argument("--fresh", action="store_true", help="delete the run folder and start over")
    cfg, args = parse_config(p, DemoConfig, argv)
    result = run_demo(cfg, fresh=args.fresh)
    t = result["stage_times_s"]
    print(f"reach success rate: {result['success_rate']:.0%} ({result['successes']}/{result['episodes']} "
          f"held-out goals)")
    print(f"time per action: mean {result['mean_time_per_action_s']:.3f} s, "
          f"median {result['median_time_per_action_s']:.3f} s")
    print("stage wall times [s]: " + ", ".join(f"{k} {v:.0f}" for k, v in t.items()))
    print(f"report: {result['report']}  (artefacts in {cfg.run_dir})")
    return 0
