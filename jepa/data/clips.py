"""Clip sources for pretraining: video CSV lists, trajectory datasets, and weighted mixtures.

A source has ``len(source)`` items and ``source.frames(i, rng) -> uint8 [T, H, W, 3]`` (``rng`` picks
the clip's position). Video CSV lists use the official format: one ``path label`` line per clip,
space separated (``::`` also accepted), no header; relative paths are relative to the CSV file;
image files are repeated to fill the clip.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from jepa.data.trajectories import TrajectoryDataset, TrajectoryFormatError, dataset_identity, window_starts
from jepa.data.transforms import images_as_video
from jepa.data.video import clip_indices, frame_step_for_fps, is_image_path, read_frames, read_image, video_info
from jepa.errors import InputError, MissingFileError


def read_video_csv(path: str | Path) -> list[tuple[Path, int]]:
    """``(path, label)`` rows of an official-format video list."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: no such video list")
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file; expected one 'path label' line per video") from None
    rows = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("::") if "::" in line else line.rsplit(maxsplit=1)
        if len(parts) != 2:
            raise InputError(f"{path}:{n}: expected 'path label', got {line!r}")
        p, label = Path(parts[0].strip()), parts[1].strip()
        try:
            rows.append((p if p.is_absolute() else path.parent / p, int(label)))
        except ValueError:
            raise InputError(f"{path}:{n}: label {label!r} is not an integer") from None
    if not rows:
        raise InputError(f"{path}: the video list is empty")
    return rows


class VideoCSVSource:
    """Clips of ``frames_per_clip`` frames from a video list, sampled by ``frame_step`` or ``fps``."""

    def __init__(self, csv: str | Path, frames_per_clip: int, frame_step: int | None = None,
                 fps: float | None = None) -> None:
        if (frame_step is None) == (fps is None):
            raise InputError("give exactly one of frame_step and fps")
        self.csv = Path(csv)
        self.rows = read_video_csv(csv)
        self.frames_per_clip, self.frame_step, self.fps = frames_per_clip, frame_step, fps

    def __len__(self) -> int:
        return len(self.rows)

    def identity(self) -> dict:
        """The list's rows (paths and labels) as a count and a sha256, to notice a changed list on resume."""
        digest = hashlib.sha256("\n".join(f"{p} {label}" for p, label in self.rows).encode()).hexdigest()
        return {"kind": "video-list", "path": str(self.csv), "videos": len(self.rows), "sha256": digest}

    def frames(self, i: int, rng: np.random.Generator) -> np.ndarray:
        path = self.rows[i][0]
        if is_image_path(path):
            return images_as_video(read_image(path), self.frames_per_clip)
        info = video_info(path)
        step = self.frame_step or frame_step_for_fps(info.fps, self.fps)
        return read_frames(path, clip_indices(info.num_frames, self.frames_per_clip, step, rng)[0])


class TrajectoryClipSource:
    """Every window of ``frames_per_clip`` frames at ``frame_step`` of a trajectory dataset."""

    def __init__(self, root: str | Path, frames_per_clip: int, frame_step: int = 1) -> None:
        self.root = root
        data = TrajectoryDataset(root)
        self.episodes = [data.load(i).frames for i in range(len(data))]
        self.frames_per_clip, self.frame_step = frames_per_clip, frame_step
        self.items = window_starts([len(e) for e in self.episodes], frames_per_clip, frame_step)
        if not self.items:
            raise TrajectoryFormatError(f"{root}: no episode has {frames_per_clip} frames at step {frame_step} "
                                        f"(the dataset lists {len(self.episodes)} episodes)")

    def __len__(self) -> int:
        return len(self.items)

    def identity(self) -> dict:
        """:func:`jepa.data.trajectories.dataset_identity` of the dataset."""
        return dataset_identity(self.root)

    def frames(self, i: int, rng: np.random.Generator) -> np.ndarray:
        e, s = self.items[i]
        return self.episodes[e][s : s + self.frames_per_clip * self.frame_step : self.frame_step]


class MixedSource:
    """Concatenated sources; ``sample_weights`` gives each item ``weight_d / len(source_d)``."""

    def __init__(self, sources: list, weights: list[float] | None = None) -> None:
        self.sources = sources
        self.offsets = np.cumsum([0] + [len(s) for s in sources])
        w = np.asarray(weights if weights is not None else [1.0] * len(sources), dtype=np.float64)
        if len(w) != len(sources) or (w < 0).any() or w.sum() <= 0:
            raise InputError(f"need one non-negative weight per source, got {weights}")
        self.sample_weights = np.concatenate([np.full(len(s), wi / len(s)) for s, wi in zip(sources, w)])
        self.sample_weights /= self.sample_weights.sum()

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def identity(self) -> list:
        """The identities of the sources, in order."""
        return [s.identity() for s in self.sources]

    def frames(self, i: int, rng: np.random.Generator) -> np.ndarray:
        d = int(np.searchsorted(self.offsets, i, side="right") - 1)
        return self.sources[d].frames(i - int(self.offsets[d]), rng)
