"""The confidence-versus-failure AUROC: perfect when failing episodes doubt more, chance when not."""

import math

from eval.planning.confidence import confidence_auroc
from planners.mpc import EpisodeRecord, StepRecord


def episode(success, spreads, gaps):
    steps = [StepRecord(step=i + 1, plan_time_s=0.1, energy=0.5, distance=0.1, success=False, action=[0.0],
                        elite_spread=s, energy_gap=g) for i, (s, g) in enumerate(zip(spreads, gaps))]
    return EpisodeRecord(episode=0, seed=0, success=success, env_steps=len(steps), initial_distance=0.2,
                         final_distance=0.1, steps=steps)


def test_failing_episodes_that_doubt_more_give_a_perfect_auroc():
    recs = [episode(False, [0.9, 0.8], [0.01, 0.02]), episode(False, [0.7, 0.9], [0.0, 0.01]),
            episode(True, [0.2, 0.1], [0.3, 0.2]), episode(True, [0.3, 0.2], [0.2, 0.4])]
    out = confidence_auroc(recs)
    assert out["elite_spread"]["steps"] == 1.0 and out["energy_gap"]["episodes"] == 1.0
    assert out["elite_spread"]["failed"] == 2 and out["elite_spread"]["succeeded"] == 2
    flipped = confidence_auroc([episode(not r.success, [s.elite_spread for s in r.steps],
                                        [s.energy_gap for s in r.steps]) for r in recs])
    assert flipped["elite_spread"]["steps"] == 0.0


def test_one_class_only_is_nan_and_episodes_without_plans_are_left_out():
    recs = [episode(True, [0.2], [0.3]), episode(False, [], [])]
    out = confidence_auroc(recs)
    assert math.isnan(out["energy_gap"]["steps"]) and out["energy_gap"]["failed"] == 0
