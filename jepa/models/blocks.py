"""The transformer block shared by every model in the project.

One attention implementation with options (rotary positions, an attention mask, a key/value cache
for incremental decoding) and one pre-norm block serve the encoder, the pretraining predictor, the
action-conditioned predictor and the probes.

Parameter names follow the released V-JEPA 2 checkpoints: ``norm1``, ``attn.qkv`` (fused, rows
ordered ``[q | k | v]``, each head's rows contiguous), ``attn.proj``, ``norm2``, ``mlp.fc1``,
``mlp.fc2``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import DropPath
from torch import Tensor, nn

from jepa.models.rope import RopeAngles, apply_rope


class KVCache:
    """Keys and values of every attention layer for the tokens seen so far.

    Each layer stores ``k`` and ``v`` of shape ``[B, heads, N_seen, head_dim]``; a forward pass
    with a cache appends the new tokens' keys/values and attends over all of them.
    """

    def __init__(self, num_layers: int) -> None:
        self.keys: list[Tensor | None] = [None] * num_layers
        self.values: list[Tensor | None] = [None] * num_layers

    @property
    def length(self) -> int:
        k = self.keys[0]
        return 0 if k is None else k.shape[2]

    def append(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        old_k, old_v = self.keys[layer], self.values[layer]
        if old_k is not None:
            k = torch.cat((old_k, k), dim=2)
            v = torch.cat((old_v, v), dim=2)
        self.keys[layer], self.values[layer] = k, v
        return k, v

    def map(self, fn) -> KVCache:
        """A new cache whose tensors are ``fn(tensor)`` (e.g. ``lambda t: t.repeat(...)``)."""
        out = KVCache(len(self.keys))
        out.keys = [None if k is None else fn(k) for k in self.keys]
        out.values = [None if v is None else fn(v) for v in self.values]
        return out

    @classmethod
    def from_tensors(cls, keys: Tensor, values: Tensor) -> KVCache:
        """A cache holding stacked ``keys``/``values`` ``[layers, B, heads, N_seen, head_dim]`` (``N_seen``
        may be 0): the explicit-tensor form an exported step takes as inputs."""
        out = cls(keys.shape[0])
        out.keys, out.values = list(keys.unbind(0)), list(values.unbind(0))
        return out

    def to_tensors(self) -> tuple[Tensor, Tensor]:
        """Keys and values stacked over layers, ``[layers, B, heads, N_seen, head_dim]`` each."""
        if any(k is None for k in self.keys):
            raise ValueError("an empty cache has no tensor form; start from KVCache.from_tensors with N_seen = 0")
        return torch.stack(self.keys), torch.stack(self.values)


class Attention(nn.Module):
    """Multi-head self-attention with a fused ``qkv`` projection and SDPA.

    ``forward(x [B, N, D], rope, attn_mask, cache, layer)``: ``rope`` rotates queries and keys of
    the N new tokens; ``attn_mask`` is boolean ``[N, N_total]`` (True = attend) or None;
    with ``cache`` the keys/values of earlier calls are prepended.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, proj_drop: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"dim={dim} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(
        self,
        x: Tensor,
        rope: RopeAngles | None = None,
        attn_mask: Tensor | None = None,
        cache: KVCache | None = None,
        layer: int = 0,
    ) -> Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        if rope is not None:  # one rotation for q and k together
            qk = apply_rope(qkv[:2], rope)
            if torch.compiler.is_compiling():
                # torch.compile with dynamic token counts (masks of varying size) mis-records the
                # strides of this permuted elementwise result and the SDPA backward then fails a
                # stride check; a contiguous copy avoids it (eager mode is left as it is)
                qk = qk.contiguous()
            q, k = qk.unbind(0)
            v = qkv[2]
        else:
            q, k, v = qkv.unbind(0)
        if cache is not None:
            k, v = cache.append(layer, k, v)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(b, n, d)))


class MLP(nn.Module):
    """``fc1 -> exact GELU -> fc2``."""

    def __init__(self, dim: int, hidden_dim: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))`` then ``x + mlp(norm2(x))``."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_hidden_dim: int,
        qkv_bias: bool = True,
        drop: float = 0.0,
        drop_path: float = 0.0,
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, proj_drop=drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = MLP(dim, mlp_hidden_dim, drop=drop)

    def forward(
        self,
        x: Tensor,
        rope: RopeAngles | None = None,
        attn_mask: Tensor | None = None,
        cache: KVCache | None = None,
        layer: int = 0,
    ) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), rope, attn_mask, cache, layer))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def init_transformer_weights(module: nn.Module, std: float = 0.02) -> None:
    """Truncated-normal Linear/Conv weights, zero biases, unit LayerNorm (as the released models)."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.Conv3d)):
            nn.init.trunc_normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def rescale_residual_branches(blocks: nn.ModuleList) -> None:
    """Divide block ``i``'s (1-based) ``attn.proj`` and ``mlp.fc2`` weights by ``sqrt(2 i)``."""
    with torch.no_grad():
        for i, blk in enumerate(blocks, start=1):
            blk.attn.proj.weight.div_((2.0 * i) ** 0.5)
            blk.mlp.fc2.weight.div_((2.0 * i) ** 0.5)
