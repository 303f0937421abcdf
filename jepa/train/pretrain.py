"""JEPA pretraining: ``jepa pretrain CONFIG.yaml [key=value ...]`` (single process or under torchrun).

The context encoder sees only the context tokens of each mask; the predictor fills in the target
tokens; the loss is ``mean(|prediction - target|^p) / p`` against the EMA target encoder's features
of the full clip, layer-normed without affine parameters; ``optimization.sigreg.weight > 0`` adds a
SIGReg anti-collapse term beside the EMA target. Build -> step -> log -> checkpoint, with
the loop shared by the AC trainer (:mod:`jepa.train.loop`).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from jepa.checkpoints import FORMAT, FORMAT_VERSION
from jepa.config import (
    Checked,
    config_parser,
    in_range,
    known_device,
    non_empty,
    non_negative,
    ordered_pair,
    parse_config,
    positive,
    require,
)
from jepa.device import autocast, resolve_device, train_precision
from jepa.masks import MaskCollator, MaskConfig
from jepa.models.predictor import MaskedPredictor
from jepa.models.vit import VisionTransformer, ViTArchConfig, feature_layer_norm
from jepa.train.batches import BatchStream, ClipDataset, GlobalBatches
from jepa.train.checkpointing import Checkpointer
from jepa.train.distributed import (
    DistInfo,
    all_reduce_gradients,
    finish_distributed,
    init_distributed,
    shard_fsdp,
    wait_for_all,
)
from jepa.train.ema import ema_update
from jepa.train.logging import MetricsLogger
from jepa.train.loop import TrainState, train_loop
from jepa.train.optim import build_adamw, set_lr_wd
from jepa.train.resume import open_run
from jepa.train.schedules import LRSchedule, cosine_between, linear_between
from jepa.train.sigreg import SIGReg, sigreg_directions


@dataclass
class DataConfig(Checked):
    source: Literal["trajectories", "csv"] = "trajectories"  # robot clips, or video lists
    paths: list[str] = field(default_factory=lambda: ["runs/clips"])
    weights: list[float] | None = None  # mixing weights of several paths (sampled with replacement)
    frames_per_clip: int = 2
    frame_step: int | None = 1
    fps: float | None = None
    crop_size: int = 64
    random_resize_scale: tuple[float, float] = (0.3, 1.0)
    random_resize_aspect_ratio: tuple[float, float] = (0.75, 1.35)
    horizontal_flip: bool = True
    num_workers: int = 0
    max_skip_fraction: float = 0.5  # unreadable videos are skipped and counted; more than this fraction stops

    def check(self) -> None:
        non_empty(self, "paths")
        if self.weights is not None:
            require(len(self.weights) == len(self.paths), "weights",
                    f"needs one weight per path ({len(self.paths)}), got {len(self.weights)}")
            non_negative(self, "weights")
            require(sum(self.weights) > 0, "weights", f"must not all be 0, got {self.weights}")
        positive(self, "frames_per_clip", "frame_step", "fps", "crop_size", "random_resize_scale",
                 "random_resize_aspect_ratio")
        in_range(self, "random_resize_scale", 0.0, 1.0)
        ordered_pair(self, "random_resize_scale")
        ordered_pair(self, "random_resize_aspect_ratio")
        non_negative(self, "num_workers")
        in_range(self, "max_skip_fraction", 0.0, 1.0)


@dataclass
class ModelConfig(ViTArchConfig):
    """The encoder's architecture (:class:`~jepa.models.vit.ViTArchConfig`) and the predictor's."""

    pred_embed_dim: int = 96
    pred_depth: int = 3
    pred_num_heads: int = 4
    num_mask_tokens: int = 2
    activation_checkpointing: bool = False

    def check(self) -> None:
        super().check()
        positive(self, "pred_embed_dim", "pred_depth", "pred_num_heads", "num_mask_tokens")
        require(self.pred_embed_dim % self.pred_num_heads == 0, "pred_num_heads",
                f"must divide pred_embed_dim={self.pred_embed_dim}, got {self.pred_num_heads}")


@dataclass
class SIGRegConfig(Checked):
    """An anti-collapse term beside the EMA target (:mod:`jepa.train.sigreg`): ``weight`` times SIGReg of
    each mask's context embeddings, mean-pooled over its tokens (``[B, D]``), is added to the loss.
    ``weight=0`` (the default) is the released objective. Under DDP each process scores its own batch."""

    weight: float = 0.0
    slices: int = 256  # random directions per step, drawn from (meta.seed, step)
    knots: int = 17
    t_max: float = 3.0

    def check(self) -> None:
        non_negative(self, "weight")
        positive(self, "slices", "t_max")
        require(self.knots >= 2, "optimization.sigreg.knots", f"must be at least 2, got {self.knots}")


@dataclass
class OptimConfig(Checked):
    global_batch: int = 32
    max_steps: int = 1000
    lr: LRSchedule = field(default_factory=lambda: LRSchedule(kind="cosine", base=5e-4, start=1e-4, final=1e-5,
                                                              warmup_steps=50))
    weight_decay: tuple[float, float] = (0.04, 0.04)
    ema: tuple[float, float] = (0.996, 0.999)
    clip_grad: float | None = None
    loss_exp: float = 1.0
    sigreg: SIGRegConfig = field(default_factory=SIGRegConfig)

    def check(self) -> None:
        positive(self, "global_batch", "max_steps", "clip_grad", "loss_exp")
        non_negative(self, "weight_decay")
        in_range(self, "ema", 0.0, 1.0)


@dataclass
class MetaConfig(Checked):
    run_dir: str = "runs/pretrain"
    seed: int = 0
    device: str = "auto"
    bf16: bool = True  # bf16 autocast on CUDA
    cpu_bf16: bool = False  # bf16 autocast on a CPU with native bf16 (AVX-512 BF16 / AMX); ignored elsewhere
    compile: bool = False
    checkpoint_every: int = 200
    keep_checkpoints: int = 0
    log_every: int = 10
    progress: bool = True
    init_from: str | None = None  # weights (encoder, predictor, target) to start from, e.g. for a cooldown
    allow_changed: bool = False  # resume a run folder with another config or dataset (logged in resume.log)
    # "ddp": every process holds the whole model, gradients are averaged (one all-reduce);
    # "fsdp": parameters, gradients and optimizer state are sharded over the processes (FSDP2) —
    # for models that do not fit one GPU. Both run under torchrun with gloo (CPU) or NCCL (GPU).
    parallel: Literal["ddp", "fsdp"] = "ddp"

    def check(self) -> None:
        known_device(self, "device")
        positive(self, "checkpoint_every", "log_every")
        non_negative(self, "keep_checkpoints")


@dataclass
class PretrainConfig(Checked):
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    masks: list[MaskConfig] = field(default_factory=lambda: [
        MaskConfig(num_blocks=4, spatial_scale=(0.15, 0.15)), MaskConfig(num_blocks=1, spatial_scale=(0.5, 0.5))])
    optimization: OptimConfig = field(default_factory=OptimConfig)
    meta: MetaConfig = field(default_factory=MetaConfig)

    def check(self) -> None:
        d, m = self.data, self.model
        require(d.frames_per_clip == 1 or d.frames_per_clip >= m.tubelet_size, "data.frames_per_clip",
                f"must be 1 (an image model) or at least model.tubelet_size={m.tubelet_size}, got {d.frames_per_clip}",
                ["model.tubelet_size"])
        require(d.crop_size % m.patch_size == 0, "data.crop_size",
                f"must be a multiple of model.patch_size={m.patch_size}, got {d.crop_size}", ["model.patch_size"])
        non_empty(self, "masks")
        require(m.num_mask_tokens >= len(self.masks), "model.num_mask_tokens",
                f"needs one mask token per mask config ({len(self.masks)}), got {m.num_mask_tokens}", ["masks"])


# ------------------------------------------------------------------------------------------ build

def build_encoder(m: ModelConfig, data: DataConfig) -> VisionTransformer:
    return m.build(data.crop_size, data.frames_per_clip, use_activation_checkpointing=m.activation_checkpointing)


def build_source(d: DataConfig):
    from jepa.data.clips import MixedSource, TrajectoryClipSource, VideoCSVSource

    if d.source == "trajectories":
        sources = [TrajectoryClipSource(p, d.frames_per_clip, d.frame_step or 1) for p in d.paths]
    else:
        sources = [VideoCSVSource(p, d.frames_per_clip, d.frame_step, d.fps) for p in d.paths]
    return MixedSource(sources, d.weights)


@dataclass
class Pretraining:
    """The built run: models, optimizer state, data and the per-step settings."""

    cfg: PretrainConfig
    state: TrainState
    encoder: VisionTransformer
    target: VisionTransformer
    predictor: MaskedPredictor
    batches: GlobalBatches
    source: object  # the clip source (MixedSource): ``identity()`` is recorded in checkpoints
    loader_factory: object
    device: torch.device
    info: DistInfo
    sigreg: SIGReg | None = None  # built when optimization.sigreg.weight > 0


def build(cfg: PretrainConfig) -> Pretraining:
    device = resolve_device(cfg.meta.device)
    info = init_distributed(device)
    torch.manual_seed(cfg.meta.seed)  # the same initial weights on every rank
    encoder = build_encoder(cfg.model, cfg.data).to(device)
    target = copy.deepcopy(encoder).requires_grad_(False)
    grid = encoder.nominal_grid
    m = cfg.model
    predictor = MaskedPredictor(encoder.embed_dim, grid, m.pred_embed_dim, m.pred_depth, m.pred_num_heads,
                                num_mask_tokens=m.num_mask_tokens,
                                use_activation_checkpointing=m.activation_checkpointing).to(device)
    if cfg.meta.init_from and not (Path(cfg.meta.run_dir) / "latest.pt").exists():
        load_initial_weights(cfg.meta.init_from, {"encoder": encoder, "predictor": predictor,
                                                  "target_encoder": target})
    sharded = cfg.meta.parallel == "fsdp" and info.world_size > 1
    if sharded:
        for module in (encoder, target, predictor):
            shard_fsdp(module, info)
    optimizer = build_adamw({"encoder": encoder, "predictor": predictor})
    state = TrainState({"encoder": encoder, "predictor": predictor, "target_encoder": target}, optimizer,
                       extra={"encoder_arch": encoder.arch, "predictor_arch": predictor.arch,
                              "format": FORMAT, "version": FORMAT_VERSION},
                       sharded=sharded)
    source = build_source(cfg.data)
    weights = source.sample_weights if cfg.data.weights is not None else None
    batches = GlobalBatches(len(source), cfg.optimization.global_batch, cfg.meta.seed, info.world_size, info.rank,
                            weights)
    d = cfg.data
    from jepa.data.transforms import VideoTransform

    transform = VideoTransform(d.crop_size, training=True, random_resize_scale=tuple(d.random_resize_scale),
                               random_resize_aspect_ratio=tuple(d.random_resize_aspect_ratio),
                               horizontal_flip=d.horizontal_flip)
    dataset = ClipDataset(source, transform, cfg.meta.seed, d.max_skip_fraction)
    collate = MaskCollator(cfg.masks, grid, cfg.optimization.global_batch, cfg.meta.seed)

    def loader_factory(epoch: int, batch: int):
        return torch.utils.data.DataLoader(dataset, batch_sampler=BatchStream(batches, epoch, batch),
                                           collate_fn=collate, num_workers=d.num_workers,
                                           generator=torch.Generator(), persistent_workers=False)

    sig = cfg.optimization.sigreg
    sigreg = SIGReg(sig.knots, sig.t_max).to(device) if sig.weight > 0 else None
    return Pretraining(cfg, state, encoder, target, predictor, batches, source, loader_factory, device, info,
                       sigreg)


def load_initial_weights(path: str, modules: dict[str, nn.Module]) -> None:
    """Start from another run's (or an official) checkpoint: same parts, fresh optimizer and step."""
    from jepa.checkpoints import (
        CheckpointError,
        drop_stray_pos_embed,
        load_state_dict_strict,
        official_part,
        read_torch_file,
    )

    ckpt = read_torch_file(path)
    arch = ckpt.get("predictor_arch")
    if isinstance(arch, dict) and "action_dim" in arch:
        raise CheckpointError(f"{path}: a world model (action-conditioned predictor), not a pretraining checkpoint; "
                              "meta.init_from takes a latest.pt of jepa pretrain or an official V-JEPA 2 file")
    for key, module in modules.items():
        state = drop_stray_pos_embed(official_part(ckpt, key, path), module)
        load_state_dict_strict(module, state, f"{path} [{key}]")


