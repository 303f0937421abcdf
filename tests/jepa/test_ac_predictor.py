import pytest
import torch

from jepa.checkpoints import load_state_dict_strict, strip_prefixes
from jepa.models.ac_predictor import ActionConditionedPredictor, vit_ac_predictor


def make(**kw):
    torch.manual_seed(0)
    args = dict(embed_dim=32, grid=(2, 3), predictor_embed_dim=24, depth=2, num_heads=2, action_dim=4, state_dim=4)
    args.update(kw)
    return ActionConditionedPredictor(**args).eval()


def inputs(b=2, t=4, hw=6, d=32, a=4):
    return torch.randn(b, t * hw, d), torch.randn(b, t, a), torch.randn(b, t, a)


def test_causality_future_frames_and_actions_do_not_change_the_past():
    p = make()
    frames, actions, states = inputs()
    out = p(frames, actions, states)
    assert out.shape == frames.shape
    f2, a2, s2 = frames.clone(), actions.clone(), states.clone()
    f2[:, 2 * 6:] += torch.randn_like(f2[:, 2 * 6:])  # frames of steps 2, 3
    a2[:, 2:] += 1.0
    s2[:, 3] -= 1.0
    out2 = p(f2, a2, s2)
    torch.testing.assert_close(out2[:, : 2 * 6], out[:, : 2 * 6])  # steps 0, 1 unchanged
    assert not torch.allclose(out2[:, 2 * 6:], out[:, 2 * 6:])
    a3 = actions.clone()
    a3[:, 1] += 1.0  # action 1 changes step 1 onward, not step 0
    out3 = p(frames, a3, states)
    torch.testing.assert_close(out3[:, :6], out[:, :6])
    assert not torch.allclose(out3[:, 6:12], out[:, 6:12])


@pytest.mark.parametrize("extrinsics", [False, True])
def test_kv_cache_matches_full_recomputation(extrinsics):
    p = make(use_extrinsics=extrinsics)
    frames, actions, states = inputs(t=4)
    ext = torch.randn(2, 4, 6) if extrinsics else None
    full = p(frames, actions, states, ext).view(2, 4, 6, 32)
    cache = p.new_cache()
    f = frames.view(2, 4, 6, 32)
    for t in range(4):
        step = p.forward_step(f[:, t], actions[:, t], states[:, t], cache, ext[:, t] if extrinsics else None)
        assert (step - full[:, t]).abs().max() < 1e-5
    assert cache.length == 4 * p.tokens_per_step


def test_cache_expanded_to_many_candidates():
    p = make()
    frames, actions, states = inputs(b=1, t=1)
    cache = p.new_cache()
    p.forward_step(frames, actions[:, 0], states[:, 0], cache)
    many = cache.map(lambda x: x.expand(5, -1, -1, -1))
    nxt, a, s = torch.randn(5, 6, 32), torch.randn(5, 4), torch.randn(5, 4)
    step = p.forward_step(nxt, a, s, many)
    for i in range(5):
        full = p(torch.cat([frames, nxt[i : i + 1]], 1), torch.cat([actions, a[i : i + 1, None]], 1),
                 torch.cat([states, s[i : i + 1, None]], 1))
        assert (full[:, 6:] - step[i : i + 1]).abs().max() < 1e-5


def test_conditioning_tokens_rotate_in_time_only():
    p = make()
    pos = p.step_positions(3, 2, torch.device("cpu")).view(2, p.tokens_per_step, 3)
    assert pos[:, :2, 1:].abs().max() == 0  # action and state tokens: no height/width rotation
    assert pos[0, :, 0].unique().tolist() == [3.0] and pos[1, :, 0].unique().tolist() == [4.0]
    assert pos[0, 2:, 1:].tolist() == [[h, w] for h in range(2) for w in range(3)]


def test_mask_is_built_for_the_actual_length():
    p = make()
    assert not any(b.numel() > 64 for b in p.buffers())  # no precomputed [max_frames^2] mask
    m = p.block_causal_mask(1, 3, torch.device("cpu"))
    assert m.shape == (8, 24) and m.all()
    m = p.block_causal_mask(3, 3, torch.device("cpu"))
    assert m[0, 8] == 0 and m[8, 0] == 1 and m[8, 15] == 1


def test_residual_zero_init_starts_at_copying_the_frame():
    p = make(predict_residual=True, zero_init_output=True)
    frames, actions, states = inputs()
    torch.testing.assert_close(p(frames, actions, states), frames)


def test_released_layout_loads_strictly():
    torch.manual_seed(0)
    src = make(action_dim=7, state_dim=7)
    released = {f"module.backbone.{k}": v.clone() for k, v in src.state_dict().items()}
    expected = {"predictor_embed.weight", "action_encoder.weight", "state_encoder.weight", "extrinsics_encoder.weight",
                "predictor_blocks.0.attn.qkv.weight", "predictor_norm.weight", "predictor_proj.weight"}
    assert expected <= set(strip_prefixes(released))
    dst = make(action_dim=7, state_dim=7)
    load_state_dict_strict(dst, strip_prefixes(released), "released-layout")
    frames, actions, states = inputs(a=7)
    torch.testing.assert_close(dst(frames, actions, states), src(frames, actions, states))


def test_released_size_parameter_count():
    with torch.device("meta"):
        p = vit_ac_predictor()
    assert sum(x.numel() for x in p.parameters()) == 305_220_992


def test_bad_shapes_are_rejected():
    p = make()
    frames, actions, states = inputs()
    with pytest.raises(ValueError, match="must agree"):
        p(frames, actions[:, :3], states)
    with pytest.raises(ValueError, match="multiple of 6"):
        p(frames[:, :-1], actions, states)
