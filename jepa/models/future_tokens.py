"""Observed tokens extended with predicted future tokens (V-JEPA 2's action-anticipation backbone).

The frozen encoder encodes the observed clip; the frozen pretraining predictor takes all of its
tokens as context and fills mask tokens placed at a later time step, the moment the action to
anticipate starts. A probe then reads ``[observed tokens ; predicted tokens]``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from jepa.models.predictor import MaskedPredictor
from jepa.models.vit import VisionTransformer


def future_offset(anticipation_time: float, sample_fps: float, tubelet_size: int) -> int:
    """Tubelet steps between the end of the observed clip and the action start (rounded down, as released).

    ``anticipation_time`` [s] and ``sample_fps`` [frames/s] of the sampled clip.
    """
    if anticipation_time < 0 or sample_fps <= 0 or tubelet_size < 1:
        raise ValueError(f"need anticipation_time >= 0, sample_fps > 0 and tubelet_size >= 1; got "
                         f"{anticipation_time}, {sample_fps}, {tubelet_size}")
    return int(anticipation_time * sample_fps / tubelet_size)


class FutureTokenEncoder(nn.Module):
    """``clips [B, 3, T, H, W]`` -> ``[B, N + steps·H'·W', D]``: the encoder's ``N = T'·H'·W'`` tokens,
    then the predictor's tokens of ``steps`` tubelet steps starting ``offset`` steps after the clip.

    Args:
        encoder: the frozen video encoder (its output is the predictor's context, as in pretraining).
        predictor: the frozen pretraining predictor of the same run (same width ``D``).
        offset: tubelet steps from the clip's end to the first predicted step (:func:`future_offset`).
        steps: predicted tubelet steps.
        mask_index: which learned mask token fills the targets (the released model uses 1).
    """

    def __init__(self, encoder: VisionTransformer, predictor: MaskedPredictor, offset: int, steps: int = 1,
                 mask_index: int = 1) -> None:
        super().__init__()
        if predictor.arch["embed_dim"] != encoder.embed_dim:
            raise ValueError(f"predictor width {predictor.arch['embed_dim']} != encoder width {encoder.embed_dim}")
        if offset < 0 or steps < 1:
            raise ValueError(f"need offset >= 0 and steps >= 1, got offset={offset}, steps={steps}")
        self.encoder, self.predictor = encoder, predictor
        self.offset, self.steps, self.mask_index = offset, steps, mask_index

    def token_grid(self, frames: int, height: int, width: int) -> tuple[int, int, int]:
        """Grid of the output tokens: the observed ``T'`` steps plus the ``steps`` predicted ones."""
        t, h, w = self.encoder.token_grid(frames, height, width)
        return (t + self.steps, h, w)

    def forward(self, clips: Tensor) -> Tensor:
        tokens = self.encoder(clips)
        b, n, _ = tokens.shape
        t, h, w = self.encoder.token_grid(*clips.shape[-3:])
        if n != t * h * w:
            raise ValueError(f"encoder gave {n} tokens for a {t}x{h}x{w} grid")
        first = (t + self.offset) * h * w
        context_idx = torch.arange(n, device=tokens.device).expand(b, n)
        target_idx = torch.arange(first, first + self.steps * h * w, device=tokens.device).expand(b, -1)
        grid = (t + self.offset + self.steps, h, w)
        predicted = self.predictor(tokens, context_idx, target_idx, mask_index=self.mask_index, grid=grid)
        return torch.cat([tokens, predicted], dim=1)
