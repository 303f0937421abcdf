"""MPC loop on a toy 2-D point mass whose image embedding is an exact function of position."""

import dataclasses
import json
import math

import gymnasium
import numpy as np
import pytest
import torch

from planners.base import PlanSpace
from planners.baselines import DoNothing, RandomActions
from planners.cem import CEM, CEMConfig
from planners.gradient import GradientConfig, GradientSolver
from planners.icem import ICEM, ICEMConfig
from planners.mpc import MPCConfig, plan_space_for_env, read_episodes, run_episode, write_episodes
from planners.mppi import MPPI, MPPIConfig
from planners.objectives import (
    LatentWorldModel,
    Objective,
    ObjectiveConfig,
    WorldModelCost,
    l1_distance,
    l2_distance,
)
from planners.protocol import GoalEnv

SIZE = 32          # image side [px]
SIGMA = 1.5        # blob std [px]
MAX_STEP = 0.1     # env action bound per axis [position units per step]


def render(pos: np.ndarray, size: int = SIZE) -> np.ndarray:
    """A Gaussian blob at ``pos`` in [-1, 1]^2 -> [size, size, 3] uint8."""
    px = (np.asarray(pos) + 1) / 2 * (size - 1)
    yy, xx = np.mgrid[:size, :size]
    blob = np.exp(-((xx - px[0]) ** 2 + (yy - px[1]) ** 2) / (2 * SIGMA ** 2))
    return np.repeat((255 * blob).round().astype(np.uint8)[..., None], 3, -1)


class PointMassEnv:
    """A point in [-1, 1]^2 moved by deltas in +-MAX_STEP; success within 0.05 of the goal."""

    action_space = gymnasium.spaces.Box(-MAX_STEP, MAX_STEP, (2,), np.float32)

    def __init__(self, goal_size: int = SIZE, reachable: bool = True) -> None:
        self.goal_size, self.reachable = goal_size, reachable

    def reset(self, *, seed=None, options=None):
        rng = np.random.default_rng(seed)
        self.pos = rng.uniform(-0.6, 0.6, 2)
        self.goal = rng.uniform(-0.6, 0.6, 2)
        self.steps = 0
        return self.image(), {}

    def step(self, action):
        assert self.action_space.contains(np.asarray(action, np.float32)), action
        self.steps += 1
        bound = 0.9 if self.reachable else 0.0   # unreachable: the point is stuck at the origin
        self.pos = np.clip(self.pos + action, -bound, bound)
        return self.image(), 0.0, False, False, {"is_success": self.is_success()}

    def image(self):
        return render(self.pos)

    def state(self):
        return self.pos.astype(np.float32)

    def goal_image(self):
        return render(self.goal, self.goal_size)

    def is_success(self):
        return self.distance_to_goal() < 0.05

    def distance_to_goal(self):
        return float(np.linalg.norm(self.pos - self.goal))

    def close(self):
        pass


