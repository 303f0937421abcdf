import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from eval.cli import main as cli_main
from eval.envs.collect import collect, parse_env_options
from eval.envs.registry import make_env
from jepa.data.trajectories import TrajectoryDataset, TrajectoryFormatError, TrajectoryWindows
from jepa.errors import InputError
from tests.helpers import REPO_ROOT


def test_collection_20x50_writes_a_valid_diverse_dataset(tmp_path):
    out = tmp_path / "clips"
    collect("fetch-reach", out, episodes=20, steps=50, workers=2, image_size=32, seed=0, progress=False)
    data = TrajectoryDataset(out)
    assert len(data) == 20 and data.index["env"] == "fetch-reach"
    eps = [data.load(i) for i in range(20)]
    assert all(len(e) == 51 for e in eps)
    positions = np.concatenate([e.states[:, :3] for e in eps])
    spread = positions.max(0) - positions.min(0)
    assert (spread[:2] > 0.2).all() and spread[2] > 0.1  # the arm sweeps the workspace
    assert len({e.frames[-1].tobytes() for e in eps}) == 20  # every episode ends somewhere else
    # actions move the end effector as the env documents: 0.05 m per unit per step (mocap lag aside)
    moved = np.linalg.norm(np.diff(eps[0].states[:, :3], axis=0), axis=1)
    assert moved.max() < 0.06
    windows = TrajectoryWindows(out, window=4, frame_step=2)
    assert windows[0]["frames"].shape == (4, 3, 32, 32)


def test_rerun_extends_instead_of_overwriting(tmp_path, capsys):
    out = tmp_path / "clips"
    args = ["collect", "--env", "fetch-reach", "--episodes", "2", "--steps", "5", "--out", str(out),
            "--workers", "1", "--image-size", "32"]
    assert cli_main(args) == 0
    first = TrajectoryDataset(out).load(1).frames.copy()
    assert cli_main(args) == 0
    data = TrajectoryDataset(out)
    assert [e["id"] for e in data.episodes] == [0, 1, 2, 3]
    assert [e["seed"] for e in data.episodes] == [0, 1, 2, 3]
    np.testing.assert_array_equal(data.load(1).frames, first)
    assert "4 episodes" in capsys.readouterr().out


CUSTOM_ENV = "tests.eval.apps.test_custom_env:BlobArm"


def _start_collector(out, episodes):
    """A ``jepa collect`` process (the CLI, in its own interpreter) adding ``episodes`` to ``out``."""
    cmd = [sys.executable, "-m", "eval.cli", "collect", "--env", CUSTOM_ENV, "--episodes", str(episodes),
           "--steps", "3", "--out", str(out), "--workers", "1", "--image-size", "16"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_concurrent_collectors_into_one_folder_give_the_union():
    """Two ``jepa collect`` runs into one folder at once: every episode listed once, under its own id, and
    each entry's file holds that episode (re-collected from the entry's seed). ``JEPA_COLLECT_ROUNDS``
    repeats it (the stability check ran 20 rounds)."""
    from eval.envs.collect import collect_episode
    from eval.envs.policies import make_policy
    from tests.eval.apps.test_custom_env import BlobArm

    per = 12
    for _ in range(int(os.environ.get("JEPA_COLLECT_ROUNDS", "2"))):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "clips"
            procs = [_start_collector(out, per) for _ in range(2)]
            for p in procs:
                _, err = p.communicate(timeout=300)
                assert p.returncode == 0, err
            data = TrajectoryDataset(out)
            ids = [e["id"] for e in data.episodes]
            assert len(ids) == 2 * per and len(set(ids)) == 2 * per
            assert len({e["file"] for e in data.episodes}) == 2 * per
            env = BlobArm(image_size=16)
            for i, entry in enumerate(data.episodes):
                assert entry["seed"] == entry["id"]  # seed 0 + id
                ep = data.load(i)
                again = collect_episode(env, make_policy("smooth-random", env), 3, entry["seed"])
                np.testing.assert_array_equal(ep.states, again["states"])
                np.testing.assert_array_equal(ep.frames, again["frames"])


def test_env_options_reach_the_env_and_the_index_and_renderings_never_mix(tmp_path):
    out = tmp_path / "clips"
    args = ["collect", "--env", "pusht", "--episodes", "2", "--steps", "3", "--out", str(out),
            "--workers", "1", "--image-size", "32", "--env-option", "render=visible"]
    assert cli_main(args) == 0
    data = TrajectoryDataset(out)
    assert data.index["env_options"] == {"render": "visible"}
    env = make_env("pusht", image_size=32, render="visible")
    try:
        first, _ = env.reset(seed=data.episodes[0]["seed"])
    finally:
        env.close()
    np.testing.assert_array_equal(data.load(0).frames[0], first)  # collected under the visible rendering
    with pytest.raises(TrajectoryFormatError, match="env_options"):
        collect("pusht", out, episodes=1, steps=3, workers=1, image_size=32, progress=False)
    assert parse_env_options(["render=visible", "n=3", "on=true"]) == {"render": "visible", "n": 3, "on": True}
    with pytest.raises(InputError, match="KEY=VALUE"):
        parse_env_options(["render"])


def test_held_actions_are_constant_within_aligned_blocks_and_holds_never_mix(tmp_path):
    """``--hold 5``: the policy is asked every 5 env steps; each aligned block of 5 actions is one action,
    so a window at frame step 5 starting on a block sums 5 x that action, and the index records the hold."""
    out = tmp_path / "clips"
    args = ["collect", "--env", "pusht", "--episodes", "2", "--steps", "20", "--out", str(out),
            "--workers", "1", "--image-size", "16", "--hold", "5"]
    assert cli_main(args) == 0
    data = TrajectoryDataset(out)
    assert data.index["action_hold"] == 5
    for i in range(2):
        blocks = data.load(i).actions.reshape(4, 5, -1)
        np.testing.assert_array_equal(blocks, np.repeat(blocks[:, :1], 5, axis=1))
        assert len({b.tobytes() for b in blocks[:, 0]}) >= 2  # the policy does choose a new action per block
    windows = TrajectoryWindows(out, window=3, frame_step=5, stride=5)
    assert [w["start"] for w in windows] == [0, 5, 10] * 2
    np.testing.assert_allclose(windows[1]["actions"].numpy(), 5 * data.load(0).actions[[5, 10]], rtol=1e-6)
    with pytest.raises(TrajectoryFormatError, match="action_hold"):
        collect("pusht", out, episodes=1, steps=20, workers=1, image_size=16, progress=False)
    from eval.envs.policies import HeldActions, PushTPolicy, make_policy

    env = make_env("pusht", image_size=16)
    try:  # the built-in controllers plan for the hold: their gain is divided by it
        policy = make_policy("pusht-push", env, hold=5)
        assert isinstance(policy, HeldActions) and isinstance(policy.policy, PushTPolicy)
        assert policy.hold == 5 and policy.policy.hold == 5
        assert isinstance(make_policy("pusht-push", env), PushTPolicy)
    finally:
        env.close()
    with pytest.raises(InputError, match="hold"):
        collect("pusht", tmp_path / "other", episodes=1, steps=20, workers=1, image_size=16, progress=False, hold=0)
