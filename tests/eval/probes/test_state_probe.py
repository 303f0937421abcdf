"""The state probe: ridge recovers a linear map and not noise, the object reader restores each saved
state, frames are sampled with their targets, and a dataset without sim states is a clear error."""

import numpy as np
import pytest
import torch

from eval.envs.collect import collect
from eval.envs.registry import make_env
from eval.probes.state_probe import (
    encoder_features,
    object_reader,
    pixel_features,
    r2_scores,
    ridge_probe,
    sample_frames,
)
from jepa.errors import InputError
from tests.helpers import write_trajectories


def test_ridge_recovers_a_linear_map_and_finds_nothing_in_noise():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 60))
    w = rng.normal(size=(60, 2))
    y = np.concatenate([x @ w + 0.05 * rng.normal(size=(400, 2)), rng.normal(size=(400, 1))], axis=1)
    res = ridge_probe(x[:300], y[:300], x[300:], y[300:])
    assert min(res["r2"][:2]) > 0.99
    assert res["r2"][2] < 0.1  # a target the features do not carry
    assert len(res["lambda"]) == 3


def test_r2_is_nan_for_a_constant_target_and_one_for_a_perfect_prediction():
    y = np.stack([np.arange(5.0), np.full(5, 2.0)], axis=1)
    r2 = r2_scores(y.copy(), y)
    assert r2[0] == pytest.approx(1.0) and np.isnan(r2[1])


def test_the_object_reader_restores_each_saved_state(tmp_path):
    collect("pusht", tmp_path / "clips", episodes=2, steps=12, workers=1, image_size=32, progress=False,
            policy="pusht-push")
    env = make_env("pusht", image_size=32)
    env.reset(seed=0)
    probe = sample_frames(str(tmp_path / "clips"), every=3, max_frames=7, read_object=object_reader(env, (2,)))
    from jepa.data.trajectories import TrajectoryDataset

    ep = TrajectoryDataset(tmp_path / "clips").load(0)
    sims = ep.sim_states[0::3]  # [x_agent, y_agent, vx, vy, x_block, y_block, angle, ...]
    n0 = len(sims)
    assert probe.frames.shape == (7, 32, 32, 3) and np.array_equal(probe.frames[:n0], ep.frames[0::3])
    obj = probe.targets["object"][:n0]
    assert np.allclose(obj[:, :2], sims[:, 4:6])
    assert np.allclose(obj[:, 2], np.sin(sims[:, 6])) and np.allclose(obj[:, 3], np.cos(sims[:, 6]))
    assert np.allclose(probe.targets["agent"][:n0], ep.states[0::3])
    assert obj[:, :2].std(0).max() > 0  # the pushed block moved: the targets are not all one pose
    env.close()


def test_features_have_one_row_per_frame():
    frames = np.random.default_rng(0).integers(0, 255, size=(5, 32, 32, 3), dtype=np.uint8)
    assert pixel_features(frames, size=4).shape == (5, 48)
    feats = encoder_features(lambda f: torch.ones(len(f), 3, 2), frames, batch=2)
    assert feats.shape == (5, 6)


def test_a_dataset_without_sim_states_is_a_clear_error(tmp_path):
    write_trajectories(tmp_path / "d", episodes=2, length=6)
    with pytest.raises(InputError, match="no sim_states"):
        sample_frames(str(tmp_path / "d"), every=1, max_frames=10, read_object=lambda s: s)
