import torch

from jepa.models.predictor import MaskedPredictor


def make(**kw):
    torch.manual_seed(0)
    return MaskedPredictor(embed_dim=32, grid=(2, 4, 4), predictor_embed_dim=24, depth=2, num_heads=2,
                           num_mask_tokens=3, **kw).eval()


def test_shapes_and_released_key_names():
    p = make()
    ctx_idx = torch.tensor([[0, 3, 7, 20], [1, 2, 30, 31]])
    tgt_idx = torch.tensor([[5, 6, 9], [0, 10, 11]])
    out = p(torch.randn(2, 4, 32), ctx_idx, tgt_idx, mask_index=0)
    assert out.shape == (2, 3, 32)
    keys = set(p.state_dict())
    assert {"predictor_embed.weight", "mask_tokens.0", "mask_tokens.2", "predictor_blocks.1.attn.qkv.weight",
            "predictor_norm.weight", "predictor_proj.bias"} <= keys


def test_predictions_depend_on_target_positions_not_order():
    p = make(zero_init_mask_tokens=False)
    ctx = torch.randn(1, 4, 32)
    ctx_idx = torch.tensor([[0, 3, 7, 20]])
    out = p(ctx, ctx_idx, torch.tensor([[5, 9]]), mask_index=0)
    swapped = p(ctx, ctx_idx, torch.tensor([[9, 5]]), mask_index=0)
    torch.testing.assert_close(out.flip(1), swapped)  # each output follows its own target position
    moved = p(ctx, ctx_idx, torch.tensor([[5, 26]]), mask_index=0)
    assert not torch.allclose(out[:, 1], moved[:, 1])
    # the context order does not matter either: tokens are sorted by position before the blocks
    perm = torch.tensor([2, 0, 3, 1])
    permuted = p(ctx[:, perm], ctx_idx[:, perm], torch.tensor([[5, 9]]), mask_index=0)
    torch.testing.assert_close(permuted, out, atol=1e-5, rtol=1e-5)


def test_mask_index_selects_the_mask_token():
    p = make(zero_init_mask_tokens=False)
    args = (torch.randn(1, 4, 32), torch.tensor([[0, 3, 7, 20]]), torch.tensor([[5, 9]]))
    torch.testing.assert_close(p(*args, mask_index=0), p(*args, mask_index=3))  # 3 % 3 tokens
    assert not torch.allclose(p(*args, mask_index=0), p(*args, mask_index=1))


def test_the_default_mask_token_is_the_released_one():
    p = make(zero_init_mask_tokens=False)
    args = (torch.randn(1, 4, 32), torch.tensor([[0, 3, 7, 20]]), torch.tensor([[5, 9]]))
    torch.testing.assert_close(p(*args), p(*args, mask_index=1))  # the released forward's default
    assert not torch.allclose(p(*args), p(*args, mask_index=0))
