"""The planning benchmark (`jepa plan`): summaries, artefacts, the true-best-action marker."""

import json

import numpy as np
import pytest
import torch

from eval.planning.benchmark import PlanConfig, PlanSummary, run_benchmark, true_best_action
from planners.base import PlanSpace
from planners.mpc import EpisodeRecord, StepRecord, read_episodes
from tests.helpers import make_world_model


def _record(i, success, times, final):
    steps = [StepRecord(step=k + 1, plan_time_s=t, energy=0.1, distance=final, success=success, action=[0.0])
             for k, t in enumerate(times)]
    return EpisodeRecord(episode=i, seed=i, success=success, env_steps=len(times), initial_distance=0.2,
                         final_distance=final, steps=steps)


def test_summary_pools_times_over_all_planning_steps():
    recs = [_record(0, True, [1.0, 3.0], 0.01), _record(1, False, [2.0], 0.2), _record(2, True, [10.0], 0.03)]
    recs[0].held = recs[2].held = True
    s = PlanSummary.of(recs, excluded=5)
    assert (s.episodes, s.successes, s.held, s.excluded_at_start, s.env_steps) == (3, 2, 2, 5, 4)
    assert s.success_rate == pytest.approx(2 / 3)
    assert s.mean_time_per_action_s == pytest.approx(4.0)  # (1 + 3 + 2 + 10) / 4, not a mean of episode means
    assert s.median_time_per_action_s == pytest.approx(2.5)
    assert s.median_final_distance == pytest.approx(0.03)


def test_true_best_action_points_toward_the_goal_and_restores_the_state():
    from eval.envs.fetch import FetchEnv

    env = FetchEnv("reach", image_size=32)
    env.reset(seed=3)
    before = env.get_sim_state().copy()
    space = PlanSpace.symmetric([1.0, 1.0, 1.0, 0.0], 4, 1, pinned={3: 0.0})
    xs = np.linspace(-1, 1, 5)
    best = true_best_action(env, space, xs, (0, 1), torch.zeros(4))
    np.testing.assert_allclose(env.get_sim_state(), before, atol=1e-9)
    direction = (env.goal_position() - env.achieved_position())[:2]
    # The best grid move in x-y has the sign of the goal direction on each axis that matters.
    for axis in range(2):
        if abs(direction[axis]) > 0.03:
            assert np.sign(best[axis]) == np.sign(direction[axis])
    env.close()


def test_benchmark_writes_records_summary_gifs_and_landscape(tmp_path):
    wm_path = make_world_model().save(tmp_path / "world_model.pt")
    cfg = PlanConfig(world_model=str(wm_path), image_size=32, episodes=2, out_dir=str(tmp_path / "plan"), gifs=1,
                     landscape_resolution=3, progress=False)
    cfg.solver.cem.samples, cfg.solver.cem.iterations, cfg.solver.cem.topk = 8, 1, 2
    cfg.mpc.max_steps = 2
    summary, records = run_benchmark(cfg)
    out = tmp_path / "plan"
    assert [r.seed for r in read_episodes(out / "episodes.jsonl")] == [cfg.seed, cfg.seed + 1]
    assert json.loads((out / "summary.json").read_text())["episodes"] == 2
    assert summary.env_steps == sum(r.env_steps for r in records) and 1 <= summary.env_steps <= 4
    assert all(s.plan_time_s > 0 for r in records for s in r.steps)
    assert (out / "episode_000.gif").stat().st_size > 0 and not (out / "episode_001.gif").exists()
    assert (out / "energy_landscape.png").stat().st_size > 0


def test_benchmark_runs_the_baselines_and_refuses_a_model_of_another_env(tmp_path):
    wm_path = make_world_model().save(tmp_path / "world_model.pt")
    cfg = PlanConfig(world_model=str(wm_path), image_size=32, episodes=2, out_dir=str(tmp_path / "none"), gifs=0,
                     landscape=False, progress=False)
    cfg.solver.name = "do-nothing"
    cfg.mpc.max_steps = 3
    summary, records = run_benchmark(cfg)
    assert summary.env_steps == 6 and summary.successes == 0
    assert all(s.action == [0.0, 0.0, 0.0, 0.0] for r in records for s in r.steps)
    assert all(r.final_distance == pytest.approx(r.initial_distance, abs=2e-3) for r in records)
    cfg.env = "pusht"
    with pytest.raises(ValueError, match="world model has 4 action dims, the env 2"):
        run_benchmark(cfg)
    cfg.env = "fetch-fly"
    with pytest.raises(ValueError, match="unknown env 'fetch-fly'"):
        run_benchmark(cfg)
