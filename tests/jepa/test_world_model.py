import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from jepa.models.vit import feature_layer_norm
from jepa.normalization import control_statistics
from jepa.world_model import PoseStateUpdate, WorldModel, load_world_model
from tests.helpers import make_world_model


def test_encode_layer_norms_each_image_separately():
    wm = make_world_model()
    images = np.random.default_rng(0).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    z = wm.encode(images)
    assert z.shape == (3, 16, 32)
    torch.testing.assert_close(z.mean(-1), torch.zeros(3, 16), atol=1e-5, rtol=0)
    torch.testing.assert_close(wm.encode(images[1:2]), z[1:2], atol=1e-5, rtol=1e-5)
    big = np.repeat(np.repeat(images, 2, axis=1), 2, axis=2)  # resized to the model's input size
    assert wm.encode(big).shape == (3, 16, 32)


def test_rollout_with_kv_cache_equals_full_recomputation():
    wm = make_world_model()
    z0 = wm.encode(np.random.default_rng(1).integers(0, 255, (1, 32, 32, 3), dtype=np.uint8)).expand(5, -1, -1)
    state0 = torch.randn(5, 4)
    actions = torch.randn(5, 4, 4)
    with torch.no_grad():
        z, states = wm.rollout(z0, state0, actions)
        z_naive, states_naive = wm.rollout_naive(z0, state0, actions)
    assert z.shape == (5, 4, 16, 32) and states.shape == (5, 4, 4)
    assert (z - z_naive).abs().max() < 1e-5
    torch.testing.assert_close(states, states_naive)
    torch.testing.assert_close(states[:, -1, :3], state0[:, :3] + 0.05 * actions[:, :, :3].sum(1))
    torch.testing.assert_close(states[:, -1, 3], state0[:, 3])


def test_pose_update_matches_scipy():
    state = torch.tensor([[0.1, 0.2, 0.3, 0.3, -0.2, 0.5, 0.9]], dtype=torch.float64)
    action = torch.tensor([[0.01, -0.02, 0.03, 0.05, 0.1, -0.2, 0.3]], dtype=torch.float64)
    out = PoseStateUpdate()(state, action)[0].numpy()
    r = Rotation.from_euler("xyz", action[0, 3:6].numpy()) * Rotation.from_euler("xyz", state[0, 3:6].numpy())
    np.testing.assert_allclose(out[3:6], r.as_euler("xyz"), atol=1e-9)
    np.testing.assert_allclose(out[:3], [0.11, 0.18, 0.33], atol=1e-12)
    assert out[6] == pytest.approx(1.0)  # clipped


def test_save_and_load_round_trip(tmp_path):
    wm = make_world_model()
    path = wm.save(tmp_path / "wm.pt")
    loaded = load_world_model(path)
    images = np.random.default_rng(2).integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    torch.testing.assert_close(loaded.encode(images), wm.encode(images))
    a = torch.randn(2, 2, 4)
    with torch.no_grad():
        torch.testing.assert_close(loaded.rollout(wm.encode(images), torch.zeros(2, 4), a)[0],
                                   wm.rollout(wm.encode(images), torch.zeros(2, 4), a)[0])
    with pytest.raises(ValueError, match="kind.*'teleport'"):
        make_world_model({"kind": "teleport"})
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['sclae'\]"):  # a typo is an error, never ignored
        make_world_model({"kind": "additive", "sclae": [1.0]})


def test_world_model_files_store_the_state_update_as_a_dict_and_older_files_load(tmp_path):
    """Files keep a plain dict (``{"kind", "scale"}``); files written before the typed config held
    ``{"kind": "pose"}`` only, and still load."""
    import torch as t

    from jepa.world_model import StateUpdateConfig

    wm = make_world_model(StateUpdateConfig(kind="additive", scale=[0.1, 0.0, 0.0, 0.0]))
    path = wm.save(tmp_path / "wm.pt")
    saved = t.load(path, weights_only=True)
    assert saved["state_update"] == {"kind": "additive", "scale": [0.1, 0.0, 0.0, 0.0]}
    assert load_world_model(path).state_update.scale.tolist() == pytest.approx([0.1, 0.0, 0.0, 0.0])
    saved["state_update"] = {"kind": "pose"}
    t.save(saved, tmp_path / "old.pt")
    assert isinstance(load_world_model(tmp_path / "old.pt").state_update, PoseStateUpdate)


