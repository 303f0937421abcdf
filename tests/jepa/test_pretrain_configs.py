
import pytest
import torch

from jepa.config import ConfigError, load_config
from jepa.train import pretrain as pt
from tests.helpers import REPO_ROOT

CONFIGS = sorted(REPO_ROOT.joinpath("configs", "pretrain").glob("*.yaml"))
SMALL = ["model.embed_dim=48", "model.depth=1", "model.num_heads=3", "model.pred_embed_dim=24",
         "model.pred_depth=1", "model.pred_num_heads=2", "data.crop_size=32", "data.frames_per_clip=4"]


def test_all_recipes_exist():
    names = {c.name for c in CONFIGS}
    assert {"tiny_cpu.yaml", "vitl16_256px_16f.yaml", "vith16_256px_16f.yaml", "vitg16_256px_16f.yaml",
            "vitl16_cooldown_256px_64f.yaml", "vitg16_cooldown_384px_64f.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_recipe_loads_and_builds_at_small_size(path):
    cfg = load_config(pt.PretrainConfig, path)
    if path.name.startswith("vit"):
        assert cfg.model.num_mask_tokens == 10 and cfg.model.patch_size == 16
        assert cfg.data.fps == 4 and cfg.data.weights == [0.335, 0.1, 0.565]
        assert [m.num_blocks for m in cfg.masks] == [8, 2]
    small = load_config(pt.PretrainConfig, path, SMALL)
    encoder = pt.build_encoder(small.model, small.data)
    p = small.model.patch_size
    assert encoder(torch.randn(1, 3, 4, 32, 32)).shape == (1, 2 * (32 // p) ** 2, 48)


def test_released_sizes_in_recipes():
    g = load_config(pt.PretrainConfig, CONFIGS[0].parent / "vitg16_cooldown_384px_64f.yaml")
    assert (g.model.embed_dim, g.model.depth, g.model.num_heads, g.data.crop_size, g.data.frames_per_clip) == \
        (1408, 40, 22, 384, 64)
    assert g.optimization.lr.kind == "linear" and g.meta.init_from.endswith("latest.pt")


def test_typos_are_rejected():
    with pytest.raises(ConfigError, match="lerning_rate"):
        load_config(pt.PretrainConfig, None, ["optimization.lerning_rate=0.1"])
    with pytest.raises(ConfigError, match="max_steps"):
        load_config(pt.PretrainConfig, None, ["optimization.max_steps=many"])


def test_command_line_takes_an_optional_config_file_then_overrides():
    from jepa.config import config_parser, parse_config

    parser = config_parser("jepa pretrain", "test", "YAML config", "optimization.max_steps=100")
    cfg, args = parse_config(parser, pt.PretrainConfig, ["optimization.max_steps=7", "meta.seed=3"])
    assert args.config is None and (cfg.optimization.max_steps, cfg.meta.seed) == (7, 3)
    cfg, args = parse_config(parser, pt.PretrainConfig, ["configs/pretrain/tiny_cpu.yaml", "meta.seed=4"])
    assert args.config == "configs/pretrain/tiny_cpu.yaml" and cfg.meta.seed == 4
    from_file = load_config(pt.PretrainConfig, "configs/pretrain/tiny_cpu.yaml")
    assert cfg.optimization.max_steps == from_file.optimization.max_steps
    with pytest.raises(ConfigError, match="does not exist"):
        parse_config(parser, pt.PretrainConfig, ["no_such.yaml"])
