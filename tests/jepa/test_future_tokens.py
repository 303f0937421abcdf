"""Predicted future tokens for anticipation: the predictor loader and the observed+future token encoder."""

import pytest
import torch

from jepa.checkpoints import FORMAT, CheckpointError
from jepa.hub import freeze, load_predictor
from jepa.models.future_tokens import FutureTokenEncoder, future_offset
from jepa.models.predictor import MaskedPredictor
from jepa.models.vit import build_vit


def _encoder():
    torch.manual_seed(0)
    return freeze(build_vit("tiny", img_size=32, num_frames=4, patch_size=8, embed_dim=32, depth=1, num_heads=2))


def _predictor(**over):
    torch.manual_seed(1)
    arch = dict(predictor_embed_dim=64, depth=2, num_heads=2, num_mask_tokens=3, zero_init_mask_tokens=False)
    model = MaskedPredictor(32, (2, 4, 4), **{**arch, **over})
    for p in model.parameters():  # non-trivial weights everywhere (the init zeroes some biases)
        p.data.add_(0.02 * torch.randn_like(p))
    return freeze(model)


def _same_outputs(a, b):
    ctx, tgt, grid = torch.randn(2, 16, 32), torch.arange(16).expand(2, 16), (2, 4, 4)
    return torch.allclose(a(ctx, tgt, tgt + 16, mask_index=1, grid=grid),
                          b(ctx, tgt, tgt + 16, mask_index=1, grid=grid), atol=1e-6)


def test_loads_a_project_checkpoint_by_its_recorded_architecture(tmp_path):
    src = _predictor(num_heads=4)  # 4 heads: not what shape inference would guess (64 // 32 = 2)
    torch.save({"format": FORMAT, "version": 1, "predictor_arch": src.arch, "predictor": src.state_dict()},
               tmp_path / "run.pt")
    loaded = load_predictor(tmp_path / "run.pt")
    assert loaded.arch["num_heads"] == 4 and not any(p.requires_grad for p in loaded.parameters())
    assert _same_outputs(src, loaded)


def test_loads_the_official_layout_from_tensor_shapes(tmp_path):
    src = _predictor(mlp_ratio=2.0)
    state = {f"module.{k}": v for k, v in src.state_dict().items()}
    torch.save({"encoder": {}, "predictor": state, "epoch": 3}, tmp_path / "official.pt")
    loaded = load_predictor(tmp_path / "official.pt", grid=(2, 4, 4))
    arch = loaded.arch
    assert (arch["predictor_embed_dim"], arch["depth"], arch["num_mask_tokens"], arch["mlp_ratio"]) == (64, 2, 3, 2.0)
    assert arch["num_heads"] == 2  # width // 32, the released predictor's head size
    assert arch["grid"] == [2, 4, 4]
    assert _same_outputs(src, loaded)


def test_the_token_grid_is_never_assumed(tmp_path, monkeypatch):
    src = _predictor()
    torch.save({"predictor": {f"module.{k}": v for k, v in src.state_dict().items()}}, tmp_path / "bare.pt")
    with pytest.raises(CheckpointError, match=r"records no token grid; pass grid="):
        load_predictor(tmp_path / "bare.pt")
    # the default forward (no grid argument) uses the given grid: its H', W' place the flat indices
    ctx, idx = torch.randn(1, 16, 32), torch.arange(16)[None]
    wide = load_predictor(tmp_path / "bare.pt", grid=(2, 4, 4))
    narrow = load_predictor(tmp_path / "bare.pt", arch={"grid": [4, 2, 8]})
    assert wide.grid == (2, 4, 4) and narrow.grid == (4, 2, 8)
    assert torch.allclose(wide(ctx, idx, idx + 16), src(ctx, idx, idx + 16, grid=(2, 4, 4)), atol=1e-6)
    assert not torch.allclose(wide(ctx, idx, idx + 16), narrow(ctx, idx, idx + 16), atol=1e-4)
    # a named backbone gives its own grid: 64 frames at 256 px, tubelet 2, patch 16
    monkeypatch.setenv("JEPA_HOME", str(tmp_path))
    (tmp_path / "vitl.pt").write_bytes((tmp_path / "bare.pt").read_bytes())
    assert load_predictor("vjepa2-vitl-256").grid == (32, 16, 16)
    # this project's checkpoints record it with the encoder's architecture
    enc = _encoder()
    torch.save({"format": FORMAT, "encoder_arch": enc.arch, "predictor": src.state_dict()}, tmp_path / "own.pt")
    assert load_predictor(tmp_path / "own.pt").grid == (2, 4, 4)


