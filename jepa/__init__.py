"""jepa: JEPA world models — video ViT encoders, masked latent prediction, action-conditioned
predictors — as a library.

Light to import: heavy sub-modules load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

_LAZY = {
    "VisionTransformer": "jepa.models.vit",
    "build_vit": "jepa.models.vit",
    "load_backbone": "jepa.hub",
    "list_backbones": "jepa.hub",
    "load_predictor": "jepa.hub",
    "load_world_model": "jepa.world_model",
    "list_world_models": "jepa.released",
    "load_config": "jepa.config",
    "surprise": "jepa.physics",
}

if TYPE_CHECKING:  # pragma: no cover
    from jepa.config import load_config
    from jepa.hub import list_backbones, load_backbone, load_predictor
    from jepa.models.vit import VisionTransformer, build_vit
    from jepa.physics import surprise
    from jepa.released import list_world_models
    from jepa.world_model import load_world_model


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'jepa' has no attribute {name!r}")


__all__ = ["VisionTransformer", "__version__", "build_vit", "list_backbones", "list_world_models", "load_backbone",
           "load_config", "load_predictor", "load_world_model", "surprise"]
