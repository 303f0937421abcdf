"""Position encodings for 3-D token grids: rotary (two frequency layouts) and fixed sin-cos tables.

Tokens of a video ViT live on a grid of ``(t, h, w)`` integer coordinates (tubelet step, patch row,
patch column). Rotary position embedding (RoPE) rotates each attention head's query and key
vectors by angles that depend on those coordinates.

Each head's ``head_dim`` is split into three equal, even chunks of ``d = 2 * floor(head_dim / 3 / 2)``
dimensions for the time, height and width axes, in that order; the ``head_dim - 3 d`` trailing
dimensions are left unrotated. Inside a chunk, elements are paired as ``(2i, 2i+1)`` and rotated
with the partner ``(-x[2i+1], x[2i])``. The per-axis frequencies are ``w_k = theta^(-k / (d/2))``
for ``k = 0 .. d/2 - 1``. Two layouts assign frequencies to elements:

- ``"tiled"``: element ``j`` of a chunk uses ``w_(j mod d/2)``, i.e. the frequency vector is tiled
  twice. This is what the released V-JEPA 2 code computes (the two members of a pair get different
  angles, so the map is not a pure rotation) and the released weights depend on it.
- ``"standard"``: element ``j`` uses ``w_(j // 2)``; both members of a pair share one angle, so the
  map is an orthogonal rotation and ``q . k`` depends only on the difference of positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

RopeLayout = Literal["tiled", "standard"]


def rope_axis_dim(head_dim: int) -> int:
    """Number of dimensions rotated per axis for a head of size ``head_dim`` (even, floor of /3)."""
    return 2 * ((head_dim // 3) // 2)


@dataclass
class RopeAngles:
    """Precomputed ``cos``/``sin`` of the rotation angles for one set of token positions.

    ``cos`` and ``sin`` have shape ``[B or 1, 1, N, 3 d]`` and broadcast over attention heads;
    they cover the first ``3 d`` dims of each head (time chunk, height chunk, width chunk).
    """

    cos: Tensor
    sin: Tensor

    @property
    def rotated_dims(self) -> int:
        return self.cos.shape[-1]


def _rotate_pairs(x: Tensor) -> Tensor:
    """Map adjacent pairs ``(a, b) -> (-b, a)`` along the last dim."""
    pairs = x.unflatten(-1, (-1, 2))
    return torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)


def apply_rope(x: Tensor, angles: RopeAngles) -> Tensor:
    """Rotate the first ``3 d`` dims of every head of ``x`` (``[..., N, head_dim]``, e.g. ``[B, heads, N, hd]``).

    The unrotated tail dims get cos 1 / sin 0 rather than a slice-and-concatenate, which saves a
    copy of ``x`` (the tail has an even width, so the pairs stay aligned).
    """
    r, hd = angles.rotated_dims, x.shape[-1]
    cos = angles.cos.to(x.dtype)
    sin = angles.sin.to(x.dtype)
    if r < hd:
        cos = torch.nn.functional.pad(cos, (0, hd - r), value=1.0)
        sin = torch.nn.functional.pad(sin, (0, hd - r), value=0.0)
    return x * cos + _rotate_pairs(x) * sin


class Rope3D(torch.nn.Module):
    """3-D rotary position embedding for heads of size ``head_dim``.

    ``angles(pos)`` takes token coordinates ``pos`` of shape ``[B, N, 3]`` or ``[N, 3]`` (time,
    height, width; floats allowed, not normalised) and returns the :class:`RopeAngles` that
    :func:`apply_rope` consumes. A token that should be rotated in time only (the action and state
    tokens of the action-conditioned predictor) is given height and width coordinates 0, which is
    the identity rotation on those chunks.
    """

    def __init__(self, head_dim: int, layout: RopeLayout = "tiled", theta: float = 10000.0) -> None:
        super().__init__()
        if layout not in ("tiled", "standard"):
            raise ValueError(f"unknown RoPE layout {layout!r}; expected 'tiled' or 'standard'")
        self.head_dim = head_dim
        self.layout = layout
        self.axis_dim = rope_axis_dim(head_dim)
        if self.axis_dim == 0:
            raise ValueError(f"head_dim={head_dim} is too small for 3-D RoPE (needs at least 6)")
        half = self.axis_dim // 2
        omega = theta ** (-torch.arange(half, dtype=torch.float64) / half)
        if layout == "tiled":
            per_element = torch.cat((omega, omega))
        else:
            per_element = omega.repeat_interleave(2)
        self.register_buffer("freqs", per_element.float(), persistent=False)

    def angles(self, pos: Tensor) -> RopeAngles:
        if pos.dim() == 2:
            pos = pos.unsqueeze(0)
        # [B, N, 3, 1] * [d] -> [B, N, 3, d] -> [B, N, 3 d], chunks ordered time, height, width.
        theta = pos.float().unsqueeze(-1) * self.freqs.to(pos.device)
        theta = theta.flatten(-2).unsqueeze(1)
        return RopeAngles(theta.cos(), theta.sin())

    def extra_repr(self) -> str:
        return f"head_dim={self.head_dim}, layout={self.layout}, axis_dim={self.axis_dim}"


def grid_positions(indices: Tensor, grid: tuple[int, int, int]) -> Tensor:
    """Integer ``(t, h, w)`` coordinates of flat token indices on a ``(T', H', W')`` grid.

    ``indices`` has any shape ``[...]``; the result is ``[..., 3]`` (float32). Flat indices are in
    time-major raster order, as produced by the patch embedding.
    """
    _, gh, gw = grid
    t = torch.div(indices, gh * gw, rounding_mode="floor")
    rem = indices - t * gh * gw
    h = torch.div(rem, gw, rounding_mode="floor")
    w = rem - h * gw
    return torch.stack((t, h, w), dim=-1).float()


def _sincos_1d(dim: int, positions: np.ndarray) -> np.ndarray:
    """``[len(positions), dim]`` table: ``[sin(p w) | cos(p w)]`` with ``w_i = 1 / 10000^(i / (dim/2))``."""
    omega = np.arange(dim // 2, dtype=np.float64) / (dim / 2.0)
    omega = 1.0 / 10000**omega
    out = np.einsum("m,d->md", positions.reshape(-1).astype(np.float64), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def sincos_table_3d(
    embed_dim: int, grid: tuple[int, int, int], uniform_power: bool = False
) -> Tensor:
    """Fixed 3-D sin-cos position table of shape ``[T' H' W', embed_dim]`` (time-major raster).

    The table concatenates ``[time | height | width]`` parts. Without ``uniform_power`` time gets
    ``D/2`` dims and height and width ``D/4`` each; with it every axis gets ``2 ceil(D/6)`` dims and
    the result is truncated to ``D``.
    """
    gt, gh, gw = grid
    if uniform_power:
        dt = dh = dw = int(np.ceil(embed_dim / 6) * 2)
    else:
        dt, dh, dw = embed_dim // 2, embed_dim // 4, embed_dim // 4
    tt, hh, ww = np.meshgrid(np.arange(gt), np.arange(gh), np.arange(gw), indexing="ij")
    table = np.concatenate(
        [_sincos_1d(dt, tt), _sincos_1d(dh, hh), _sincos_1d(dw, ww)], axis=1
    )[:, :embed_dim]
    if table.shape[1] != embed_dim:
        raise ValueError(f"embed_dim={embed_dim} is not divisible as the sin-cos table needs (by 4)")
    return torch.from_numpy(table).float()
