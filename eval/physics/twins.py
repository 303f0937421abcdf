"""An intuitive-physics test bench that needs no download: twin videos of the simulated Fetch arm.

Each pair is one scripted episode of FetchPush (a table and a red block), rendered twice from the
same seed and the same scripted actions (:mod:`eval.anticipation.embedded`'s arm scripts: push or
pick-and-place to a table zone, then back to the rest pose). The twins are identical, frame for frame,
up to an event frame ``e``; from there on, in the **impossible** twin,

- ``vanish``: the block disappears (invisible and no longer collides);
- ``teleport``: the block jumps to another free spot of the table (at least ``teleport_min_distance``
  away) and physics goes on from there;
- ``colour``: the block turns another colour;

and in the **possible** twin nothing happens. The event frame is drawn among the frames where the
block is visible (``min_block_pixels``) and is never grasped again, so the arm's scripted motion is
the same in both twins, and where the impossible frame differs visibly from the possible one.

Frames are one per control step (0.04 s of simulation). Output::

    <root>/frames/pair_NNN_{possible,impossible}.npz   uint8 frames [T, H, W, 3] (lossless; what is scored)
    <root>/videos/pair_NNN_{possible,impossible}.mp4   the same, H.264 at ``fps`` (to watch, or for
                                                      ``jepa surprise``)
    <root>/pairs.csv       pair, violation, event_frame, seed, possible, impossible (npz paths, relative)
    <root>/manifest.json   generator settings; a folder with another manifest is regenerated

:func:`render_episodes` renders whole possible-only episodes of the same kind (other seeds) as a
trajectory dataset for pretraining.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from eval.anticipation.embedded import (
    TABLE_Z,
    ZONES,
    Action,
    ScriptedArm,
    pick_place_script,
    push_script,
    retreat_script,
    write_mp4,
)
from eval.envs.fetch import OBJECT_RED as BLOCK_RGBA  # red, so the 5 cm block stands out on the white table

VIOLATIONS = ("vanish", "teleport", "colour")
NEW_COLOURS = ((0.1, 0.3, 0.95, 1.0), (0.95, 0.85, 0.1, 1.0))  # blue, yellow
TABLE_BOX = ((1.13, 1.47), (0.58, 0.92))  # x and y ranges [m] of the zones' square: where blocks may be
MANIFEST_VERSION = 1


@dataclass
class TwinBenchConfig:
    """Size of the rendered bench (defaults: 16 pairs per violation, about 3 min to render on 1 core)."""

    pairs_per_violation: int = 16
    frames: int = 48  # per video, one per control step
    image_size: int = 64
    fps: float = 25.0  # of the MP4s: real time
    max_speed: float = 0.35  # action units (x 5 cm per step)
    push_probability: float = 0.5  # else pick-and-place
    teleport_min_distance: float = 0.10  # [m]
    max_episode_frames: int = 150  # the scripted episode each video is cut from
    min_event_frame: int = 16  # so a past window precedes the event
    tail_frames: int = 8  # the event leaves at least this many frames after it
    clearance: float = 0.07  # [m] gripper to block from the event on: no contact in either twin
    min_block_pixels: int = 4  # block visible: hiding it changes this many pixels
    min_changed_pixels: int = 4  # the impossible event frame differs from the possible one by this many
    camera: tuple[float, float, float, float, float, float] = (1.31, 0.75, 0.42, 0.9, 180.0, -65.0)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.min_event_frame >= self.frames - self.tail_frames:
            raise ValueError(f"min_event_frame={self.min_event_frame} leaves no event frame in {self.frames} frames "
                             f"with tail_frames={self.tail_frames}")


@dataclass
class Pair:
    pair: int
    violation: str
    event_frame: int
    seed: int
    possible: Path
    impossible: Path


def bench_camera(cfg: TwinBenchConfig):
    """A high camera framing the whole table: the block covers about 4 x 4 pixels at 64 px."""
    from eval.envs.fetch import CameraConfig

    x, y, z, distance, azimuth, elevation = cfg.camera
    return CameraConfig(lookat=(x, y, z), distance=distance, azimuth=azimuth, elevation=elevation)


class BlockProps:
    """The block's render and contact properties in a MuJoCo model; ``restore()`` undoes every change."""

    def __init__(self, model) -> None:
        import mujoco

        self.model = model
        self.geom = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "object0")
        self.site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, "object0")  # a marker inside the block
        self.saved = (model.geom_rgba[self.geom].copy(), int(model.geom_contype[self.geom]),
                      int(model.geom_conaffinity[self.geom]), model.site_rgba[self.site].copy())

    def set_rgba(self, rgba) -> None:
        self.model.geom_rgba[self.geom] = rgba

    def vanish(self) -> None:
        self.model.geom_rgba[self.geom, 3] = 0.0
        self.model.site_rgba[self.site, 3] = 0.0
        self.model.geom_contype[self.geom] = 0
        self.model.geom_conaffinity[self.geom] = 0

    def restore(self) -> None:
        rgba, contype, conaffinity, site_rgba = self.saved
        self.model.geom_rgba[self.geom] = rgba
        self.model.site_rgba[self.site] = site_rgba
        self.model.geom_contype[self.geom] = contype
        self.model.geom_conaffinity[self.geom] = conaffinity


