"""Intuitive-physics surprise: how badly the pretraining predictor predicts the next tubelet of a video from its past.

V-JEPA's intuitive-physics measure (Garrido et al., 2025). For each tubelet step ``t`` of a clip:

1. the context encoder encodes the past window, tubelet steps ``[t - c, t)`` (``c =
   context_steps``), on its own, so no future frame reaches the context;
2. the pretraining predictor (:class:`~jepa.models.future_tokens.FutureTokenEncoder`) fills mask
   tokens at the next ``k = predict_steps`` steps ``[t, t + k)``;
3. the target encoder encodes the whole window ``[t - c, t + k)``; its tokens of those ``k`` steps,
   layer-normed without affine parameters, are the targets;
4. the surprise at ``t`` is the mean absolute difference between prediction and target over the
   ``k · H' · W'`` tokens and ``D`` channels.

This is the pretraining loss of a mask hiding the last ``k`` steps of a ``c + k``-step clip
(``MaskConfig(temporal_anchor="end")``), evaluated on every window of the video.

Units: the targets are layer-normed, i.e. zero mean and unit variance over the ``D`` channels of each
token, so the surprise is in units of a token's feature standard deviation (dimensionless). Predicting
zeros scores about 0.8 (E|x| of a unit Gaussian); a good predictor scores far lower.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from jepa.models.future_tokens import FutureTokenEncoder
from jepa.models.predictor import MaskedPredictor
from jepa.models.vit import VisionTransformer, feature_layer_norm


def default_context_steps(predictor: MaskedPredictor, predict_steps: int = 1) -> int:
    """The pretraining clip's tubelet steps less the predicted ones (at least 1).

    The predictor was trained on clips of ``predictor.grid[0]`` steps, so a window of that length
    matches what it has seen.
    """
    return max(1, int(predictor.grid[0]) - predict_steps)


@torch.no_grad()
def surprise(encoder: VisionTransformer, predictor: MaskedPredictor, clip: Tensor,
             target_encoder: VisionTransformer | None = None, context_steps: int | None = None,
             predict_steps: int = 1, mask_index: int = 1, batch_size: int = 16) -> Tensor:
    """Surprise per tubelet step of ``clip`` (see the module docstring).

    Args:
        encoder: the context encoder (a video ViT; frozen).
        predictor: the pretraining predictor of the same run (same width ``D``).
        clip: a normalised clip ``[3, T, H, W]`` or a batch ``[B, 3, T, H, W]`` (e.g. from
            :class:`~jepa.data.transforms.VideoTransform`); ``T`` a multiple of the tubelet size.
        target_encoder: the encoder of the targets (default: ``encoder``; a checkpoint's EMA target
            encoder is the usual choice for both).
        context_steps: ``c``, past tubelet steps in the context (default
            :func:`default_context_steps`).
        predict_steps: ``k``, tubelet steps predicted and scored per time step.
        mask_index: the predictor's mask token for the future (the index of the end-anchored mask
            config in pretraining; the released V-JEPA 2 predictor uses 1).
        batch_size: windows per forward pass.

    Returns:
        ``[T']`` (or ``[B, T']``) float32 with ``T' = T / tubelet_size``: element ``t`` is the surprise
        of steps ``[t, t + k)`` given steps ``[t - c, t)``, i.e. of frames from ``t · tubelet_size``
        on. Steps without a full context before them or ``k`` steps after (``t < c`` or
        ``t > T' - k``) are NaN: use ``nanmax`` / ``nanmean`` to summarise.
    """
    if clip.dim() == 4:
        return surprise(encoder, predictor, clip.unsqueeze(0), target_encoder, context_steps, predict_steps,
                        mask_index, batch_size)[0]
    if clip.dim() != 5 or clip.shape[1] != 3:
        raise ValueError(f"expected a clip [3, T, H, W] or [B, 3, T, H, W], got shape {tuple(clip.shape)}")
    if not encoder.is_video:
        raise ValueError("surprise needs a video encoder (num_frames > 1); got an image encoder")
    target_encoder = target_encoder or encoder
    c = default_context_steps(predictor, predict_steps) if context_steps is None else context_steps
    k = predict_steps
    ts = encoder.tubelet_size
    b, _, frames, height, width = clip.shape
    if frames % ts:
        raise ValueError(f"clip has {frames} frames, not a multiple of the tubelet size {ts}")
    steps = frames // ts
    if c < 1 or k < 1 or steps < c + k:
        raise ValueError(f"need context_steps >= 1, predict_steps >= 1 and at least context + predict = {c + k} "
                         f"tubelet steps; the clip has {steps} ({frames} frames)")
    future = FutureTokenEncoder(encoder, predictor, offset=0, steps=k, mask_index=mask_index)
    _, gh, gw = encoder.token_grid(frames, height, width)
    out = torch.full((b, steps), math.nan, dtype=torch.float32)
    starts = list(range(c, steps - k + 1))  # first predicted step of each window
    device = next(encoder.parameters()).device
    for lo in range(0, len(starts), max(1, batch_size // b)):
        chunk = starts[lo : lo + max(1, batch_size // b)]
        windows = torch.cat([clip[:, :, (t - c) * ts : (t + k) * ts] for t in chunk]).to(device)
        predicted = future(windows[:, :, : c * ts])[:, -k * gh * gw :]
        targets = feature_layer_norm(target_encoder(windows).float())[:, c * gh * gw :]
        err = (predicted.float() - targets).abs().mean(dim=(1, 2)).view(len(chunk), b)
        out[:, chunk] = err.t().cpu()
    return out


def summarize(values: Tensor) -> dict[str, float]:
    """``max`` and ``mean`` over the defined (non-NaN) steps of a ``[T']`` surprise curve, and the
    step of the maximum (``argmax``), as the paper reports per video."""
    defined = ~torch.isnan(values)
    if not defined.any():
        raise ValueError("the surprise curve has no defined step (clip too short for the context)")
    v = values[defined]
    steps = torch.nonzero(defined).flatten()
    return {"max": float(v.max()), "mean": float(v.mean()), "argmax": int(steps[v.argmax()])}
