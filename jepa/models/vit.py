"""Vision Transformer for images and videos, as used by V-JEPA (no CLS token).

Input layouts: a video model (``num_frames > 1``) takes ``[B, C, T, H, W]`` and tokenises it with a
Conv3d over ``tubelet_size x patch_size x patch_size`` tubelets; an image ``[B, C, H, W]`` given to a
video model is repeated ``tubelet_size`` times in time (one tubelet). An image model
(``num_frames == 1``) uses a Conv2d. Tokens are ordered time-major (t, then row, then column), so a
clip of ``T`` frames at ``H x W`` gives ``N = T/tubelet * H/patch * W/patch`` tokens.

Height and width need only be multiples of the patch size (non-square inputs work); with rotary
positions any such size and any even number of frames work with the same weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from jepa.config import Checked, positive, require
from jepa.models.blocks import Block, init_transformer_weights, rescale_residual_branches
from jepa.models.rope import Rope3D, grid_positions, sincos_table_3d

PosEncoding = Literal["rope_tiled", "rope_standard", "sincos"]
Masks = Tensor | Sequence[Tensor]


@dataclass
class EncoderOutput:
    """``tokens``: ``[B, N, D]`` patch tokens after the final norm; ``pooled``: ``[B, D]`` their mean."""

    tokens: Tensor
    pooled: Tensor


class PatchEmbed(nn.Module):
    """Non-overlapping patches (Conv2d, ``num_frames == 1``) or tubelets (Conv3d) -> ``[B, N, D]``."""

    def __init__(self, patch_size: int, tubelet_size: int, in_chans: int, embed_dim: int, video: bool):
        super().__init__()
        self.video = video
        if video:
            kernel = (tubelet_size, patch_size, patch_size)
            self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=kernel, stride=kernel)
        else:
            self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> tuple[Tensor, tuple[int, int, int]]:
        y = self.proj(x)
        grid = tuple(y.shape[2:]) if self.video else (1, *y.shape[2:])
        return y.flatten(2).transpose(1, 2), grid


class VisionTransformer(nn.Module):
    """ViT encoder for images and videos with rotary or sin-cos positions.

    Args:
        img_size: nominal ``(H, W)`` (or one int); only used for the sin-cos table and as metadata.
        patch_size: spatial patch size in pixels.
        num_frames: nominal frames per clip; ``1`` builds an image model (Conv2d patches).
        tubelet_size: frames per tubelet for video models.
        embed_dim, depth, num_heads: width, number of blocks and attention heads.
        mlp_ratio: MLP hidden width as a multiple of ``embed_dim`` (hidden = int(D * ratio)).
        pos_encoding: ``"rope_tiled"`` (the released V-JEPA 2 layout, default), ``"rope_standard"``
            or ``"sincos"`` (a fixed 3-D table added to the patch tokens, V-JEPA 1 style).
        uniform_power: sin-cos table split (see :func:`jepa.models.rope.sincos_table_3d`).
        drop_path_rate: stochastic depth, linear from 0 to this value over the blocks.
        use_activation_checkpointing: recompute each block in the backward pass (training only).
        out_layers: default block indices (0-based) whose normed outputs ``forward`` returns.
    """

    def __init__(
        self,
        img_size: int | tuple[int, int] = 224,
        patch_size: int = 16,
        num_frames: int = 1,
        tubelet_size: int = 2,
        in_chans: int = 3,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        norm_eps: float = 1e-6,
        pos_encoding: PosEncoding = "rope_tiled",
        uniform_power: bool = False,
        use_activation_checkpointing: bool = False,
        out_layers: Sequence[int] | None = None,
        init_std: float = 0.02,
    ) -> None:
        super().__init__()
        # Constructor arguments, saved with checkpoints so a file can rebuild its architecture.
        self.arch = dict(
            img_size=list(img_size) if not isinstance(img_size, int) else img_size, patch_size=patch_size,
            num_frames=num_frames, tubelet_size=tubelet_size, in_chans=in_chans, embed_dim=embed_dim,
            depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, norm_eps=norm_eps,
            pos_encoding=pos_encoding, uniform_power=uniform_power,
        )
        if pos_encoding not in ("rope_tiled", "rope_standard", "sincos"):
            raise ValueError(f"unknown pos_encoding {pos_encoding!r}")
        self.img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        self.patch_size = patch_size
        self.num_frames = num_frames
        self.tubelet_size = tubelet_size
        self.is_video = num_frames > 1
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.pos_encoding = pos_encoding
        self.uniform_power = uniform_power
        self.use_activation_checkpointing = use_activation_checkpointing
        self.out_layers = list(out_layers) if out_layers is not None else None

        self.patch_embed = PatchEmbed(patch_size, tubelet_size, in_chans, embed_dim, video=self.is_video)
        hidden = int(embed_dim * mlp_ratio)
        dpr = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, hidden, qkv_bias, drop_rate, dpr[i], norm_eps) for i in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps)
        if pos_encoding == "sincos":
            self.rope = None
            table = sincos_table_3d(embed_dim, self.nominal_grid, uniform_power)
            self.register_buffer("pos_embed", table.unsqueeze(0))
        else:
            self.rope = Rope3D(embed_dim // num_heads, layout=pos_encoding.removeprefix("rope_"))
            self.pos_embed = None
        init_transformer_weights(self, std=init_std)
        rescale_residual_branches(self.blocks)

    @property
    def nominal_grid(self) -> tuple[int, int, int]:
        t = max(1, self.num_frames // self.tubelet_size) if self.is_video else 1
        return (t, self.img_size[0] // self.patch_size, self.img_size[1] // self.patch_size)

    def token_grid(self, frames: int, height: int, width: int) -> tuple[int, int, int]:
        """Token grid ``(T', H', W')`` of an input of that size."""
        t = frames // self.tubelet_size if self.is_video else 1
        return (t, height // self.patch_size, width // self.patch_size)

    def _check_input(self, x: Tensor) -> Tensor:
        if self.is_video and x.dim() == 4:
            x = x.unsqueeze(2).repeat(1, 1, self.tubelet_size, 1, 1)
        expected = 5 if self.is_video else 4
        if x.dim() != expected:
            kind = "[B, C, T, H, W] (or an image [B, C, H, W])" if self.is_video else "[B, C, H, W]"
            raise ValueError(f"expected input {kind}, got shape {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f"height and width {h}x{w} must be multiples of patch_size={self.patch_size}")
        if self.is_video and x.shape[2] % self.tubelet_size:
            raise ValueError(f"{x.shape[2]} frames is not a multiple of tubelet_size={self.tubelet_size}")
        return x

    def _sincos(self, grid: tuple[int, int, int], device: torch.device) -> Tensor:
        if grid == self.nominal_grid:
            return self.pos_embed
        return sincos_table_3d(self.embed_dim, grid, self.uniform_power).to(device).unsqueeze(0)

    def forward(
        self, x: Tensor, masks: Masks | None = None, out_layers: Sequence[int] | None = None
    ) -> Tensor | list[Tensor]:
        """Encode ``x``; returns ``[B, N, D]`` (or ``[B, K, D]`` for the kept tokens with masks).

        ``masks``: a ``[B, K]`` index tensor (or a list of them) of tokens to encode; each kept
        token keeps its true 3-D position. With a list, the outputs of all masks are concatenated
        along the batch (``[len(masks) * B, K, D]``). ``out_layers`` (or the constructor's) makes
        the call return a list with the final norm applied to those blocks' outputs.
        """
        x = self._check_input(x)
        tokens, grid = self.patch_embed(x)
        if self.pos_embed is not None:
            tokens = tokens + self._sincos(grid, tokens.device).to(tokens.dtype)
        if masks is not None:
            idx = torch.cat(list(masks), 0) if isinstance(masks, (list, tuple)) else masks
            reps = idx.shape[0] // tokens.shape[0]
            tokens = tokens.repeat(reps, 1, 1)
            tokens = torch.gather(tokens, 1, idx.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
            positions = grid_positions(idx, grid)
        else:
            positions = grid_positions(torch.arange(tokens.shape[1], device=tokens.device), grid)
        rope = self.rope.angles(positions) if self.rope is not None else None
        return self._run_blocks(tokens, rope, out_layers if out_layers is not None else self.out_layers)

    def _run_blocks(self, x: Tensor, rope, out_layers: Sequence[int] | None) -> Tensor | list[Tensor]:
        outs = []
        for i, blk in enumerate(self.blocks):
            if self.use_activation_checkpointing and self.training:
                x = checkpoint(blk, x, rope, use_reentrant=False)
            else:
                x = blk(x, rope)
            if out_layers is not None and i in out_layers:
                outs.append(self.norm(x))
        if out_layers is not None:
            return outs
        return self.norm(x)

    @torch.no_grad()
    def encode(self, x: Tensor) -> EncoderOutput:
        """Patch tokens ``[B, N, D]`` and their mean ``[B, D]`` for a preprocessed clip or image."""
        tokens = self.forward(x)
        if isinstance(tokens, list):
            tokens = tokens[-1]
        return EncoderOutput(tokens=tokens, pooled=tokens.mean(dim=1))


def feature_layer_norm(tokens: Tensor) -> Tensor:
    """Layer norm over the last dim without affine parameters (how JEPA targets are normalised)."""
    return F.layer_norm(tokens, (tokens.shape[-1],))


VIT_SIZES: dict[str, dict] = {
    "tiny": dict(embed_dim=192, depth=12, num_heads=3, mlp_ratio=4.0),
    "small": dict(embed_dim=384, depth=12, num_heads=6, mlp_ratio=4.0),
    "base": dict(embed_dim=768, depth=12, num_heads=12, mlp_ratio=4.0),
    "large": dict(embed_dim=1024, depth=24, num_heads=16, mlp_ratio=4.0),
    "huge": dict(embed_dim=1280, depth=32, num_heads=16, mlp_ratio=4.0),
    # The released ViT-g ("vit_giant_xformers"): head_dim 64, MLP hidden 6144.
    "giant": dict(embed_dim=1408, depth=40, num_heads=22, mlp_ratio=48 / 11),
}


def build_vit(size: str, **overrides) -> VisionTransformer:
    """``VisionTransformer`` of a named size; ``overrides`` are constructor arguments."""
    if size not in VIT_SIZES:
        raise ValueError(f"unknown ViT size {size!r}; known: {sorted(VIT_SIZES)}")
    return VisionTransformer(**{**VIT_SIZES[size], **overrides})


@dataclass
class ViTArchConfig(Checked):
    """The architecture of a ViT as configs write it (pretraining's ``model``, the probes' ``backbone``):
    a named size from :data:`VIT_SIZES` with its width, depth and heads overridden. Image size and
    frames per clip come from the data config (:meth:`kwargs`)."""

    size: str = "tiny"
    embed_dim: int = 128
    depth: int = 4
    num_heads: int = 4
    patch_size: int = 8
    tubelet_size: int = 2
    pos_encoding: PosEncoding = "rope_tiled"

    def check(self) -> None:
        require(self.size in VIT_SIZES, "size", f"must be one of {sorted(VIT_SIZES)}, got {self.size!r}")
        positive(self, "embed_dim", "depth", "num_heads", "patch_size", "tubelet_size")
        require(self.embed_dim % self.num_heads == 0, "num_heads",
                f"must divide embed_dim={self.embed_dim}, got {self.num_heads}")

    def kwargs(self, img_size: int, num_frames: int, **extra) -> dict:
        """``VisionTransformer`` arguments for ``num_frames``-frame clips of ``img_size`` pixels."""
        return {**VIT_SIZES[self.size], "img_size": img_size, "num_frames": num_frames,
                "patch_size": self.patch_size, "tubelet_size": self.tubelet_size, "embed_dim": self.embed_dim,
                "depth": self.depth, "num_heads": self.num_heads, "pos_encoding": self.pos_encoding, **extra}

    def build(self, img_size: int, num_frames: int, **extra) -> VisionTransformer:
        """The ViT for ``num_frames``-frame clips of ``img_size`` pixels (``extra``: more constructor arguments)."""
        return VisionTransformer(**self.kwargs(img_size, num_frames, **extra))


def vit_tiny(**overrides) -> VisionTransformer:
    return build_vit("tiny", **overrides)


def vit_small(**overrides) -> VisionTransformer:
    return build_vit("small", **overrides)


def vit_base(**overrides) -> VisionTransformer:
    return build_vit("base", **overrides)


def vit_large(**overrides) -> VisionTransformer:
    return build_vit("large", **overrides)


def vit_huge(**overrides) -> VisionTransformer:
    return build_vit("huge", **overrides)


def vit_giant(**overrides) -> VisionTransformer:
    return build_vit("giant", **overrides)