def move_block(env, xy: np.ndarray) -> None:
    """Put the block at rest at table position ``xy`` [m] (orientation kept)."""
    import mujoco

    u = env._u
    qpos = u._utils.get_joint_qpos(u.model, u.data, "object0:joint").copy()
    qpos[:3] = (xy[0], xy[1], TABLE_Z)
    u._utils.set_joint_qpos(u.model, u.data, "object0:joint", qpos)
    u._utils.set_joint_qvel(u.model, u.data, "object0:joint", np.zeros(6))
    mujoco.mj_forward(u.model, u.data)


class RecordingArm(ScriptedArm):
    """A :class:`ScriptedArm` that logs, per frame, whether the block is held, where block and gripper
    are, and how many pixels the block covers; ``event`` runs before the step of frame ``event_frame``."""

    def __init__(self, env, max_speed: float, block: BlockProps, event_frame: int | None = None,
                 event: Callable[[], None] | None = None, measure_visibility: bool = False) -> None:
        super().__init__(env, max_speed)
        self.block, self.event_frame, self.event = block, event_frame, event
        self.measure_visibility = measure_visibility
        self.attached_log: list[bool] = []
        self.block_xy_log: list[np.ndarray] = []
        self.grip_xy_log: list[np.ndarray] = []
        self.pixels_log: list[int] = []
        self.state_log: list[np.ndarray] = []  # float32 [4] after each step (the frame's state)
        self.action_log: list[np.ndarray] = []  # float32 [4] commanded by each step (leads to its frame)

    def _step(self, delta: np.ndarray) -> None:
        if self.event is not None and len(self.frames) == self.event_frame:
            self.event()
        # the command ScriptedArm._step sends (end-effector delta, gripper closed while holding)
        action = np.concatenate([np.clip(self.gain * delta, -self.max_speed, self.max_speed),
                                 [-1.0 if self.attached else 1.0]]).astype(np.float32)
        super()._step(delta)
        self.action_log.append(action)
        self.state_log.append(self.env.state().astype(np.float32))
        self.attached_log.append(self.attached)
        self.block_xy_log.append(self.block_xy())
        self.grip_xy_log.append(self.env.state()[:2].copy())
        if self.measure_visibility:
            self.pixels_log.append(block_pixels(self.env, self.block, self.frames[-1]))


def block_pixels(env, block: BlockProps, frame: np.ndarray) -> int:
    """Pixels of ``frame`` that change when the block is hidden (0: occluded or out of view)."""
    alpha = float(block.model.geom_rgba[block.geom, 3])
    block.model.geom_rgba[block.geom, 3] = 0.0
    try:
        hidden = env.image()
    finally:
        block.model.geom_rgba[block.geom, 3] = alpha
    return int((hidden != frame).any(axis=-1).sum())


