"""Small factories shared by tests in several folders: tiny videos, DROID episodes, world models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


def write_video(path, frames=12, h=32, w=48, fps=10):
    """Frame i is uniformly grey at level 20 * i, so decoded frames reveal their index."""
    import imageio.v2 as imageio

    data = [np.full((h, w, 3), (20 * i) % 256, np.uint8) for i in range(frames)]
    imageio.mimwrite(path, data, fps=fps, codec="libx264", macro_block_size=1, pixelformat="yuv420p")
    return path


def write_droid_episode(folder, frames=24, fps=15):
    """A tiny episode in the raw DROID layout: trajectory.h5, recordings/MP4/<serial>.mp4, metadata json."""
    import h5py

    rng = np.random.default_rng(0)
    (folder / "recordings" / "MP4").mkdir(parents=True)
    write_video(folder / "recordings" / "MP4" / "12345.mp4", frames=frames, h=32, w=64, fps=fps)
    meta = {"left_mp4_path": "gs://droid/success/ep/recordings/MP4/12345.mp4", "uuid": "x"}
    (folder / "metadata_x.json").write_text(json.dumps(meta))
    pose = np.cumsum(rng.normal(0, 0.01, (frames, 6)), axis=0)
    grip = np.clip(np.linspace(0, 1, frames), 0, 1)
    with h5py.File(folder / "trajectory.h5", "w") as f:
        f["observation/robot_state/cartesian_position"] = pose
        f["observation/robot_state/gripper_position"] = grip
    return pose, grip


def make_world_model(state_update=None):
    """A seeded tiny world model: 32 px images, 4x4 tokens of width 32, 4-D actions and states."""
    from jepa.models.ac_predictor import ActionConditionedPredictor
    from jepa.models.vit import VisionTransformer
    from jepa.world_model import WorldModel

    torch.manual_seed(0)
    enc = VisionTransformer(img_size=32, patch_size=8, num_frames=2, embed_dim=32, depth=1, num_heads=2)
    pred = ActionConditionedPredictor(32, (4, 4), predictor_embed_dim=24, depth=2, num_heads=2, action_dim=4,
                                      state_dim=4, predict_residual=True)
    return WorldModel(enc, pred, state_update or {"kind": "additive", "scale": [0.05, 0.05, 0.05, 0.0]}, 32).eval()


def assert_config_rejects(schema, override: str, key: str, problem: str) -> None:
    """Loading ``schema`` with ``override`` fails with a ConfigError naming the override, the key and the problem."""
    import pytest

    from jepa.config import ConfigError, load_config

    with pytest.raises(ConfigError) as e:
        load_config(schema, None, [override])
    msg = str(e.value)
    assert f"key '{key}'" in msg and problem in msg and f"override '{override}'" in msg, msg


def official_ac_state(embed_dim=192, depth=12, pred_dim=128, pred_depth=2, action_dim=7, state_dim=7,
                      patch=16, seed=0):
    """Random ``(encoder, predictor)`` state dicts in the released V-JEPA 2-AC key layout, written from
    the layout itself (not from this library's modules): DDP ``module.`` prefixes, the Conv3d tubelet
    patch embedding, fused ``qkv``, the always-created ``extrinsics_encoder`` (6-D)."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return 0.05 * torch.randn(*shape, generator=g)

    def block(prefix, d, hidden):
        return {f"{prefix}.norm1.weight": 1 + rand(d), f"{prefix}.norm1.bias": rand(d),
                f"{prefix}.attn.qkv.weight": rand(3 * d, d), f"{prefix}.attn.qkv.bias": rand(3 * d),
                f"{prefix}.attn.proj.weight": rand(d, d), f"{prefix}.attn.proj.bias": rand(d),
                f"{prefix}.norm2.weight": 1 + rand(d), f"{prefix}.norm2.bias": rand(d),
                f"{prefix}.mlp.fc1.weight": rand(hidden, d), f"{prefix}.mlp.fc1.bias": rand(hidden),
                f"{prefix}.mlp.fc2.weight": rand(d, hidden), f"{prefix}.mlp.fc2.bias": rand(d)}

    enc = {"patch_embed.proj.weight": rand(embed_dim, 3, 2, patch, patch), "patch_embed.proj.bias": rand(embed_dim),
           "norm.weight": 1 + rand(embed_dim), "norm.bias": rand(embed_dim)}
    for i in range(depth):
        enc.update(block(f"blocks.{i}", embed_dim, 4 * embed_dim))
    pred = {"predictor_embed.weight": rand(pred_dim, embed_dim), "predictor_embed.bias": rand(pred_dim),
            "action_encoder.weight": rand(pred_dim, action_dim), "action_encoder.bias": rand(pred_dim),
            "state_encoder.weight": rand(pred_dim, state_dim), "state_encoder.bias": rand(pred_dim),
            "extrinsics_encoder.weight": rand(pred_dim, 6), "extrinsics_encoder.bias": rand(pred_dim),
            "predictor_norm.weight": 1 + rand(pred_dim), "predictor_norm.bias": rand(pred_dim),
            "predictor_proj.weight": rand(embed_dim, pred_dim), "predictor_proj.bias": rand(embed_dim)}
    for i in range(pred_depth):
        pred.update(block(f"predictor_blocks.{i}", pred_dim, 4 * pred_dim))
    return enc, pred


def write_official_ac_checkpoint(path, **sizes):
    """An official-layout AC training checkpoint (random weights, see :func:`official_ac_state`)."""
    enc, pred = official_ac_state(**sizes)
    wrap = lambda sd: {f"module.{k}": v for k, v in sd.items()}
    torch.save({"encoder": wrap(enc), "target_encoder": wrap(enc), "predictor": wrap(pred), "epoch": 315,
                "loss": 0.1, "batch_size": 8, "world_size": 32, "lr": 0.0}, path)
    return path, enc, pred


def lerobot_level(episode, row, length):
    """Grey level of episode ``episode``'s frame ``row`` in :func:`write_lerobot_dataset` videos."""
    return (7 * (episode * length + row)) % 256


def write_lerobot_dataset(root, version="v2.1", episodes=3, length=12, fps=10, cameras=("front", "wrist"),
                          state_dim=4, action_dim=3, video_fps=None, size=(32, 48)):
    """A small LeRobot dataset (pyarrow parquet tables, libx264 mp4s): states are a seeded random walk,
    actions their next-step differences (so window actions add up); every frame is uniformly grey at
    :func:`lerobot_level`, so decoded frames reveal their episode and row. ``video_fps`` (default
    ``fps``) writes the mp4s at another rate. Returns ``{"states": [...], "actions": [...]}`` per episode
    ([T, S] and [T, A], the raw rows)."""
    import imageio.v2 as imageio
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = Path(root)
    rng = np.random.default_rng(0)
    h, w = size
    states = [np.cumsum(rng.normal(0, 1, (length, state_dim)), 0) * [1.0, 10.0, 0.1, 100.0][:state_dim]
              for _ in range(episodes)]
    actions = [np.concatenate([np.diff(s[:, :action_dim], axis=0), np.zeros((1, action_dim))]) for s in states]
    v3 = version == "v3.0"
    data_path = ("data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet" if v3
                 else "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet")
    video_path = ("videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4" if v3
                  else "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4")
    features = {f"observation.images.{c}": {"dtype": "video", "shape": [h, w, 3],
                                            "names": ["height", "width", "channels"],
                                            "info": {"video.fps": float(fps), "video.codec": "h264"}} for c in cameras}
    features.update({"observation.state": {"dtype": "float32", "shape": [state_dim], "names": None},
                     "action": {"dtype": "float32", "shape": [action_dim], "names": None},
                     "timestamp": {"dtype": "float32", "shape": [1]}, "frame_index": {"dtype": "int64", "shape": [1]},
                     "episode_index": {"dtype": "int64", "shape": [1]}, "index": {"dtype": "int64", "shape": [1]}})
    info = {"codebase_version": version, "robot_type": "test_arm", "fps": fps, "total_episodes": episodes,
            "total_frames": episodes * length, "chunks_size": 1000, "data_path": data_path,
            "video_path": video_path, "features": features}
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "info.json").write_text(json.dumps(info))

    def table(eps):
        rows = [(e, t) for e in eps for t in range(length)]
        return pa.table({"timestamp": pa.array([t / fps for _, t in rows], pa.float32()),
                         "frame_index": pa.array([t for _, t in rows], pa.int64()),
                         "episode_index": pa.array([e for e, _ in rows], pa.int64()),
                         "index": pa.array([e * length + t for e, t in rows], pa.int64()),
                         "task_index": pa.array([0] * len(rows), pa.int64()),
                         "observation.state": pa.array([states[e][t].tolist() for e, t in rows],
                                                       pa.list_(pa.float32())),
                         "action": pa.array([actions[e][t].tolist() for e, t in rows], pa.list_(pa.float32()))})

    def video(path, eps):
        path.parent.mkdir(parents=True, exist_ok=True)
        frames = [np.full((h, w, 3), lerobot_level(e, t, length), np.uint8) for e in eps for t in range(length)]
        imageio.mimwrite(path, frames, fps=video_fps or fps, codec="libx264", macro_block_size=1,
                         pixelformat="yuv420p")

    if v3:
        (root / "data" / "chunk-000").mkdir(parents=True)
        pq.write_table(table(range(episodes)), root / data_path.format(chunk_index=0, file_index=0))
        for c in cameras:
            video(root / video_path.format(video_key=f"observation.images.{c}", chunk_index=0, file_index=0),
                  range(episodes))
        meta = {"episode_index": list(range(episodes)), "tasks": [["move"]] * episodes,
                "length": [length] * episodes, "data/chunk_index": [0] * episodes, "data/file_index": [0] * episodes,
                "dataset_from_index": [e * length for e in range(episodes)],
                "dataset_to_index": [(e + 1) * length for e in range(episodes)]}
        for c in cameras:
            v = f"videos/observation.images.{c}/"
            meta.update({v + "chunk_index": [0] * episodes, v + "file_index": [0] * episodes,
                         v + "from_timestamp": [e * length / fps for e in range(episodes)],
                         v + "to_timestamp": [(e + 1) * length / fps for e in range(episodes)]})
        (root / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
        pq.write_table(pa.table(meta), root / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    else:
        lines = []
        for e in range(episodes):
            fields = dict(episode_chunk=0, episode_index=e)
            (root / data_path.format(**fields)).parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table([e]), root / data_path.format(**fields))
            for c in cameras:
                video(root / video_path.format(video_key=f"observation.images.{c}", **fields), [e])
            lines.append(json.dumps({"episode_index": e, "tasks": ["move"], "length": length}))
        (root / "meta" / "episodes.jsonl").write_text("\n".join(lines) + "\n")
    return {"states": states, "actions": actions}


def write_moving_bars(folder, n=12, frames=8, size=32, seed=0):
    """Videos of a bright bar sweeping over a dark background at a per-video speed and direction."""
    import imageio.v2 as imageio

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        speed, start, vertical = rng.integers(1, 4), rng.integers(0, size), rng.random() < 0.5
        clip = np.full((frames, size, size, 3), 20, np.uint8)
        for t in range(frames):
            pos = (start + speed * t * 2) % (size - 4)
            if vertical:
                clip[t, :, pos : pos + 4] = (230, 200, 60)
            else:
                clip[t, pos : pos + 4, :] = (60, 200, 230)
        imageio.mimwrite(folder / f"v{i}.mp4", list(clip), fps=8, codec="libx264", macro_block_size=1,
                         pixelformat="yuv420p")
        lines.append(f"v{i}.mp4 {int(vertical)}")
    (folder / "train.csv").write_text("\n".join(lines) + "\n")
    return folder / "train.csv"


# ------------------------------------------------------------------ bad input: small files and broken disks

TRAJ_META = {"env": "toy", "fps": 10.0, "image_size": 32, "state_dim": 2, "action_dim": 2,
             "state_semantics": "x y [m]", "action_semantics": "dx dy [m]"}


def toy_episode(length=8, seed=0, size=32, state_dim=2, action_dim=2):
    """``(frames [T, S, S, 3] uint8, states [T, state_dim], actions [T-1, action_dim])`` of a seeded random walk."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 255, (length, size, size, 3), dtype=np.uint8)
    states = np.cumsum(rng.normal(0, 0.1, (length, state_dim)), 0).astype(np.float32)
    actions = rng.normal(0, 1, (length - 1, action_dim)).astype(np.float32)
    return frames, states, actions


def write_trajectories(root, episodes=5, length=8, meta=None):
    """A small valid trajectory dataset (:data:`TRAJ_META`: 32 px, 2-D states, 2-D actions); returns ``root``."""
    from jepa.data.trajectories import TrajectoryWriter

    w = TrajectoryWriter(root, meta or TRAJ_META)
    w.add([w.write_episode(i, *toy_episode(length, i), {"seed": i}) for i in range(episodes)])
    return Path(root)


def overwrite_episode(root, i, frames=None, states=None, actions=None):
    """Replace episode ``i``'s arrays with no validation (to make a broken dataset); ``None`` keeps one."""
    path = Path(root) / "episodes" / f"{i:06d}.npz"
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    for k, v in (("frames", frames), ("states", states), ("actions", actions)):
        if v is not None:
            arrays[k] = v
    np.savez(path, **arrays)
    return path


def edit_index(root, edit):
    """Apply ``edit(index_dict)`` to a dataset's ``index.json`` in place (no validation)."""
    path = Path(root) / "index.json"
    index = json.loads(path.read_text())
    edit(index)
    path.write_text(json.dumps(index))
    return path


def read_only(monkeypatch, folder, code=None):
    """Make ``folder`` (and everything below it) refuse writes as a read-only folder does, for this
    test: creating, opening for writing and making folders there raise ``OSError(code)`` (default
    ``EROFS``; ``EACCES`` for a folder without write permission). Tests run as root too, where
    ``chmod`` does not stop a write, hence the simulation."""
    import builtins
    import errno
    import io
    import os

    code = errno.EROFS if code is None else code
    folder = Path(os.path.abspath(folder))
    real_open, real_mkdir, real_io_open = os.open, os.mkdir, io.open

    def blocked(path):
        return isinstance(path, (str, os.PathLike)) and Path(os.path.abspath(os.fspath(path))).is_relative_to(folder)

    def refuse(path):
        return OSError(code, os.strerror(code), os.fspath(path))

    def os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and blocked(path):
            raise refuse(path)
        return real_open(path, flags, *args, **kwargs)

    def mkdir(path, *args, **kwargs):
        if blocked(path) and not os.path.isdir(path):
            raise refuse(path)
        return real_mkdir(path, *args, **kwargs)

    def io_open(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and blocked(file):
            raise refuse(file)
        return real_io_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(io, "open", io_open)
    monkeypatch.setattr(builtins, "open", io_open)


def full_disk(monkeypatch, free_bytes=0):
    """Simulate a disk with ``free_bytes`` left for this test: once the files written through
    :func:`jepa.files.atomic_write` (checkpoints, episodes, features, indexes, configs, summaries)
    have used them up, a write raises ``OSError(ENOSPC)`` as a full disk does."""
    import errno

    import jepa.files

    left = [free_bytes]
    real = jepa.files._open_temp

    class FullFile:
        def __init__(self, f):
            self._f = f

        def write(self, data):
            n = memoryview(data).nbytes
            if n > left[0]:
                raise OSError(errno.ENOSPC, "No space left on device")
            left[0] -= n
            return self._f.write(data)

        def __getattr__(self, name):
            return getattr(self._f, name)

    monkeypatch.setattr(jepa.files, "_open_temp", lambda fd: FullFile(real(fd)))
