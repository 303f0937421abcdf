import numpy as np
import pytest

from eval.envs.fetch import FetchEnv, drive_gripper_to
from eval.envs.registry import make_env
from planners.protocol import GoalEnv, check_env


def red_marker_pixels(image):
    return int(((image[..., 0] > 150) & (image[..., 1] < 60) & (image[..., 2] < 60)).sum())


@pytest.fixture(scope="module")
def reach():
    env = FetchEnv("reach", image_size=48)
    yield env
    env.close()


def test_fetch_follows_the_protocol_and_renders_headless(reach):
    check_env(reach)
    assert isinstance(reach, GoalEnv)
    image, info = reach.reset(seed=0)
    assert image.shape == (48, 48, 3) and image.dtype == np.uint8 and image.std() > 10
    assert reach.state().shape == (4,) and reach.state().dtype == np.float32
    assert set(info) >= {"is_success", "distance"}


def test_same_seed_same_images(reach):
    a = [reach.reset(seed=5)[0]] + [reach.step(np.array([0.5, -0.3, 0.2, 0.0]))[0] for _ in range(3)]
    b = [reach.reset(seed=5)[0]] + [reach.step(np.array([0.5, -0.3, 0.2, 0.0]))[0] for _ in range(3)]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(reach.reset(seed=6)[0], reach.goal_image())


def test_reach_goal_image_shows_the_goal_and_restores_the_episode(reach):
    start, _ = reach.reset(seed=2)
    state_before = reach.state().copy()
    goal = reach.goal_image()
    np.testing.assert_array_equal(reach.image(), start)  # the episode is untouched
    np.testing.assert_array_equal(reach.state(), state_before)
    assert np.abs(goal.astype(int) - start.astype(int)).sum() > 1000  # the arm moved in the goal image
    # the goal image equals what the camera sees once the gripper is really at the goal
    drive_gripper_to(reach, reach.goal_position(), max_steps=40)
    assert reach.distance_to_goal() < 0.01
    assert np.abs(reach.image().astype(int) - goal.astype(int)).mean() < 2.0
    assert red_marker_pixels(goal) == 0 and red_marker_pixels(start) == 0


def test_scripted_controller_reaches_the_goal_within_the_budget(reach):
    successes = 0
    for seed in range(5):
        reach.reset(seed=seed)
        for _ in range(20):
            delta = reach.goal_position() - reach.state()[:3]
            reach.step(np.concatenate([np.clip(delta / 0.05, -1, 1), [0.0]]))
            if reach.is_success():
                successes += 1
                break
    assert successes == 5


def test_push_goal_image_moves_the_object_and_scripted_push_is_solvable():
    env = FetchEnv("push", image_size=48, goal_style="object")
    try:
        start, _ = env.reset(seed=1)
        obj = env.achieved_position().copy()
        goal = env.goal_image()
        np.testing.assert_allclose(env.achieved_position(), obj)
        assert np.abs(goal.astype(int) - start.astype(int)).sum() > 200
        assert red_marker_pixels(goal) == 0
        # the object placed on the goal makes the env report success
        env._place_object(env.goal_position())
        assert env.is_success()
    finally:
        env.close()


def test_bad_actions_and_names():
    with pytest.raises(ValueError, match="unknown env"):
        make_env("fetch-fly")
    env = make_env("fetch-reach", image_size=32)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="4 finite"):
        env.step(np.array([np.nan, 0, 0, 0]))
    env.close()


def test_pusht_goal_image_lands_on_the_goal():
    env = make_env("pusht", image_size=48)
    try:
        check_env(env)
        start, _ = env.reset(seed=3)
        pose = env.block_pose()
        goal = env.goal_image()
        np.testing.assert_allclose(env.block_pose(), pose)
        assert goal.shape == (48, 48, 3) and not np.array_equal(goal, start)
        env._put_block(np.asarray(env._u.goal_pose, dtype=np.float64))
        assert env.is_success()
        a, _ = env.reset(seed=3)
        np.testing.assert_array_equal(a, start)
    finally:
        env.close()


def test_registered_push_env_shows_a_red_block_and_the_gripper_behind_it_in_the_goal():
    env = make_env("fetch-push", image_size=64)
    try:
        start, _ = env.reset(seed=4)
        assert red_pixels_of_block(start) >= 6  # the block is clearly visible at 64 px
        obj, grip = env.achieved_position().copy(), env.state()[:3].copy()
        goal = env.goal_image()
        np.testing.assert_allclose(env.achieved_position(), obj)  # the episode is untouched
        np.testing.assert_allclose(env.state()[:3], grip)
        # reproduce the goal pose by hand: object on the goal, gripper just behind it, toward the start
        saved = env.get_sim_state()
        env._pose_after_push(obj, env.goal_position())
        direction = (env.goal_position() - obj)[:2] / np.linalg.norm((env.goal_position() - obj)[:2])
        behind = env.goal_position()[:2] - 0.055 * direction
        assert np.linalg.norm(env.state()[:2] - behind) < 0.02 and env.is_success()
        np.testing.assert_array_equal(env.image(), goal)
        env.set_sim_state(saved)
        with pytest.raises(ValueError, match="goal_style"):
            FetchEnv("push", goal_style="sideways")
    finally:
        env.close()


