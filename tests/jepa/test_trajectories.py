import json

import numpy as np
import pytest

from jepa.data.trajectories import (
    TrajectoryDataset,
    TrajectoryFormatError,
    TrajectoryWindows,
    TrajectoryWriter,
    window_starts,
)

META = {"env": "toy", "fps": 10.0, "image_size": 8, "state_dim": 3, "action_dim": 2,
        "state_semantics": "x y z [m]", "action_semantics": "dx dy"}


def episode(t, seed):
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 255, (t, 8, 8, 3), dtype=np.uint8)
    states = rng.normal(size=(t, 3)).astype(np.float32)
    actions = rng.normal(size=(t - 1, 2)).astype(np.float32)
    return frames, states, actions


def write(root, n=3, t=10):
    w = TrajectoryWriter(root, META)
    w.add([w.write_episode(i, *episode(t, i), {"seed": i}) for i in range(n)])
    return w


def test_round_trip(tmp_path):
    write(tmp_path, n=3, t=10)
    data = TrajectoryDataset(tmp_path)
    assert len(data) == 3 and data.index["state_dim"] == 3
    ep = data.load(1)
    frames, states, actions = episode(10, 1)
    np.testing.assert_array_equal(ep.frames, frames)
    np.testing.assert_array_equal(ep.states, states)
    np.testing.assert_array_equal(ep.actions, actions)
    assert ep.info == {"id": 1, "seed": 1}


def test_windows_with_frame_step_sum_actions(tmp_path):
    write(tmp_path, n=2, t=10)
    ds = TrajectoryWindows(tmp_path, window=3, frame_step=2)
    assert len(ds) == 2 * (10 - 4)
    item = ds[7]  # episode 1, start 1
    frames, states, actions = episode(10, 1)
    assert item["frames"].shape == (3, 3, 8, 8)
    np.testing.assert_array_equal(item["frames"].permute(0, 2, 3, 1).numpy(), frames[[1, 3, 5]])
    np.testing.assert_array_equal(item["states"].numpy(), states[[1, 3, 5]])
    np.testing.assert_allclose(item["actions"].numpy(), [actions[1] + actions[2], actions[3] + actions[4]], rtol=1e-6)


def test_window_stride_keeps_starts_on_block_boundaries(tmp_path):
    write(tmp_path, n=2, t=11)
    ds = TrajectoryWindows(tmp_path, window=3, frame_step=2, stride=2)
    assert [(it["episode"], it["start"]) for it in ds] == [(e, s) for e in range(2) for s in (0, 2, 4, 6)]
    assert window_starts([11], 3, 2) == [(0, s) for s in range(7)]
    with pytest.raises(ValueError, match="stride"):
        window_starts([11], 3, 2, stride=0)


def test_extending_keeps_old_episodes_and_rejects_mismatch(tmp_path):
    write(tmp_path, n=2)
    w = TrajectoryWriter(tmp_path, META)
    assert w.next_id == 2
    w.add([w.write_episode(2, *episode(10, 2))])
    assert [e["id"] for e in TrajectoryDataset(tmp_path).episodes] == [0, 1, 2]
    with pytest.raises(TrajectoryFormatError, match="state_dim"):
        TrajectoryWriter(tmp_path, {**META, "state_dim": 4})
    with pytest.raises(TrajectoryFormatError, match="already in the index"):
        w.add([{"id": 1, "file": "x", "length": 3}])


@pytest.mark.parametrize("corruption,message", [
    ("nan", "states contain NaN"),
    ("length", "10 frames need 9 actions, got 8"),
    ("dtype", "frames must be uint8"),
    ("garbage", "unreadable episode"),
])
def test_corrupt_episode_names_the_file(tmp_path, corruption, message):
    write(tmp_path, n=2)
    path = tmp_path / "episodes" / "000001.npz"
    frames, states, actions = episode(10, 1)
    if corruption == "nan":
        states[4, 1] = np.nan
    elif corruption == "length":
        actions = actions[:8]
    elif corruption == "dtype":
        frames = frames.astype(np.float32)
    if corruption == "garbage":
        path.write_bytes(b"\x00garbage")
    else:
        np.savez(path, frames=frames, states=states, actions=actions)
    data = TrajectoryDataset(tmp_path)
    data.load(0)
    with pytest.raises(TrajectoryFormatError, match=message) as err:
        data.load(1)
    assert "000001.npz" in str(err.value)


