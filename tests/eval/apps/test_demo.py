"""`jepa demo` at tiny size: the whole chain runs, writes its report, and a re-run resumes from the cache."""

import json

from eval.apps.demo import DemoConfig, run_demo
from eval.planning.pipeline import TrainStage
from jepa.data.trajectories import read_index


def tiny_demo(run_dir) -> DemoConfig:
    cfg = DemoConfig(run_dir=str(run_dir), progress=False)
    cfg.collect.episodes, cfg.collect.steps, cfg.collect.image_size, cfg.collect.workers = 6, 8, 32, 1
    cfg.pretrain = TrainStage("configs/pretrain/tiny_cpu.yaml",
                              ["optimization.max_steps=3", "optimization.global_batch=8", "model.embed_dim=32",
                               "model.depth=1", "model.num_heads=2", "model.pred_embed_dim=16",
                               "model.pred_depth=1", "model.pred_num_heads=2", "optimization.lr.warmup_steps=1"])
    cfg.ac = TrainStage("configs/ac/tiny_cpu.yaml",
                        ["optimization.max_steps=3", "optimization.batch_size=4", "model.embed_dim=16",
                         "model.depth=1", "model.num_heads=2", "data.val_episodes=1",
                         "optimization.lr.warmup_steps=1", "optimization.lr.decay_steps=1"])
    cfg.plan = TrainStage("configs/plan/fetch_reach.yaml",
                          ["episodes=1", "mpc.max_steps=2", "solver.icem.samples=8", "solver.icem.iterations=1",
                           "solver.icem.topk=2", "solver.icem.min_samples=4", "landscape_resolution=3", "gifs=1"])
    return cfg


def test_demo_runs_end_to_end_and_resumes(tmp_path):
    root = tmp_path / "demo"
    result = run_demo(tiny_demo(root))
    assert result["episodes"] == 1 and 0.0 <= result["success_rate"] <= 1.0
    assert set(result["stage_times_s"]) == {"collect", "pretrain", "train-ac", "plan", "total"}
    report = (root / "report.md").read_text()
    assert "success rate" in report and "plan/episode_000.gif" in report and "copy last frame" in report
    for f in ("pretrain/latest.pt", "ac/world_model.pt", "plan/episodes.jsonl", "plan/energy_landscape.png",
              "pretrain_loss.png"):
        assert (root / f).exists(), f

    summary_mtime = (root / "plan" / "summary.json").stat().st_mtime_ns
    steps_before = len((root / "pretrain" / "metrics.jsonl").read_text().splitlines())
    cfg = tiny_demo(root)
    cfg.collect.episodes = 7  # a larger request extends the clips; everything else is cached
    run_demo(cfg)
    assert len(read_index(root / "clips")["episodes"]) == 7
    assert (root / "plan" / "summary.json").stat().st_mtime_ns == summary_mtime
    assert len((root / "pretrain" / "metrics.jsonl").read_text().splitlines()) == steps_before
    cfg.plan.overrides.append("mpc.max_steps=3")  # other plan settings: planned again, nothing else
    run_demo(cfg)
    assert (root / "plan" / "summary.json").stat().st_mtime_ns != summary_mtime
    assert "max_steps: 3" in (root / "plan" / "config.yaml").read_text()
    assert len((root / "pretrain" / "metrics.jsonl").read_text().splitlines()) == steps_before

    run_demo(tiny_demo(root), fresh=True)
    assert len(read_index(root / "clips")["episodes"]) == 6
    assert json.loads((root / "stage_times.json").read_text())["total"] > 0


def test_bare_jepa_demo_runs_the_configs_demo_yaml_settings():
    """`jepa demo` without a config must run exactly what `configs/demo.yaml` (the measured default) says."""
    from dataclasses import asdict

    from jepa.config import load_config

    assert asdict(load_config(DemoConfig, None, [])) == asdict(load_config(DemoConfig, "configs/demo.yaml", []))


def test_planning_uses_the_env_options_the_clips_were_collected_with(tmp_path):
    from eval.planning.pipeline import Pipeline

    cfg = tiny_demo(tmp_path)
    cfg.collect.env, cfg.collect.env_options = "pusht", {"render": "visible"}
    pc = Pipeline(cfg, tmp_path).plan_config(tmp_path / "ac" / "world_model.pt", "plan")
    assert pc.env == "pusht" and pc.env_options == {"render": "visible"}
    pc.env_options["render"] = "env"  # a copy: the pipeline's own config is left alone
    assert cfg.collect.env_options == {"render": "visible"}
