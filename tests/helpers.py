"""Small factories shared by tests in several folders: tiny videos, DROID episodes, world models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


def write_video(path, frames=12, h=32, w=48, fps=10):
    """Frame i is uniformly grey at level 20 * i, so decoded frames reveal their index."""
    import imageio.v2 as imageio

    data = [np.full((h, w, 3), (20 * i) % 256, np.uint8) for i in range(frames)]
    imageio.mimwrite(path, data, fps=fps, codec="libx264", macro_block_size=1, pixelformat="yuv420p")
    return path


def write_droid_episode(folder, frames=24, fps=15):
    """A tiny episode in the raw DROID layout: trajectory.h5, recordings/MP4/<serial>.mp4, metadata json."""
    import h5py

    rng = np.random.default_rng(0)
    (folder / "recordings" / "MP4").mkdir(parents=True)
    write_video(folder / "recordings" / "MP4" / "12345.mp4", frames=frames, h=32, w=64, fps=fps)
    meta = {"left_mp4_path": "gs://droid/success/ep/recordings/MP4/12345.mp4", "uuid": "x"}
    (folder / "metadata_x.json").write_text(json.dumps(meta))
    pose = np.cumsum(rng.normal(0, 0.01, (frames, 6)), axis=0)
    grip = np.clip(np.linspace(0, 1, frames), 0, 1)
    with h5py.File(folder / "trajectory.h5", "w") as f:
        f["observation/robot_state/cartesian_position"] = pose
        f["observation/robot_state/gripper_position"] = grip
    return pose, grip


def make_world_model(state_update=None):
    """A seeded tiny world model: 32 px images, 4x4 tokens of width 32, 4-D actions and states."""
    from jepa.models.ac_predictor import ActionConditionedPredictor
    from jepa.models.vit import VisionTransformer
    from jepa.world_model import WorldModel

    torch.manual_seed(0)
    enc = VisionTransformer(img_size=32, patch_size=8, num_frames=2, embed_dim=32, depth=1, num_heads=2)
    pred = ActionConditionedPredictor(32, (4, 4), predictor_embed_dim=24, depth=2, num_heads=2, action_dim=4,
                                      state_dim=4, predict_residual=True)
    return WorldModel(enc, pred, state_update or {"kind": "additive", "scale": [0.05, 0.05, 0.05, 0.0]}, 32).eval()


def assert_config_rejects(schema, override: str, key: str, problem: str) -> None:
    """Loading ``schema`` with ``override`` fails with a ConfigError naming the override, the key and the problem."""
    import pytest

    from jepa.config import ConfigError, load_config

    with pytest.raises(ConfigError) as e:
        load_config(schema, None, [override])
    msg = str(e.value)
    assert f"key '{key}'" in msg and problem in msg and f"override '{override}'" in msg, msg