def episode_script(rng: np.random.Generator, block_xy: np.ndarray, push_probability: float) -> list[Action]:
    """One task planned from the block's start (push or carry it to another zone), back to the rest
    pose, then 2-4 moves of the gripper through random points above the table (so the arm is still
    moving when an event comes)."""
    near = min(ZONES, key=lambda z: np.linalg.norm(ZONES[z] - block_xy))
    zone = str(rng.choice([z for z in ZONES if z != near]))
    task = push_script(block_xy, zone) if rng.random() < push_probability else pick_place_script(block_xy, zone)
    (x0, x1), (y0, y1) = TABLE_BOX
    wander = [Action("move", "home", [np.array([rng.uniform(x0, x1), rng.uniform(y0, y1),
                                                TABLE_Z + rng.uniform(0.08, 0.2)])], hold=int(rng.integers(0, 3)))
              for _ in range(int(rng.integers(2, 5)))]
    return task + retreat_script(int(rng.integers(0, 4))) + wander


def run_episode(env, seed: int, cfg: TwinBenchConfig, block: BlockProps, event_frame: int | None = None,
                event: Callable[[], None] | None = None, measure_visibility: bool = False) -> RecordingArm:
    """Reset to ``seed``, idle a few steps, run the episode's whole script (at most
    ``cfg.max_episode_frames`` frames); ``event`` runs before frame ``event_frame``."""
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    block.restore()
    block.set_rgba(BLOCK_RGBA)
    arm = RecordingArm(env, cfg.max_speed, block, event_frame, event, measure_visibility)
    for _ in range(int(rng.integers(4, 9))):
        arm._step(np.zeros(3))
    for action in episode_script(rng, arm.block_xy(), cfg.push_probability):
        if len(arm.frames) >= cfg.max_episode_frames:
            break
        arm.run(action)
    del arm.frames[cfg.max_episode_frames:]
    return arm


