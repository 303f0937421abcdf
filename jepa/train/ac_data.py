"""AC training data beyond the built-in readers: the data source (``data.source``, or its alias
``data.format``), LeRobot windows, and the per-dimension action/state normalisation statistics.

``data.source=lerobot`` (or ``data.format=lerobot``) reads a LeRobot dataset folder ``data.path``
with the camera ``data.camera`` and the keys ``data.state_key`` / ``data.action_key``; windows are
decoded from the mp4s inside each step (``data.cache_features`` does not apply). Normalisation
(``data.normalize``; default on for LeRobot, whose units are arbitrary, and off for the built-in
trajectory and DROID data) computes the statistics once from the training episodes; they are stored
in the world model, which applies them itself (:mod:`jepa.normalization`).
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from jepa.config import ConfigError
from jepa.data.lerobot import LeRobotDataset, LeRobotWindows
from jepa.errors import MissingFileError
from jepa.normalization import REDUCES, control_statistics
from jepa.world_model import StateUpdateConfig, fit_additive_scale

if TYPE_CHECKING:  # pragma: no cover
    from jepa.train.ac import ACDataConfig

SOURCES = ("trajectories", "droid", "lerobot")


def data_source(d: ACDataConfig) -> str:
    """``data.source``, or ``data.format`` when that is given (the two must not disagree)."""
    if d.format is not None and d.source not in ("trajectories", d.format):
        raise ConfigError(f"data.format={d.format!r} and data.source={d.source!r} disagree; give one of them")
    source = d.format or d.source
    if source not in SOURCES:
        raise ConfigError(f"data.source (or data.format) must be one of {SOURCES}, got {source!r}")
    if d.action_reduce not in REDUCES:
        raise ConfigError(f"data.action_reduce must be one of {REDUCES}, got {d.action_reduce!r}")
    if d.action_reduce != "sum" and source != "lerobot":
        raise ConfigError(f"data.action_reduce={d.action_reduce!r} is for LeRobot data; {source} windows sum the "
                         "delta actions between sampled frames")
    return source


def lerobot_dataset(d: ACDataConfig) -> LeRobotDataset:
    """The LeRobot dataset of ``d``, opened (and its videos checked) once per process while its metadata
    files are unchanged."""
    if not d.camera:
        raise ConfigError("data.source=lerobot needs data.camera (a video key of meta/info.json, e.g. front for "
                         "observation.images.front)")
    meta = Path(d.path) / "meta"
    stamps = tuple(p.stat().st_mtime_ns if p.exists() else 0 for p in (meta / "info.json", meta / "episodes.jsonl",
                                                                        meta / "episodes"))
    return _open_lerobot(str(Path(d.path).resolve()), d.camera, d.state_key, d.action_key, stamps)


@functools.lru_cache(maxsize=4)
def _open_lerobot(path: str, camera: str, state_key: str, action_key: str, stamps: tuple) -> LeRobotDataset:
    return LeRobotDataset(path, camera, state_key, action_key)


def lerobot_windows(d: ACDataConfig, window: int, train_eps: list[int], val_eps: list[int]):
    """Training windows and 5-frame validation windows (``None`` without validation episodes)."""
    data = lerobot_dataset(d)
    train = LeRobotWindows(data, window, d.frame_step, train_eps, d.action_reduce)
    val = LeRobotWindows(data, 5, d.frame_step, val_eps, d.action_reduce) if val_eps else None
    return train, val


def num_episodes(d: ACDataConfig) -> int:
    if d.source == "lerobot":
        return len(lerobot_dataset(d))
    if d.source == "trajectories":
        from jepa.data.trajectories import TrajectoryDataset

        return len(TrajectoryDataset(d.path))
    return len(droid_folders(d.path))


def droid_folders(path: str | Path) -> list[str]:
    """The DROID episode folders listed in ``path`` (the first word of each non-empty line)."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: no such DROID episode list (data.source=droid reads one episode folder "
                               "per line)")
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]


def dataset_identity(d: ACDataConfig) -> dict:
    """What a run records of its dataset, to notice on resume that it changed: for the trajectory format
    :func:`jepa.data.trajectories.dataset_identity`; for LeRobot the episodes' indices and lengths; for
    DROID the listed folders (``path`` is for messages only)."""
    if d.source == "trajectories":
        from jepa.data.trajectories import dataset_identity as trajectory_identity

        return trajectory_identity(d.path)
    if d.source == "lerobot":
        data = lerobot_dataset(d)
        entries = [[ep.index, ep.length] for ep in data.episodes]
        extra = {"camera": data.camera, "frames": sum(e[1] for e in entries)}
    else:
        entries = droid_folders(d.path)
        extra = {}
    digest = hashlib.sha256(json.dumps(entries).encode()).hexdigest()
    return {"kind": d.source, "path": str(d.path), "episodes": len(entries), **extra, "sha256": digest}


def episode_controls(d: ACDataConfig, episodes: list[int]) -> list[tuple]:
    """``(states [T, S], actions [T-1, A])`` of the given episodes (LeRobot or trajectory datasets)."""
    if d.source == "lerobot":
        data = lerobot_dataset(d)
        controls = [data.controls(i) for i in episodes]
    elif d.source == "trajectories":
        from jepa.data.trajectories import TrajectoryDataset

        data = TrajectoryDataset(d.path)
        controls = [(ep.states, ep.actions) for ep in map(data.load, episodes)]
    else:
        raise ConfigError("data.normalize=true and state_update.kind=fit are not supported for DROID data (the "
                          "released recipe feeds robot units as they are, with the pose update)")
    return controls


def normalization_statistics(d: ACDataConfig, train_eps: list[int]) -> dict | None:
    """The normalisation statistics of the training episodes, or ``None`` when ``data.normalize`` is off."""
    enabled = d.normalize if d.normalize is not None else d.source == "lerobot"
    if not enabled:
        return None
    controls = episode_controls(d, train_eps)
    return control_statistics([s for s, _ in controls], [a for _, a in controls], d.frame_step, d.action_reduce)


def resolve_state_update(d: ACDataConfig, spec: StateUpdateConfig, state_dim: int,
                         train_eps: list[int]) -> tuple[StateUpdateConfig, dict | None]:
    """The state update the world model will use, and the fit report when ``spec.kind == "fit"``.

    ``fit`` estimates an additive scale per state dim from the training episodes
    (:func:`jepa.world_model.fit_additive_scale`); an ``additive`` scale must have one value per
    state dim (a clear error instead of a silent truncation)."""
    if spec.kind == "pose":
        return spec, None
    if spec.kind == "fit":
        controls = episode_controls(d, train_eps)
        scale, r2 = fit_additive_scale([s for s, _ in controls], [a for _, a in controls])
        return StateUpdateConfig(kind="additive", scale=scale), {"scale": scale, "r2": r2, "episodes": len(controls)}
    if len(spec.scale) != state_dim:
        raise ConfigError(f"state_update.scale has {len(spec.scale)} values but the dataset's states have {state_dim} "
                         "dims: give one scale per state dim, or state_update.kind=fit to estimate them from the data")
    return spec, None
