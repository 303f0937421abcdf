"""Fine-tuning on a new embodiment: model.init_from keeps what fits, optimization.freeze keeps blocks fixed."""

import json

import pytest
import torch

from jepa.config import load_config
from jepa.hub import BACKBONES, BackboneSpec
from jepa.released import WORLD_MODELS, WorldModelSpec
from jepa.train import ac
from jepa.train.ac_init import freeze_parameters, init_world_model, transfer_matching
from jepa.world_model import load_world_model
from tests.helpers import make_world_model, write_lerobot_dataset, write_official_ac_checkpoint


def _trained_looking(world):
    """Perturb every parameter so no tensor is at its (often zero) initial value."""
    torch.manual_seed(5)
    with torch.no_grad():
        for p in world.predictor.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return world


def test_a_released_ac_model_moves_to_a_6d_arm_keeping_every_tensor_that_fits(tmp_path, monkeypatch):
    monkeypatch.setenv("JEPA_HOME", str(tmp_path))
    monkeypatch.setitem(BACKBONES, "tiny-ac", BackboneSpec("tiny-ac", "tiny", 32, 2, "tiny-ac.pt", "", "URL"))
    monkeypatch.setitem(WORLD_MODELS, "tiny-ac", WorldModelSpec("tiny-ac", "tiny-ac", dict(
        predictor_embed_dim=128, depth=2, num_heads=2, action_dim=7, state_dim=7)))
    _, _, released = write_official_ac_checkpoint(tmp_path / "tiny-ac.pt")
    world, report = init_world_model("tiny-ac", torch.device("cpu"), 6, 7, {"kind": "pose"})
    assert report.reinitialised == ["action_encoder.weight", "action_encoder.bias"]  # 7-D -> 6-D, bias too
    assert set(report.kept) == set(released) - {"action_encoder.weight", "action_encoder.bias"}
    state = world.predictor.state_dict()
    for k in report.kept:
        assert torch.equal(state[k], released[k]), k  # bit-equal
    assert state["action_encoder.weight"].shape == (128, 6)
    assert not torch.equal(state["action_encoder.bias"], released["action_encoder.bias"])
    assert world.predictor.action_dim == 6 and world.image_size == 32
    _, report = init_world_model("tiny-ac", torch.device("cpu"), 6, 5, {"kind": "additive", "scale": [1.0] * 5})
    assert {k.rsplit(".", 1)[0] for k in report.reinitialised} == {"action_encoder", "state_encoder"}


def test_transfer_copies_whole_modules_only():
    target = make_world_model().predictor
    source = {k: v + 1 for k, v in target.state_dict().items()}
    source["state_encoder.weight"] = torch.zeros(24, 5)  # mis-shaped: the whole state encoder stays
    del source["predictor_norm.bias"]  # missing: the whole norm stays
    before = {k: v.clone() for k, v in target.state_dict().items()}
    kept, reinit = transfer_matching(target, source)
    assert sorted(reinit) == sorted(["state_encoder.weight", "state_encoder.bias", "predictor_norm.weight",
                                     "predictor_norm.bias"])
    after = target.state_dict()
    assert all(torch.equal(after[k], source[k]) for k in kept)
    assert all(torch.equal(after[k], before[k]) for k in reinit)


def test_freeze_by_block_index_or_name_prefix():
    pred = make_world_model().predictor  # 2 blocks
    assert freeze_parameters(pred, []) == []
    frozen = freeze_parameters(pred, ["-1", "predictor_embed"])
    assert frozen and all(n.startswith(("predictor_blocks.1.", "predictor_embed.")) for n in frozen)
    assert {n for n, p in pred.named_parameters() if not p.requires_grad} == set(frozen)
    assert any(n.startswith("predictor_blocks.0.") for n, p in pred.named_parameters() if p.requires_grad)
    with pytest.raises(ValueError, match="block 2 does not exist"):
        freeze_parameters(pred, [2])
    with pytest.raises(ValueError, match="'predictor_block' matches no predictor parameter"):
        freeze_parameters(pred, ["predictor_block"])  # prefixes match at dot boundaries only


def test_fine_tuning_trains_the_new_encoders_and_leaves_frozen_blocks_alone(tmp_path, monkeypatch):
    source = _trained_looking(make_world_model()).save(tmp_path / "source.pt")  # 4-D actions and states
    src = load_world_model(source).predictor.state_dict()
    write_lerobot_dataset(tmp_path / "ds", version="v2.1", episodes=5, length=10, cameras=("front",), action_dim=3)
    captured = {}

    def spy(*args, **kwargs):
        world, report = init_world_model(*args, **kwargs)
        captured["init"] = {k: v.clone() for k, v in world.predictor.state_dict().items()}
        return world, report

    monkeypatch.setattr(ac, "init_world_model", spy)
    cfg = load_config(ac.ACConfig, None, [
        f"model.init_from={source}", f"data.path={tmp_path / 'ds'}", "data.source=lerobot", "data.camera=front",
        "data.val_episodes=1", "optimization.freeze=[0]", "optimization.batch_size=4", "optimization.max_steps=3",
        "optimization.lr.warmup_steps=0", "optimization.lr.base=1e-2", "optimization.clip_grad=null",
        f"meta.run_dir={tmp_path / 'run'}", "meta.device=cpu", "meta.progress=false"])
    world, _ = ac.train_ac(cfg)
    init, trained = captured["init"], world.predictor.state_dict()
    report = json.loads((tmp_path / "run" / "init_from.json").read_text())
    assert report["reinitialised"] == ["action_encoder.weight", "action_encoder.bias"]  # 4-D -> 3-D
    for k in report["kept"]:
        assert torch.equal(init[k], src[k]), k  # bit-equal after loading
    assert report["frozen"] and all(k.startswith("predictor_blocks.0.") for k in report["frozen"])
    for k in report["frozen"]:
        assert torch.equal(trained[k], init[k]), k  # frozen: unchanged by training
    for k in ("action_encoder.weight", "action_encoder.bias", "predictor_blocks.1.attn.qkv.weight"):
        assert not torch.equal(trained[k], init[k]), k  # the new encoders and the free blocks train
    saved = load_world_model(tmp_path / "run" / "world_model.pt")
    assert saved.predictor.action_dim == 3 and saved.predictor.arch["predictor_embed_dim"] == 24
    assert torch.equal(saved.encoder.patch_embed.proj.weight, load_world_model(source).encoder.patch_embed.proj.weight)