def event_windows(arm: RecordingArm, cfg: TwinBenchConfig, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Shuffled ``(event frame e, first frame s of the video)`` choices in the episode of ``arm``.

    The video ``[s, s + cfg.frames)`` has ``min_event_frame .. frames - tail_frames`` frames before
    the event, and in the possible run the block is visible and lies still, untouched (gripper
    ``clearance`` away), from ``e - 1`` to the video's end, so the arm moves alike in both twins.
    """
    n = len(arm.frames)
    xy, grip = np.array(arm.block_xy_log[:n]), np.array(arm.grip_xy_log[:n])
    held, px = np.array(arm.attached_log[:n]), np.array(arm.pixels_log[:n])
    by_pre: dict[int, list[tuple[int, int]]] = {}
    for pre in range(cfg.min_event_frame, cfg.frames - cfg.tail_frames + 1):
        for e in range(pre, n - cfg.frames + pre + 1):
            s, end = e - pre, e - pre + cfg.frames
            visible = px[e - 1 : end].min() >= cfg.min_block_pixels
            still = np.linalg.norm(xy[e - 1 : end] - xy[e - 1], axis=-1).max() < 0.002
            clear = np.linalg.norm(grip[e - 1 : end] - xy[e - 1], axis=-1).min() >= cfg.clearance
            if visible and still and clear and not held[e - 1 : end].any():
                by_pre.setdefault(pre, []).append((e, s))
    out = []  # one choice per number of frames before the event, in random order: events spread over the video
    for pre in rng.permutation(sorted(by_pre)):
        options = by_pre[int(pre)]
        out.append(options[int(rng.integers(len(options)))])
    return out


def teleport_target(rng: np.random.Generator, block_xy: np.ndarray, grip_path: np.ndarray,
                    cfg: TwinBenchConfig) -> np.ndarray | None:
    """A table spot ``teleport_min_distance`` from the block and ``clearance`` from every gripper
    position of ``grip_path [K, 2]`` [m] (so the arm does not touch it there either); None if none."""
    (x0, x1), (y0, y1) = TABLE_BOX
    for _ in range(100):
        xy = np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])
        if (np.linalg.norm(xy - block_xy) >= cfg.teleport_min_distance
                and np.linalg.norm(grip_path - xy, axis=-1).min() >= cfg.clearance):
            return xy
    return None


def render_pair(env, seed: int, violation: str, cfg: TwinBenchConfig) -> tuple[np.ndarray, np.ndarray, int] | None:
    """``(possible [T, H, W, 3], impossible [T, H, W, 3], event frame in the video)`` of one seed, or
    None when its episode has no window where the violation would be visible."""
    if violation not in VIOLATIONS:
        raise ValueError(f"unknown violation {violation!r}; choose from {VIOLATIONS}")
    block = BlockProps(env._u.model)
    try:
        possible = run_episode(env, seed, cfg, block, measure_visibility=True)
        rng = np.random.default_rng([seed, VIOLATIONS.index(violation)])
        for e, s in event_windows(possible, cfg, rng)[:4]:
            end = s + cfg.frames
            event = _violation(violation, rng, env, block, possible, e, end, cfg)
            if event is None:
                continue
            impossible = run_episode(env, seed, cfg, block, e, event)
            a, b = np.stack(possible.frames[s:end]), np.stack(impossible.frames[s:end])
            if not np.array_equal(a[: e - s], b[: e - s]):
                raise RuntimeError(f"seed {seed}: the twins differ before the event frame {e}; the simulation "
                                   "is not deterministic, so no twin bench can be rendered")
            if (a[e - s] != b[e - s]).any(axis=-1).sum() >= cfg.min_changed_pixels:
                return a, b, e - s
        return None
    finally:
        block.restore()


def _violation(kind: str, rng: np.random.Generator, env, block: BlockProps, possible: RecordingArm, e: int,
               end: int, cfg: TwinBenchConfig) -> Callable[[], None] | None:
    if kind == "vanish":
        return block.vanish
    if kind == "colour":
        rgba = NEW_COLOURS[int(rng.integers(len(NEW_COLOURS)))]
        return lambda: block.set_rgba(rgba)
    xy = teleport_target(rng, possible.block_xy_log[e - 1], np.array(possible.grip_xy_log[e - 1 : end]), cfg)
    return None if xy is None else (lambda: move_block(env, xy))


def _save_frames(path: Path, frames: np.ndarray) -> None:
    from jepa.checkpoints import atomic_path

    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, frames=frames)


def load_frames(path: str | Path) -> np.ndarray:
    """uint8 ``[T, H, W, 3]`` frames of a bench ``.npz`` file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such frames file (render the bench with eval.physics.twins.ensure)")
    with np.load(path) as data:
        if "frames" not in data:
            raise ValueError(f"{path}: no 'frames' array in the file")
        frames = data["frames"]
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"{path}: expected uint8 frames [T, H, W, 3], got {frames.dtype} {frames.shape}")
    return frames


def generate(root: str | Path, cfg: TwinBenchConfig, progress: bool = True) -> list[Pair]:
    """Render the bench into ``root`` (replacing what is there)."""
    from tqdm import tqdm

    from eval.envs.fetch import FetchEnv

    root = Path(root)
    if root.exists():
        shutil.rmtree(root)
    env = FetchEnv("push", image_size=cfg.image_size, camera=bench_camera(cfg))
    pairs: list[Pair] = []
    seed = cfg.seed * 1_000_003
    bar = tqdm(total=cfg.pairs_per_violation * len(VIOLATIONS), desc="render twin bench", disable=not progress)
    try:
        for violation in VIOLATIONS:
            for _ in range(cfg.pairs_per_violation):
                found = None
                for _ in range(50):
                    seed += 1
                    found = render_pair(env, seed, violation, cfg)
                    if found is not None:
                        break
                if found is None:
                    raise RuntimeError(f"no visible {violation} event in 50 episodes; check the camera and sizes")
                pairs.append(_write_pair(root, len(pairs), violation, seed, found, cfg.fps))
                bar.update()
    finally:
        bar.close()
        env.close()
    _write_index(root, pairs, cfg)
    return read_pairs(root)


def _write_pair(root: Path, n: int, violation: str, seed: int, found, fps: float) -> Pair:
    possible, impossible, e = found
    names = {}
    for kind, frames in (("possible", possible), ("impossible", impossible)):
        names[kind] = Path("frames") / f"pair_{n:03d}_{kind}.npz"
        _save_frames(root / names[kind], frames)
        write_mp4(root / "videos" / f"pair_{n:03d}_{kind}.mp4", frames, fps)
    return Pair(n, violation, e, seed, names["possible"], names["impossible"])


