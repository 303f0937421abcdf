"""An action-anticipation benchmark that needs no download: scripted tasks on the simulated Fetch arm.

Each video is one episode of FetchPush (a table and a block) in which a scripted controller chains
2-4 tasks, each made of actions named as EPIC-KITCHENS-100 verbs and nouns:

- pick and place to zone Z: ``approach block``, ``grasp block``, ``lift block``, ``move Z``,
  ``place Z``, ``release block``;
- push toward zone Z: ``approach block`` (to behind the block), ``push Z``;
- after a task, sometimes: ``retreat home``, ``wait home``.

Verbs: approach, grasp, lift, move, place, release, push, retreat, wait (9). Nouns: the block, the
gripper's home position and eight table zones (left, right, front, back and the four diagonals):
10 nouns and 30 possible actions, so recall@5 is far from trivial. The gripper of the Fetch tasks
is blocked closed, so a grasped block is carried kinematically (its pose follows the gripper while
held); pushing is simulated physics.

Videos are rendered at ``image_size`` pixels and written as MP4 with one frame per control step
(0.04 s of simulation), played at ``fps`` frames per second: time in the annotations is video time.
"Participants" are camera viewpoints (azimuth and elevation offsets); the validation split holds
episodes of the training participants and of ``unseen_participants`` held-out viewpoints.

Output, in the official layout (so :mod:`eval.anticipation.run` reads it like the real dataset)::

    <root>/videos/<participant>/videos/<video_id>.MP4
    <root>/annotations/EPIC_100_train.csv, EPIC_100_validation.csv
    <root>/annotations/EPIC_100_verb_classes.csv, EPIC_100_noun_classes.csv
    <root>/annotations/EPIC_100_unseen_participant_ids_validation.csv
    <root>/annotations/EPIC_100_tail_verbs.csv, EPIC_100_tail_nouns.csv
    <root>/manifest.json      generator settings; a folder with another manifest is regenerated
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from eval.anticipation.epic import format_timestamp, tail_classes
from jepa.checkpoints import atomic_path
from jepa.config import Checked, in_range, non_negative, ordered_pair, positive

VERBS = ("approach", "grasp", "lift", "move", "place", "release", "push", "retreat", "wait")
_D = 0.12  # zone offset from the table centre along each axis [m]
ZONES = {  # table positions [m] in the world frame
    "left": np.array([1.30, 0.75 + 1.4 * _D]),
    "right": np.array([1.30, 0.75 - 1.4 * _D]),
    "front": np.array([1.30 + 1.4 * _D, 0.75]),
    "back": np.array([1.30 - 1.4 * _D, 0.75]),
    "front-left": np.array([1.30 + _D, 0.75 + _D]),
    "front-right": np.array([1.30 + _D, 0.75 - _D]),
    "back-left": np.array([1.30 - _D, 0.75 + _D]),
    "back-right": np.array([1.30 - _D, 0.75 - _D]),
}
HOME = np.array([1.34, 0.75, 0.53])  # gripper rest position [m]
NOUNS = ("block", "home", *ZONES)
TABLE_Z = 0.4247  # block centre height when resting on the table [m]
HOVER, CARRY, GRASP_OFFSET = 0.07, 0.13, 0.005  # heights above the block centre [m]
MANIFEST_VERSION = 1
EK_HEADER = ("narration_id", "participant_id", "video_id", "narration_timestamp", "start_timestamp",
             "stop_timestamp", "start_frame", "stop_frame", "narration", "verb", "verb_class", "noun",
             "noun_class", "all_nouns", "all_noun_classes")


@dataclass
class EmbeddedConfig(Checked):
    """Size of the generated benchmark (defaults: the CPU benchmark, about 1.5 min to render)."""

    train_videos: int = 48
    val_videos: int = 24
    participants: int = 4  # training viewpoints; validation also uses them
    unseen_participants: int = 2  # held-out viewpoints, validation only
    tasks_per_video: tuple[int, int] = (2, 4)  # inclusive range
    push_probability: float = 0.3
    retreat_probability: float = 0.4  # after a task: "retreat home", "wait home"
    image_size: int = 64
    fps: float = 10.0
    max_speed: float = 0.35  # action units (x 5 cm per step)
    seed: int = 0

    def check(self) -> None:
        positive(self, "train_videos", "val_videos", "participants", "tasks_per_video", "image_size", "fps",
                 "max_speed")
        non_negative(self, "unseen_participants")
        ordered_pair(self, "tasks_per_video")
        in_range(self, "push_probability", 0.0, 1.0)
        in_range(self, "retreat_probability", 0.0, 1.0)


@dataclass
class Action:
    """A scripted action: gripper waypoints [m] to follow, then ``hold`` still steps; ``attach``
    makes the block follow the gripper during the action (``None`` leaves it as it is)."""

    verb: str
    noun: str
    waypoints: list[np.ndarray]
    hold: int = 0
    attach: bool | None = None


@dataclass
class EpisodeRecord:
    video_id: str
    participant_id: str
    frames: np.ndarray  # uint8 [T, H, W, 3]
    segments: list[tuple[str, str, int, int]] = field(default_factory=list)  # verb, noun, start, stop (0-based)


def participant_camera(index: int):
    """Camera of participant ``index``: viewpoints spread around the default one."""
    from eval.envs.fetch import CameraConfig

    base = CameraConfig()
    azimuth = base.azimuth + (-12.0 + 24.0 * ((index * 0.618) % 1.0))
    elevation = base.elevation + (-6.0 + 12.0 * ((index * 0.382 + 0.5) % 1.0))
    return CameraConfig(lookat=base.lookat, distance=base.distance, azimuth=azimuth, elevation=elevation)


def pick_place_script(block: np.ndarray, zone: str) -> list[Action]:
    """Actions that carry the block (xy ``block``) to ``zone``."""
    z = ZONES[zone]
    at = lambda xy, h: np.array([xy[0], xy[1], TABLE_Z + h])  # noqa: E731
    return [
        Action("approach", "block", [at(block, HOVER)]),
        Action("grasp", "block", [at(block, GRASP_OFFSET)], hold=3),
        Action("lift", "block", [at(block, CARRY)], attach=True),
        Action("move", zone, [at(z, CARRY)], attach=True),
        Action("place", zone, [at(z, GRASP_OFFSET)], hold=2, attach=True),
        Action("release", "block", [at(z, HOVER)], hold=2, attach=False),
    ]


def push_script(block: np.ndarray, zone: str) -> list[Action]:
    """Actions that push the block toward ``zone`` (from behind it, at table height)."""
    direction = ZONES[zone] - block
    dist = float(np.linalg.norm(direction))
    direction = direction / max(dist, 1e-6)
    behind = block - 0.07 * direction
    end = block + max(0.04, dist - 0.03) * direction
    low = TABLE_Z + 0.005
    return [
        Action("approach", "block", [np.array([*behind, TABLE_Z + HOVER]), np.array([*behind, low])]),
        Action("push", zone, [np.array([*end, low])], hold=2, attach=False),
    ]


class ScriptedArm:
    """Runs :class:`Action` lists on a :class:`~eval.envs.fetch.FetchEnv` and records every frame."""

    def __init__(self, env, max_speed: float, gain: float = 10.0, tolerance: float = 0.01,
                 max_steps: int = 60) -> None:
        self.env, self.max_speed, self.gain = env, max_speed, gain
        self.tolerance, self.max_steps = tolerance, max_steps
        self.attached = False
        self.frames: list[np.ndarray] = []

    def block_xy(self) -> np.ndarray:
        return self.env.achieved_position()[:2].copy()

    def _carry_block(self) -> None:
        u = self.env._u
        grip = self.env.state()[:3]
        qpos = np.array([grip[0], grip[1], grip[2] - GRASP_OFFSET, 1.0, 0.0, 0.0, 0.0])
        u._utils.set_joint_qpos(u.model, u.data, "object0:joint", qpos)
        u._utils.set_joint_qvel(u.model, u.data, "object0:joint", np.zeros(6))
        import mujoco

        mujoco.mj_forward(u.model, u.data)

    def _step(self, delta: np.ndarray) -> None:
        a = np.clip(self.gain * delta, -self.max_speed, self.max_speed)
        self.env.step_sim_only(np.concatenate([a, [-1.0 if self.attached else 1.0]]))
        if self.attached:
            self._carry_block()
        self.frames.append(self.env.image())

    def run(self, action: Action) -> tuple[int, int]:
        """Execute ``action``; returns its first and last frame (0-based, inclusive)."""
        start = len(self.frames)
        if action.attach is not None:
            self.attached = action.attach
        for target in action.waypoints:
            for _ in range(self.max_steps):
                delta = target - self.env.state()[:3]
                if np.linalg.norm(delta) < self.tolerance:
                    break
                self._step(delta)
        for _ in range(action.hold):
            self._step(np.zeros(3))
        if len(self.frames) == start:  # already there: still show the action for one step
            self._step(np.zeros(3))
        return start, len(self.frames) - 1


def retreat_script(wait: int) -> list[Action]:
    """Back to the rest position above the table, then stay there ``wait`` steps."""
    return [Action("retreat", "home", [HOME.copy()], attach=False), Action("wait", "home", [], hold=wait)]


def _next_task(rng: np.random.Generator, block: np.ndarray, push_probability: float,
               retreat_probability: float) -> list[Action]:
    near = min(ZONES, key=lambda z: np.linalg.norm(ZONES[z] - block))
    zone = str(rng.choice([z for z in ZONES if z != near]))
    script = push_script(block, zone) if rng.random() < push_probability else pick_place_script(block, zone)
    if rng.random() < retreat_probability:
        script += retreat_script(int(rng.integers(6, 13)))
    return script


def render_episode(env, rng: np.random.Generator, seed: int, num_tasks: int, max_speed: float,
                   push_probability: float, retreat_probability: float = 0.5
                   ) -> tuple[np.ndarray, list[tuple[str, str, int, int]]]:
    """Frames ``[T, H, W, 3]`` and ``(verb, noun, start, stop)`` segments of one scripted episode."""
    env.reset(seed=seed)
    arm = ScriptedArm(env, max_speed)
    for _ in range(int(rng.integers(12, 19))):  # an idle lead-in, so the first action has a past to observe
        arm._step(np.zeros(3))
    segments = []
    for _ in range(num_tasks):
        for action in _next_task(rng, arm.block_xy(), push_probability, retreat_probability):
            start, stop = arm.run(action)
            segments.append((action.verb, action.noun, start, stop))
    return np.stack(arm.frames), segments


def write_mp4(path: Path, frames: np.ndarray, fps: float) -> None:
    """H.264 MP4 of uint8 ``[T, H, W, 3]`` frames (imageio-ffmpeg), written atomically."""
    import imageio.v2 as imageio

    with atomic_path(path) as tmp, imageio.get_writer(
            str(tmp), fps=fps, codec="libx264", quality=9, macro_block_size=1, ffmpeg_log_level="error",
            pixelformat="yuv420p") as w:
        for frame in frames:
            w.append_data(frame)


def _rows(ep: EpisodeRecord, fps: float) -> list[dict]:
    rows = []
    for i, (verb, noun, start, stop) in enumerate(ep.segments):
        rows.append({
            "narration_id": f"{ep.video_id}_{i}", "participant_id": ep.participant_id, "video_id": ep.video_id,
            "narration_timestamp": format_timestamp(start / fps), "start_timestamp": format_timestamp(start / fps),
            "stop_timestamp": format_timestamp(stop / fps), "start_frame": start + 1, "stop_frame": stop + 1,
            "narration": f"{verb} {noun}", "verb": verb, "verb_class": VERBS.index(verb), "noun": noun,
            "noun_class": NOUNS.index(noun), "all_nouns": f"['{noun}']", "all_noun_classes": f"[{NOUNS.index(noun)}]",
        })
    return rows


def _write_csv(path: Path, header: tuple[str, ...] | list[str], rows: list[dict] | list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        if rows and isinstance(rows[0], dict):
            w = csv.DictWriter(f, fieldnames=list(header))
            w.writeheader()
            w.writerows(rows)
        else:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(rows)


@dataclass
class EmbeddedBenchmark:
    """Paths of a generated benchmark."""

    root: Path

    @property
    def videos(self) -> Path:
        return self.root / "videos"

    @property
    def annotations(self) -> Path:
        return self.root / "annotations"

    def file(self, name: str) -> Path:
        return self.annotations / name


def _episode_plan(cfg: EmbeddedConfig) -> list[tuple[str, int, int]]:
    """``(split, participant index, episode seed)`` of every video."""
    rng = np.random.default_rng(cfg.seed)
    plan = [("train", int(rng.integers(0, cfg.participants)), 0) for _ in range(cfg.train_videos)]
    total = cfg.participants + cfg.unseen_participants
    plan += [("val", i % total, 0) for i in range(cfg.val_videos)]
    return [(split, p, cfg.seed * 100_003 + n) for n, (split, p, _) in enumerate(plan)]


def generate(root: str | Path, cfg: EmbeddedConfig, progress: bool = True) -> EmbeddedBenchmark:
    """Render the benchmark into ``root`` (replacing what is there) and write its annotations."""
    from tqdm import tqdm

    from eval.envs.fetch import FetchEnv

    bench = EmbeddedBenchmark(Path(root))
    if bench.root.exists():
        shutil.rmtree(bench.root)
    rows: dict[str, list[dict]] = {"train": [], "val": []}
    envs: dict[int, FetchEnv] = {}
    counters: dict[int, int] = {}
    try:
        for split, p, seed in tqdm(_episode_plan(cfg), desc="render embedded benchmark", disable=not progress):
            if p not in envs:
                envs[p] = FetchEnv("push", image_size=cfg.image_size, camera=participant_camera(p))
            rng = np.random.default_rng(seed)
            lo, hi = cfg.tasks_per_video
            frames, segments = render_episode(envs[p], rng, seed, int(rng.integers(lo, hi + 1)), cfg.max_speed,
                                              cfg.push_probability, cfg.retreat_probability)
            counters[p] = counters.get(p, 0) + 1
            ep = EpisodeRecord(f"P{p + 1:02d}_{counters[p]:02d}", f"P{p + 1:02d}", frames, segments)
            write_mp4(bench.videos / ep.participant_id / "videos" / f"{ep.video_id}.MP4", frames, cfg.fps)
            rows[split].extend(_rows(ep, cfg.fps))
    finally:
        for env in envs.values():
            env.close()
    _write_annotations(bench, cfg, rows)
    return bench


def _write_annotations(bench: EmbeddedBenchmark, cfg: EmbeddedConfig, rows: dict[str, list[dict]]) -> None:
    _write_csv(bench.file("EPIC_100_train.csv"), EK_HEADER, rows["train"])
    _write_csv(bench.file("EPIC_100_validation.csv"), EK_HEADER, rows["val"])
    _write_csv(bench.file("EPIC_100_verb_classes.csv"), ("id", "key"), [[i, v] for i, v in enumerate(VERBS)])
    _write_csv(bench.file("EPIC_100_noun_classes.csv"), ("id", "key"), [[i, n] for i, n in enumerate(NOUNS)])
    unseen = [f"P{p + 1:02d}" for p in range(cfg.participants, cfg.participants + cfg.unseen_participants)]
    _write_csv(bench.file("EPIC_100_unseen_participant_ids_validation.csv"), ("participant_id",),
               [[p] for p in unseen])
    tail_v = tail_classes(r["verb_class"] for r in rows["train"])
    tail_n = tail_classes(r["noun_class"] for r in rows["train"])
    _write_csv(bench.file("EPIC_100_tail_verbs.csv"), ("verb",), [[v] for v in tail_v])
    _write_csv(bench.file("EPIC_100_tail_nouns.csv"), ("noun",), [[n] for n in tail_n])
    manifest = {"format": "jepa-embedded-anticipation", "version": MANIFEST_VERSION, "config": _jsonable(cfg),
                "videos": {k: len({r["video_id"] for r in v}) for k, v in rows.items()},
                "segments": {k: len(v) for k, v in rows.items()}}
    (bench.root / "manifest.json").write_text(json.dumps(manifest, indent=1))


def _jsonable(cfg: EmbeddedConfig) -> dict:
    return json.loads(json.dumps(asdict(cfg)))


def ensure(root: str | Path, cfg: EmbeddedConfig, progress: bool = True) -> EmbeddedBenchmark:
    """The benchmark at ``root``, generated unless a finished one with the same settings is there."""
    bench = EmbeddedBenchmark(Path(root))
    manifest = bench.root / "manifest.json"
    if manifest.is_file():
        try:
            saved = json.loads(manifest.read_text())
        except json.JSONDecodeError:
            saved = {}
        if saved.get("version") == MANIFEST_VERSION and saved.get("config") == _jsonable(cfg):
            return bench
    return generate(root, cfg, progress)
