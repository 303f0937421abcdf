"""LeRobot datasets (v2.0, v2.1, v3.0) written here with pyarrow and ffmpeg, read back as training windows."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from jepa.data.lerobot import LeRobotDataset, LeRobotFormatError, LeRobotWindows
from jepa.data.trajectories import TrajectoryWindows, TrajectoryWriter
from tests.helpers import lerobot_level, write_lerobot_dataset

LENGTH = 12


@pytest.mark.parametrize("version", ["v2.0", "v2.1", "v3.0"])
def test_windows_hold_the_right_frames_states_and_summed_actions(tmp_path, version):
    written = write_lerobot_dataset(tmp_path / "ds", version=version, length=LENGTH)
    data = LeRobotDataset(tmp_path / "ds", camera="front")
    assert (len(data), data.state_dim, data.action_dim, data.camera) == (3, 4, 3, "observation.images.front")
    for e in range(3):
        states, actions = data.controls(e)
        np.testing.assert_allclose(states, written["states"][e], rtol=1e-6)
        np.testing.assert_allclose(actions, written["actions"][e][:-1], rtol=1e-6)  # the last row leads nowhere
    windows = LeRobotWindows(data, window=3, frame_step=2)
    assert len(windows) == 3 * (LENGTH - 4)
    for i in (0, len(windows) // 2, len(windows) - 1):
        item = windows[i]
        e, s = item["episode"], item["start"]
        idx = s + 2 * np.arange(3)
        assert item["frames"].shape == (3, 3, 32, 48) and item["frames"].dtype == torch.uint8
        levels = item["frames"].float().mean(dim=(1, 2, 3)).numpy()
        np.testing.assert_allclose(levels, [lerobot_level(e, t, LENGTH) for t in idx], atol=3)  # h264 is lossy
        np.testing.assert_allclose(item["states"].numpy(), written["states"][e][idx], rtol=1e-6)
        # actions are next-step state differences, so a summed window action is the state change
        change = np.diff(written["states"][e][idx, :3], axis=0)
        np.testing.assert_allclose(item["actions"].numpy(), change, rtol=1e-4, atol=1e-4)


def test_absolute_actions_take_the_last_command_before_the_next_frame(tmp_path):
    written = write_lerobot_dataset(tmp_path / "ds", version="v3.0", length=LENGTH, cameras=("front",))
    windows = LeRobotWindows(LeRobotDataset(tmp_path / "ds", "front"), window=3, frame_step=3, action_reduce="last")
    item = windows[5]
    idx = item["start"] + 3 * np.arange(3)
    np.testing.assert_allclose(item["actions"].numpy(), written["actions"][item["episode"]][idx[1:] - 1], rtol=1e-6)
    with pytest.raises(ValueError, match="reduce must be one of"):
        LeRobotWindows(LeRobotDataset(tmp_path / "ds", "front"), window=3, action_reduce="mean")


def test_the_same_windows_as_the_trajectory_format(tmp_path):
    write_lerobot_dataset(tmp_path / "ds", version="v2.1", length=LENGTH, cameras=("wrist",))
    data = LeRobotDataset(tmp_path / "ds", camera="observation.images.wrist")  # a full video key works too
    writer = TrajectoryWriter(tmp_path / "traj", {"env": "test", "state_dim": 4, "action_dim": 3})
    writer.add([writer.write_episode(i, *(lambda ep: (ep.frames, ep.states, ep.actions))(data.load(i)))
                for i in range(len(data))])
    ours, theirs = LeRobotWindows(data, 4, 2), TrajectoryWindows(tmp_path / "traj", 4, 2)
    assert len(ours) == len(theirs)
    for i in range(0, len(ours), 5):
        a, b = ours[i], theirs[i]
        assert set(a) == set(b) and (a["episode"], a["start"]) == (b["episode"], b["start"])
        assert torch.equal(a["frames"], b["frames"]) and torch.equal(a["states"], b["states"])
        torch.testing.assert_close(a["actions"], b["actions"], rtol=1e-5, atol=1e-6)


def test_a_missing_camera_or_key_names_what_there_is(tmp_path):
    write_lerobot_dataset(tmp_path / "ds", cameras=("front", "wrist"))
    with pytest.raises(LeRobotFormatError, match=r"no camera 'top'.*images.front.*observation.images.wrist"):
        LeRobotDataset(tmp_path / "ds", camera="top")
    with pytest.raises(LeRobotFormatError, match=r"no feature 'observation.joints'.*observation.state"):
        LeRobotDataset(tmp_path / "ds", camera="front", state_key="observation.joints")
    with pytest.raises(LeRobotFormatError, match="only cameras stored as mp4"):
        LeRobotDataset(tmp_path / "ds", camera="observation.state")


@pytest.mark.parametrize("version", ["v2.1", "v3.0"])
def test_a_video_at_another_frame_rate_is_refused(tmp_path, version):
    write_lerobot_dataset(tmp_path / "ds", version=version, video_fps=15, cameras=("front",))
    with pytest.raises(LeRobotFormatError, match=r"\.mp4: the video runs at 15\.000 fps, meta/info.json says fps 10"):
        LeRobotDataset(tmp_path / "ds", "front")


def test_disagreeing_frame_rates_in_the_metadata_and_rows_are_refused(tmp_path):
    write_lerobot_dataset(tmp_path / "ds", cameras=("front",))
    info_path = tmp_path / "ds" / "meta" / "info.json"
    info = json.loads(info_path.read_text())
    info["features"]["observation.images.front"]["info"]["video.fps"] = 30.0
    info_path.write_text(json.dumps(info))
    with pytest.raises(LeRobotFormatError, match="has video.fps 30.0, the dataset fps is 10"):
        LeRobotDataset(tmp_path / "ds", "front")
    info["features"]["observation.images.front"]["info"]["video.fps"] = 10.0
    info_path.write_text(json.dumps(info))
    path = tmp_path / "ds" / "data" / "chunk-000" / "episode_000001.parquet"
    t = pq.read_table(path)
    t = t.set_column(t.column_names.index("timestamp"), "timestamp", pa.array(np.arange(LENGTH) / 20, pa.float32()))
    pq.write_table(t, path)
    with pytest.raises(LeRobotFormatError, match=r"episode_000001.parquet \(episode 1\): the timestamps advance at "
                                                 r"20\.000 fps"):
        LeRobotDataset(tmp_path / "ds", "front").controls(1)


def test_mismatched_lengths_are_refused(tmp_path):
    write_lerobot_dataset(tmp_path / "v2", version="v2.1", cameras=("front",))
    lines = (tmp_path / "v2" / "meta" / "episodes.jsonl").read_text().splitlines()
    lines[2] = json.dumps({"episode_index": 2, "tasks": ["move"], "length": LENGTH + 3})
    (tmp_path / "v2" / "meta" / "episodes.jsonl").write_text("\n".join(lines))
    with pytest.raises(LeRobotFormatError, match=f"needs frame {LENGTH + 2}"):  # the video is too short
        LeRobotDataset(tmp_path / "v2", "front")
    write_lerobot_dataset(tmp_path / "v3", version="v3.0", cameras=("front",))
    path = tmp_path / "v3" / "data" / "chunk-000" / "file-000.parquet"
    pq.write_table(pq.read_table(path).slice(0, 3 * LENGTH - 2), path)  # the last episode loses two rows
    data = LeRobotDataset(tmp_path / "v3", "front")
    with pytest.raises(LeRobotFormatError, match=f"file-000.parquet \\(episode 2\\): {LENGTH - 2} rows, the episode "
                                                 f"metadata says length {LENGTH}"):
        LeRobotWindows(data, window=3)


def test_bad_values_and_versions_are_refused(tmp_path):
    write_lerobot_dataset(tmp_path / "ds", version="v3.0", cameras=("front",))
    path = tmp_path / "ds" / "data" / "chunk-000" / "file-000.parquet"
    t = pq.read_table(path)
    actions = t.column("action").to_pylist()
    actions[5][1] = float("nan")
    pq.write_table(t.set_column(t.column_names.index("action"), "action", pa.array(actions)), path)
    with pytest.raises(LeRobotFormatError, match=r"\(episode 0\): action contains NaN"):
        LeRobotDataset(tmp_path / "ds", "front").controls(0)
    info_path = tmp_path / "ds" / "meta" / "info.json"
    info_path.write_text(info_path.read_text().replace('"v3.0"', '"v1.6"'))
    with pytest.raises(LeRobotFormatError, match=r"codebase_version 'v1.6' is not supported"):
        LeRobotDataset(tmp_path / "ds", "front")
    with pytest.raises(LeRobotFormatError, match="no meta/info.json"):
        LeRobotDataset(tmp_path / "elsewhere", "front")