def test_writer_validates_before_writing(tmp_path):
    w = TrajectoryWriter(tmp_path, META)
    frames, states, actions = episode(5, 0)
    with pytest.raises(TrajectoryFormatError, match="actions contain NaN"):
        w.write_episode(0, frames, states, np.full_like(actions, np.inf))
    assert not (tmp_path / "episodes" / "000000.npz").exists()


def test_bad_index(tmp_path):
    with pytest.raises(TrajectoryFormatError, match="no index.json"):
        TrajectoryDataset(tmp_path)
    (tmp_path / "index.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(TrajectoryFormatError, match="is not 'jepa-trajectories'"):
        TrajectoryDataset(tmp_path)


def test_a_new_dataset_needs_its_dims_and_episodes_must_match_them(tmp_path):
    with pytest.raises(TrajectoryFormatError, match="action_dim is missing; state_dim must be a positive integer"):
        TrajectoryWriter(tmp_path / "a", {"env": "toy", "state_dim": 0})
    w = TrajectoryWriter(tmp_path / "b", META)
    frames, states, actions = episode(5, 0)
    with pytest.raises(TrajectoryFormatError, match="000000.npz: actions have 3 dims, the dataset's action_dim is 2"):
        w.write_episode(0, frames, states, np.zeros((4, 3), np.float32))
    with pytest.raises(TrajectoryFormatError, match="frames are 4x4 px, the dataset's image_size is 8"):
        w.write_episode(0, frames[:, :4, :4], states, actions)
    with pytest.raises(TrajectoryFormatError, match=r"states reach \|x\| = 3e\+07"):
        w.write_episode(0, frames, np.full_like(states, 3e7), actions)
    assert not (tmp_path / "b" / "episodes").exists()


def test_writers_take_distinct_ids_and_keep_each_others_episodes(tmp_path):
    a, b = TrajectoryWriter(tmp_path, META), TrajectoryWriter(tmp_path, META)  # two writers, one dataset
    ids_a, ids_b = a.reserve_ids(2), b.reserve_ids(2)
    assert ids_a == [0, 1] and ids_b == [2, 3]
    b.add([b.write_episode(i, *episode(6, i), {"seed": i}) for i in ids_b])
    a.add([a.write_episode(i, *episode(6, i), {"seed": i}) for i in ids_a])  # re-reads the index: b's stay
    data = TrajectoryDataset(tmp_path)
    assert [e["id"] for e in data.episodes] == [0, 1, 2, 3]
    np.testing.assert_array_equal(data.load(2).states, episode(6, 2)[1])
    assert TrajectoryWriter(tmp_path, META).next_id == 4


@pytest.mark.parametrize("edit,message", [
    (lambda ix: ix["episodes"][0].update(file="/etc/passwd"), "points outside the dataset folder"),
    (lambda ix: ix["episodes"][1].update(file="episodes/../../x.npz"), "points outside the dataset folder"),
    (lambda ix: ix["episodes"][1].update(id=0), "episode id 0 is listed twice"),
    (lambda ix: ix["episodes"][1].update(length=1), "length >= 2"),
    (lambda ix: ix.update(image_size=-8), "image_size must be a positive integer"),
])
def test_bad_index_entries_are_refused(tmp_path, edit, message):
    from tests.helpers import edit_index

    write(tmp_path, n=2)
    edit_index(tmp_path, edit)
    with pytest.raises(TrajectoryFormatError, match=message) as err:
        TrajectoryDataset(tmp_path)
    assert "index.json" in str(err.value)
