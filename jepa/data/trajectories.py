"""The trajectory dataset format (robot clips), version 1: writer, validating reader, window Dataset.

A dataset is one folder::

    DATASET/
      index.json                 format, version, env, fps, image size, state/action semantics,
                                 and one entry per episode: {"id", "file", "length", "seed", ...}
      episodes/000000.npz        frames  uint8   [T, H, W, 3]  camera images
                                 states  float32 [T, S]        proprioceptive state at each frame
                                 actions float32 [T-1, A]      action t is applied at frame t and
                                                               leads to frame t+1
                                 sim_states float64 [T, K]     optional: the simulator state at each
                                                               frame (restores an episode's moment
                                                               exactly, e.g. for dataset-offset goals)

Episodes are written to a temporary file and renamed, then the index is rewritten the same way, so
an interrupted writer never leaves a half-written episode listed. Reading validates lengths, shapes,
dtypes and finiteness, and names the bad episode file in the error.

Windows at a frame step ``k`` take frames ``t, t+k, ..., t+(W-1)k``; the action between two sampled
frames is the **sum** of the ``k`` actions in between (delta actions compose by addition). Raw DROID
folders are read by :mod:`jepa.data.droid` into the same windows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from jepa.files import atomic_write
from jepa.errors import JepaError

FORMAT_NAME = "jepa-trajectories"
FORMAT_VERSION = 1


class TrajectoryFormatError(JepaError, ValueError):
    """A dataset folder, its index or one of its episodes is malformed (the message names the file)."""


@dataclass
class Episode:
    frames: np.ndarray  # uint8 [T, H, W, 3]
    states: np.ndarray  # float32 [T, S]
    actions: np.ndarray  # float32 [T-1, A]
    info: dict
    sim_states: np.ndarray | None = None  # float64 [T, K], when the collector recorded them

    def __len__(self) -> int:
        return self.frames.shape[0]


def validate_episode(frames: np.ndarray, states: np.ndarray, actions: np.ndarray, where: str,
                     sim_states: np.ndarray | None = None) -> None:
    """Raise :class:`TrajectoryFormatError` naming ``where`` if the arrays break the format."""
    problems = []
    if sim_states is not None and (sim_states.ndim != 2 or sim_states.shape[0] != frames.shape[0]
                                   or sim_states.dtype != np.float64 or not np.isfinite(sim_states).all()):
        problems.append(f"sim_states must be finite float64 [T={frames.shape[0]}, K], got {sim_states.dtype} "
                        f"{sim_states.shape}")
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        problems.append(f"frames must be uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}")
    if states.ndim != 2 or states.dtype != np.float32:
        problems.append(f"states must be float32 [T, S], got {states.dtype} {states.shape}")
    if actions.ndim != 2 or actions.dtype != np.float32:
        problems.append(f"actions must be float32 [T-1, A], got {actions.dtype} {actions.shape}")
    if not problems:
        t = frames.shape[0]
        if t < 2:
            problems.append(f"an episode needs at least 2 frames, got {t}")
        if states.shape[0] != t:
            problems.append(f"{t} frames but {states.shape[0]} states")
        if actions.shape[0] != t - 1:
            problems.append(f"{t} frames need {t - 1} actions, got {actions.shape[0]}")
        if not np.isfinite(states).all():
            problems.append("states contain NaN or inf")
        if not np.isfinite(actions).all():
            problems.append("actions contain NaN or inf")
    if problems:
        raise TrajectoryFormatError(f"{where}: " + "; ".join(problems))


def write_episode_file(root: str | Path, episode_id: int, frames: np.ndarray, states: np.ndarray,
                       actions: np.ndarray, info: Mapping | None = None, sim_states: np.ndarray | None = None) -> dict:
    """Validate and write ``episodes/<id>.npz`` atomically; return its index entry (for ``add``)."""
    rel = f"episodes/{episode_id:06d}.npz"
    validate_episode(frames, states, actions, str(Path(root) / rel), sim_states)
    arrays = {"frames": frames, "states": states, "actions": actions}
    if sim_states is not None:
        arrays["sim_states"] = sim_states
    atomic_write(Path(root) / rel, lambda f: np.savez(f, **arrays))
    return {"id": int(episode_id), "file": rel, "length": int(frames.shape[0]), **dict(info or {})}


class TrajectoryWriter:
    """Appends episodes to a dataset folder (creating it with ``meta`` if new).

    ``meta`` describes the dataset: ``env``, ``fps``, ``image_size``, ``state_dim``, ``action_dim``,
    ``state_semantics``, ``action_semantics`` (free text, units included), ``camera``.
    An existing dataset must have the same ``env``, ``state_dim`` and ``action_dim``.
    """

    def __init__(self, root: str | Path, meta: Mapping) -> None:
        self.root = Path(root)
        index_path = self.root / "index.json"
        if index_path.exists():
            self.index = read_index(self.root)
            for key in ("env", "state_dim", "action_dim", "image_size"):
                if key in meta and self.index.get(key) != meta[key]:
                    raise TrajectoryFormatError(
                        f"{index_path}: existing dataset has {key}={self.index.get(key)!r}, new data {meta[key]!r}"
                    )
        else:
            self.index = {"format": FORMAT_NAME, "version": FORMAT_VERSION, **dict(meta), "episodes": []}

    @property
    def next_id(self) -> int:
        return 1 + max((e["id"] for e in self.index["episodes"]), default=-1)

    def write_episode(self, episode_id: int, frames: np.ndarray, states: np.ndarray, actions: np.ndarray,
                      info: Mapping | None = None) -> dict:
        """Write one episode file (atomically) and return its index entry (not yet in the index)."""
        return write_episode_file(self.root, episode_id, frames, states, actions, info)

    def add(self, entries: list[dict]) -> None:
        """Add written episodes to the index and rewrite it atomically."""
        known = {e["id"] for e in self.index["episodes"]}
        clash = [e["id"] for e in entries if e["id"] in known]
        if clash:
            raise TrajectoryFormatError(f"{self.root}: episode ids {clash} already in the index")
        self.index["episodes"] = sorted(self.index["episodes"] + list(entries), key=lambda e: e["id"])
        text = json.dumps(self.index, indent=1).encode()
        atomic_write(self.root / "index.json", lambda f: f.write(text))


def read_index(root: str | Path) -> dict:
    path = Path(root) / "index.json"
    if not path.is_file():
        raise TrajectoryFormatError(f"{path}: no index.json; not a trajectory dataset")
    try:
        index = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise TrajectoryFormatError(f"{path}: invalid JSON ({e})") from None
    if index.get("format") != FORMAT_NAME:
        raise TrajectoryFormatError(f"{path}: format {index.get('format')!r} is not {FORMAT_NAME!r}")
    if index.get("version") != FORMAT_VERSION:
        raise TrajectoryFormatError(f"{path}: version {index.get('version')} unsupported (this reader: 1)")
    return index


class TrajectoryDataset:
    """Reads a trajectory dataset folder; ``load(i)`` returns a validated :class:`Episode`."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.index = read_index(self.root)
        self.episodes: list[dict] = self.index["episodes"]

    def __len__(self) -> int:
        return len(self.episodes)

    def load(self, i: int) -> Episode:
        entry = self.episodes[i]
        path = self.root / entry["file"]
        try:
            with np.load(path) as z:
                frames, states, actions = z["frames"], z["states"], z["actions"]
                sim_states = z["sim_states"] if "sim_states" in z.files else None
        except (OSError, ValueError, KeyError, EOFError) as e:
            raise TrajectoryFormatError(f"{path}: unreadable episode ({type(e).__name__}: {e})") from None
        validate_episode(frames, states, actions, str(path), sim_states)
        if frames.shape[0] != entry["length"]:
            raise TrajectoryFormatError(f"{path}: {frames.shape[0]} frames, index says {entry['length']}")
        info = {k: v for k, v in entry.items() if k not in ("file", "length")}
        return Episode(frames, states, actions, info, sim_states)