# ------------------------------------------------------------------------------------------ step

def jepa_loss(predictions: list[Tensor], targets: list[Tensor], loss_exp: float = 1.0) -> Tensor:
    """Mean over mask configs of ``mean(|prediction - target|^p) / p``."""
    terms = [(p - t).abs().pow(loss_exp).mean() / loss_exp for p, t in zip(predictions, targets)]
    return torch.stack(terms).mean()


def gather_tokens(x: Tensor, idx: Tensor) -> Tensor:
    """``x [B, N, D]`` at ``idx [B, K]`` -> ``[B, K, D]``."""
    return torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def sigreg_loss(run: Pretraining, context: list[Tensor], step: int) -> Tensor:
    """Mean over mask configs of SIGReg of the context embeddings ``[B, K, D]`` pooled to ``[B, D]``."""
    cfg = run.cfg.optimization.sigreg
    directions = sigreg_directions(context[0].shape[-1], cfg.slices, run.cfg.meta.seed * 1_000_003 + step,
                                   run.device)
    return torch.stack([run.sigreg(z.float().mean(1), directions) for z in context]).mean()


def pretrain_step(run: Pretraining, batch: dict) -> dict:
    """One update: predictions vs EMA targets, backward, AdamW, EMA. Returns float metrics."""
    cfg, opt, step = run.cfg.optimization, run.state.optimizer, run.state.step
    lr = cfg.lr(step, cfg.max_steps)
    wd = cosine_between(step, cfg.max_steps, *cfg.weight_decay)
    set_lr_wd(opt, lr, wd)
    clips = batch["clips"].to(run.device, non_blocking=True)
    ctx = [c.to(run.device) for c in batch["context"]]
    tgt = [t.to(run.device) for t in batch["target"]]
    with autocast(run.device, train_precision(run.device, run.cfg.meta.bf16, run.cfg.meta.cpu_bf16)):
        with torch.no_grad():
            h = feature_layer_norm(run.target(clips).float())
            targets = [gather_tokens(h, t) for t in tgt]
        context = [run.encoder(clips, masks=c) for c in ctx]
        preds = [run.predictor(z, c, t, mask_index=i) for i, (z, c, t) in enumerate(zip(context, ctx, tgt))]
        prediction_loss = jepa_loss([p.float() for p in preds], targets, cfg.loss_exp)
    loss, extra = prediction_loss, {}
    if run.sigreg is not None:
        reg = sigreg_loss(run, context, step)
        loss = prediction_loss + cfg.sigreg.weight * reg
        extra = {"prediction_loss": float(prediction_loss.detach()), "sigreg": float(reg.detach())}
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if not run.state.sharded:  # FSDP averages (reduce-scatters) gradients itself
        all_reduce_gradients([run.encoder, run.predictor], run.info)
    grad_norm = None
    if cfg.clip_grad is not None:
        params = [p for m in (run.encoder, run.predictor) for p in m.parameters()]
        norm = torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad)
        grad_norm = float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)
    opt.step()
    momentum = linear_between(step, cfg.max_steps, *cfg.ema)
    ema_update(run.target, run.encoder, momentum)
    metrics = {"loss": float(loss.detach()), "lr": lr, "wd": wd, "ema": momentum,
               "skipped": int(batch.get("skipped", 0)), "target_std": float(h.std(dim=0).mean()), **extra}
    if grad_norm is not None:
        metrics["grad_norm"] = grad_norm
    return metrics


