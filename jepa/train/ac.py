"""Action-conditioned predictor training on robot clips: ``jepa train-ac CONFIG.yaml [key=value ...]``.

The encoder is frozen. Its layer-normed features of every frame of the trajectory dataset are
computed once and cached in the run folder (``features/``, :mod:`jepa.data.feature_cache`), so CPU
training never re-encodes a frame. Loss: teacher-forcing L1 + K-step rollout L1
(:mod:`jepa.train.ac_losses`). Validation on held-out episodes compares 2- and 4-step open-loop
rollout errors with copying the last frame. The result is written as a world model
(``world_model.pt``) ready for planning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from jepa.config import (
    Checked,
    config_parser,
    in_range,
    known_device,
    non_negative,
    parse_config,
    positive,
    require,
)
from jepa.data.feature_cache import FeatureCache, encoder_identity, file_identity, fill_cache
from jepa.data.trajectories import TrajectoryDataset, TrajectoryFormatError, window_starts
from jepa.device import autocast, resolve_device, train_precision
from jepa.files import write_json
from jepa.models.ac_predictor import ActionConditionedPredictor
from jepa.train.ac_data import (
    data_source,
    dataset_identity,
    droid_folders,
    lerobot_dataset,
    lerobot_windows,
    normalization_statistics,
    num_episodes,
    resolve_state_update,
)
from jepa.train.ac_init import freeze_parameters, init_world_model
from jepa.train.ac_losses import ac_losses, copy_last_frame_error, rollout_error
from jepa.train.batches import BatchStream, GlobalBatches, SkipBudget, first_readable
from jepa.train.checkpointing import Checkpointer
from jepa.train.distributed import all_reduce_gradients, finish_distributed, init_distributed, wait_for_all
from jepa.train.logging import MetricsLogger
from jepa.train.loop import TrainState, train_loop
from jepa.train.optim import build_adamw, set_lr_wd
from jepa.train.resume import open_run
from jepa.train.schedules import LRSchedule
from jepa.world_model import StateUpdateConfig, WorldModel


@dataclass
class ACDataConfig(Checked):
    """``source``: ``trajectories`` (the project's clip format at ``path``), ``droid`` (raw DROID: ``path``
    lists one episode folder per line) or ``lerobot`` (a LeRobot dataset folder, v2.0/v2.1/v3.0, read with
    ``camera``, ``state_key`` and ``action_key``; :mod:`jepa.train.ac_data`); ``format`` is an alias of
    ``source``. ``cache_features`` encodes every frame once into ``features/`` (small datasets);
    otherwise, and always for DROID and LeRobot, frames are encoded inside each training step.
    ``window``: frames per training window (0 = ``rollout_steps + 1``; the release uses 8).
    ``window_stride`` (trajectory datasets): windows start every ``window_stride`` frames; set it to
    ``frame_step`` on clips collected with ``jepa collect --hold frame_step``, so that each summed
    action is one held action, as a planner's action block executes it.
    ``action_reduce`` (LeRobot): ``sum`` adds the delta actions between sampled frames, ``last`` takes
    the last absolute target. ``normalize``: per-dimension action/state normalisation stored in the
    world model (``null`` = on for LeRobot only)."""

    source: Literal["trajectories", "droid", "lerobot"] = "trajectories"
    format: Literal["trajectories", "droid", "lerobot"] | None = None
    camera: str = ""
    state_key: str = "observation.state"
    action_key: str = "action"
    action_reduce: Literal["sum", "last"] = "sum"
    normalize: bool | None = None
    path: str = "runs/clips"
    frame_step: int = 1
    window: int = 0
    window_stride: int = 1
    cache_features: bool = True
    droid_fps: float = 4.0
    droid_max_aspect: float = 1.35  # centre crop to at most this width/height before resizing (as released)
    num_workers: int = 0
    val_episodes: int = 20  # the last episodes of the dataset are held out
    encode_batch: int = 64
    max_skip_fraction: float = 0.5  # unreadable windows (videos) are skipped and counted; more than this stops

    def check(self) -> None:
        positive(self, "frame_step", "window_stride", "droid_fps", "droid_max_aspect", "encode_batch")
        non_negative(self, "window", "num_workers", "val_episodes")
        in_range(self, "max_skip_fraction", 0.0, 1.0)


@dataclass
class ACModelConfig(Checked):
    """``init_from``: start from a world model (a ``world_model.pt``, an official AC file or a released name
    such as ``vjepa2-ac-vitg``); its encoder and predictor architecture are used, so ``encoder``,
    ``encoder_key``, ``embed_dim``, ``depth``, ``num_heads``, ``mlp_ratio`` and ``predict_residual`` are then
    not read (:mod:`jepa.train.ac_init`)."""

    encoder: str = "runs/pretrain-tiny/latest.pt"  # a checkpoint path or a named backbone
    encoder_key: str = "target_encoder"
    # "random": the encoder's architecture freshly initialised (seeded by meta.seed), a baseline
    encoder_init: Literal["pretrained", "random"] = "pretrained"
    embed_dim: int = 128
    depth: int = 3
    num_heads: int = 4
    mlp_ratio: float = 4.0
    predict_residual: bool = True
    zero_init_output: bool = True
    init_from: str = ""

    def check(self) -> None:
        positive(self, "embed_dim", "depth", "num_heads", "mlp_ratio")
        require(self.embed_dim % self.num_heads == 0, "num_heads",
                f"must divide embed_dim={self.embed_dim}, got {self.num_heads}")


@dataclass
class ACOptimConfig(Checked):
    """``freeze``: predictor blocks by index (``0``, ``-1``) or parameters by name prefix, kept fixed."""

    batch_size: int = 32
    max_steps: int = 600
    rollout_steps: int = 2
    lr: LRSchedule = field(default_factory=lambda: LRSchedule(kind="wsd", base=1e-3, start=1e-4, final=1e-5,
                                                              warmup_steps=30, decay_steps=100))
    weight_decay: float = 0.04
    clip_grad: float | None = 1.0
    freeze: list[str] = field(default_factory=list)

    def check(self) -> None:
        positive(self, "batch_size", "max_steps", "rollout_steps", "clip_grad")
        non_negative(self, "weight_decay")


@dataclass
class ACMetaConfig(Checked):
    run_dir: str = "runs/ac-tiny"
    seed: int = 0
    device: str = "auto"
    bf16: bool = True  # bf16 autocast on CUDA
    cpu_bf16: bool = False  # bf16 autocast on a CPU with native bf16 (AVX-512 BF16 / AMX); ignored elsewhere
    checkpoint_every: int = 200
    log_every: int = 10
    progress: bool = True
    allow_changed: bool = False  # resume a run folder with another config or dataset (logged in resume.log)

    def check(self) -> None:
        known_device(self, "device")
        positive(self, "checkpoint_every", "log_every")


@dataclass
class ACConfig(Checked):
    data: ACDataConfig = field(default_factory=ACDataConfig)
    model: ACModelConfig = field(default_factory=ACModelConfig)
    # How the planner advances the proprioceptive state: additive per-dim scale (Fetch: 0.05 m per unit) or pose.
    state_update: StateUpdateConfig = field(default_factory=StateUpdateConfig)
    optimization: ACOptimConfig = field(default_factory=ACOptimConfig)
    meta: ACMetaConfig = field(default_factory=ACMetaConfig)

    def check(self) -> None:
        need = self.optimization.rollout_steps + 1
        require(self.data.window == 0 or self.data.window >= need, "data.window",
                f"must be 0 or at least optimization.rollout_steps + 1 = {need}, got {self.data.window}",
                ["optimization.rollout_steps"])


# ---------------------------------------------------------------------------------------- features

@dataclass
class EpisodeFeatures:
    z: list[torch.Tensor]  # per episode [T, N, D] float16, layer-normed
    actions: list[torch.Tensor]  # [T-1, A]
    states: list[torch.Tensor]  # [T, S]


class EpisodeItems:
    """The episodes of a trajectory dataset as feature-cache items: keyed by the episode's file, with
    its index entry and the file's size and modification time as the source."""

    def __init__(self, data: TrajectoryDataset) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def key(self, i: int) -> str:
        return str(self.data.episodes[i]["file"])

    def source(self, i: int) -> dict:
        entry = self.data.episodes[i]
        return {"entry": entry, "file": file_identity(self.data.root / entry["file"], self.data.root)}

    def __getitem__(self, i: int) -> dict:
        return {"episode": self.data.load(i)}