ROT = torch.stack([torch.tensor([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
                   for t in (0.0, 0.7, 1.9, 2.6)])      # token n = R_n p, N = 4, D = 2


class PointMassModel:
    """Exact latent model of PointMassEnv: encode = blob centroid -> rotated copies of the position;
    rollout = integrate the (env-unit) actions from the position read back from ``z0``."""

    def __init__(self, action_scale: float) -> None:
        self.action_scale = action_scale
        self.encode_calls = 0

    def encode(self, images):
        self.encode_calls += 1
        w = torch.as_tensor(np.asarray(images)[..., 0], dtype=torch.float64)     # [B, H, W]
        grid = torch.arange(SIZE, dtype=torch.float64)
        yy, xx = torch.meshgrid(grid, grid, indexing="ij")
        c = torch.stack([(w * xx).sum((1, 2)), (w * yy).sum((1, 2))], -1) / w.sum((1, 2))[:, None]
        return self.embed(c.float() / (SIZE - 1) * 2 - 1)

    @staticmethod
    def embed(p):
        return torch.einsum("nij,...j->...ni", ROT, p)                            # [..., N, D]

    def rollout(self, z0, state0, actions):
        p = z0[:, None, 0] + torch.cumsum(actions * self.action_scale, 1)               # [B, H, 2]
        return self.embed(p), p


def make(solver=None, horizon=2, budget=40, **kw):
    scale = 0.1
    env = PointMassEnv(**kw)
    model = PointMassModel(scale)
    space = plan_space_for_env(env, horizon, action_scale=scale)   # planner units: [-1, 1]
    solver = solver or CEM(CEMConfig(samples=100, iterations=4, topk=10))
    return env, model, solver, space, MPCConfig(max_steps=budget)


def test_model_follows_the_protocols_and_is_exact():
    env, model, *_ = make()
    assert isinstance(env, GoalEnv) and isinstance(model, LatentWorldModel)
    env.reset(seed=3)
    z = model.encode(env.image()[None])
    expected = model.embed(torch.tensor(env.pos, dtype=torch.float32))[None]
    torch.testing.assert_close(z, expected, atol=2e-3, rtol=0)
    action = np.array([0.05, -0.08], np.float32)
    _, p = model.rollout(z, torch.zeros(1, 2), torch.tensor(action / 0.1)[None, None])
    env.step(action)
    torch.testing.assert_close(p[0, 0], torch.tensor(env.pos, dtype=torch.float32), atol=3e-3, rtol=0)


@pytest.mark.parametrize("solver", [CEM(CEMConfig(samples=100, iterations=4, topk=10)),
                                    ICEM(ICEMConfig(samples=100, iterations=4, topk=10)),
                                    MPPI(MPPIConfig(samples=100, iterations=4)),
                                    GradientSolver(GradientConfig(iterations=30, lr=0.2, starts=2))],
                         ids=["cem", "icem", "mppi", "gradient"])
def test_mpc_reaches_goal_within_budget(solver):
    env, model, solver, space, cfg = make(solver)
    for seed in range(3):
        rec = run_episode(env, model, solver, space, Objective(ObjectiveConfig()), cfg, seed=seed,
                          episode=seed)
        assert rec.success and env.is_success(), (seed, rec.final_distance)
        assert rec.env_steps <= cfg.max_steps and rec.steps[-1].success
        assert rec.final_distance < 0.05 < rec.initial_distance
        # a straight line at full speed needs at least this many steps
        assert rec.env_steps >= math.ceil((rec.initial_distance - 0.05) / (MAX_STEP * math.sqrt(2)))
        assert all(abs(a) <= np.float32(MAX_STEP) for s in rec.steps for a in s.action)


def test_goal_and_context_encoded_once_per_step():
    env, model, solver, space, cfg = make()
    rec = run_episode(env, model, solver, space, Objective(ObjectiveConfig()), cfg, seed=0)
    assert model.encode_calls == 1 + rec.env_steps        # goal once, then one image per planning step


def test_execute_k_actions_per_plan():
    env, model, solver, space, _ = make(horizon=3)
    calls = []
    inner = solver.solve
    solver.solve = lambda *a, **k: calls.append(k["init"]) or inner(*a, **k)
    rec = run_episode(env, model, solver, space, Objective(ObjectiveConfig()), MPCConfig(40, execute_steps=2),
                      seed=1)
    assert rec.success
    assert len(calls) == math.ceil(rec.env_steps / 2)
    assert calls[0] is None and all(c is not None and c.shape == (3, 2) for c in calls[1:])


def test_episode_is_bitwise_deterministic_and_jsonl_round_trips(tmp_path):
    def strip(rec):
        d = dataclasses.asdict(rec)
        for s in d["steps"]:
            s.pop("plan_time_s")
        return d

    runs = []
    for _ in range(2):
        env, model, solver, space, cfg = make()
        runs.append(run_episode(env, model, solver, space, Objective(ObjectiveConfig()), cfg, seed=5))
    assert strip(runs[0]) == strip(runs[1])
    runs[1].final_distance = float("nan")
    path = write_episodes(runs, tmp_path / "episodes.jsonl")
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["final_distance"] is None
    back = read_episodes(path)
    assert strip(back[0]) == strip(runs[0]) and math.isnan(back[1].final_distance)
    assert back[0].steps[0].plan_time_s == runs[0].steps[0].plan_time_s > 0


def test_budget_is_respected_when_goal_is_unreachable():
    env, model, solver, space, _ = make(reachable=False)
    rec = run_episode(env, model, solver, space, Objective(ObjectiveConfig()), MPCConfig(max_steps=7),
                      seed=0)
    assert not rec.success and rec.env_steps == 7 == env.steps and len(rec.steps) == 7


def test_bad_inputs_raise_clear_errors(tmp_path):
    env, model, solver, space, cfg = make(goal_size=24)
    with pytest.raises(ValueError, match=r"goal_image\(\) is \(24, 24\) but env.image\(\) is \(32, 32\)"):
        run_episode(env, model, solver, space, Objective(ObjectiveConfig()), cfg, seed=0)
    env, model, solver, _, cfg = make()
    with pytest.raises(ValueError, match="3 action dims.*has 2"):
        run_episode(env, model, solver, PlanSpace.symmetric(1.0, 3, 2), Objective(ObjectiveConfig()), cfg,
                    seed=0)
    with pytest.raises(ValueError, match="action_scale"):
        plan_space_for_env(env, 2, action_scale=[0.1, 0.0])
    with pytest.raises(ValueError, match="action block"):
        plan_space_for_env(env, 2, action_block=0)
    cost = WorldModelCost(model, Objective(ObjectiveConfig()), action_dim=2)
    with pytest.raises(RuntimeError, match="set_goal"):
        cost(torch.zeros(4, 2, 2))
    env.reset(seed=0)
    cost.set_goal(env.goal_image())
    cost.set_context(env.image(), env.state())
    with pytest.raises(ValueError, match=r"expected actions \[S, H, 2\]"):
        cost(torch.zeros(4, 2, 3))
    (tmp_path / "bad.jsonl").write_text('{"episode": 0}\n')
    with pytest.raises(ValueError, match="bad.jsonl: line 1"):
        read_episodes(tmp_path / "bad.jsonl")


def test_objectives():
    g = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    z = torch.randn(5, 2, 4, 3, generator=torch.Generator().manual_seed(1))        # [S, H, N, D]
    states = torch.randn(5, 2, 3, generator=torch.Generator().manual_seed(2))
    gs = torch.tensor([0.1, 0.2, 0.3])
    torch.testing.assert_close(l1_distance(z[:, -1], g), (z[:, -1] - g).abs().mean((1, 2)))
    torch.testing.assert_close(l2_distance(z[:, -1], g), ((z[:, -1] - g) ** 2).mean((1, 2)))
    final = Objective(ObjectiveConfig())(z, states, g, None)
    torch.testing.assert_close(final, l1_distance(z[:, 1], g))
    weighted = Objective(ObjectiveConfig(distance="l2", step_weights=[0.5, 2.0]))(z, states, g, None)
    torch.testing.assert_close(weighted, 0.5 * l2_distance(z[:, 0], g) + 2.0 * l2_distance(z[:, 1], g))
    with_state = Objective(ObjectiveConfig(state_weight=3.0, state_dims=[0, 2]))(z, states, g, gs)
    torch.testing.assert_close(with_state, final + 3.0 * (states[:, 1, [0, 2]] - gs[[0, 2]]).abs().mean(1))
    with pytest.raises(ValueError, match="no goal state"):
        Objective(ObjectiveConfig(state_weight=1.0))(z, states, g, None)
    with pytest.raises(ValueError, match="horizon is 2"):
        Objective(ObjectiveConfig(step_weights=[1.0]))(z, states, g, None)
    with pytest.raises(ValueError, match="distance.*must be one of"):
        ObjectiveConfig(distance="cos")


def test_changed_token_energy():
    """tokens="changed" keeps the tokens where the context differs most from the goal and averages the
    distance over those only; a change elsewhere does not move the energy."""
    goal = torch.zeros(8, 3)
    z0 = torch.zeros(8, 3)
    z0[5], z0[2] = 2.0, 1.0  # the context differs from the goal at tokens 5 and 2 (most at 5)
    objective = Objective(ObjectiveConfig(tokens="changed", changed_fraction=0.25))
    tokens = objective.tokens_for(z0, goal)
    assert tokens.tolist() == [2, 5]
    assert Objective(ObjectiveConfig()).tokens_for(z0, goal) is None
    z = torch.zeros(2, 1, 8, 3)
    z[0, 0, 5] = 1.5  # candidate 0 leaves token 5 short of the goal
    z[1, 0, 0] = 9.0  # candidate 1 disturbs a token the goal does not ask to change
    energy = objective(z, torch.zeros(2, 1, 1), goal, None, tokens)
    torch.testing.assert_close(energy, torch.tensor([1.5 / 2, 0.0]))
    full = Objective(ObjectiveConfig())(z, torch.zeros(2, 1, 1), goal, None)
    assert full[1] > full[0]  # the mean over all tokens ranks them the other way
    assert Objective(ObjectiveConfig(tokens="changed", changed_fraction=0.01)).tokens_for(z0, goal).tolist() == [5]
    with pytest.raises(ValueError, match="changed_fraction"):
        ObjectiveConfig(tokens="changed", changed_fraction=0.0)
    with pytest.raises(ValueError, match="tokens.*must be one of"):
        ObjectiveConfig(tokens="some")


def test_cost_uses_the_changed_tokens_of_the_current_context():
    """WorldModelCost picks the changed tokens from the context it was given at this planning step."""
    from tests.helpers import make_world_model

    wm = make_world_model()
    rng = np.random.default_rng(1)
    goal, now = (rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(2))
    objective = Objective(ObjectiveConfig(tokens="changed", changed_fraction=0.5))
    cost = WorldModelCost(wm, objective, action_dim=4)
    goal_z = cost.set_goal(goal)
    cost.set_context(now, np.zeros(4, np.float32))
    actions = torch.randn(3, 2, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        energy = cost(actions)
        z, states = wm.rollout(cost.z0.expand(3, -1, -1), cost.state0.expand(3, -1), actions)
    tokens = objective.tokens_for(cost.z0[0], goal_z)
    assert 0 < len(tokens) < goal_z.shape[0]
    torch.testing.assert_close(energy, l1_distance(z[:, -1, tokens], goal_z[tokens]), atol=1e-6, rtol=1e-5)
    with torch.no_grad():  # several energies from one rollout each equal scoring them one by one
        both = cost.energies(actions, [objective, Objective(ObjectiveConfig())])
    torch.testing.assert_close(both[0], energy)
    torch.testing.assert_close(both[1], l1_distance(z[:, -1], goal_z), atol=1e-6, rtol=1e-5)


def test_cost_works_with_the_project_world_model():
    """WorldModelCost scores candidates of the real jepa WorldModel (tiny, random weights) in one pass,
    identically to scoring them one by one."""
    from tests.helpers import make_world_model

    wm = make_world_model()
    assert isinstance(wm, LatentWorldModel)
    rng = np.random.default_rng(0)
    cost = WorldModelCost(wm, Objective(ObjectiveConfig()), action_dim=4, chunk=3)
    cost.set_goal(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
    cost.set_context(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8), np.zeros(4, np.float32))
    actions = torch.randn(7, 2, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        batched = cost(actions)
        single = torch.cat([cost(a[None]) for a in actions])
    assert batched.shape == (7,) and torch.isfinite(batched).all()
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-5)
    res = CEM(CEMConfig(samples=16, iterations=2, topk=4)).solve(cost, PlanSpace.symmetric(1.0, 4, 2),
                                                                 generator=torch.Generator().manual_seed(0))
    assert res.plan.shape == (2, 4) and res.energy <= float(cost(torch.zeros(1, 2, 4)).detach()) + 1e-4


def test_bf16_cost_runs_under_autocast_and_tracks_fp32():
    """precision="bf16" really runs the rollout in bfloat16 (energies differ from fp32 at bf16's
    resolution, but rank candidates alike); an unknown precision is rejected."""
    from tests.helpers import make_world_model

    wm = make_world_model()
    rng = np.random.default_rng(1)
    goal = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    image = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    actions = torch.randn(16, 2, 4, generator=torch.Generator().manual_seed(1))
    energies = {}
    for precision in ("fp32", "bf16"):
        cost = WorldModelCost(wm, Objective(ObjectiveConfig()), action_dim=4, precision=precision)
        cost.set_goal(goal)
        cost.set_context(image, np.zeros(4, np.float32))
        with torch.no_grad():
            energies[precision] = cost(actions)
    assert energies["bf16"].dtype == torch.float32
    diff = (energies["bf16"] - energies["fp32"]).abs()
    assert diff.max() > 0  # bf16 was really used
    torch.testing.assert_close(energies["bf16"], energies["fp32"], atol=2e-2, rtol=2e-2)
    with pytest.raises(ValueError, match="precision"):
        WorldModelCost(wm, Objective(ObjectiveConfig()), action_dim=4, precision="fp16")


def test_action_blocks_execute_k_env_steps_per_planned_action_and_the_budget_counts_env_steps():
    env, model, solver, _, _ = make()
    space = plan_space_for_env(env, 2, action_scale=0.1, action_block=3)
    assert torch.allclose(space.high, torch.full((2,), 3.0))    # a block moves up to 3 env steps' worth
    calls = []
    inner = solver.solve
    solver.solve = lambda *a, **k: calls.append(1) or inner(*a, **k)
    rec = run_episode(env, model, solver, space, Objective(ObjectiveConfig()), MPCConfig(max_steps=40), seed=2)
    assert rec.success and rec.env_steps <= 40
    actions = np.array([s.action for s in rec.steps])
    # every planned action became 3 identical env actions (the last block may be cut by success)
    full = len(actions) // 3 * 3
    np.testing.assert_array_equal(actions[:full:3], actions[1:full:3])
    np.testing.assert_array_equal(actions[:full:3], actions[2:full:3])
    assert len(calls) == math.ceil(rec.env_steps / 3)
    env, model, solver, _, _ = make(reachable=False)
    rec = run_episode(env, model, solver, space, Objective(ObjectiveConfig()), MPCConfig(max_steps=7), seed=0)
    assert rec.env_steps == 7 == env.steps and rec.stop_reason == "budget"  # 2 blocks + 1 step of the third


def test_keep_planning_after_success_reports_reached_and_held():
    env, model, solver, space, _ = make()
    rec = run_episode(env, model, solver, space, Objective(ObjectiveConfig()),
                      MPCConfig(max_steps=30, stop_on_success=False), seed=1)
    assert rec.env_steps == 30 == env.steps and rec.stop_reason == "budget"
    assert rec.success and rec.first_success_step is not None and rec.first_success_step < 30
    assert rec.steps[rec.first_success_step - 1].success and not rec.steps[rec.first_success_step - 2].success
    assert rec.held == env.is_success() == rec.steps[-1].success


class _Unhelpful(CEM):
    """CEM whose plans always report zero energy gap, i.e. no confidence."""

    def solve(self, *a, **k):
        res = super().solve(*a, **k)
        res.confidence.energy_gap = 0.0
        return res


def test_low_confidence_stops_or_hands_over_after_the_patience():
    env, model, _, space, _ = make(reachable=False)
    solver = _Unhelpful(CEMConfig(samples=20, iterations=2, topk=4))
    cfg = MPCConfig(max_steps=20, low_confidence="stop", confidence_threshold=1e-3, confidence_patience=3)
    rec = run_episode(env, model, solver, space, Objective(ObjectiveConfig()), cfg, seed=0)
    assert rec.stop_reason == "low_confidence" and rec.env_steps == 2   # 2 steps executed, the 3rd plan refused
    assert all(s.energy_gap == 0.0 for s in rec.steps)
    handed = []
    cfg = dataclasses.replace(cfg, low_confidence="handover")
    rec = run_episode(env, model, solver, space, Objective(ObjectiveConfig()), cfg, seed=0,
                      fallback=lambda e, remaining: handed.append((e, remaining)))
    assert rec.stop_reason == "handover" and handed == [(env, 18)]
    ok = run_episode(env, model, CEM(CEMConfig(samples=20, iterations=2, topk=4)), space,
                     Objective(ObjectiveConfig()), dataclasses.replace(cfg, confidence_threshold=-1.0), seed=0)
    assert ok.stop_reason == "budget" and ok.env_steps == 20


def test_baselines_are_real_runs_of_the_env():
    env, model, _, space, cfg = make()
    rec = run_episode(env, model, DoNothing(), space, Objective(ObjectiveConfig()), MPCConfig(max_steps=6), seed=3)
    env.reset(seed=3)
    start = env.pos.copy()
    assert rec.env_steps == 6 and all(s.action == [0.0, 0.0] for s in rec.steps)
    assert rec.final_distance == pytest.approx(rec.initial_distance) and not rec.success
    runs = [run_episode(env, model, RandomActions(), space, Objective(ObjectiveConfig()), MPCConfig(max_steps=6),
                        seed=3) for _ in range(2)]
    assert runs[0].steps[0].action == runs[1].steps[0].action        # seeded
    assert len({tuple(s.action) for s in runs[0].steps}) == 6        # a new random action each step
    assert not np.allclose(env.pos, start)                           # the env really moved
    assert all(abs(a) <= MAX_STEP + 1e-7 for s in runs[0].steps for a in s.action)


def test_a_prepared_env_is_not_reset_and_a_mismatched_world_model_is_refused():
    env, model, solver, space, cfg = make()
    env.reset(seed=0)
    env.pos, env.goal = np.array([0.3, 0.3]), np.array([0.32, 0.3])   # the caller's start and goal
    rec = run_episode(env, model, solver, space, Objective(ObjectiveConfig()), cfg, seed=99, reset=False)
    assert rec.initial_distance == pytest.approx(0.02) and rec.success and rec.env_steps == 0
    model.action_dim = 3
    with pytest.raises(ValueError, match="world model has 3 action dims, the env 2"):
        run_episode(env, model, solver, space, Objective(ObjectiveConfig()), cfg, seed=0)