def test_rollout_takes_robot_units_and_normalises_inside(tmp_path):
    stats = {"action_mean": [0.1, -0.2, 0.0, 1.0], "action_std": [2.0, 0.5, 1.0, 4.0],
             "state_mean": [5.0, 0.0, -1.0, 0.3], "state_std": [10.0, 1.0, 0.1, 2.0]}
    plain = make_world_model()
    wm = WorldModel(plain.encoder, plain.predictor, plain.state_update_spec, 32, stats).eval()
    z0 = plain.encode(np.random.default_rng(3).integers(0, 255, (1, 32, 32, 3), dtype=np.uint8)).expand(3, -1, -1)
    state0, actions = torch.randn(3, 4) * 5, torch.randn(3, 2, 4) * 2
    mean_a, std_a = torch.tensor(stats["action_mean"]), torch.tensor(stats["action_std"])
    mean_s, std_s = torch.tensor(stats["state_mean"]), torch.tensor(stats["state_std"])
    with torch.no_grad():
        z, states = wm.rollout(z0, state0, actions)
        z_naive, _ = wm.rollout_naive(z0, state0, actions)
        # the predictor sees normalised controls; the state update and the returned states are in robot units
        first = feature_layer_norm(plain.predictor(z0, ((actions[:, :1] - mean_a) / std_a),
                                                   ((state0 - mean_s) / std_s)[:, None]))
        unnormalised, _ = plain.rollout(z0, state0, actions)
    torch.testing.assert_close(z[:, 0], first, atol=1e-5, rtol=1e-5)
    assert (z - z_naive).abs().max() < 1e-5
    torch.testing.assert_close(states, plain.rollout(z0, state0, actions)[1])
    assert not torch.allclose(z, unnormalised, atol=1e-3)
    loaded = load_world_model(wm.save(tmp_path / "wm.pt"))
    for k, v in stats.items():
        np.testing.assert_allclose(loaded.normalizer.to_dict()[k], v, rtol=1e-6)
    with torch.no_grad():
        torch.testing.assert_close(loaded.rollout(z0, state0, actions)[0], z)
    with pytest.raises(ValueError, match="action_mean has 3 values, the model has 4 action dims"):
        WorldModel(plain.encoder, plain.predictor, plain.state_update_spec, 32, {**stats, "action_mean": [0.0] * 3})


def test_control_statistics_are_those_of_the_window_actions():
    rng = np.random.default_rng(0)
    states = [rng.normal(size=(9, 2)), rng.normal(size=(7, 2))]
    actions = [rng.normal(size=(8, 3)), rng.normal(size=(6, 3))]
    actions[0][:, 2] = 0.5  # a constant dimension is only centred
    stats = control_statistics(states, actions, frame_step=2)
    sums = np.concatenate([a[:-1] + a[1:] for a in actions])  # every window action at step 2
    np.testing.assert_allclose(stats["action_mean"], sums.mean(0))
    np.testing.assert_allclose(stats["action_std"][:2], sums.std(0)[:2])
    np.testing.assert_allclose(stats["state_mean"], np.concatenate(states).mean(0))
    last = control_statistics(states, actions, frame_step=3, reduce="last")
    np.testing.assert_allclose(last["action_mean"], np.concatenate([a[2:] for a in actions]).mean(0))
    assert control_statistics(states, [np.full((8, 1), 0.5), np.full((6, 1), 0.5)])["action_std"] == [1.0]


def test_pose_update_keeps_full_precision_under_bf16_autocast():
    state = torch.tensor([[0.1, 0.2, 0.3, 0.3, -0.2, 0.5, 0.4]])
    action = torch.tensor([[0.01, -0.02, 0.03, 0.05, 0.1, -0.2, 0.3]])
    exact = PoseStateUpdate()(state, action)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the rollout's precision=bf16 region
        inside = PoseStateUpdate()(state, action)
    assert inside.dtype == torch.float32
    torch.testing.assert_close(inside, exact, atol=1e-6, rtol=1e-6)