def encode_dataset(world: WorldModel, root: str, batch: int, cache_dir: Path, progress: bool = True) -> EpisodeFeatures:
    """Features of every frame, from the feature cache at ``cache_dir`` (:mod:`jepa.data.feature_cache`):
    an episode is encoded again only when it, the encoder's weights or the image size changed."""
    items = EpisodeItems(TrajectoryDataset(root))
    identity = {"encoder": encoder_identity(world.encoder), "image_size": world.image_size,
                "features": "WorldModel.encode of each frame, layer-normed", "dtype": "float16"}
    cache = FeatureCache(cache_dir, identity)

    def encode(batch_items: list[dict]) -> list[dict]:
        ep = batch_items[0]["episode"]
        z = torch.cat([world.encode(ep.frames[j : j + batch]).cpu() for j in range(0, len(ep), batch)])
        return [{"z": z.half(), "actions": torch.from_numpy(ep.actions), "states": torch.from_numpy(ep.states)}]

    fill_cache(cache, items, encode, progress=progress, desc="encode frames")
    entries = [cache.get(items.key(i)) for i in range(len(items))]
    return EpisodeFeatures([e["z"] for e in entries], [e["actions"] for e in entries], [e["states"] for e in entries])


class FeatureWindows(torch.utils.data.Dataset):
    """Windows of ``window`` cached frames at ``frame_step``; actions summed between sampled frames."""

    def __init__(self, feats: EpisodeFeatures, episodes: list[int], window: int, frame_step: int,
                 stride: int = 1) -> None:
        self.feats, self.window, self.step = feats, window, frame_step
        self.episodes = episodes
        self.items = [(episodes[e], s) for e, s in
                      window_starts([feats.z[i].shape[0] for i in episodes], window, frame_step, stride)]
        if not self.items:
            raise TrajectoryFormatError(f"no episode is long enough for {window} frames at step {frame_step} "
                                        "(data.window, data.frame_step)")

    def __len__(self) -> int:
        return len(self.items)

    def get(self, i: int) -> dict:
        e, s = self.items[i]
        idx = s + self.step * np.arange(self.window)
        a = self.feats.actions[e][s : idx[-1]].reshape(self.window - 1, self.step, -1).sum(1)
        return {"z": self.feats.z[e][idx].float(), "actions": a, "states": self.feats.states[e][idx]}

    def __getitem__(self, key) -> dict:
        return self.get(key[3] if isinstance(key, tuple) else key)

    def stacked(self, limit: int | None = None) -> dict:
        items = [self.get(i) for i in range(len(self) if limit is None else min(limit, len(self)))]
        return {k: torch.stack([it[k] for it in items]) for k in items[0]}


