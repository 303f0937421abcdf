"""Export-friendly views of a world model: plain tensors in and out, the model's own weights and code.

- :class:`EncoderGraph`: a normalised clip ``[B, 3, T, S, S]`` -> layer-normed tokens ``[B, N, D]``
  (what :meth:`WorldModel.encode` returns).
- :class:`PredictorStepGraph` (:func:`step_graph`): one step of the action-conditioned predictor with its KV cache as
  explicit tensors: ``(frame [B, hw, D], action [B, A], state [B, S], (extrinsics [B, E],)
  past_keys, past_values [L, B, heads, P, head_dim])`` -> ``(next_frame [B, hw, D] layer-normed,
  keys, values [L, B, heads, P + tokens_per_step, head_dim])``. ``P`` is a multiple of
  ``tokens_per_step`` (0 for the first step); the step index, and so the rotary time position, is
  ``P / tokens_per_step``. It calls :meth:`ActionConditionedPredictor.forward_step` on a
  :class:`~jepa.models.blocks.KVCache` built from the input tensors, so the attention code and the
  weights are the model's; feeding ``next_frame`` and the returned cache back in reproduces
  :meth:`WorldModel.rollout`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from jepa.models.ac_predictor import ActionConditionedPredictor
from jepa.models.blocks import KVCache
from jepa.models.vit import VisionTransformer, feature_layer_norm


class EncoderGraph(nn.Module):
    """``clip [B, 3, T, S, S]`` (normalised) -> layer-normed tokens ``[B, N, D]``."""

    def __init__(self, encoder: VisionTransformer) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, clip: Tensor) -> Tensor:
        return feature_layer_norm(self.encoder(clip))


class PredictorStepGraph(nn.Module):
    """One predictor step with the KV cache in and out as tensors (see the module docstring)."""

    def __init__(self, predictor: ActionConditionedPredictor) -> None:
        super().__init__()
        self.predictor = predictor

    def step(self, frame: Tensor, action: Tensor, state: Tensor, extrinsics: Tensor | None, past_keys: Tensor,
             past_values: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        cache = KVCache.from_tensors(past_keys, past_values)
        prediction = self.predictor.forward_step(frame, action, state, cache, extrinsics)
        keys, values = cache.to_tensors()
        return feature_layer_norm(prediction), keys, values

    def forward(self, frame: Tensor, action: Tensor, state: Tensor, past_keys: Tensor,
                past_values: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.step(frame, action, state, None, past_keys, past_values)


class PredictorStepWithExtrinsicsGraph(PredictorStepGraph):
    """:class:`PredictorStepGraph` of a predictor with a camera-extrinsics token (``extrinsics [B, E]``)."""

    def forward(self, frame: Tensor, action: Tensor, state: Tensor, extrinsics: Tensor, past_keys: Tensor,
                past_values: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.step(frame, action, state, extrinsics, past_keys, past_values)


def step_graph(predictor: ActionConditionedPredictor) -> PredictorStepGraph:
    """The step graph for ``predictor`` (with an ``extrinsics`` input when it uses them)."""
    return (PredictorStepWithExtrinsicsGraph if predictor.use_extrinsics else PredictorStepGraph)(predictor)


def cache_shape(predictor: ActionConditionedPredictor, batch: int, past: int) -> tuple[int, int, int, int, int]:
    """``[layers, B, heads, past, head_dim]`` of the predictor's cache tensors."""
    attn = predictor.predictor_blocks[0].attn
    return (len(predictor.predictor_blocks), batch, attn.num_heads, past, attn.head_dim)


def empty_cache(predictor: ActionConditionedPredictor, batch: int, device: torch.device | str = "cpu",
                dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    """Keys and values of a cache that has seen nothing (``past = 0``): the first step's input."""
    shape = cache_shape(predictor, batch, 0)
    return torch.zeros(shape, device=device, dtype=dtype), torch.zeros(shape, device=device, dtype=dtype)