def window_starts(lengths: list[int], window: int, frame_step: int) -> list[tuple[int, int]]:
    """All ``(episode, start)`` pairs whose window of ``window`` frames at ``frame_step`` fits."""
    span = (window - 1) * frame_step
    return [(e, s) for e, n in enumerate(lengths) for s in range(0, n - span)]


def slice_window(ep: Episode, start: int, window: int, frame_step: int) -> tuple[np.ndarray, ...]:
    """Frames ``[W, H, W, 3]``, states ``[W, S]`` and summed actions ``[W-1, A]`` of one window."""
    idx = start + frame_step * np.arange(window)
    actions = ep.actions[start : idx[-1]].reshape(window - 1, frame_step, -1).sum(1)
    return ep.frames[idx], ep.states[idx], actions.astype(np.float32)


class TrajectoryWindows(Dataset):
    """Windows of ``window`` frames at ``frame_step`` from a trajectory dataset.

    Items are dicts: ``frames`` uint8 ``[W, 3, H, W_px]``, ``states`` float32 ``[W, S]``, ``actions``
    float32 ``[W-1, A]``, ``episode`` and ``start``. Episodes are loaded once and kept in memory
    (datasets here are small; pass ``episodes`` to use a subset, e.g. a train/validation split).
    """

    def __init__(self, root: str | Path, window: int, frame_step: int = 1, episodes: list[int] | None = None):
        if window < 2 or frame_step < 1:
            raise ValueError(f"window must be >= 2 and frame_step >= 1, got {window}, {frame_step}")
        self.data = TrajectoryDataset(root)
        chosen = list(range(len(self.data))) if episodes is None else list(episodes)
        self.episodes = [self.data.load(i) for i in chosen]
        self.window, self.frame_step = window, frame_step
        self.items = window_starts([len(e) for e in self.episodes], window, frame_step)
        if not self.items:
            raise TrajectoryFormatError(f"{root}: no episode is long enough for {window} frames at step {frame_step}")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        e, s = self.items[i]
        frames, states, actions = slice_window(self.episodes[e], s, self.window, self.frame_step)
        return {"frames": torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous(),
                "states": torch.from_numpy(states), "actions": torch.from_numpy(actions),
                "episode": e, "start": s}
