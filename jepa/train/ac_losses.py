"""Losses of action-conditioned training: teacher forcing + autoregressive rollout (both L1).

``z [B, T, N, D]`` are the layer-normed encoder features of ``T`` frames, ``actions [B, T-1, A]``
the actions between them and ``states [B, T, S]`` the proprioceptive states.

- Teacher forcing: from the true frames ``0..T-2`` predict frames ``1..T-1`` in one block-causal pass.
- Rollout (``rollout_steps`` K >= 1): start from the true frame 0, feed back the model's own
  (layer-normed) predictions: step 1 is the teacher-forced prediction, step 2 is predicted from the
  true frame 0 and the **predicted** frame 1, and so on — the corrected form (the first release
  reused the teacher-forced step 2). The rollout uses the true states, as released.
"""

from __future__ import annotations

import torch
from torch import Tensor

from jepa.models.ac_predictor import ActionConditionedPredictor
from jepa.models.vit import feature_layer_norm


def ac_losses(predictor: ActionConditionedPredictor, z: Tensor, actions: Tensor, states: Tensor,
              rollout_steps: int = 2) -> dict[str, Tensor]:
    """``{"teacher_forcing", "rollout", "total"}`` L1 losses (see the module docstring)."""
    b, t, n, d = z.shape
    if actions.shape[1] != t - 1 or states.shape[1] != t:
        raise ValueError(f"{t} frames need {t - 1} actions and {t} states, got {actions.shape[1]}, {states.shape[1]}")
    if not 1 <= rollout_steps <= t - 1:
        raise ValueError(f"rollout_steps must be in 1..{t - 1}, got {rollout_steps}")
    tf = feature_layer_norm(predictor(z[:, :-1].flatten(1, 2), actions, states[:, :-1]).view(b, t - 1, n, d))
    loss_tf = (tf - z[:, 1:]).abs().mean()
    seq = [z[:, 0], tf[:, 0]]
    for k in range(1, rollout_steps):
        out = predictor(torch.stack(seq, 1).flatten(1, 2), actions[:, : k + 1], states[:, : k + 1])
        seq.append(feature_layer_norm(out[:, -n:]))
    loss_ar = (torch.stack(seq[1:], 1) - z[:, 1 : rollout_steps + 1]).abs().mean()
    return {"teacher_forcing": loss_tf, "rollout": loss_ar, "total": loss_tf + loss_ar}


def copy_last_frame_error(z: Tensor, steps: int) -> Tensor:
    """Baseline: L1 between frame ``k`` and frame 0 for ``k = 1..steps`` (predicting 'nothing moves')."""
    return (z[:, 1 : steps + 1] - z[:, :1]).abs().mean()


@torch.no_grad()
def rollout_error(predictor: ActionConditionedPredictor, z: Tensor, actions: Tensor, states: Tensor,
                  steps: int) -> Tensor:
    """L1 of an open-loop ``steps``-step rollout from frame 0 (true states), averaged over the steps."""
    n = z.shape[2]
    seq = [z[:, 0]]
    for k in range(steps):
        out = predictor(torch.stack(seq, 1).flatten(1, 2), actions[:, : k + 1], states[:, : k + 1])
        seq.append(feature_layer_norm(out[:, -n:]))
    return (torch.stack(seq[1:], 1) - z[:, 1 : steps + 1]).abs().mean()
