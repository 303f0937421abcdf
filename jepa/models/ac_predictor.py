"""The action-conditioned predictor (V-JEPA 2-AC layout): block-causal latent dynamics with a KV cache.

Per time step ``t`` the sequence holds ``[action_t, state_t, (extrinsics_t), frame tokens of t]``
(``h * w`` frame tokens). Attention is block-causal: a token sees every token of its own step and of
earlier steps. Frame tokens get 3-D rotary positions ``(t, h, w)``; the conditioning tokens get
``(t, 0, 0)``, i.e. they are rotated in time only (a zero angle is the identity on the height and
width chunks). The output at step ``t`` is the prediction of the frame tokens of step ``t + 1``.

Parameter names match the released checkpoint: ``predictor_embed``, ``action_encoder``,
``state_encoder``, ``extrinsics_encoder`` (always created, as released), ``predictor_blocks.*``,
``predictor_norm``, ``predictor_proj``.

``predict_residual`` (off in the release) adds the input frame tokens to the output, and
``zero_init_output`` zeroes ``predictor_proj``: a small model then starts exactly at the
copy-the-last-frame baseline, which is what made CPU-sized models learn more than the identity.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from jepa.models.blocks import Block, KVCache, init_transformer_weights, rescale_residual_branches
from jepa.models.rope import Rope3D, RopeLayout


class ActionConditionedPredictor(nn.Module):
    """Predicts next-frame encoder tokens from frame tokens, actions and proprioceptive states.

    Args:
        embed_dim: encoder width ``D``.
        grid: frame token grid ``(h, w)``.
        predictor_embed_dim, depth, num_heads, mlp_ratio: the transformer.
        action_dim, state_dim: sizes of the action and state vectors.
        use_extrinsics: add a camera-extrinsics token per step (``extrinsics_dim`` inputs).
    """

    def __init__(
        self,
        embed_dim: int,
        grid: tuple[int, int],
        predictor_embed_dim: int = 1024,
        depth: int = 24,
        num_heads: int = 16,
        mlp_ratio: float = 4.0,
        action_dim: int = 7,
        state_dim: int = 7,
        use_extrinsics: bool = False,
        extrinsics_dim: int = 6,
        rope_layout: RopeLayout = "tiled",
        qkv_bias: bool = True,
        norm_eps: float = 1e-6,
        drop_path_rate: float = 0.0,
        predict_residual: bool = False,
        zero_init_output: bool = False,
        use_activation_checkpointing: bool = False,
        init_std: float = 0.02,
    ) -> None:
        super().__init__()
        self.embed_dim, self.grid = embed_dim, tuple(grid)
        self.action_dim, self.state_dim = action_dim, state_dim
        self.use_extrinsics = use_extrinsics
        self.num_cond = 3 if use_extrinsics else 2
        self.predict_residual = predict_residual
        self.use_activation_checkpointing = use_activation_checkpointing
        self.arch = dict(embed_dim=embed_dim, grid=list(grid), predictor_embed_dim=predictor_embed_dim, depth=depth,
                         num_heads=num_heads, mlp_ratio=mlp_ratio, action_dim=action_dim, state_dim=state_dim,
                         use_extrinsics=use_extrinsics, extrinsics_dim=extrinsics_dim, rope_layout=rope_layout,
                         qkv_bias=qkv_bias, norm_eps=norm_eps, predict_residual=predict_residual)
        d = predictor_embed_dim
        self.predictor_embed = nn.Linear(embed_dim, d)
        self.action_encoder = nn.Linear(action_dim, d)
        self.state_encoder = nn.Linear(state_dim, d)
        self.extrinsics_encoder = nn.Linear(extrinsics_dim, d)
        dpr = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.predictor_blocks = nn.ModuleList(
            Block(d, num_heads, int(d * mlp_ratio), qkv_bias, 0.0, dpr[i], norm_eps) for i in range(depth)
        )
        self.predictor_norm = nn.LayerNorm(d, eps=norm_eps)
        self.predictor_proj = nn.Linear(d, embed_dim)
        self.rope = Rope3D(d // num_heads, layout=rope_layout)
        init_transformer_weights(self, std=init_std)
        rescale_residual_branches(self.predictor_blocks)
        if zero_init_output:
            nn.init.zeros_(self.predictor_proj.weight)
            nn.init.zeros_(self.predictor_proj.bias)

    @property
    def tokens_per_frame(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def tokens_per_step(self) -> int:
        return self.num_cond + self.tokens_per_frame

    def step_positions(self, t0: int, steps: int, device: torch.device) -> Tensor:
        """``[steps * tokens_per_step, 3]`` positions: conditioning tokens ``(t, 0, 0)``, frames ``(t, h, w)``."""
        h, w = self.grid
        hh, ww = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
        frame_hw = torch.stack([hh.reshape(-1), ww.reshape(-1)], dim=-1).float()
        per_step = torch.cat([torch.zeros(self.num_cond, 2, device=device), frame_hw])  # [tokens_per_step, 2]
        t = torch.arange(t0, t0 + steps, device=device, dtype=torch.float32)
        t = t.repeat_interleave(self.tokens_per_step).unsqueeze(-1)
        return torch.cat([t, per_step.repeat(steps, 1)], dim=-1)

    def block_causal_mask(self, q_steps: int, k_steps: int, device: torch.device) -> Tensor:
        """Boolean ``[q, k]`` mask (True = attend) for the last ``q_steps`` of ``k_steps`` steps."""
        step_k = torch.arange(k_steps, device=device).repeat_interleave(self.tokens_per_step)
        step_q = step_k[-q_steps * self.tokens_per_step:]
        return step_q[:, None] >= step_k[None, :]

    def _embed(self, frames: Tensor, actions: Tensor, states: Tensor, extrinsics: Tensor | None) -> Tensor:
        """``frames [B, T, hw, D]``, ``actions [B, T, A]``, ``states [B, T, S]`` -> ``[B, T * tokens_per_step, d]``."""
        b, t = frames.shape[:2]
        if actions.shape[:2] != (b, t) or states.shape[:2] != (b, t):
            raise ValueError(f"frames {tuple(frames.shape)}, actions {tuple(actions.shape)} and states "
                             f"{tuple(states.shape)} must agree on [B, T]")
        cond = [self.action_encoder(actions).unsqueeze(2), self.state_encoder(states).unsqueeze(2)]
        if self.use_extrinsics:
            if extrinsics is None:
                raise ValueError("this predictor was built with use_extrinsics=True; pass extrinsics [B, T, 6]")
            cond.append(self.extrinsics_encoder(extrinsics).unsqueeze(2))
        x = torch.cat(cond + [self.predictor_embed(frames)], dim=2)
        return x.flatten(1, 2)

    def _run(self, x: Tensor, t0: int, steps: int, mask: Tensor | None, cache: KVCache | None) -> Tensor:
        rope = self.rope.angles(self.step_positions(t0, steps, x.device))
        for i, blk in enumerate(self.predictor_blocks):
            if self.use_activation_checkpointing and self.training and cache is None:
                x = checkpoint(blk, x, rope, mask, use_reentrant=False)
            else:
                x = blk(x, rope, mask, cache, i)
        return x

    def _readout(self, x: Tensor, frames: Tensor) -> Tensor:
        """Drop conditioning tokens, norm, project: ``[B, T * tokens_per_step, d]`` -> ``[B, T, hw, D]``."""
        b, t = frames.shape[:2]
        x = x.view(b, t, self.tokens_per_step, -1)[:, :, self.num_cond:]
        out = self.predictor_proj(self.predictor_norm(x))
        return out + frames if self.predict_residual else out

    def forward(self, frames: Tensor, actions: Tensor, states: Tensor, extrinsics: Tensor | None = None) -> Tensor:
        """Full (teacher-forced) pass: ``frames [B, T*hw, D]`` -> predictions ``[B, T*hw, D]`` of steps 1..T."""
        b, n, _ = frames.shape
        t = n // self.tokens_per_frame
        if t * self.tokens_per_frame != n:
            raise ValueError(f"{n} frame tokens is not a multiple of {self.tokens_per_frame} tokens per frame")
        f = frames.view(b, t, self.tokens_per_frame, -1)
        x = self._run(self._embed(f, actions, states, extrinsics), 0, t, self.block_causal_mask(t, t, f.device), None)
        return self._readout(x, f).flatten(1, 2)

    def new_cache(self) -> KVCache:
        return KVCache(len(self.predictor_blocks))

    def forward_step(self, frame: Tensor, action: Tensor, state: Tensor, cache: KVCache,
                     extrinsics: Tensor | None = None) -> Tensor:
        """Incremental pass for the next step: ``frame [B, hw, D]``, ``action [B, A]``, ``state [B, S]``.

        Appends this step's keys/values to ``cache`` (which holds the earlier steps) and returns the
        prediction of the following frame ``[B, hw, D]``. Equal to the full pass up to float error.
        """
        t0 = cache.length // self.tokens_per_step
        f = frame.unsqueeze(1)
        ext = extrinsics.unsqueeze(1) if extrinsics is not None else None
        x = self._run(self._embed(f, action.unsqueeze(1), state.unsqueeze(1), ext), t0, 1, None, cache)
        return self._readout(x, f)[:, 0]


def vit_ac_predictor(embed_dim: int = 1408, grid: tuple[int, int] = (16, 16),
                     **overrides) -> ActionConditionedPredictor:
    """The released V-JEPA 2-AC size (1024 wide, depth 24, 16 heads, 7-D actions/states) unless overridden."""
    return ActionConditionedPredictor(embed_dim, grid, **overrides)

