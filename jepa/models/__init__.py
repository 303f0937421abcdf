"""Model definitions: the video ViT, rotary positions and the shared transformer block."""

from jepa.models.blocks import Attention, Block, KVCache
from jepa.models.rope import Rope3D, apply_rope, grid_positions, sincos_table_3d
from jepa.models.vit import (
    VIT_SIZES,
    EncoderOutput,
    VisionTransformer,
    build_vit,
    feature_layer_norm,
    vit_base,
    vit_giant,
    vit_huge,
    vit_large,
    vit_small,
    vit_tiny,
)

__all__ = [
    "Attention",
    "Block",
    "EncoderOutput",
    "KVCache",
    "Rope3D",
    "VIT_SIZES",
    "VisionTransformer",
    "apply_rope",
    "build_vit",
    "feature_layer_norm",
    "grid_positions",
    "sincos_table_3d",
    "vit_base",
    "vit_giant",
    "vit_huge",
    "vit_large",
    "vit_small",
    "vit_tiny",
]
from jepa.models import timm_registry  # noqa: E402,F401  (registers jepa_vit_* in timm)