def test_sincos_predictor_and_missing_part_are_rejected_clearly(tmp_path):
    state = dict(_predictor().state_dict(), predictor_pos_embed=torch.zeros(1, 32, 64))
    torch.save({"predictor": state}, tmp_path / "v1.pt")
    with pytest.raises(CheckpointError, match="sin-cos position table"):
        load_predictor(tmp_path / "v1.pt")
    torch.save({"encoder": _encoder().state_dict()}, tmp_path / "enc.pt")
    with pytest.raises(CheckpointError, match="no state dict under"):
        load_predictor(tmp_path / "enc.pt")


def test_future_offset_counts_whole_tubelet_steps():
    assert future_offset(1.0, 8.0, 2) == 4  # the released EK100 setting: 1 s at 8 fps, tubelet 2
    assert future_offset(1.0, 5.0, 2) == 2  # 2.5 steps round down
    with pytest.raises(ValueError):
        future_offset(-1.0, 5.0, 2)


def test_future_tokens_follow_the_observed_ones_and_sit_at_the_action_start():
    enc, pred = _encoder(), _predictor()
    clips = torch.randn(2, 3, 4, 32, 32)  # grid (2, 4, 4): 32 observed tokens
    model = FutureTokenEncoder(enc, pred, offset=2, steps=1)
    out = model(clips)
    assert out.shape == (2, 32 + 16, 32) and model.token_grid(4, 32, 32) == (3, 4, 4)
    observed = enc(clips)
    assert torch.equal(out[:, :32], observed)
    # the targets are the 16 tokens of time step T' + offset = 4 (flat indices 64..79)
    ctx, tgt = torch.arange(32).expand(2, 32), torch.arange(64, 80).expand(2, 16)
    assert torch.allclose(out[:, 32:], pred(observed, ctx, tgt, mask_index=1, grid=(5, 4, 4)), atol=1e-6)
    # a different time (offset) or a different observed clip gives different predictions
    assert not torch.allclose(FutureTokenEncoder(enc, pred, offset=0)(clips)[:, 32:], out[:, 32:], atol=1e-4)
    assert not torch.allclose(model(clips.flip(2))[:, 32:], out[:, 32:], atol=1e-4)


def test_width_mismatch_is_rejected():
    pred = MaskedPredictor(48, (2, 4, 4), predictor_embed_dim=32, depth=1, num_heads=1)
    with pytest.raises(ValueError, match="predictor width 48"):
        FutureTokenEncoder(_encoder(), pred, offset=1)


def test_loads_by_backbone_name_from_jepa_home_and_never_downloads(tmp_path, monkeypatch):
    monkeypatch.setenv("JEPA_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        load_predictor("vjepa2-vitl-256")
    src = _predictor()
    torch.save({"predictor": {f"module.{k}": v for k, v in src.state_dict().items()}}, tmp_path / "vitl.pt")
    assert _same_outputs(src, load_predictor("vjepa2-vitl-256"))


def test_a_world_model_file_is_refused_with_a_pointer_to_its_loader(tmp_path):
    from tests.helpers import make_world_model

    path = make_world_model().save(tmp_path / "world_model.pt")
    with pytest.raises(CheckpointError, match="load_world_model"):
        load_predictor(path)