class RawWindows(torch.utils.data.Dataset):
    """Frame windows (``TrajectoryWindows`` / ``DroidWindows``) keyed by the trainer's ``(epoch, batch, row,
    index)``; a window whose video cannot be read is skipped with a warning naming it, replaced by the
    next index, and counted in the sample (``skipped``). More than ``max_skip_fraction`` of the windows
    unreadable stops the run (:class:`jepa.train.batches.SkipBudget`)."""

    def __init__(self, windows, max_skip_fraction: float = 0.5) -> None:
        self.windows = windows
        self.budget = SkipBudget(len(windows), max_skip_fraction, "window")

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, key) -> dict:
        from jepa.data.trajectories import TrajectoryFormatError
        from jepa.data.video import VideoReadError

        index = key[3] if isinstance(key, tuple) else key
        item, skipped = first_readable(self.windows.__getitem__, index, len(self.windows),
                                       (TrajectoryFormatError, VideoReadError), "window", self.budget)
        return {"frames": item["frames"], "states": item["states"], "actions": item["actions"], "skipped": skipped}


# ---------------------------------------------------------------------------------------- build & step

def build_world_model(cfg: ACConfig, device: torch.device, action_dim: int, state_dim: int,
                      normalization: dict | None = None, state_update: StateUpdateConfig | None = None) -> WorldModel:
    from jepa.hub import load_backbone

    encoder = load_backbone(cfg.model.encoder, key=cfg.model.encoder_key, device=device,
                            init=cfg.model.encoder_init, seed=cfg.meta.seed)
    grid = encoder.token_grid(encoder.tubelet_size, *encoder.img_size)
    m = cfg.model
    predictor = ActionConditionedPredictor(encoder.embed_dim, grid[1:], m.embed_dim, m.depth, m.num_heads,
                                           m.mlp_ratio, action_dim=action_dim, state_dim=state_dim,
                                           predict_residual=m.predict_residual,
                                           zero_init_output=m.zero_init_output).to(device)
    return WorldModel(encoder, predictor, state_update or cfg.state_update, encoder.img_size[0], normalization,
                      cfg.data.frame_step).to(device)


def center_crop_aspect(frames: torch.Tensor, max_aspect: float) -> torch.Tensor:
    """Centre-crop ``[..., H, W]`` frames to a width of at most ``max_aspect * H`` (wide DROID frames)."""
    h, w = frames.shape[-2:]
    keep = min(w, int(round(max_aspect * h)))
    left = (w - keep) // 2
    return frames[..., left : left + keep]


