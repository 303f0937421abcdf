"""Attentive probes on frozen backbone tokens, and a sweep that trains a grid of them in one pass.

Architecture as the released V-JEPA 2 evaluation (``AttentivePooler`` / ``AttentiveClassifier``):
``depth - 1`` self-attention blocks over all backbone tokens (LayerNorm eps 1e-5, no positions),
then one cross-attention block in which learned query tokens attend to the tokens:
``q <- q + xattn(q, LN1(x))`` and ``q <- q + MLP(LN2(q))``. The cross-attention has a ``q``
projection (D -> D) and a fused ``kv`` projection (D -> 2D) and no output projection. Parameter
names match the released probes (``pooler.query_tokens``, ``pooler.blocks.*``,
``pooler.cross_attention_block.{norm1,xattn.q,xattn.kv,norm2,mlp.fc1,mlp.fc2}``, ``linear``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from jepa.models.blocks import MLP, Block, init_transformer_weights, rescale_residual_branches
from jepa.train.optim import build_adamw, set_lr_wd
from jepa.train.schedules import LRSchedule

PROBE_NORM_EPS = 1e-5


@dataclass
class FeatureSet:
    """Features ``[M, V, N, D]`` (``V`` views of ``N`` tokens), labels ``{name: [M]}`` and sample keys,
    all in memory: what a probe trains on."""

    features: Tensor
    labels: dict[str, Tensor]
    keys: list[str]

    def __len__(self) -> int:
        return len(self.keys)


class CrossAttention(nn.Module):
    """Queries ``[B, Q, D]`` attend to tokens ``[B, N, D]``; returns ``[B, Q, D]`` (no output projection)."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim={dim} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, 2 * dim, bias=qkv_bias)

    def forward(self, q: Tensor, x: Tensor) -> Tensor:
        b, nq, d = q.shape
        n, h = x.shape[1], self.num_heads
        q = self.q(q).view(b, nq, h, d // h).transpose(1, 2)
        k, v = self.kv(x).view(b, n, 2, h, d // h).permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)
        return out.transpose(1, 2).reshape(b, nq, d)


class CrossAttentionBlock(nn.Module):
    """``q <- q + xattn(q, norm1(x))``; ``q <- q + mlp(norm2(q))``. q ``[B, Q, D]``, x ``[B, N, D]``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=PROBE_NORM_EPS)
        self.xattn = CrossAttention(dim, num_heads, qkv_bias=qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=PROBE_NORM_EPS)
        self.mlp = MLP(dim, int(dim * mlp_ratio))

    def forward(self, q: Tensor, x: Tensor) -> Tensor:
        q = q + self.xattn(q, self.norm1(x))
        return q + self.mlp(self.norm2(q))


class AttentivePooler(nn.Module):
    """Pools backbone tokens ``[B, N, D]`` into ``num_queries`` vectors ``[B, Q, D]``.

    ``depth`` counts the cross-attention block: ``depth=1`` is cross-attention only, ``depth=4``
    (the released probe) adds three self-attention blocks over the tokens first.
    """

    def __init__(self, embed_dim: int, num_queries: int = 1, depth: int = 1, num_heads: int = 16,
                 mlp_ratio: float = 4.0) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1 (the cross-attention block), got {depth}")
        self.query_tokens = nn.Parameter(torch.zeros(1, num_queries, embed_dim))
        hidden = int(embed_dim * mlp_ratio)
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, hidden, qkv_bias=True, norm_eps=PROBE_NORM_EPS)
            for _ in range(depth - 1)
        )
        self.cross_attention_block = CrossAttentionBlock(embed_dim, num_heads, mlp_ratio)
        init_transformer_weights(self)
        nn.init.trunc_normal_(self.query_tokens, std=0.02)
        # Residual rescaling as released: self-attention block i (1-based) by sqrt(2 i), and the
        # cross-attention MLP output by sqrt(2 * max(1, depth - 1)).
        rescale_residual_branches(self.blocks)
        with torch.no_grad():
            self.cross_attention_block.mlp.fc2.weight.div_(math.sqrt(2.0 * max(1, depth - 1)))

    def forward(self, x: Tensor) -> Tensor:
        for blk in self.blocks:
            x = blk(x)
        q = self.query_tokens.expand(x.shape[0], -1, -1)
        return self.cross_attention_block(q, x)


class AttentiveClassifier(nn.Module):
    """One query token + ``linear`` head: tokens ``[B, N, D]`` -> logits ``[B, num_classes]``."""

    def __init__(self, embed_dim: int, num_classes: int, depth: int = 4, num_heads: int = 16,
                 mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.pooler = AttentivePooler(embed_dim, 1, depth, num_heads, mlp_ratio)
        self.linear = nn.Linear(embed_dim, num_classes)
        init_transformer_weights(self.linear)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(self.pooler(x)[:, 0])


class MultiHeadAttentiveClassifier(nn.Module):
    """One query token and one Linear head per named output (e.g. verb / noun / action).

    ``forward(x [B, N, D]) -> {name: logits [B, classes[name]]}``; query ``i`` feeds head ``i``.
    """

    def __init__(self, embed_dim: int, classes: Mapping[str, int], depth: int = 4, num_heads: int = 16,
                 mlp_ratio: float = 4.0) -> None:
        super().__init__()
        if not classes:
            raise ValueError("classes must name at least one head")
        self.names = list(classes)
        self.pooler = AttentivePooler(embed_dim, len(self.names), depth, num_heads, mlp_ratio)
        self.heads = nn.ModuleDict({n: nn.Linear(embed_dim, c) for n, c in classes.items()})
        init_transformer_weights(self.heads)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        pooled = self.pooler(x)
        return {n: self.heads[n](pooled[:, i]) for i, n in enumerate(self.names)}


class WithPositions(nn.Module):
    """Adds a fixed 3-D sin-cos position table to the tokens ``[B, N, D]`` before ``probe``.

    The released probes see no positions (the backbone's tokens carry them implicitly). A backbone
    with rotary positions encodes *where* a token is only weakly in its content, which matters when
    the classes differ by geometry (e.g. where the arm is) rather than by appearance; this option
    lets a permutation-invariant pooler see the token grid ``(T', H', W')``. ``N`` may be a multiple
    of the grid's size (several clips concatenated): the table is repeated.
    """

    def __init__(self, probe: nn.Module, embed_dim: int, grid: Sequence[int]) -> None:
        super().__init__()
        from jepa.models.rope import sincos_table_3d

        self.probe = probe
        self.register_buffer("pos", sincos_table_3d(embed_dim, tuple(grid)).float()[None], persistent=False)

    def forward(self, x: Tensor):
        n = self.pos.shape[1]
        if x.shape[1] % n:
            raise ValueError(f"{x.shape[1]} tokens is not a multiple of the position grid's {n}")
        return self.probe(x + self.pos.repeat(1, x.shape[1] // n, 1).to(x.dtype))


class Standardized(nn.Module):
    """``probe((x - mean) / std)`` with per-token, per-channel statistics ``[N, D]`` of the training features.

    Frozen tokens of a fixed-camera scene share a large common component at each position; the
    differences between samples (where the arm is) are small next to it. Standardizing each
    (token, channel) over the training set removes the common part, in the spirit of the
    parameter-free BatchNorm used before linear probes. Not part of the released probe.
    """

    def __init__(self, probe: nn.Module, mean: Tensor, std: Tensor) -> None:
        super().__init__()
        self.probe = probe
        self.register_buffer("mean", mean.float()[None].clone())
        self.register_buffer("std", std.float()[None].clamp_min(1e-3).clone())

    def forward(self, x: Tensor):
        return self.probe((x - self.mean.to(x.dtype)) / self.std.to(x.dtype))


def token_statistics(features: Tensor, chunk: int = 256) -> tuple[Tensor, Tensor]:
    """Mean and std ``[N, D]`` over samples and views of ``features [M, V, N, D]`` (float64 accumulation)."""
    total = torch.zeros(features.shape[-2:], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for start in range(0, features.shape[0], chunk):
        x = features[start : start + chunk].double().flatten(0, 1)
        total += x.sum(0)
        squares += (x * x).sum(0)
    n = features.shape[0] * features.shape[1]
    mean = total / n
    var = (squares / n - mean * mean).clamp_min(0)
    return mean.float(), var.sqrt().float()


def sigmoid_focal_loss(logits: Tensor, targets: Tensor, alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
    """Sigmoid focal loss, summed over batch and classes (as released). ``logits [B, C]``, ``targets [B]``."""
    onehot = F.one_hot(targets, logits.shape[1]).to(logits.dtype)
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, onehot, reduction="none")
    p_t = p * onehot + (1 - p) * (1 - onehot)
    alpha_t = alpha * onehot + (1 - alpha) * (1 - onehot)
    return (alpha_t * ce * (1 - p_t) ** gamma).sum()


Loss = Literal["ce", "focal"]
LOSSES: tuple[str, ...] = get_args(Loss)


def probe_loss(outputs: Mapping[str, Tensor], targets: Mapping[str, Tensor], loss: str) -> Tensor:
    """Sum over heads of cross-entropy (batch mean) or sigmoid focal loss (batch sum)."""
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; use one of {LOSSES}")
    fn = F.cross_entropy if loss == "ce" else sigmoid_focal_loss
    return sum(fn(outputs[h].float(), targets[h]) for h in outputs)


def _as_dict(out: Tensor | Mapping[str, Tensor], names: Sequence[str]) -> dict[str, Tensor]:
    if isinstance(out, Tensor):
        if len(names) != 1:
            raise ValueError(f"the probe returned one tensor but the labels have heads {list(names)}")
        return {names[0]: out}
    return dict(out)


@dataclass
class SweepResult:
    """The whole grid (``{"lr", "weight_decay", **metrics}`` per probe) and the best entry on ``select``."""

    grid: list[dict]
    select: str
    best_index: int
    best_scores: dict[str, Tensor] = field(default_factory=dict)  # the best probe's val scores {head: [M, C]}

    @property
    def best(self) -> dict:
        return self.grid[self.best_index]


class ProbeSweep:
    """A grid of probes (learning rate x weight decay), trained side by side on the same batches.

    Each probe has its own AdamW (no decay on biases/norms) and a cosine learning rate from ``lr``
    to 0 over ``total_steps`` (after ``warmup_steps`` of linear warmup from 0), weight decay constant,
    as the released evaluation. Features are shared: each batch is read once and fed to every probe.

    Args:
        build_probe: makes a fresh probe module mapping ``[B, N, D]`` to logits ``[B, C]`` or a dict of them.
        lrs, weight_decays: the grid; probe ``i`` gets ``grid[i] = (lr, wd)`` in row-major order.
        total_steps: optimizer steps of the whole run (sets the cosine schedule).
        loss: ``"ce"`` (softmax scores at evaluation) or ``"focal"`` (sigmoid scores).
    """

    def __init__(self, build_probe: Callable[[], nn.Module], lrs: Sequence[float],
                 weight_decays: Sequence[float], total_steps: int, loss: str = "ce", warmup_steps: int = 0,
                 device: str | torch.device = "cpu", seed: int = 0) -> None:
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; use one of {LOSSES}")
        if not lrs or not weight_decays:
            raise ValueError("the sweep needs at least one learning rate and one weight decay")
        self.grid = [(float(lr), float(wd)) for lr in lrs for wd in weight_decays]
        self.loss, self.device = loss, torch.device(device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.probes = nn.ModuleList(build_probe() for _ in self.grid).to(self.device)
        self.optimizers = [build_adamw({"probe": p}) for p in self.probes]
        self.schedules = [LRSchedule(kind="cosine", base=lr, start=0.0 if warmup_steps else lr, final=0.0,
                                     warmup_steps=warmup_steps)
                          for lr, _ in self.grid]
        self.total_steps = max(1, total_steps)
        self.step_count = 0

    def step(self, features: Tensor, targets: Mapping[str, Tensor]) -> list[float]:
        """One optimizer step of every probe on ``features [B, N, D]``; returns each probe's loss."""
        features = features.to(self.device, non_blocking=True)
        targets = {h: t.to(self.device) for h, t in targets.items()}
        losses = []
        for probe, opt, sched, (_, wd) in zip(self.probes, self.optimizers, self.schedules, self.grid):
            probe.train()
            set_lr_wd(opt, sched(self.step_count, self.total_steps), wd)
            loss = probe_loss(_as_dict(probe(features), list(targets)), targets, self.loss)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        self.step_count += 1
        return losses

    @torch.no_grad()
    def predict(self, features: Tensor, heads: Sequence[str]) -> list[dict[str, Tensor]]:
        """Scores of every probe for ``features [B, V, N, D]`` (V views), averaged over views.

        Scores are softmax probabilities (``"ce"``) or sigmoids (``"focal"``): ``[{head: [B, C]}]``.
        """
        b, v = features.shape[:2]
        flat = features.to(self.device).flatten(0, 1)
        out = []
        for probe in self.probes:
            probe.eval()
            logits = _as_dict(probe(flat), heads)
            act = (lambda t: t.float().softmax(-1)) if self.loss == "ce" else (lambda t: t.float().sigmoid())
            out.append({h: act(t).view(b, v, -1).mean(1).cpu() for h, t in logits.items()})
        return out


def steps_per_epoch(num_samples: int, batch_size: int) -> int:
    """Optimizer steps in one epoch (the last, partial batch is kept)."""
    return math.ceil(num_samples / batch_size)


def _train_views(features: Tensor, generator: torch.Generator) -> Tensor:
    """``[B, V, N, D]`` -> ``[B, N, D]``: one random view per sample (the only one when ``V == 1``)."""
    if features.shape[1] == 1:
        return features[:, 0]
    pick = torch.randint(0, features.shape[1], (features.shape[0],), generator=generator)
    return features[torch.arange(features.shape[0]), pick]


def sweep_scores(sweep: ProbeSweep, data, batch_size: int) -> list[dict[str, Tensor]]:
    """Every probe's view-averaged scores over a ``FeatureSet``: ``[{head: [M, C]}]`` (one dict per probe)."""
    heads = list(data.labels)
    parts: list[list[dict[str, Tensor]]] = []
    for start in range(0, len(data), batch_size):
        parts.append(sweep.predict(data.features[start : start + batch_size].float(), heads))
    return [{h: torch.cat([p[i][h] for p in parts]) for h in parts[0][i]} for i in range(len(sweep.grid))]


def fit_sweep(
    sweep: ProbeSweep,
    train,
    val,
    epochs: int,
    batch_size: int,
    metrics: Callable[[dict[str, Tensor], dict[str, Tensor]], dict[str, float]],
    select: str,
    seed: int = 0,
    on_epoch: Callable[[int, list[float]], None] | None = None,
) -> SweepResult:
    """Train every probe of ``sweep`` for ``epochs`` over ``train``, then score all of them on ``val``.

    ``train``/``val`` are :class:`FeatureSet` (features ``[M, V, N, D]``). Training
    takes a random view per sample; evaluation averages the views' scores. ``metrics(scores, labels)``
    returns named numbers; the probe with the highest ``metrics[select]`` is the best.
    ``on_epoch(epoch, mean_loss_per_probe)`` is called after each epoch (logging).
    """
    gen = torch.Generator().manual_seed(seed)
    heads = list(train.labels)
    last_losses = [float("nan")] * len(sweep.grid)
    for epoch in range(epochs):
        perm = torch.randperm(len(train), generator=gen)
        totals, count = [0.0] * len(sweep.grid), 0
        for start in range(0, len(train), batch_size):
            idx = perm[start : start + batch_size]
            feats = _train_views(train.features[idx], gen).float()
            losses = sweep.step(feats, {h: train.labels[h][idx] for h in heads})
            totals = [t + x for t, x in zip(totals, losses)]
            count += 1
        last_losses = [t / max(1, count) for t in totals]
        if on_epoch is not None:
            on_epoch(epoch, last_losses)
    grid = []
    all_scores = sweep_scores(sweep, val, batch_size)
    for (lr, wd), scores, loss in zip(sweep.grid, all_scores, last_losses):
        m = metrics(scores, val.labels)
        if select not in m:
            raise KeyError(f"select={select!r} is not among the metrics {sorted(m)}")
        grid.append({"lr": lr, "weight_decay": wd, "train_loss": loss, **m})
    best = max(range(len(grid)), key=lambda i: grid[i][select])
    return SweepResult(grid=grid, select=select, best_index=best, best_scores=all_scores[best])
