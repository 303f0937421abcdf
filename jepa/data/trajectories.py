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
an interrupted writer never leaves a half-written episode listed. Several writers (processes) may
extend one dataset at once: episode ids are reserved and the index is updated under an exclusive lock
on ``DATASET/.index.lock``, re-reading the index first, so the result lists the union of their
episodes (:class:`TrajectoryWriter`).

Reading validates the index (``action_dim``, ``state_dim`` > 0, ``image_size`` > 0, entries with
distinct ids and files, each file a relative path inside the dataset folder) and each episode:
lengths, shapes against the index (a 32 px episode in a 64 px dataset is an error, not a resize),
dtypes, and values finite with ``|x| < MAX_MAGNITUDE`` (1e6, robot units: larger values mean a unit
error, e.g. actions scaled by 1e30); the error names the bad file.

Windows at a frame step ``k`` take frames ``t, t+k, ..., t+(W-1)k``; the action between two sampled
frames is the **sum** of the ``k`` actions in between (delta actions compose by addition). Raw DROID
folders are read by :mod:`jepa.data.droid` into the same windows.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from jepa.errors import JepaError
from jepa.files import atomic_write, locked

FORMAT_NAME = "jepa-trajectories"
FORMAT_VERSION = 1
MAX_MAGNITUDE = 1e6  # bound on |state| and |action| values (robot units)
LOCK_NAME = ".index.lock"


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
                     sim_states: np.ndarray | None = None, meta: Mapping | None = None) -> None:
    """Raise :class:`TrajectoryFormatError` naming ``where`` if the arrays break the format: dtypes,
    shapes, lengths, values finite and below :data:`MAX_MAGNITUDE`, and, given the dataset's ``meta``
    (its index), ``image_size``, ``state_dim`` and ``action_dim``."""
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
        problems += _value_problems("states", states) + _value_problems("actions", actions)
        if meta is not None:
            problems += _meta_problems(frames, states, actions, meta)
    if problems:
        raise TrajectoryFormatError(f"{where}: " + "; ".join(problems))


def _value_problems(name: str, x: np.ndarray) -> list[str]:
    if not np.isfinite(x).all():
        return [f"{name} contain NaN or inf"]
    peak = float(np.abs(x).max()) if x.size else 0.0
    if peak >= MAX_MAGNITUDE:
        return [f"{name} reach |x| = {peak:.3g}, expected |x| < {MAX_MAGNITUDE:g} (robot units; a unit or scale "
                "error?)"]
    return []


def _image_hw(size) -> tuple[int, int] | None:
    """``image_size`` of an index (one int, or ``[H, W]``) as ``(H, W)``; ``None`` when it is malformed."""
    if isinstance(size, int) and not isinstance(size, bool):
        return (size, size)
    if isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(v, int) for v in size):
        return (size[0], size[1])
    return None


def _meta_problems(frames: np.ndarray, states: np.ndarray, actions: np.ndarray, meta: Mapping) -> list[str]:
    """Shapes against the dataset's ``image_size``, ``state_dim`` and ``action_dim`` (those it records)."""
    out = []
    if meta.get("image_size") is not None and (frames.shape[1], frames.shape[2]) != _image_hw(meta["image_size"]):
        out.append(f"frames are {frames.shape[1]}x{frames.shape[2]} px, the dataset's image_size is "
                   f"{meta['image_size']}")
    for key, x, name in (("state_dim", states, "states"), ("action_dim", actions, "actions")):
        if meta.get(key) is not None and x.shape[1] != meta[key]:
            out.append(f"{name} have {x.shape[1]} dims, the dataset's {key} is {meta[key]}")
    return out


def validate_meta(meta: Mapping, where: str | Path) -> None:
    """The dataset description of an index (or of a new dataset): ``action_dim`` and ``state_dim``
    positive integers, ``image_size`` (when given) a positive int or ``[H, W]``, ``fps`` (when given) > 0."""
    problems = []
    for key in ("action_dim", "state_dim"):
        v = meta.get(key)
        if not (isinstance(v, int) and not isinstance(v, bool) and v > 0):
            problems.append(f"{key} must be a positive integer, got {v!r}" if key in meta else f"{key} is missing")
    if meta.get("image_size") is not None:
        hw = _image_hw(meta["image_size"])
        if hw is None or min(hw) <= 0:
            problems.append(f"image_size must be a positive integer (or [H, W]), got {meta['image_size']!r}")
    fps = meta.get("fps")
    if fps is not None and not (isinstance(fps, (int, float)) and np.isfinite(fps) and fps > 0):
        problems.append(f"fps must be > 0, got {fps!r}")
    if problems:
        raise TrajectoryFormatError(f"{where}: " + "; ".join(problems))


