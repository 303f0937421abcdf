"""A random-init encoder of a checkpoint's architecture, built in one place (jepa.hub) for the probes
and AC training."""

import torch

from jepa.hub import RANDOM_INIT_SEED, export_backbone, load_backbone, random_init
from jepa.models.vit import VisionTransformer, build_vit


def _checkpoint(tmp_path):
    torch.manual_seed(0)
    enc = VisionTransformer(img_size=32, patch_size=8, num_frames=2, embed_dim=32, depth=1, num_heads=2)
    return enc, export_backbone(enc, tmp_path / "enc.safetensors")


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_random_init_keeps_the_architecture_and_is_seeded(tmp_path):
    enc, path = _checkpoint(tmp_path)
    rng = torch.random.get_rng_state()
    random_init(enc.arch, 0)
    assert torch.equal(torch.random.get_rng_state(), rng)  # the global RNG is left alone
    r0 = load_backbone(path, init="random", seed=0)
    assert r0.arch == enc.arch and not _same(r0, enc)
    assert _same(r0, load_backbone(path, init="random", seed=0))
    assert not _same(r0, load_backbone(path, init="random", seed=1))
    assert not any(p.requires_grad for p in r0.parameters())
    got = load_backbone(path, init="random", seed=3)
    with torch.random.fork_rng(devices=[]):  # the rule: VisionTransformer(**arch) at RANDOM_INIT_SEED + seed
        torch.manual_seed(RANDOM_INIT_SEED + 3)
        assert _same(got, VisionTransformer(**enc.arch))


def test_probe_random_backbone_without_checkpoint_is_unchanged():
    """``backbone.init=random`` without a checkpoint gives the same weights as before it moved to jepa.hub."""
    from eval.probes.frozen import BackboneConfig, build_backbone

    b = BackboneConfig(init="random", embed_dim=32, depth=2, num_heads=2)
    got = build_backbone(b, 32, 4, seed=5)
    arch = build_vit("tiny", img_size=32, num_frames=4, patch_size=8, tubelet_size=2, embed_dim=32, depth=2,
                     num_heads=2).arch
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_INIT_SEED + 5)
        ref = VisionTransformer(**arch)
    assert _same(got, ref) and got.arch == ref.arch
    assert _same(random_init(ref.arch, 5), got)


def test_ac_training_can_start_from_a_random_encoder(tmp_path):
    from jepa.config import load_config
    from jepa.train.ac import ACConfig, build_world_model

    enc, path = _checkpoint(tmp_path)
    base = [f"model.encoder={path}", "model.embed_dim=32", "model.depth=1", "model.num_heads=2", "meta.seed=4"]
    pre = build_world_model(load_config(ACConfig, None, base), torch.device("cpu"), 4, 4)
    assert _same(pre.encoder, enc)
    cfg = load_config(ACConfig, None, [*base, "model.encoder_init=random"])
    rnd = build_world_model(cfg, torch.device("cpu"), 4, 4)
    assert _same(rnd.encoder, load_backbone(path, init="random", seed=4)) and not _same(rnd.encoder, enc)
