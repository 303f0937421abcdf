import numpy as np
import pytest
import torch

from eval.envs.registry import make_env
from eval.planning.benchmark import PlanConfig
from eval.planning.true_dynamics import SimulatorDynamics
from jepa.errors import InputError
from planners.mpc import MPCConfig, plan_space_for_env, run_episode
from planners.objectives import Objective, ObjectiveConfig, l1_distance
from planners.registry import SolverConfig, solver_from_config
from tests.helpers import assert_config_rejects, make_world_model


@pytest.fixture()
def push_env():
    env = make_env("fetch-push", image_size=32)
    env.reset(seed=1)
    yield env
    env.close()


def test_a_simulated_rollout_is_what_executing_the_plan_shows_and_the_start_is_restored(push_env):
    wm = make_world_model()
    space = plan_space_for_env(push_env, 2, [1.0], {3: 0.0}, 2)
    sim = SimulatorDynamics(wm, push_env, space)
    plans = space.project(torch.tensor([[[1.5, 0.0, -0.5, 0.0], [0.0, 1.5, 0.0, 0.0]],
                                        [[-1.5, -1.0, 0.0, 0.0], [0.0, -1.5, -0.5, 0.0]]]))
    start = push_env.get_sim_state().copy()
    z, states = sim.rollout(None, None, plans)
    np.testing.assert_allclose(push_env.get_sim_state(), start, atol=1e-9)
    assert z.shape == (2, 2, 16, 32) and states.shape == (2, 2, 4)
    assert sim.env_steps == 2 * 2 * 2 and len(sim.outcomes) == 2
    assert torch.linalg.norm(states[0, -1, :3] - states[1, -1, :3]) > 0.05  # each plan moved the gripper its way

    for h, action in enumerate(plans[1]):  # execute the second plan for real
        for env_action in space.env_actions(action, push_env.action_space):
            image, *_ = push_env.step(env_action)
        torch.testing.assert_close(z[1, h], wm.encode(image[None])[0])
        np.testing.assert_allclose(states[1, h].numpy(), push_env.state(), atol=1e-6)
    assert sim.outcomes[1].success == push_env.is_success()
    assert sim.outcomes[1].distance == pytest.approx(push_env.distance_to_goal())


def test_mpc_with_simulator_dynamics_predicts_exactly_the_energy_it_then_observes(push_env):
    """With a perfect predictor, the energy of each executed plan is the energy of the frame that
    executing it produced (horizon 1: the plan's one block is all that runs)."""
    wm = make_world_model()
    space = plan_space_for_env(push_env, 1, [1.0], {3: 0.0}, 2)
    sim = SimulatorDynamics(wm, push_env, space)
    solver_cfg = SolverConfig()
    solver_cfg.cem.samples, solver_cfg.cem.iterations, solver_cfg.cem.topk = 6, 2, 2
    frames: list[np.ndarray] = []
    record = run_episode(push_env, sim, solver_from_config(solver_cfg), space, Objective(ObjectiveConfig()),
                         MPCConfig(max_steps=4, stop_on_success=False), seed=0, observations=frames,
                         reset=False)
    goal_z = wm.encode(push_env.goal_image()[None])[0]
    plans = [s for s in record.steps if s.new_plan]
    assert record.env_steps == 4 and len(plans) == 2
    for k, step in enumerate(plans):
        observed = wm.encode(frames[2 * (k + 1)][None])
        assert step.energy == pytest.approx(float(l1_distance(observed, goal_z)[0]), rel=1e-5)
    # plans x (samples x iterations + the returned mean, which the CEM scores too) x env steps per block
    assert sim.env_steps == 2 * (6 * 2 + 1) * 2


def test_simulator_dynamics_needs_an_env_that_saves_its_state_and_the_config_checks_the_choice():
    class NoState:
        pass

    with pytest.raises(InputError, match="get_sim_state"):
        SimulatorDynamics(make_world_model(), NoState(), None)
    assert_config_rejects(PlanConfig, "dynamics=oracle", "dynamics", "oracle")


def test_pusht_candidates_do_not_count_toward_the_executed_episode_and_match_its_physics():
    """gym-pusht truncates after 300 wrapped steps: simulating 320 candidate steps must leave the
    executed episode untruncated, and a simulated plan must show what executing it shows."""
    env = make_env("pusht", image_size=32, render="visible")
    env.reset(seed=3)
    wm = make_world_model()  # only its encoder is used
    space = plan_space_for_env(env, 2, [1.0], {}, 2)
    sim = SimulatorDynamics(wm, env, space)
    plans = space.project(torch.rand(80, 2, 2, generator=torch.Generator().manual_seed(0)) * 2 - 1)
    z, states = sim.rollout(None, None, plans)
    assert sim.env_steps == 80 * 2 * 2 > 300
    for h, action in enumerate(plans[-1]):
        for env_action in space.env_actions(action, env.action_space):
            image, _, _, truncated, _ = env.step(env_action)
            assert not truncated
        np.testing.assert_allclose(states[-1, h].numpy(), env.state(), atol=1e-6)
        torch.testing.assert_close(z[-1, h], wm.encode(image[None])[0])
    assert sim.outcomes[-1].distance == pytest.approx(env.distance_to_goal())
    env.close()
