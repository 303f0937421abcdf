import pytest
import timm
import torch

from jepa.models import VisionTransformer, build_vit, vit_giant, vit_large, vit_tiny


def tiny(**kw):
    args = dict(img_size=32, patch_size=8, num_frames=4, embed_dim=48, depth=2, num_heads=3)
    args.update(kw)
    return VisionTransformer(**args).eval()


@pytest.mark.parametrize("frames,h,w", [(4, 32, 32), (2, 32, 48), (6, 48, 16), (8, 16, 64)])
def test_video_shapes_including_non_square(frames, h, w):
    m = tiny()
    out = m(torch.randn(2, 3, frames, h, w))
    assert out.shape == (2, frames // 2 * (h // 8) * (w // 8), 48)


def test_image_into_video_model_is_one_tubelet_of_repeated_frames():
    m = tiny()
    img = torch.randn(2, 3, 32, 40)
    out = m(img)
    assert out.shape == (2, 4 * 5, 48)
    torch.testing.assert_close(out, m(img.unsqueeze(2).repeat(1, 1, 2, 1, 1)))


def test_image_model_uses_conv2d():
    m = tiny(num_frames=1)
    assert isinstance(m.patch_embed.proj, torch.nn.Conv2d)
    assert m(torch.randn(1, 3, 24, 32)).shape == (1, 12, 48)
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        m(torch.randn(1, 3, 2, 24, 32))


def test_bad_sizes_are_rejected():
    m = tiny()
    with pytest.raises(ValueError, match="multiples of patch_size"):
        m(torch.randn(1, 3, 4, 30, 32))
    with pytest.raises(ValueError, match="tubelet_size"):
        m(torch.randn(1, 3, 3, 32, 32))


@pytest.mark.parametrize("pos", ["rope_tiled", "rope_standard", "sincos"])
def test_masked_forward_keeps_true_positions(pos):
    m = tiny(pos_encoding=pos)
    x = torch.randn(2, 3, 4, 32, 32)
    full = m(x)
    perm = torch.stack([torch.randperm(32), torch.randperm(32)])
    # encoding all tokens in a shuffled order gives the same features, shuffled: each token kept its position
    torch.testing.assert_close(m(x, masks=perm), torch.gather(full, 1, perm.unsqueeze(-1).expand(-1, -1, 48)))
    # a subset is not the same as encoding those tokens as if they were the first ones
    keep = torch.tensor([[5, 9, 17, 30], [0, 2, 4, 31]])
    sub = m(x, masks=keep)
    assert sub.shape == (2, 4, 48)
    shifted = m(x, masks=torch.tensor([[0, 1, 2, 3], [0, 1, 2, 3]]))
    assert not torch.allclose(sub, shifted)


def test_list_of_masks_concatenates_along_batch():
    m = tiny()
    x = torch.randn(2, 3, 4, 32, 32)
    a, b = torch.randint(0, 32, (2, 6)), torch.randint(0, 32, (2, 6))
    out = m(x, masks=[a, b])
    assert out.shape == (4, 6, 48)
    torch.testing.assert_close(out[2:], m(x, masks=b))


def test_out_layers_returns_normed_intermediate_outputs():
    m = tiny(depth=3)
    x = torch.randn(1, 3, 4, 32, 32)
    outs = m(x, out_layers=[0, 2])
    assert len(outs) == 2
    torch.testing.assert_close(outs[1], m(x))
    assert not torch.allclose(outs[0], outs[1])
    m.out_layers = [1]
    assert len(m(x)) == 1


def test_activation_checkpointing_gives_the_same_gradients():
    torch.manual_seed(1)
    a = tiny().train()
    b = tiny(use_activation_checkpointing=True).train()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 3, 4, 32, 32)
    a(x).square().mean().backward()
    b(x).square().mean().backward()
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, msg=name)


def test_stochastic_depth_is_random_in_training_only():
    m = tiny(drop_path_rate=0.5).train()
    x = torch.randn(4, 3, 4, 32, 32)
    assert not torch.allclose(m(x), m(x))
    m.eval()
    torch.testing.assert_close(m(x), m(x))


def test_encode_returns_tokens_and_pooled():
    out = tiny().encode(torch.randn(2, 3, 4, 32, 32))
    assert out.tokens.shape == (2, 32, 48) and out.pooled.shape == (2, 48)
    torch.testing.assert_close(out.pooled, out.tokens.mean(1))


def test_released_sizes_have_the_released_parameter_counts():
    with torch.device("meta"):
        large = vit_large(num_frames=16)
        giant = vit_giant(num_frames=16)
    assert sum(p.numel() for p in large.parameters()) == 303_885_312
    assert sum(p.numel() for p in giant.parameters()) == 1_012_173_952
    assert giant.blocks[0].mlp.fc1.out_features == 6144 and giant.num_heads == 22


def test_timm_registry_builds_the_model_and_rejects_typos():
    m = timm.create_model("jepa_vit_tiny", img_size=32, patch_size=8, num_frames=2, depth=1)
    assert isinstance(m, VisionTransformer) and m.embed_dim == 192
    with pytest.raises(TypeError):
        timm.create_model("jepa_vit_tiny", imgsize=32)
    with pytest.raises(ValueError, match="download nothing"):
        timm.create_model("jepa_vit_tiny", pretrained=True)


def test_unknown_size_and_encoding_rejected():
    with pytest.raises(ValueError, match="unknown ViT size"):
        build_vit("enormous")
    with pytest.raises(ValueError, match="pos_encoding"):
        vit_tiny(pos_encoding="learned")
