"""Surprise: the pretraining predictor's error on the next tubelet, per time step of a clip."""

import math

import pytest
import torch

import jepa
from jepa.hub import freeze
from jepa.models.predictor import MaskedPredictor
from jepa.models.vit import build_vit, feature_layer_norm
from jepa.physics import default_context_steps, summarize, surprise


def _models():
    torch.manual_seed(0)
    enc = freeze(build_vit("tiny", img_size=16, num_frames=8, patch_size=8, embed_dim=32, depth=2, num_heads=2))
    tgt = freeze(build_vit("tiny", img_size=16, num_frames=8, patch_size=8, embed_dim=32, depth=2, num_heads=2))
    pred = MaskedPredictor(32, (4, 2, 2), predictor_embed_dim=48, depth=2, num_heads=2, num_mask_tokens=3,
                           zero_init_mask_tokens=False)
    for p in pred.parameters():  # non-trivial weights everywhere (the init zeroes biases)
        p.data.add_(0.02 * torch.randn_like(p))
    return enc, freeze(pred), tgt


def test_each_step_is_the_pretraining_loss_of_an_end_mask_on_its_window():
    enc, pred, tgt = _models()
    clip = torch.randn(3, 12, 16, 16)  # 6 tubelet steps of 2 x 2 tokens
    s = surprise(enc, pred, clip, target_encoder=tgt, context_steps=2, predict_steps=1, mask_index=2)
    assert s.shape == (6,) and s.dtype == torch.float32
    assert torch.isnan(s[:2]).all() and not torch.isnan(s[2:]).any()
    for t in range(2, 6):
        # What pretraining computes for a (c + k)-step clip whose last k steps are masked: the context
        # encoder sees only the context tokens (at their true positions), the predictor fills the rest.
        window = clip[:, (t - 2) * 2 : (t + 1) * 2].unsqueeze(0)
        ctx_idx, tgt_idx = torch.arange(8).unsqueeze(0), torch.arange(8, 12).unsqueeze(0)
        p = pred(enc(window, masks=ctx_idx), ctx_idx, tgt_idx, mask_index=2, grid=(3, 2, 2))
        target = feature_layer_norm(tgt(window))[:, 8:]
        assert math.isclose(float(s[t]), float((p - target).abs().mean()), rel_tol=1e-5)


def test_the_context_is_causal_and_the_scored_step_is_the_changed_one():
    enc, pred, _ = _models()
    clip = torch.randn(3, 12, 16, 16)
    base = surprise(enc, pred, clip, context_steps=2, predict_steps=2)
    assert torch.isnan(base[[0, 1, 5]]).all()  # no full context before, or fewer than 2 steps after
    changed = clip.clone()
    changed[:, 8:10] += 2.0  # step 4 only
    after = surprise(enc, pred, changed, context_steps=2, predict_steps=2)
    # steps 3 and 4 score windows that contain step 4 (as a target); step 2 scores steps 2-3 from 0-1
    assert torch.equal(after[2], base[2])
    assert not torch.isclose(after[3], base[3]) and not torch.isclose(after[4], base[4])


def test_batch_and_chunking_give_the_same_curves_and_the_default_context_is_the_training_clip():
    enc, pred, _ = _models()
    clips = torch.randn(2, 3, 12, 16, 16)
    batch = surprise(enc, pred, clips, batch_size=3)
    single = torch.stack([surprise(enc, pred, c, batch_size=64) for c in clips])
    assert batch.shape == (2, 6)
    torch.testing.assert_close(batch, single, equal_nan=True, rtol=1e-5, atol=1e-6)
    assert default_context_steps(pred) == 3  # a 4-step training clip, 1 step predicted
    assert torch.isnan(batch[:, :3]).all() and not torch.isnan(batch[:, 3:]).any()
    assert jepa.surprise is surprise


def test_a_predictable_clip_is_less_surprising_than_one_that_changes_abruptly():
    # The predictor's output does not depend on the future, so a future that differs from the past
    # by a jump moves the error: a constant video stays where the targets are predictable.
    enc, pred, _ = _models()
    still = torch.randn(3, 1, 16, 16).repeat(1, 12, 1, 1)
    jump = still.clone()
    jump[:, 8:] = torch.randn(3, 1, 16, 16)
    a, b = surprise(enc, pred, still), surprise(enc, pred, jump)
    torch.testing.assert_close(a[3], a[5])  # nothing changes: same window, same score
    assert not torch.isclose(a[4], b[4])


def test_summary_and_bad_input_are_clear():
    assert summarize(torch.tensor([math.nan, 1.0, 3.0, 2.0])) == {"max": 3.0, "mean": 2.0, "argmax": 2}
    with pytest.raises(ValueError, match="no defined step"):
        summarize(torch.full((3,), math.nan))
    enc, pred, _ = _models()
    with pytest.raises(ValueError, match="at least context"):
        surprise(enc, pred, torch.randn(3, 6, 16, 16))  # 3 steps, default context 3 + 1
    with pytest.raises(ValueError, match="multiple of the tubelet"):
        surprise(enc, pred, torch.randn(3, 9, 16, 16))
    with pytest.raises(ValueError, match=r"\[3, T, H, W\]"):
        surprise(enc, pred, torch.randn(12, 16, 16))
    image = freeze(build_vit("tiny", img_size=16, num_frames=1, patch_size=8, embed_dim=32, depth=1, num_heads=2))
    with pytest.raises(ValueError, match="video encoder"):
        surprise(image, pred, torch.randn(3, 12, 16, 16))
