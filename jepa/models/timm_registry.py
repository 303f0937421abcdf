"""Registers the project's ViT sizes in timm's model registry.

``timm.create_model("jepa_vit_large", img_size=256, num_frames=16)`` then builds a
:class:`~jepa.models.vit.VisionTransformer`. timm's ``pretrained=True`` download path is refused:
released weights are loaded from a local file with :func:`jepa.load_backbone`.
"""

from __future__ import annotations

from timm.models import register_model

from jepa.models.vit import VisionTransformer, build_vit


def _create(
    size: str,
    pretrained: bool,
    pretrained_cfg: object | None,
    pretrained_cfg_overlay: object | None,
    cache_dir: object | None,
    overrides: dict,
) -> VisionTransformer:
    del pretrained_cfg, pretrained_cfg_overlay, cache_dir  # timm bookkeeping, not model arguments
    if pretrained:
        raise ValueError(
            "jepa models download nothing: build with pretrained=False and load weights from a local "
            "file with jepa.load_backbone(name, checkpoint=PATH)"
        )
    return build_vit(size, **overrides)


@register_model
def jepa_vit_tiny(pretrained=False, pretrained_cfg=None, pretrained_cfg_overlay=None, cache_dir=None, **kw):
    return _create("tiny", pretrained, pretrained_cfg, pretrained_cfg_overlay, cache_dir, kw)


@register_model
def jepa_vit_small(pretrained=False, pretrained_cfg=None, pretrained_cfg_overlay=None, cache_dir=None, **kw):
    return _create("small", pretrained, pretrained_cfg, pretrained_cfg_overlay, cache_dir, kw)


@register_model
def jepa_vit_base(pretrained=False, pretrained_cfg=None, pretrained_cfg_overlay=None, cache_dir=None, **kw):
    return _create("base", pretrained, pretrained_cfg, pretrained_cfg_overlay, cache_dir, kw)


@register_model
def jepa_vit_large(pretrained=False, pretrained_cfg=None, pretrained_cfg_overlay=None, cache_dir=None, **kw):
    return _create("large", pretrained, pretrained_cfg, pretrained_cfg_overlay, cache_dir, kw)


@register_model
def jepa_vit_huge(pretrained=False, pretrained_cfg=None, pretrained_cfg_overlay=None, cache_dir=None, **kw):
    return _create("huge", pretrained, pretrained_cfg, pretrained_cfg_overlay, cache_dir, kw)


@register_model
def jepa_vit_giant(pretrained=False, pretrained_cfg=None, pretrained_cfg_overlay=None, cache_dir=None, **kw):
    return _create("giant", pretrained, pretrained_cfg, pretrained_cfg_overlay, cache_dir, kw)
