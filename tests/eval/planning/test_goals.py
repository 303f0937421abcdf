"""Dataset-offset goals: the start is restored exactly, the goal is the episode's frame t + k, success
is judged on the goal's simulator state; goals satisfied at the start are excluded and counted."""

import numpy as np
import pytest

from eval.envs.collect import collect
from eval.envs.registry import make_env
from eval.planning.goals import GoalConfig, GoalProtocolError, Goals
from jepa.data.trajectories import TrajectoryDataset


@pytest.fixture(scope="module", params=["fetch-push", "pusht"])
def held_out(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param) / "eval_clips"
    collect(request.param, root, 3, 12, workers=1, image_size=32, seed=500, progress=False)
    env = make_env(request.param, image_size=32)
    yield request.param, root, env
    env.close()


def test_start_is_restored_exactly_and_the_goal_is_frame_t_plus_k(held_out):
    name, root, env = held_out
    data = TrajectoryDataset(root)
    goals = Goals(env, GoalConfig(source="dataset", dataset=str(root), offset=5), seed=0)
    starts = []
    for start in goals.starts(1):
        starts.append(start)
        ep = data.load([e["id"] for e in data.episodes].index(start.origin["dataset_episode"]))
        t, g = start.origin["t"], start.origin["goal_t"]
        assert g == t + 5
        np.testing.assert_array_equal(env.image(), ep.frames[t])          # the start, exactly
        np.testing.assert_allclose(env.state(), ep.states[t], atol=1e-6)
        np.testing.assert_array_equal(env.goal_image(), ep.frames[g])     # the goal image is frame t + k
        np.testing.assert_allclose(start.goal_state, ep.states[g])
        np.testing.assert_array_equal(env.image(), ep.frames[t])          # rendering the goal left the start
        # success is judged against the goal frame's simulator state
        env.set_sim_state(ep.sim_states[g])
        assert env.is_success() and env.distance_to_goal() < 1e-6
    assert len(starts) == 1


class Still:
    """A collection policy that never moves (so nothing in the scene changes)."""

    def __init__(self, env):
        self.dim = int(np.prod(env.action_space.shape))

    def reset(self, start, rng):
        pass

    def __call__(self, state, rng):
        return np.zeros(self.dim, np.float32)


@pytest.mark.parametrize("name,mover", [("fetch-reach", "smooth-random"), ("pusht", "pusht-push")])
def test_goals_already_satisfied_are_excluded_and_counted(name, mover, tmp_path):
    env = make_env(name, image_size=32)
    root = tmp_path / "mixed"
    collect(name, root, 2, 12, workers=1, image_size=32, seed=700, progress=False,
            policy="tests.eval.planning.test_goals:Still")
    with pytest.raises(GoalProtocolError, match=r"only 0 of 1 goals .*2 were already satisfied"):
        list(Goals(env, GoalConfig(source="dataset", dataset=str(root), offset=8), seed=0).starts(1))
    collect(name, root, 1, 12, workers=1, image_size=32, seed=600, progress=False, policy=mover)
    goals = Goals(env, GoalConfig(source="dataset", dataset=str(root), offset=8), seed=0)
    made = list(goals.starts(1))
    env.close()
    assert len(made) == 1 and goals.excluded == 2 and made[0].origin["dataset_episode"] == 2


def test_env_goals_skip_seeds_whose_goal_holds_at_the_start():
    env = make_env("fetch-reach", image_size=32)
    try:
        goals = Goals(env, GoalConfig(), seed=0)
        seeds = [s.seed for s in goals.starts(4)]
        assert seeds[:1] == [0] and len(seeds) == 4 and seeds == sorted(set(seeds))
        assert seeds[-1] == 3 + goals.excluded
    finally:
        env.close()


def test_bad_goal_settings_are_clear_errors(held_out, tmp_path):
    name, root, env = held_out
    with pytest.raises(GoalProtocolError, match="12 frames|13 frames"):
        list(Goals(env, GoalConfig(source="dataset", dataset=str(root), offset=40), seed=0).starts(1))
    with pytest.raises(GoalProtocolError, match="goals.dataset"):
        Goals(env, GoalConfig(source="dataset"), seed=0)
    with pytest.raises(ValueError, match="offset"):
        GoalConfig(offset=0)

    class NoState:
        pass

    with pytest.raises(GoalProtocolError, match="no get_sim_state"):
        Goals(NoState(), GoalConfig(source="dataset", dataset=str(root)), seed=0)


class _Slider:
    """A 1-D block on a line: env seed s starts it at 0 with velocity 0.1 (even s) or 0 (odd s); the goal
    is at 0.5 (success within 0.05). Actions push it by 0.01 x action."""

    action_space = __import__("gymnasium").spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        self.x, self.v = 0.0, (0.1 if (seed or 0) % 2 == 0 else 0.0)
        return None, {}

    def step(self, action):
        self.x += self.v + 0.01 * float(action[0])
        return None, 0.0, False, False, {}

    def is_success(self):
        return abs(self.x - 0.5) < 0.05

    def get_sim_state(self):
        return np.array([self.x, self.v])

    def set_sim_state(self, state):
        self.x, self.v = float(state[0]), float(state[1])


def test_starts_that_doing_nothing_solves_are_excluded_counted_and_restored():
    env = _Slider()
    goals = Goals(env, GoalConfig(exclude_passive=True), seed=0, budget=10)
    starts = list(goals.starts(3))
    assert [s.seed for s in starts] == [1, 3, 5]  # the sliding starts 0, 2, 4 reach x = 0.5 by themselves
    assert (goals.excluded, goals.excluded_passive) == (0, 3)
    assert (env.x, env.v) == (0.0, 0.0)  # the last start as reset, untouched by the check
    short = Goals(env, GoalConfig(exclude_passive=True), seed=0, budget=4)  # 4 steps: not there yet
    assert next(short.starts(1)).seed == 0 and short.excluded_passive == 0 and (env.x, env.v) == (0.0, 0.1)
    kept = Goals(env, GoalConfig(), seed=0, budget=10)
    assert next(kept.starts(1)).seed == 0  # off by default


def test_passive_exclusion_needs_saved_states_and_a_budget():
    class NoStates:
        action_space = _Slider.action_space

    with pytest.raises(GoalProtocolError, match="has no get_sim_state"):
        Goals(NoStates(), GoalConfig(exclude_passive=True), seed=0, budget=10)
    with pytest.raises(GoalProtocolError, match="budget"):
        Goals(_Slider(), GoalConfig(exclude_passive=True), seed=0, budget=0)