def test_gripper_only_rendering_changes_the_pixels_not_the_physics():
    from eval.envs.fetch import TABLE_CAMERA

    full = FetchEnv("push", image_size=64, camera=TABLE_CAMERA, object_rgba=(0.9, 0.1, 0.1, 1.0))
    bare = FetchEnv("push", image_size=64, camera=TABLE_CAMERA, object_rgba=(0.9, 0.1, 0.1, 1.0),
                    render_arm="gripper")
    try:
        a, _ = full.reset(seed=0)
        b, _ = bare.reset(seed=0)
        # seed 0 puts the block between the robot and the gripper, under the arm's links
        assert red_pixels_of_block(a) < 15 and red_pixels_of_block(b) >= 15
        assert (np.abs(a.astype(int) - b.astype(int)).sum(-1) > 60).sum() > 300  # the links are gone
        for action in np.random.default_rng(0).uniform(-1, 1, (8, 4)).astype(np.float32):
            full.step(action)
            bare.step(action)
        np.testing.assert_array_equal(full.get_sim_state(), bare.get_sim_state())
        with pytest.raises(ValueError, match="render_arm"):
            FetchEnv("push", render_arm="ghost")
    finally:
        full.close()
        bare.close()


def red_pixels_of_block(image):
    return int(((image[..., 0] > 150) & (image[..., 1] < 80) & (image[..., 2] < 80)).sum())


@pytest.mark.parametrize("name, options", [("fetch-push", {}), ("pusht", {}), ("pusht", {"render": "visible"})])
def test_sim_states_restore_exactly_and_set_goals(name, options):
    env = make_env(name, image_size=32, **options)
    try:
        env.reset(seed=1)
        rng = np.random.default_rng(0)
        for _ in range(3):
            env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
        saved, image, state = env.get_sim_state(), env.image().copy(), env.state().copy()
        moves = [rng.uniform(-1, 1, env.action_space.shape).astype(np.float32) for _ in range(4)]
        after = [env.step(a)[0] for a in moves]
        env.set_sim_state(saved)
        np.testing.assert_array_equal(env.image(), image)
        np.testing.assert_allclose(env.state(), state, atol=1e-6)
        again = [env.step(a)[0] for a in moves]  # the same future from the restored state
        for x, y in zip(after, again):
            assert np.abs(x.astype(int) - y.astype(int)).mean() < 0.5
        goal_state = env.get_sim_state()
        env.set_sim_state(saved)
        env.set_goal_from_sim_state(goal_state)
        np.testing.assert_array_equal(env.image(), image)  # setting a goal leaves the current state
        np.testing.assert_array_equal(env.goal_image(), again[-1])
        env.set_sim_state(goal_state)
        assert env.is_success() and env.distance_to_goal() < 1e-6
    finally:
        env.close()


def test_pusht_actions_are_relative_moves_of_the_pusher():
    env = make_env("pusht", image_size=32)
    try:
        env.reset(seed=0)
        start = env.state().copy()
        for _ in range(6):
            env.step(np.array([1.0, 0.0], np.float32))
        moved = env.state() - start
        assert moved[0] > 0.15 and abs(moved[1]) < 0.02  # several steps of 64 px offsets to the right
        assert 0 <= env.state().min() and env.state().max() <= 1  # workspace units
        with pytest.raises(ValueError, match="2 finite"):
            env.step(np.array([np.nan, 0.0]))
    finally:
        env.close()


def _blue_pixels(image: np.ndarray) -> np.ndarray:
    r, g, b = (image[..., i].astype(int) for i in range(3))
    return (b > 150) & (r < 150) & (b - r > 60)  # the pusher's RoyalBlue, not the grey T or the green outline


def test_pusht_visible_rendering_draws_a_larger_pusher_and_leaves_the_physics_alone():
    plain, visible = make_env("pusht", image_size=64), make_env("pusht", image_size=64, render="visible")
    try:
        frames = []
        for env in (plain, visible):
            env.reset(seed=5)
            rng = np.random.default_rng(1)
            for _ in range(8):
                image, *_ = env.step(rng.uniform(-1, 1, 2).astype(np.float32))
            frames.append(image)
        np.testing.assert_array_equal(plain.get_sim_state(), visible.get_sim_state())
        assert plain.is_success() == visible.is_success()
        blue_plain, blue_visible = _blue_pixels(frames[0]).sum(), _blue_pixels(frames[1]).sum()
        assert blue_visible >= 3 * max(blue_plain, 1)  # radius 30 instead of 15 workspace px
        ys, xs = np.nonzero(_blue_pixels(frames[1]))
        centre = visible.state() * 64  # workspace units -> pixels
        assert abs(xs.mean() - centre[0]) < 1.5 and abs(ys.mean() - centre[1]) < 1.5
        np.testing.assert_array_equal(visible.image(), frames[1])  # the frame step() returned
    finally:
        plain.close()
        visible.close()
    with pytest.raises(ValueError, match="render"):
        make_env("pusht", render="huge")