@torch.no_grad()
def encode_windows(world: WorldModel, frames: torch.Tensor, max_aspect: float) -> torch.Tensor:
    """uint8 ``[B, T, 3, H, W]`` -> layer-normed features ``[B, T, N, D]`` (each frame on its own)."""
    b, t = frames.shape[:2]
    z = world.encode(center_crop_aspect(frames.flatten(0, 1), max_aspect).permute(0, 2, 3, 1))
    return z.view(b, t, *z.shape[1:])


def batch_features(world: WorldModel, batch: dict, cfg: ACConfig, device: torch.device) -> torch.Tensor:
    """``z [B, T, N, D]`` of a batch: cached features, or the frames encoded now by the frozen encoder."""
    if "z" in batch:
        return batch["z"].to(device)
    return encode_windows(world, batch["frames"].to(device), cfg.data.droid_max_aspect).float()


def ac_step(world: WorldModel, state: TrainState, batch: dict, cfg: ACConfig, info, device) -> dict:
    o = cfg.optimization
    lr = o.lr(state.step, o.max_steps)
    set_lr_wd(state.optimizer, lr, o.weight_decay)
    with autocast(device, train_precision(device, cfg.meta.bf16, cfg.meta.cpu_bf16)):
        actions, states = world.normalize_controls(batch["actions"].to(device), batch["states"].to(device))
        losses = ac_losses(world.predictor, batch_features(world, batch, cfg, device), actions, states,
                           o.rollout_steps)
    state.optimizer.zero_grad(set_to_none=True)
    losses["total"].backward()
    all_reduce_gradients([world.predictor], info)
    if o.clip_grad is not None:
        torch.nn.utils.clip_grad_norm_(world.predictor.parameters(), o.clip_grad)
    state.optimizer.step()
    skipped = {"skipped": float(batch["skipped"].sum())} if "skipped" in batch else {}
    return {k: float(v.detach()) for k, v in losses.items()} | {"lr": lr} | skipped


def validate(world: WorldModel, windows, device: torch.device, cfg: ACConfig, limit: int = 512) -> dict:
    """Open-loop rollout error at 2 and 4 steps vs. the copy-the-last-frame baseline (held-out episodes)."""
    if isinstance(windows, FeatureWindows):
        b = windows.stacked(limit)
    else:
        items = [windows[i] for i in np.linspace(0, len(windows) - 1, min(limit, len(windows))).astype(int)]
        b = {k: torch.stack([it[k] for it in items]) for k in ("frames", "actions", "states")}
    z = batch_features(world, b, cfg, device)
    a, s = world.normalize_controls(b["actions"].to(device), b["states"].to(device))
    world.predictor.eval()
    out = {}
    for k in (2, 4):
        if z.shape[1] > k:
            out[f"rollout_l1_{k}"] = float(rollout_error(world.predictor, z, a, s, k))
            out[f"copy_last_l1_{k}"] = float(copy_last_frame_error(z, k))
    world.predictor.train()
    return out


def data_dims(d: ACDataConfig) -> tuple[int, int]:
    """``(action_dim, state_dim)`` of the dataset."""
    if d.source == "droid":
        return 7, 7
    if d.source == "lerobot":
        data = lerobot_dataset(d)
        return data.action_dim, data.state_dim
    index = TrajectoryDataset(d.path).index
    return index["action_dim"], index["state_dim"]


