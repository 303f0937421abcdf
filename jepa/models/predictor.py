"""The masked-token predictor of JEPA pretraining (a narrow transformer over context + mask tokens).

Parameter names follow the released checkpoints: ``predictor_embed``, ``mask_tokens.{i}``,
``predictor_blocks.{i}.*``, ``predictor_norm``, ``predictor_proj``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from jepa.models.blocks import Block, init_transformer_weights, rescale_residual_branches
from jepa.models.rope import Rope3D, RopeLayout, grid_positions


class MaskedPredictor(nn.Module):
    """Predicts encoder features at target positions from encoded context tokens.

    Args:
        embed_dim: encoder width ``D`` (input and output).
        grid: token grid ``(T', H', W')`` that flat token indices refer to.
        predictor_embed_dim, depth, num_heads, mlp_ratio: the predictor transformer.
        num_mask_tokens: learnable mask tokens; mask config ``m`` uses token ``m % num_mask_tokens``.
    """

    def __init__(
        self,
        embed_dim: int,
        grid: tuple[int, int, int],
        predictor_embed_dim: int = 384,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        num_mask_tokens: int = 10,
        zero_init_mask_tokens: bool = True,
        rope_layout: RopeLayout = "tiled",
        qkv_bias: bool = True,
        norm_eps: float = 1e-6,
        drop_path_rate: float = 0.0,
        use_activation_checkpointing: bool = False,
        init_std: float = 0.02,
    ) -> None:
        super().__init__()
        self.grid = tuple(grid)
        # Constructor arguments that fix the weights' shapes and meaning (saved in checkpoints).
        self.arch = dict(embed_dim=embed_dim, grid=list(grid), predictor_embed_dim=predictor_embed_dim, depth=depth,
                         num_heads=num_heads, mlp_ratio=mlp_ratio, num_mask_tokens=num_mask_tokens,
                         rope_layout=rope_layout, qkv_bias=qkv_bias, norm_eps=norm_eps)
        self.use_activation_checkpointing = use_activation_checkpointing
        self.predictor_embed = nn.Linear(embed_dim, predictor_embed_dim)
        self.mask_tokens = nn.ParameterList(
            nn.Parameter(torch.zeros(1, 1, predictor_embed_dim)) for _ in range(num_mask_tokens)
        )
        hidden = int(predictor_embed_dim * mlp_ratio)
        dpr = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.predictor_blocks = nn.ModuleList(
            Block(predictor_embed_dim, num_heads, hidden, qkv_bias, 0.0, dpr[i], norm_eps) for i in range(depth)
        )
        self.predictor_norm = nn.LayerNorm(predictor_embed_dim, eps=norm_eps)
        self.predictor_proj = nn.Linear(predictor_embed_dim, embed_dim)
        self.rope = Rope3D(predictor_embed_dim // num_heads, layout=rope_layout)
        init_transformer_weights(self, std=init_std)
        rescale_residual_branches(self.predictor_blocks)
        if not zero_init_mask_tokens:
            for t in self.mask_tokens:
                nn.init.trunc_normal_(t, std=init_std)

    def forward(self, context: Tensor, context_idx: Tensor, target_idx: Tensor, mask_index: int = 1,
                grid: tuple[int, int, int] | None = None) -> Tensor:
        """``context [B, Kc, D]`` at ``context_idx [B, Kc]`` -> predictions ``[B, Kt, D]`` at ``target_idx``.

        The targets are filled with mask token ``mask_index % num_mask_tokens``; the default 1 is the
        released forward's (pretraining passes the mask config's index explicitly).

        Flat indices refer to ``grid`` (default: the nominal grid of construction); only its ``H', W'``
        matter, so indices past the last time step address future steps (RoPE extrapolates in time).
        """
        b, kc, _ = context.shape
        kt = target_idx.shape[1]
        x = self.predictor_embed(context)
        mask = self.mask_tokens[mask_index % len(self.mask_tokens)].expand(b, kt, -1).to(x.dtype)
        x = torch.cat([x, mask], dim=1)
        idx = torch.cat([context_idx, target_idx], dim=1)
        # Raster order, so the sequence (and attention numerics) match the released model.
        order = idx.argsort(dim=1)
        x = torch.gather(x, 1, order.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        rope = self.rope.angles(grid_positions(torch.gather(idx, 1, order), grid or self.grid))
        for blk in self.predictor_blocks:
            if self.use_activation_checkpointing and self.training:
                x = checkpoint(blk, x, rope, use_reentrant=False)
            else:
                x = blk(x, rope)
        x = self.predictor_norm(x)
        unsort = order.argsort(dim=1)
        x = torch.gather(x, 1, unsort.unsqueeze(-1).expand(-1, -1, x.shape[-1]))[:, kc:]
        return self.predictor_proj(x)
