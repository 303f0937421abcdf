import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from jepa.world_model import PoseStateUpdate, load_world_model
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