def split_episodes(n_eps: int, val_episodes: int) -> tuple[list[int], list[int]]:
    """The last ``min(val_episodes, n_eps // 5)`` episodes are held out for validation."""
    n_val = min(val_episodes, n_eps // 5)
    return list(range(n_eps - n_val)), list(range(n_eps - n_val, n_eps))


def build_windows(world: WorldModel, cfg: ACConfig, window: int, run_dir: Path):
    """Training windows and validation windows (5 frames, or ``None`` with too few episodes)."""
    d = cfg.data
    raw = lambda w: RawWindows(w, d.max_skip_fraction) if w is not None else None  # noqa: E731
    if d.source == "droid":
        from jepa.data.droid import DroidWindows

        folders = droid_folders(d.path)
        train_eps, val_eps = split_episodes(len(folders), d.val_episodes)
        train = DroidWindows([folders[i] for i in train_eps], window, d.droid_fps)
        val = DroidWindows([folders[i] for i in val_eps], 5, d.droid_fps) if val_eps else None
        return raw(train), raw(val)
    if d.source == "lerobot":
        train, val = lerobot_windows(d, window, *split_episodes(num_episodes(d), d.val_episodes))
        return raw(train), raw(val)
    if not d.cache_features:
        from jepa.data.trajectories import TrajectoryWindows

        train_eps, val_eps = split_episodes(len(TrajectoryDataset(d.path)), d.val_episodes)
        train = raw(TrajectoryWindows(d.path, window, d.frame_step, train_eps, d.window_stride))
        return train, (raw(TrajectoryWindows(d.path, 5, d.frame_step, val_eps, d.window_stride)) if val_eps else None)
    feats = encode_dataset(world, d.path, d.encode_batch, run_dir / "features", cfg.meta.progress)
    train_eps, val_eps = split_episodes(len(feats.z), d.val_episodes)
    train = FeatureWindows(feats, train_eps, window, d.frame_step, d.window_stride)
    return train, (FeatureWindows(feats, val_eps, 5, d.frame_step, d.window_stride) if val_eps else None)


def train_ac(cfg: ACConfig) -> tuple[WorldModel, dict]:
    device = resolve_device(cfg.meta.device)
    info = init_distributed(device)
    torch.manual_seed(cfg.meta.seed)
    run_dir = Path(cfg.meta.run_dir)
    o = cfg.optimization
    window = cfg.data.window or o.rollout_steps + 1
    cfg.data.source = data_source(cfg.data)
    action_dim, state_dim = data_dims(cfg.data)
    train_eps = split_episodes(num_episodes(cfg.data), cfg.data.val_episodes)[0]
    stats = normalization_statistics(cfg.data, train_eps)
    state_update, fit = resolve_state_update(cfg.data, cfg.state_update, state_dim, train_eps)
    if cfg.model.init_from:
        world, init = init_world_model(cfg.model.init_from, device, action_dim, state_dim, state_update, stats,
                                       cfg.model.zero_init_output, cfg.data.frame_step)
    else:
        world, init = build_world_model(cfg, device, action_dim, state_dim, stats, state_update), None
    frozen = freeze_parameters(world.predictor, o.freeze)
    config, dataset = asdict(cfg), dataset_identity(cfg.data)
    checkpointer = Checkpointer(run_dir, cfg.meta.checkpoint_every)
    open_run(checkpointer, config, dataset, cfg.meta.allow_changed, info.is_main)  # before anything is written
    if info.is_main and fit is not None:
        write_json(run_dir / "state_update_fit.json", fit)
        print("fitted state update: scale " + ", ".join(f"{v:.4g}" for v in fit["scale"]) + " (R^2 "
              + ", ".join(f"{v:.2f}" for v in fit["r2"]) + ")")
    if info.is_main and init is not None:
        init.frozen = frozen
        write_json(run_dir / "init_from.json", init.to_dict())
        print(init.summary())
    train, val = build_windows(world, cfg, window, run_dir)
    batches = GlobalBatches(len(train), o.batch_size, cfg.meta.seed, info.world_size, info.rank)
    state = TrainState({"predictor": world.predictor}, build_adamw({"predictor": world.predictor}),
                       extra={"predictor_arch": world.predictor.arch})

    def make_batches(epoch: int, batch: int):
        return torch.utils.data.DataLoader(train, batch_sampler=BatchStream(batches, epoch, batch),
                                           num_workers=cfg.data.num_workers, generator=torch.Generator())

    logger = MetricsLogger(run_dir / "metrics.jsonl", enabled=info.is_main)
    train_loop(state, lambda st, b: ac_step(world, st, b, cfg, info, device), make_batches, batches.per_epoch,
               o.max_steps, checkpointer, logger, config=config, log_every=cfg.meta.log_every,
               is_main=info.is_main, progress=cfg.meta.progress, loss_key="total")
    report = {}
    if val is not None:
        report = validate(world, val, device, cfg)
    if info.is_main:
        write_json(run_dir / "validation.json", report)
        world.save(run_dir / "world_model.pt")
    wait_for_all(info)  # every rank returns after rank 0 has written the world model
    return world, report


def main(argv: Sequence[str]) -> int:
    p = config_parser("jepa train-ac", __doc__.splitlines()[0],
                      "YAML config (defaults: the tiny CPU run)", "meta.run_dir=runs/x")
    p.add_argument("--allow-changed", action="store_true",
                   help="resume a run folder although the config or the dataset changed (meta.allow_changed=true)")
    cfg, args = parse_config(p, ACConfig, argv)
    cfg.meta.allow_changed = cfg.meta.allow_changed or args.allow_changed
    _, report = train_ac(cfg)
    finish_distributed()
    print(f"world model: {Path(cfg.meta.run_dir) / 'world_model.pt'}")
    for k, v in report.items():
        print(f"  {k}: {v:.4f}")
    return 0