def validate_entries(entries: object, where: str | Path) -> None:
    """Index entries: a list of ``{"id", "file", "length", ...}`` with distinct integer ids, distinct files
    that are relative paths inside the dataset folder, and lengths >= 2."""
    if not isinstance(entries, list):
        raise TrajectoryFormatError(f"{where}: 'episodes' must be a list of entries, got {type(entries).__name__}")
    ids: dict[int, int] = {}
    files: dict[str, int] = {}
    for n, e in enumerate(entries):
        if not (isinstance(e, dict) and isinstance(e.get("id"), int) and isinstance(e.get("file"), str)
                and isinstance(e.get("length"), int) and e["length"] >= 2):
            raise TrajectoryFormatError(f"{where}: entry {n} must have an integer id, a file and a length >= 2, "
                                        f"got {e!r}"[:400])
        norm = os.path.normpath(e["file"])
        if os.path.isabs(e["file"]) or norm == ".." or norm.startswith(".." + os.sep):
            raise TrajectoryFormatError(f"{where}: episode {e['id']} points outside the dataset folder "
                                        f"({e['file']!r}); files must be relative paths inside it")
        if e["id"] in ids:
            raise TrajectoryFormatError(f"{where}: episode id {e['id']} is listed twice (entries {ids[e['id']]} "
                                        f"and {n})")
        if norm in files:
            raise TrajectoryFormatError(f"{where}: entries {files[norm]} and {n} both point at {e['file']!r}")
        ids[e["id"]], files[norm] = n, n


def write_episode_file(root: str | Path, episode_id: int, frames: np.ndarray, states: np.ndarray,
                       actions: np.ndarray, info: Mapping | None = None, sim_states: np.ndarray | None = None,
                       meta: Mapping | None = None) -> dict:
    """Validate (against the dataset's ``meta`` when given) and write ``episodes/<id>.npz`` atomically;
    return its index entry (for :meth:`TrajectoryWriter.add`)."""
    rel = f"episodes/{episode_id:06d}.npz"
    validate_episode(frames, states, actions, str(Path(root) / rel), sim_states, meta)
    arrays = {"frames": frames, "states": states, "actions": actions}
    if sim_states is not None:
        arrays["sim_states"] = sim_states
    atomic_write(Path(root) / rel, lambda f: np.savez(f, **arrays))
    return {"id": int(episode_id), "file": rel, "length": int(frames.shape[0]), **dict(info or {})}


class TrajectoryWriter:
    """Appends episodes to a dataset folder (creating it with ``meta`` if new); safe with other writers.

    ``meta`` describes the dataset: ``env``, ``fps``, ``image_size``, ``state_dim``, ``action_dim``
    (both required for a new dataset), ``state_semantics``, ``action_semantics`` (free text, units
    included), ``camera``, ``env_options`` (the env's keyword arguments, e.g. its rendering). An existing
    dataset must have the same ``env``, ``state_dim``, ``action_dim`` and ``image_size`` and, when
    ``meta`` names an env, the same ``env_options`` (none = ``{}``) and ``action_hold`` (env steps each
    policy action was held for; none = 1): clips of two renderings or two holds never mix.

    Concurrency: :meth:`reserve_ids` and :meth:`add` hold the dataset's lock (``.index.lock``,
    ``fcntl.flock``) and re-read the index before they write it, so writers in several processes take
    distinct ids (reserved ids are recorded as the index's ``next_id``) and none loses another's episodes.
    Episode files are written outside the lock (each to its own id's file).
    """

    COMPARED = ("env", "state_dim", "action_dim", "image_size")

    def __init__(self, root: str | Path, meta: Mapping) -> None:
        self.root = Path(root)
        self.meta = dict(meta)
        with self.lock():
            self._reload()

    def lock(self):
        """The dataset's exclusive lock (a context manager)."""
        return locked(self.root / LOCK_NAME)

    def _reload(self) -> None:
        """The index as it is on disk now (call under the lock), checked against this writer's ``meta``."""
        index_path = self.root / "index.json"
        if index_path.exists():
            self.index = read_index(self.root)
            for key in self.COMPARED:
                if key in self.meta and self.index.get(key) != self.meta[key]:
                    raise TrajectoryFormatError(f"{index_path}: existing dataset has {key}="
                                                f"{self.index.get(key)!r}, new data {self.meta[key]!r}")
            for key, none in (("env_options", {}), ("action_hold", 1)):
                if "env" in self.meta and self.index.get(key, none) != self.meta.get(key, none):
                    raise TrajectoryFormatError(f"{index_path}: existing dataset has {key}="
                                                f"{self.index.get(key, none)!r}, new data {self.meta.get(key, none)!r}")
        else:
            validate_meta(self.meta, f"{index_path} (new dataset)")
            self.index = {"format": FORMAT_NAME, "version": FORMAT_VERSION, **self.meta, "episodes": []}

    def _write_index(self) -> None:
        text = json.dumps(self.index, indent=1).encode()
        atomic_write(self.root / "index.json", lambda f: f.write(text))

    @property
    def next_id(self) -> int:
        """The next free episode id of the index as last read (not reserved; see :meth:`reserve_ids`)."""
        listed = 1 + max((e["id"] for e in self.index["episodes"]), default=-1)
        return max(listed, int(self.index.get("next_id", 0)))

    def reserve_ids(self, n: int) -> list[int]:
        """``n`` episode ids no other writer of this dataset will take (under the lock; recorded in the
        index as ``next_id``). Ids of episodes that are never added stay unused."""
        with self.lock():
            self._reload()
            start = self.next_id
            self.index["next_id"] = start + n
            self._write_index()
        return list(range(start, start + n))

    def write_episode(self, episode_id: int, frames: np.ndarray, states: np.ndarray, actions: np.ndarray,
                      info: Mapping | None = None, sim_states: np.ndarray | None = None) -> dict:
        """Validate (against the dataset's dims and image size) and write one episode file atomically;
        return its index entry (not yet in the index)."""
        return write_episode_file(self.root, episode_id, frames, states, actions, info, sim_states, self.index)

    def add(self, entries: list[dict]) -> None:
        """Add written episodes to the index: under the lock, re-read it, refuse ids it already lists,
        merge and rewrite it atomically."""
        with self.lock():
            self._reload()
            known = {e["id"] for e in self.index["episodes"]}
            clash = [e["id"] for e in entries if e["id"] in known]
            if clash:
                raise TrajectoryFormatError(f"{self.root}: episode ids {clash} already in the index")
            merged = sorted(self.index["episodes"] + list(entries), key=lambda e: e["id"])
            validate_entries(merged, self.root / "index.json")
            self.index["episodes"] = merged
            self.index["next_id"] = max(self.next_id, 1 + max((e["id"] for e in merged), default=-1))
            self._write_index()


