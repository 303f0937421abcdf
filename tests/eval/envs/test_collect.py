import numpy as np

from eval.cli import main as cli_main
from eval.envs.collect import collect
from jepa.data.trajectories import TrajectoryDataset, TrajectoryWindows


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
