"""The released V-JEPA 2-AC world model by name, and official AC checkpoints by path."""

import numpy as np
import pytest
import torch

import jepa
from jepa.checkpoints import CheckpointError
from jepa.data.transforms import normalize_frames
from jepa.hub import BACKBONES, BackboneSpec, load_predictor
from jepa.models.ac_predictor import ActionConditionedPredictor
from jepa.models.vit import build_vit, feature_layer_norm
from jepa.released import WORLD_MODELS, WorldModelSpec
from jepa.world_model import PoseStateUpdate, load_world_model
from tests.helpers import write_official_ac_checkpoint

TINY = dict(predictor_embed_dim=128, depth=2, num_heads=2, mlp_ratio=4.0, action_dim=7, state_dim=7)


@pytest.fixture
def tiny_release(tmp_path, monkeypatch):
    """A tiny stand-in for the release: same code path, a 192-wide ViT ("tiny") at 32 px, 2x2 tokens."""
    monkeypatch.setenv("JEPA_HOME", str(tmp_path))
    monkeypatch.setitem(BACKBONES, "tiny-ac", BackboneSpec("tiny-ac", "tiny", 32, 2, "tiny-ac.pt", "", "URL"))
    monkeypatch.setitem(WORLD_MODELS, "tiny-ac", WorldModelSpec("tiny-ac", "tiny-ac", TINY))
    path, enc, pred = write_official_ac_checkpoint(tmp_path / "tiny-ac.pt")
    return path, enc, pred


def test_the_released_name_builds_the_released_architecture():
    spec = WORLD_MODELS["vjepa2-ac-vitg"]
    assert BACKBONES[spec.backbone].filename == "vjepa2-ac-vitg.pt" and BACKBONES[spec.backbone].img_size == 256
    assert spec.state_update == {"kind": "pose"}
    with torch.device("meta"):  # shapes only
        encoder = BACKBONES[spec.backbone].build()
        predictor = spec.build_predictor(encoder)
    assert sum(p.numel() for p in encoder.parameters()) == 1_012_173_952  # the released ViT-g
    assert sum(p.numel() for p in predictor.parameters()) == 305_220_992  # the released AC predictor
    shapes = {k: tuple(v.shape) for k, v in predictor.state_dict().items()}
    assert shapes["predictor_embed.weight"] == (1024, 1408) and shapes["action_encoder.weight"] == (1024, 7)
    assert shapes["state_encoder.weight"] == (1024, 7) and shapes["extrinsics_encoder.weight"] == (1024, 6)
    assert shapes["predictor_proj.weight"] == (1408, 1024) and "predictor_blocks.23.mlp.fc2.bias" in shapes
    assert predictor.grid == (16, 16) and predictor.tokens_per_step == 258
    assert "vjepa2-ac-vitg" in jepa.list_world_models()


def test_a_missing_file_says_which_file_goes_where_and_nothing_is_downloaded(tmp_path, monkeypatch):
    monkeypatch.setenv("JEPA_HOME", str(tmp_path / "home"))
    with pytest.raises(FileNotFoundError) as err:
        jepa.load_world_model("vjepa2-ac-vitg")
    msg = str(err.value)
    assert "nothing is downloaded" in msg and str(tmp_path / "home" / "vjepa2-ac-vitg.pt") in msg
    assert "https://dl.fbaipublicfiles.com/vjepa2/vjepa2-ac-vitg.pt" in msg
    with pytest.raises(FileNotFoundError, match="not a released world model"):
        load_world_model(tmp_path / "nothing.pt")


def test_by_name_the_predictor_matches_the_library_predictor_with_the_same_weights(tiny_release):
    _, enc_state, pred_state = tiny_release
    wm = jepa.load_world_model("tiny-ac")
    reference = ActionConditionedPredictor(192, (2, 2), **TINY)
    reference.load_state_dict(pred_state, strict=True)  # the released keys are exactly the library's names
    frames, actions, states = torch.randn(2, 3 * 4, 192), torch.randn(2, 3, 7), torch.randn(2, 3, 7)
    with torch.no_grad():
        torch.testing.assert_close(wm.predictor(frames, actions, states), reference(frames, actions, states),
                                   rtol=0, atol=0)
    for k, v in pred_state.items():  # every released tensor is loaded as it is in the file
        assert torch.equal(wm.predictor.state_dict()[k], v), k
    assert wm.image_size == 32 and wm.state_update_spec["kind"] == "pose" and not wm.normalizer.enabled


def test_by_name_it_has_the_released_preprocessing_and_state_update(tiny_release):
    _, enc_state, _ = tiny_release
    wm = jepa.load_world_model("tiny-ac")
    encoder = build_vit("tiny", img_size=32, num_frames=2, tubelet_size=2, patch_size=16)
    encoder.load_state_dict(enc_state, strict=True)
    images = np.random.default_rng(0).integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    tubelet = normalize_frames(images).unsqueeze(2).repeat(1, 1, 2, 1, 1)  # each image repeated into one tubelet
    with torch.no_grad():
        expected = feature_layer_norm(encoder.eval()(tubelet))
    z = wm.encode(images)
    torch.testing.assert_close(z, expected, rtol=1e-5, atol=1e-5)
    assert z.shape == (2, 4, 192)
    state0 = torch.tensor([[0.4, 0.0, 0.2, 0.1, -0.2, 0.3, 0.5]]).expand(2, -1)
    actions = 0.05 * torch.randn(2, 2, 7)
    with torch.no_grad():
        zs, states = wm.rollout(z, state0, actions)
        first = feature_layer_norm(wm.predictor(z, actions[:, :1], state0[:, None]))  # layer-normed, as released
    torch.testing.assert_close(zs[:, 0], first, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(states[:, 0], PoseStateUpdate()(state0, actions[:, 0]))


def test_an_official_ac_file_loads_by_path_with_its_architecture_read_from_the_shapes(tmp_path):
    path, _, pred_state = write_official_ac_checkpoint(tmp_path / "ac.pt", action_dim=6, state_dim=5)
    wm = load_world_model(path)
    arch = wm.predictor.arch
    assert (arch["predictor_embed_dim"], arch["depth"], arch["num_heads"]) == (128, 2, 2)  # heads: width / 64
    assert (arch["action_dim"], arch["state_dim"], tuple(arch["grid"])) == (6, 5, (16, 16))  # 256 px default
    assert all(torch.equal(wm.predictor.state_dict()[k], v) for k, v in pred_state.items())


def test_load_predictor_refuses_an_ac_file_with_a_pointer_to_load_world_model(tmp_path, monkeypatch):
    path, _, _ = write_official_ac_checkpoint(tmp_path / "ac.pt")
    with pytest.raises(CheckpointError, match="action-conditioned predictor.*use jepa.load_world_model"):
        load_predictor(path)
    monkeypatch.setenv("JEPA_HOME", str(tmp_path))
    (tmp_path / "vjepa2-ac-vitg.pt").symlink_to(path)
    with pytest.raises(CheckpointError, match="action-conditioned predictor"):
        load_predictor("vjepa2-ac-vitg")


def test_a_wrong_file_under_the_released_name_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("JEPA_HOME", str(tmp_path))
    torch.save({"encoder": {"module.x": torch.zeros(1)}}, tmp_path / "vjepa2-ac-vitg.pt")
    with pytest.raises(CheckpointError, match="not an official V-JEPA 2-AC checkpoint"):
        load_world_model("vjepa2-ac-vitg")