def read_index(root: str | Path) -> dict:
    path = Path(root) / "index.json"
    if not path.is_file():
        raise TrajectoryFormatError(f"{path}: no index.json; not a trajectory dataset")
    try:
        index = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise TrajectoryFormatError(f"{path}: invalid JSON ({e})") from None
    if not isinstance(index, dict):
        raise TrajectoryFormatError(f"{path}: expected a JSON object, got {type(index).__name__}")
    if index.get("format") != FORMAT_NAME:
        raise TrajectoryFormatError(f"{path}: format {index.get('format')!r} is not {FORMAT_NAME!r}")
    if index.get("version") != FORMAT_VERSION:
        raise TrajectoryFormatError(f"{path}: version {index.get('version')} unsupported (this reader: 1)")
    validate_meta(index, path)
    validate_entries(index.get("episodes"), path)
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
        except FileNotFoundError:
            index = self.root / "index.json"
            raise TrajectoryFormatError(f"{path}: missing episode file (listed in {index})") from None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error, pickle.UnpicklingError) as e:
            raise TrajectoryFormatError(f"{path}: unreadable episode, not a complete .npz file "
                                        f"({type(e).__name__}: {str(e)[:200]})") from None
        validate_episode(frames, states, actions, str(path), sim_states, self.index)
        if frames.shape[0] != entry["length"]:
            raise TrajectoryFormatError(f"{path}: {frames.shape[0]} frames, index says {entry['length']}")
        info = {k: v for k, v in entry.items() if k not in ("file", "length")}
        return Episode(frames, states, actions, info, sim_states)


def dataset_identity(root: str | Path) -> dict:
    """What a training run records of the trajectory dataset it reads, to notice a changed dataset on
    resume: the episode count, frame count, dims and image size, and a sha256 over every entry's id,
    file and length (``path`` is for messages only)."""
    index = read_index(root)
    entries = [[e["id"], e["file"], e["length"]] for e in index["episodes"]]
    digest = hashlib.sha256(json.dumps(entries).encode()).hexdigest()
    return {"kind": "trajectories", "path": str(root), "episodes": len(entries),
            "frames": sum(e[2] for e in entries), "action_dim": index["action_dim"], "state_dim": index["state_dim"],
            "image_size": index.get("image_size"), "sha256": digest}


def window_starts(lengths: list[int], window: int, frame_step: int, stride: int = 1) -> list[tuple[int, int]]:
    """All ``(episode, start)`` pairs whose window of ``window`` frames at ``frame_step`` fits, with
    starts every ``stride`` frames (``stride = frame_step`` on clips collected with actions held for
    ``frame_step`` steps keeps every summed action one held action)."""
    if stride < 1:
        raise ValueError(f"window stride must be >= 1 frame, got {stride}")
    span = (window - 1) * frame_step
    return [(e, s) for e, n in enumerate(lengths) for s in range(0, n - span, stride)]


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

    def __init__(self, root: str | Path, window: int, frame_step: int = 1, episodes: list[int] | None = None,
                 stride: int = 1):
        if window < 2 or frame_step < 1:
            raise ValueError(f"window must be >= 2 and frame_step >= 1, got {window}, {frame_step}")
        self.data = TrajectoryDataset(root)
        chosen = list(range(len(self.data))) if episodes is None else list(episodes)
        self.episodes = [self.data.load(i) for i in chosen]
        self.window, self.frame_step = window, frame_step
        self.items = window_starts([len(e) for e in self.episodes], window, frame_step, stride)
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
