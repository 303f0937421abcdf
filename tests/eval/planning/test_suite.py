"""The planning suite's tables: mean and min-max over seeds per task and arm, and the pretrained vs
random-init gap judged against the seed spread (never on one seed)."""

import pytest

from eval.planning.suite import SuiteConfig, aggregate, gap_lines, markdown_table


def _summary(rate: float, excluded: int = 2, passive: int = 1) -> dict:
    return {"episodes": 20, "success_rate": rate, "held_rate": rate / 2, "excluded_at_start": excluded,
            "excluded_passive": passive, "median_final_distance": 0.1, "median_time_per_action_s": 0.5}


def _results(rates: dict[str, list[float]]) -> dict:
    by_seed = {}
    for seed in range(len(next(iter(rates.values())))):
        by_seed[seed] = {"summaries": {arm: _summary(r[seed]) for arm, r in rates.items()},
                         "stage_times_s": {"collect": 60.0, "pretrain": 600.0, "train-ac": 300.0,
                                           "train-ac (random-init)": 240.0, "plan (pretrained)": 120.0,
                                           "plan (random-init)": 120.0}}
    return {"push": by_seed}


def test_rows_hold_mean_and_range_over_seeds_and_each_arm_counts_only_its_stages():
    rows = aggregate(_results({"pretrained": [0.4, 0.6], "random-init": [0.1, 0.3]}),
                     ["pretrained", "random-init"])
    p, q = rows
    assert p["success"] == {"mean": 0.5, "min": 0.4, "max": 0.6, "n": 2}
    assert p["pipeline_s"]["mean"] == 60 + 600 + 300 + 120 and q["pipeline_s"]["mean"] == 60 + 240 + 120
    table = markdown_table(rows)
    assert "| push | pretrained | 50% [40%–60%] | 25% [20%–30%] |" in table and "20 (2 + 1)" in table


@pytest.mark.parametrize("rates,verdict", [
    ({"pretrained": [0.8, 0.9], "random-init": [0.2, 0.3]}, "+60% (mean over seeds): a result"),
    ({"pretrained": [0.3, 0.5], "random-init": [0.25, 0.35]}, "+10% (mean over seeds): not a result"),
    # no spread between seeds, but one goal in 20 either way: inside the binomial noise
    ({"pretrained": [0.1, 0.1], "random-init": [0.05, 0.05]}, "+5% (mean over seeds): not a result"),
    ({"pretrained": [0.25], "random-init": [0.2]}, "+5% on one seed: no spread"),
])
def test_the_gap_is_judged_against_the_seed_spread(rates, verdict):
    (line,) = gap_lines(aggregate(_results(rates), ["pretrained", "random-init"]))
    assert verdict in line


def test_unknown_tasks_arms_and_bad_seeds_are_refused():
    for bad in ({"tasks": ["stack"]}, {"arms": ["oracle"]}, {"seeds": [0, 0]}, {"seeds": []}, {"overrides": {"x": []}}):
        with pytest.raises(ValueError):
            SuiteConfig(**bad)