# ------------------------------------------------------------------------------------------ run

def run_pretraining(cfg: PretrainConfig) -> Pretraining:
    """Build, open the run folder (resume checks: :func:`jepa.train.resume.open_run`) and train."""
    run = build(cfg)
    run_dir = Path(cfg.meta.run_dir)
    checkpointer = Checkpointer(run_dir, cfg.meta.checkpoint_every, cfg.meta.keep_checkpoints)
    config = asdict(cfg)
    open_run(checkpointer, config, run.source.identity(), cfg.meta.allow_changed, run.info.is_main,
             max_steps=cfg.optimization.max_steps)
    logger = MetricsLogger(run_dir / "metrics.jsonl", enabled=run.info.is_main)
    if cfg.meta.compile:
        run.encoder.compile()
        run.predictor.compile()
    train_loop(run.state, lambda state, batch: pretrain_step(run, batch), run.loader_factory,
               run.batches.per_epoch, cfg.optimization.max_steps, checkpointer, logger, config=config,
               log_every=cfg.meta.log_every, is_main=run.info.is_main, progress=cfg.meta.progress)
    wait_for_all(run.info)  # every rank returns after rank 0 has written the final checkpoint
    return run


def main(argv: Sequence[str]) -> int:
    p = config_parser("jepa pretrain", __doc__.splitlines()[0],
                      "YAML config (defaults: the tiny CPU run)", "optimization.max_steps=100")
    p.add_argument("--allow-changed", action="store_true",
                   help="resume a run folder although the config or the dataset changed (meta.allow_changed=true)")
    cfg, args = parse_config(p, PretrainConfig, argv)
    cfg.meta.allow_changed = cfg.meta.allow_changed or args.allow_changed
    run = run_pretraining(cfg)
    if run.info.is_main:
        latest = Path(cfg.meta.run_dir) / "latest.pt"
        done = (f"pretraining done at step {run.state.step}" if run.state.step == cfg.optimization.max_steps else
                f"nothing to do: the run is at step {run.state.step} >= optimization.max_steps="
                f"{cfg.optimization.max_steps}")
        print(f"{done}; checkpoint: {latest if latest.exists() else 'none written'}")
    finish_distributed()
    return 0
