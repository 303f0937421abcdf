import pytest
import torch

from jepa.models.ac_predictor import ActionConditionedPredictor
from jepa.models.vit import feature_layer_norm
from jepa.train.ac_losses import ac_losses, copy_last_frame_error, rollout_error


def setup(t=4):
    torch.manual_seed(0)
    p = ActionConditionedPredictor(16, (2, 2), predictor_embed_dim=16, depth=1, num_heads=2, action_dim=3,
                                   state_dim=3)
    z = feature_layer_norm(torch.randn(2, t, 4, 16))
    return p, z, torch.randn(2, t - 1, 3), torch.randn(2, t, 3)


def test_losses_equal_hand_computation():
    p, z, a, s = setup()
    out = ac_losses(p, z, a, s, rollout_steps=2)
    tf = feature_layer_norm(p(z[:, :3].flatten(1, 2), a, s[:, :3]).view(2, 3, 4, 16))
    assert out["teacher_forcing"].item() == pytest.approx((tf - z[:, 1:]).abs().mean().item(), rel=1e-6)
    # step 2 from the TRUE frame 0 and the PREDICTED frame 1
    second = feature_layer_norm(p(torch.cat([z[:, 0], tf[:, 0]], 1), a[:, :2], s[:, :2])[:, 4:])
    expected = torch.stack([tf[:, 0], second], 1).sub(z[:, 1:3]).abs().mean()
    assert out["rollout"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert out["total"].item() == pytest.approx(out["teacher_forcing"].item() + out["rollout"].item(), rel=1e-6)
    # the released (uncorrected) form would use the teacher-forced step 2 instead: a different number
    released = torch.stack([tf[:, 0], tf[:, 1]], 1).sub(z[:, 1:3]).abs().mean()
    assert abs(released.item() - expected.item()) > 1e-4


def test_rollout_gradient_flows_through_the_predicted_frame():
    p, z, a, s = setup()
    ac_losses(p, z, a, s, rollout_steps=2)["rollout"].backward()
    through = [q.grad.clone() for q in p.parameters() if q.grad is not None]
    p.zero_grad()
    # the same loss with the predicted frame 1 detached: the step-2 gradient no longer reaches step 1
    tf = feature_layer_norm(p(z[:, :3].flatten(1, 2), a, s[:, :3]).view(2, 3, 4, 16))
    second = feature_layer_norm(p(torch.cat([z[:, 0], tf[:, 0].detach()], 1), a[:, :2], s[:, :2])[:, 4:])
    torch.stack([tf[:, 0], second], 1).sub(z[:, 1:3]).abs().mean().backward()
    detached = [q.grad.clone() for q in p.parameters() if q.grad is not None]
    assert any((x - y).abs().max() > 1e-7 for x, y in zip(through, detached))


def test_errors_and_baseline():
    p, z, a, s = setup()
    with pytest.raises(ValueError, match="rollout_steps"):
        ac_losses(p, z, a, s, rollout_steps=4)
    with pytest.raises(ValueError, match="need 3 actions"):
        ac_losses(p, z, a[:, :2], s)
    assert copy_last_frame_error(z, 2).item() == pytest.approx((z[:, 1:3] - z[:, :1]).abs().mean().item())
    assert rollout_error(p, z, a, s, 1).item() == pytest.approx(ac_losses(p, z, a, s, 1)["rollout"].item(), rel=1e-5)
