"""Raw DROID episodes read into the same windows as :class:`jepa.data.trajectories.TrajectoryWindows`.

An episode folder holds ``trajectory.h5``, ``recordings/MP4/<camera serial>.mp4`` and a metadata
``*.json`` whose ``left_mp4_path`` (or another camera key) names the video. Per frame:

- state ``[7]`` = ``observation/robot_state/cartesian_position`` (x, y, z [m], Euler "xyz" [rad])
  + ``observation/robot_state/gripper_position`` (0 open .. 1 closed);
- action between two sampled frames ``[7]`` = pose difference, as in the V-JEPA 2-AC release:
  xyz delta, rotation delta as Euler "xyz" of ``R_{t+1} R_t^T``, gripper delta.

Frames are sampled at ``frame_step = ceil(video_fps / target_fps)`` (4 fps by default, the release).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation
from torch.utils.data import Dataset

from jepa.data.trajectories import TrajectoryFormatError
from jepa.data.video import VideoReadError, read_frames, video_info


def poses_to_actions(states: np.ndarray) -> np.ndarray:
    """``[T, 7]`` states (xyz, Euler xyz, gripper) -> ``[T-1, 7]`` pose-difference actions."""
    rot = Rotation.from_euler("xyz", states[:, 3:6])
    delta_rot = (rot[1:] * rot[:-1].inv()).as_euler("xyz")
    return np.concatenate(
        [states[1:, :3] - states[:-1, :3], delta_rot, states[1:, 6:7] - states[:-1, 6:7]], axis=1
    ).astype(np.float32)


def find_video(folder: Path, camera_key: str) -> Path:
    """The MP4 of ``camera_key`` named by the episode's metadata json."""
    metas = sorted(folder.glob("*.json"))
    if not metas:
        raise TrajectoryFormatError(f"{folder}: no metadata *.json in the DROID episode folder")
    meta = json.loads(metas[0].read_text())
    if camera_key not in meta:
        raise TrajectoryFormatError(f"{metas[0]}: no {camera_key!r} entry (keys: {sorted(meta)})")
    name = str(meta[camera_key]).split("recordings/MP4/")[-1]
    return folder / "recordings" / "MP4" / name


def read_droid_states(folder: Path) -> np.ndarray:
    """``[T, 7]`` float32 states from ``trajectory.h5``."""
    import h5py

    path = folder / "trajectory.h5"
    try:
        with h5py.File(path, "r") as f:
            pose = np.asarray(f["observation/robot_state/cartesian_position"], dtype=np.float64)
            grip = np.asarray(f["observation/robot_state/gripper_position"], dtype=np.float64).reshape(-1, 1)
    except (OSError, KeyError) as e:
        raise TrajectoryFormatError(f"{path}: cannot read DROID states ({type(e).__name__}: {e})") from None
    if pose.ndim != 2 or pose.shape[1] != 6 or len(grip) != len(pose):
        raise TrajectoryFormatError(f"{path}: cartesian_position {pose.shape} / gripper {grip.shape} mismatch")
    states = np.concatenate([pose, grip], axis=1).astype(np.float32)
    if not np.isfinite(states).all():
        raise TrajectoryFormatError(f"{path}: states contain NaN or inf")
    return states


class DroidWindows(Dataset):
    """Windows of ``window`` frames from raw DROID episode folders (listed in a file or given directly).

    Items: ``frames`` uint8 ``[W, 3, H, W_px]``, ``states`` float32 ``[W, 7]``, ``actions`` float32
    ``[W-1, 7]``, ``episode``, ``start``. Frames are decoded on access.
    """

    def __init__(self, episodes: list[str | Path] | str | Path, window: int = 8, target_fps: float = 4.0,
                 camera_key: str = "left_mp4_path") -> None:
        if isinstance(episodes, (str, Path)):
            listing = Path(episodes)
            episodes = [Path(line.split()[0]) for line in listing.read_text().splitlines() if line.strip()]
        self.folders = [Path(e) for e in episodes]
        self.window, self.camera_key = window, camera_key
        self.items: list[tuple[int, int]] = []
        self.steps: list[int] = []
        self.states: list[np.ndarray] = []
        self.videos: list[Path] = []
        for e, folder in enumerate(self.folders):
            states = read_droid_states(folder)
            video = find_video(folder, camera_key)
            info = video_info(video)
            step = max(1, math.ceil(info.fps / target_fps))
            usable = min(len(states), info.num_frames)
            self.states.append(states)
            self.videos.append(video)
            self.steps.append(step)
            self.items += [(e, s) for s in range(0, usable - (window - 1) * step)]
        if not self.items:
            raise TrajectoryFormatError(f"no DROID episode is long enough for {window} frames")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        e, s = self.items[i]
        idx = s + self.steps[e] * np.arange(self.window)
        try:
            frames = read_frames(self.videos[e], idx)
        except VideoReadError as err:
            raise TrajectoryFormatError(str(err)) from None
        states = self.states[e][idx]
        return {"frames": torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous(),
                "states": torch.from_numpy(states), "actions": torch.from_numpy(poses_to_actions(states)),
                "episode": e, "start": s}