def _write_index(root: Path, pairs: list[Pair], cfg: TwinBenchConfig) -> None:
    with (root / "pairs.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(("pair", "violation", "event_frame", "seed", "possible", "impossible"))
        for p in pairs:
            w.writerow((p.pair, p.violation, p.event_frame, p.seed, p.possible.as_posix(), p.impossible.as_posix()))
    manifest = {"format": "jepa-twin-physics-bench", "version": MANIFEST_VERSION, "config": _jsonable(cfg),
                "pairs": {v: sum(p.violation == v for p in pairs) for v in VIOLATIONS}}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))


def _jsonable(cfg) -> dict:
    return json.loads(json.dumps(asdict(cfg)))


def read_pairs(root: str | Path) -> list[Pair]:
    """The pairs of a rendered bench (paths made absolute)."""
    root = Path(root)
    path = root / "pairs.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no pairs index; render the bench with eval.physics.twins.ensure")
    with path.open() as f:
        rows = list(csv.DictReader(f))
    try:
        return [Pair(int(r["pair"]), r["violation"], int(r["event_frame"]), int(r["seed"]), root / r["possible"],
                     root / r["impossible"]) for r in rows]
    except (KeyError, ValueError) as e:
        raise ValueError(f"{path}: bad row ({e}); expected columns pair, violation, event_frame, seed, possible, "
                         "impossible") from None


def ensure(root: str | Path, cfg: TwinBenchConfig, progress: bool = True) -> list[Pair]:
    """The bench at ``root``, rendered unless a finished one with the same settings is there."""
    manifest = Path(root) / "manifest.json"
    if manifest.is_file():
        try:
            saved = json.loads(manifest.read_text())
        except json.JSONDecodeError:
            saved = {}
        if saved.get("version") == MANIFEST_VERSION and saved.get("config") == _jsonable(cfg):
            return read_pairs(root)
    return generate(root, cfg, progress)


def render_episodes(root: str | Path, count: int, cfg: TwinBenchConfig, progress: bool = True) -> Path:
    """``count`` whole possible-only episodes (seeds after the bench's, so none is a bench video) as a
    trajectory dataset (:mod:`jepa.data.trajectories`: frames, gripper states, commanded actions) at
    ``root``, e.g. for ``jepa pretrain data.paths=[ROOT]``. Reused when one with the same settings exists."""
    from tqdm import tqdm

    from eval.envs.collect import env_metadata
    from eval.envs.fetch import FetchEnv
    from jepa.data.trajectories import TrajectoryWriter

    root = Path(root)
    stamp = root / "physics_manifest.json"
    settings = {"count": count, "config": _jsonable(cfg), "version": MANIFEST_VERSION}
    if (root / "index.json").is_file() and stamp.is_file() and json.loads(stamp.read_text()) == settings:
        return root
    if root.exists():
        shutil.rmtree(root)
    env = FetchEnv("push", image_size=cfg.image_size, camera=bench_camera(cfg))
    meta = {**env_metadata("fetch-push", env, cfg.image_size),
            "camera": f"twin bench camera {list(cfg.camera)} (lookat xyz, distance, azimuth, elevation)",
            "source": "scripted push / pick-and-place episodes of eval.physics.twins"}
    writer = TrajectoryWriter(root, meta)
    block = BlockProps(env._u.model)
    try:
        for n in tqdm(range(count), desc="render pretraining episodes", disable=not progress):
            seed = (cfg.seed + 1) * 1_000_003 + 500_000 + n
            arm = run_episode(env, seed, cfg, block)
            t = len(arm.frames)
            entry = writer.write_episode(n, np.stack(arm.frames), np.stack(arm.state_log[:t]),
                                         np.stack(arm.action_log[1:t]), {"seed": seed})
            writer.add([entry])
    finally:
        block.restore()
        env.close()
    stamp.write_text(json.dumps(settings))
    return root
