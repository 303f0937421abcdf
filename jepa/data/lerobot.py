"""LeRobot datasets (codebase versions v2.0, v2.1, v3.0) read into the same windows as
:class:`jepa.data.trajectories.TrajectoryWindows`.

A dataset is one folder::

    meta/info.json     codebase_version, fps, features {key: {dtype, shape, names, info}},
                       chunks_size, data_path and video_path templates
    v2.0 / v2.1:
      meta/episodes.jsonl   one {"episode_index", "tasks", "length"} per line
      data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet          one episode
      videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4
    v3.0:
      meta/episodes/chunk-*/file-*.parquet   one row per episode: episode_index, length,
          data/chunk_index, data/file_index, videos/{video_key}/chunk_index, .../file_index,
          .../from_timestamp (where the episode starts in the video file [s])
      data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet     many episodes
      videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4   many episodes, back to back

Data rows hold ``timestamp`` [s], ``frame_index``, ``episode_index`` and the numeric features (lists
of floats), e.g. ``observation.state`` and ``action``; cameras are ``video`` features such as
``observation.images.front``. The state and action keys and the camera are chosen by name (a
camera ``front`` means the video key ``observation.images.front``).

Convention (as in the trajectory format): the action of row ``t`` is applied at frame ``t`` and leads
to frame ``t + 1``, so an episode of ``T`` rows gives states ``[T, S]`` and actions ``[T-1, A]`` (the
last row's action leads nowhere and is dropped). The video frame of row ``t`` is
``round((from_timestamp + timestamp_t) * fps)`` (``from_timestamp`` is 0 in v2).

Checked on opening, with errors naming the file: the version, the camera, state and action keys
(and their shapes), that every frame rate agrees (``info.json`` ``fps``, the camera feature's
``video.fps``, each mp4's own rate, the rows' timestamps), and that lengths agree (the episode
metadata, the parquet rows, ``frame_index`` = 0..T-1, the frames each video holds); NaN or inf in
states or actions is an error too. Frames are decoded on access (decord, with an ffmpeg fallback).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from jepa.data.trajectories import Episode, TrajectoryFormatError, window_starts
from jepa.data.video import VideoReadError, read_frames, video_info
from jepa.normalization import window_actions

SUPPORTED_VERSIONS = ("v2.0", "v2.1", "v3.0")
CAMERA_PREFIX = "observation.images."
FPS_TOLERANCE = 0.01  # relative


class LeRobotFormatError(TrajectoryFormatError):
    """A LeRobot dataset folder or one of its files is malformed (the message names the file)."""


@dataclass(frozen=True)
class LeRobotEpisode:
    """Where one episode lives: its rows in ``data_file``, its frames in ``video_file`` from ``video_start`` [s]."""

    index: int
    length: int
    data_file: Path
    video_file: Path
    video_start: float


def read_info(root: Path) -> dict:
    path = root / "meta" / "info.json"
    if not path.is_file():
        raise LeRobotFormatError(f"{path}: no meta/info.json; not a LeRobot dataset")
    try:
        info = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise LeRobotFormatError(f"{path}: invalid JSON ({e})") from None
    version = info.get("codebase_version")
    if version not in SUPPORTED_VERSIONS:
        raise LeRobotFormatError(f"{path}: codebase_version {version!r} is not supported ({SUPPORTED_VERSIONS})")
    missing = [k for k in ("fps", "features", "data_path", "video_path") if k not in info]
    if missing:
        raise LeRobotFormatError(f"{path}: lacks {missing}")
    return info


def camera_key(info: dict, camera: str, where: Path) -> str:
    """The video feature of ``camera`` (a full key, or the name after ``observation.images.``)."""
    features = info["features"]
    cameras = sorted(k for k, f in features.items() if f.get("dtype") == "video")
    key = camera if camera in features else CAMERA_PREFIX + camera
    if key not in features:
        raise LeRobotFormatError(f"{where}: no camera {camera!r}; the video features are {cameras} "
                                 f"(give data.camera as one of them or its name after {CAMERA_PREFIX!r})")
    if features[key].get("dtype") != "video":
        raise LeRobotFormatError(f"{where}: {key!r} has dtype {features[key].get('dtype')!r}; only cameras stored "
                                 f"as mp4 ('video' features) are read; video features: {cameras}")
    return key


def feature_dim(info: dict, key: str, where: Path) -> int:
    features = info["features"]
    if key not in features:
        numeric = sorted(k for k, f in features.items() if f.get("dtype", "").startswith("float"))
        raise LeRobotFormatError(f"{where}: no feature {key!r}; float features: {numeric}")
    return int(np.prod(features[key].get("shape", [1])))


def _feature_fps(feature: dict) -> float | None:
    meta = feature.get("info") or feature.get("video_info") or {}
    return float(meta["video.fps"]) if "video.fps" in meta else None


def _fps_differ(a: float, b: float) -> bool:
    return abs(a - b) > FPS_TOLERANCE * max(a, b)


class LeRobotDataset:
    """The episodes of a LeRobot dataset with one camera, one state key and one action key.

    ``controls(i)`` gives ``(states [T, S], actions [T-1, A])`` float32 of episode ``i`` (position in
    :attr:`episodes`, ordered by ``episode_index``); ``frames(i, rows)`` the camera's uint8
    ``[K, H, W, 3]`` images at those rows; ``load(i)`` the whole episode as an :class:`Episode`.
    """

    def __init__(self, root: str | Path, camera: str, state_key: str = "observation.state",
                 action_key: str = "action") -> None:
        self.root = Path(root)
        info_path = self.root / "meta" / "info.json"
        self.info = read_info(self.root)
        self.version = self.info["codebase_version"]
        self.fps = float(self.info["fps"])
        self.camera = camera_key(self.info, camera, info_path)
        self.state_key, self.action_key = state_key, action_key
        self.state_dim = feature_dim(self.info, state_key, info_path)
        self.action_dim = feature_dim(self.info, action_key, info_path)
        cam_fps = _feature_fps(self.info["features"][self.camera])
        if cam_fps is not None and _fps_differ(cam_fps, self.fps):
            raise LeRobotFormatError(f"{info_path}: camera {self.camera!r} has video.fps {cam_fps}, the dataset "
                                     f"fps is {self.fps}")
        self.episodes = self._read_v3_episodes() if self.version == "v3.0" else self._read_v2_episodes()
        if not self.episodes:
            raise LeRobotFormatError(f"{self.root}: the dataset lists no episodes")
        self._tables: dict[Path, dict[str, np.ndarray]] = {}
        self._controls: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._check_videos()

    def __len__(self) -> int:
        return len(self.episodes)

    # ------------------------------------------------------------------ episode metadata

    def _read_v2_episodes(self) -> list[LeRobotEpisode]:
        path = self.root / "meta" / "episodes.jsonl"
        if not path.is_file():
            raise LeRobotFormatError(f"{path}: missing (a {self.version} dataset lists its episodes there)")
        chunk = int(self.info.get("chunks_size", 1000))
        out = []
        for n, line in enumerate(path.read_text().splitlines()):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                e, length = int(row["episode_index"]), int(row["length"])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
                raise LeRobotFormatError(f"{path}: line {n + 1} is not an episode entry ({err})") from None
            fields = dict(episode_chunk=e // chunk, episode_index=e)
            out.append(LeRobotEpisode(e, length, self.root / self.info["data_path"].format(**fields),
                                      self.root / self.info["video_path"].format(video_key=self.camera, **fields),
                                      0.0))
        return sorted(out, key=lambda ep: ep.index)

    def _read_v3_episodes(self) -> list[LeRobotEpisode]:
        import pyarrow.parquet as pq

        files = sorted((self.root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
        if not files:
            raise LeRobotFormatError(f"{self.root / 'meta' / 'episodes'}: no chunk-*/file-*.parquet episode tables")
        v = f"videos/{self.camera}/"
        need = ["episode_index", "length", "data/chunk_index", "data/file_index", v + "chunk_index",
                v + "file_index", v + "from_timestamp"]
        out = []
        for f in files:
            table = pq.read_table(f)
            missing = [c for c in need if c not in table.column_names]
            if missing:
                raise LeRobotFormatError(f"{f}: episode table lacks columns {missing}")
            cols = {c: table.column(c).to_pylist() for c in need}
            for r in range(table.num_rows):
                data = dict(chunk_index=int(cols["data/chunk_index"][r]), file_index=int(cols["data/file_index"][r]))
                video = dict(chunk_index=int(cols[v + "chunk_index"][r]), file_index=int(cols[v + "file_index"][r]))
                out.append(LeRobotEpisode(int(cols["episode_index"][r]), int(cols["length"][r]),
                                          self.root / self.info["data_path"].format(**data),
                                          self.root / self.info["video_path"].format(video_key=self.camera, **video),
                                          float(cols[v + "from_timestamp"][r])))
        return sorted(out, key=lambda ep: ep.index)

    # ------------------------------------------------------------------ rows

    def _table(self, path: Path) -> dict[str, np.ndarray]:
        """The needed columns of one parquet data file (cached; a v3 file holds many episodes)."""
        if path not in self._tables:
            import pyarrow as pa
            import pyarrow.parquet as pq

            if not path.is_file():
                raise LeRobotFormatError(f"{path}: data file missing")
            try:
                table = pq.read_table(path)
            except (OSError, pa.ArrowException) as e:
                raise LeRobotFormatError(f"{path}: unreadable parquet file ({e})") from None
            need = ["episode_index", "frame_index", "timestamp", self.state_key, self.action_key]
            missing = [c for c in need if c not in table.column_names]
            if missing:
                raise LeRobotFormatError(f"{path}: lacks columns {missing} (has {table.column_names})")
            self._tables[path] = {
                "episode_index": table.column("episode_index").to_numpy().astype(np.int64),
                "frame_index": table.column("frame_index").to_numpy().astype(np.int64),
                "timestamp": table.column("timestamp").to_numpy().astype(np.float64),
                "state": _matrix(table.column(self.state_key), self.state_dim, f"{path} [{self.state_key}]"),
                "action": _matrix(table.column(self.action_key), self.action_dim, f"{path} [{self.action_key}]"),
            }
        return self._tables[path]

    def _rows(self, i: int) -> dict[str, np.ndarray]:
        """Episode ``i``'s rows, ordered by frame index and validated against its metadata."""
        ep = self.episodes[i]
        table = self._table(ep.data_file)
        sel = np.flatnonzero(table["episode_index"] == ep.index)
        rows = {k: v[sel] for k, v in table.items()}
        order = np.argsort(rows["frame_index"], kind="stable")
        rows = {k: v[order] for k, v in rows.items()}
        where = f"{ep.data_file} (episode {ep.index})"
        t = len(sel)
        if t != ep.length:
            raise LeRobotFormatError(f"{where}: {t} rows, the episode metadata says length {ep.length}")
        if t < 2:
            raise LeRobotFormatError(f"{where}: an episode needs at least 2 frames, got {t}")
        if not np.array_equal(rows["frame_index"], np.arange(t)):
            raise LeRobotFormatError(f"{where}: frame_index is not 0..{t - 1} (frames missing or repeated)")
        expected = rows["timestamp"][0] + np.arange(t) / self.fps
        if np.abs(rows["timestamp"] - expected).max() > 0.5 / self.fps:
            rate = (t - 1) / max(rows["timestamp"][-1] - rows["timestamp"][0], 1e-9)
            raise LeRobotFormatError(f"{where}: the timestamps advance at {rate:.3f} fps, meta/info.json says "
                                     f"fps {self.fps}")
        for key in ("state", "action"):
            if not np.isfinite(rows[key]).all():
                raise LeRobotFormatError(f"{where}: {key} contains NaN or inf")
        return rows

    def controls(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """``(states [T, S], actions [T-1, A])`` float32 of episode ``i`` in the dataset's units."""
        return self._episode(i)[:2]

    def _episode(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cached ``(states, actions, timestamps)`` of episode ``i``."""
        if i not in self._controls:
            rows = self._rows(i)
            self._controls[i] = (rows["state"].astype(np.float32), rows["action"][:-1].astype(np.float32),
                                 rows["timestamp"])
        return self._controls[i]

    # ------------------------------------------------------------------ frames

    def video_frames(self, i: int, rows: np.ndarray) -> np.ndarray:
        """Indices in the episode's video file of its rows ``rows``."""
        ts = self._episode(i)[2][rows]
        return np.rint((self.episodes[i].video_start + ts) * self.fps).astype(np.int64)

    def frames(self, i: int, rows: np.ndarray) -> np.ndarray:
        """The camera's uint8 ``[K, H, W, 3]`` images at rows ``rows`` of episode ``i``."""
        try:
            return read_frames(self.episodes[i].video_file, self.video_frames(i, np.asarray(rows)))
        except VideoReadError as err:
            raise LeRobotFormatError(str(err)) from None

    def load(self, i: int) -> Episode:
        """Episode ``i`` with every frame decoded (for small datasets and feature caches)."""
        states, actions = self.controls(i)
        ep = self.episodes[i]
        frames = self.frames(i, np.arange(len(states)))
        return Episode(frames, states, actions, {"id": ep.index, "camera": self.camera})

    def _check_videos(self) -> None:
        """Each video file: its frame rate, and enough frames for every episode that lives in it."""
        by_file: dict[Path, list[int]] = {}
        for i, ep in enumerate(self.episodes):
            by_file.setdefault(ep.video_file, []).append(i)
        for path, eps in by_file.items():
            try:
                vi = video_info(path)
            except VideoReadError as err:
                raise LeRobotFormatError(str(err)) from None
            if _fps_differ(vi.fps, self.fps):
                raise LeRobotFormatError(f"{path}: the video runs at {vi.fps:.3f} fps, meta/info.json says fps "
                                         f"{self.fps}")
            for i in eps:
                ep = self.episodes[i]
                last = int(round(ep.video_start * self.fps)) + ep.length - 1
                if last >= vi.num_frames:
                    raise LeRobotFormatError(f"{path}: {vi.num_frames} frames, but episode {ep.index} (length "
                                             f"{ep.length}) needs frame {last}")


def _matrix(column, dim: int, where: str) -> np.ndarray:
    """A parquet list (or scalar) column as float64 ``[rows, dim]``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = column.combine_chunks()
    if col.null_count:
        raise LeRobotFormatError(f"{where}: {col.null_count} missing values")
    if pa.types.is_list(col.type) or pa.types.is_large_list(col.type) or pa.types.is_fixed_size_list(col.type):
        lengths = pc.list_value_length(col).to_numpy()
        if len(lengths) and (lengths != dim).any():
            bad = sorted(set(lengths.tolist()) - {dim})
            raise LeRobotFormatError(f"{where}: rows of length {bad}, info.json gives shape {dim}")
        return col.flatten().to_numpy(zero_copy_only=False).astype(np.float64).reshape(-1, dim)
    if dim != 1:
        raise LeRobotFormatError(f"{where}: a scalar column, info.json gives shape {dim}")
    return col.to_numpy(zero_copy_only=False).astype(np.float64).reshape(-1, 1)


class LeRobotWindows(Dataset):
    """Windows of ``window`` frames at ``frame_step`` from a :class:`LeRobotDataset`.

    Items match :class:`jepa.data.trajectories.TrajectoryWindows`: ``frames`` uint8 ``[W, 3, H, W_px]``,
    ``states`` float32 ``[W, S]``, ``actions`` float32 ``[W-1, A]``, ``episode``, ``start``. The action
    between two sampled frames is the sum of the raw actions in between (``action_reduce="sum"``:
    delta actions) or the last of them (``"last"``: absolute targets such as joint positions).
    Numeric rows are held in memory; frames are decoded on access.
    """

    def __init__(self, dataset: LeRobotDataset, window: int, frame_step: int = 1, episodes: list[int] | None = None,
                 action_reduce: str = "sum") -> None:
        if window < 2 or frame_step < 1:
            raise ValueError(f"window must be >= 2 and frame_step >= 1, got {window}, {frame_step}")
        self.data = dataset
        self.episodes = list(range(len(dataset))) if episodes is None else list(episodes)
        self.window, self.frame_step, self.action_reduce = window, frame_step, action_reduce
        window_actions(np.zeros((1, 1)), 1, action_reduce)  # validates action_reduce
        self.controls = [dataset.controls(i) for i in self.episodes]
        self.items = window_starts([len(s) for s, _ in self.controls], window, frame_step)
        if not self.items:
            raise LeRobotFormatError(f"{dataset.root}: no episode is long enough for {window} frames at step "
                                     f"{frame_step}")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        e, s = self.items[i]
        states, actions = self.controls[e]
        idx = s + self.frame_step * np.arange(self.window)
        a = window_actions(actions[s : idx[-1]], self.frame_step, self.action_reduce)[:: self.frame_step]
        frames = self.data.frames(self.episodes[e], idx)
        return {"frames": torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous(),
                "states": torch.from_numpy(states[idx]), "actions": torch.from_numpy(a.astype(np.float32)),
                "episode": e, "start": s}
