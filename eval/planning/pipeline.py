"""The chain from nothing to goal-image MPC, as cached stages in one run folder: what ``jepa demo``
and the planning suite run.

1. ``clips/``       — scripted exploration clips (:func:`eval.envs.collect.collect`), extended up to
   ``collect.episodes``;
2. ``eval_clips/``  — held-out clips for dataset-offset goals (only when the plan's goals come from
   a dataset and ``goals.dataset`` is left empty), collected with other seeds;
3. ``pretrain/``    — the encoder by masked latent prediction (resumes from its checkpoint);
4. ``ac[-NAME]/``   — the action-conditioned predictor on the frozen encoder (``encoder_init`` picks
   the pretrained encoder or a random one of the same architecture);
5. ``plan[-NAME]/`` — MPC episodes toward held-out goals.

Each stage's config is a typed object: the stage's YAML file (resolved by :func:`bundled_config`,
so the shipped files work from any folder) plus the user's ``key=value`` overrides, then the values
the chain itself decides (data paths, run folders, image size, seeds) are set on the object. A
finished stage is skipped; training resumes from its checkpoint. ``seed`` moves every source of
randomness at once: collection ids (by :data:`SEED_STRIDE`), the pretraining and AC seeds, the
held-out goals and the planner.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from jepa.config import Checked, load_config, non_negative, positive, to_yaml
from jepa.files import write_json

CONFIG_ROOT = Path(__file__).resolve().parents[1] / "configs"
TASKS = {"reach": "configs/demo.yaml", "push": "configs/demo_push.yaml", "pusht": "configs/demo_pusht.yaml"}
"""The shipped pipelines by task name: ``jepa demo TASK`` and the planning suite's tasks."""


def bundled_config(path: str) -> str | None:
    """``path`` if it exists (relative to the working folder or absolute), else the copy shipped with
    the package (``configs/...`` inside the installed ``eval`` package); ``None`` for an empty path."""
    if not path:
        return None
    if Path(path).exists():
        return path
    parts = Path(path).parts
    if parts and parts[0] == "configs" and (CONFIG_ROOT.joinpath(*parts[1:])).exists():
        return str(CONFIG_ROOT.joinpath(*parts[1:]))
    raise FileNotFoundError(f"config file {path} does not exist (neither here nor among the shipped configs "
                            f"in {CONFIG_ROOT})")


@dataclass
class CollectStage(Checked):
    """Attributes: ``env`` (built-in name or import path), ``episodes``, ``steps`` (actions per
    episode), ``image_size`` [px], ``workers``, ``seed`` (episode ``i`` uses ``seed + i``), ``policy``
    (``auto``, a name or an import path), ``env_options`` (keyword arguments of the env, e.g.
    ``{render: visible}`` for PushT; planning uses the same), ``hold`` (env steps each policy action
    is held for in the training clips; the held-out goal clips are always collected with 1)."""

    env: str = "fetch-reach"
    env_options: dict[str, Any] = field(default_factory=dict)
    episodes: int = 400
    steps: int = 25
    image_size: int = 64
    workers: int = 2
    seed: int = 0
    policy: str = "auto"
    hold: int = 1

    def check(self) -> None:
        positive(self, "episodes", "steps", "image_size", "workers", "hold")
        non_negative(self, "seed")


@dataclass
class EvalClipsStage(Checked):
    """Held-out clips for dataset-offset goals: ``episodes`` of ``steps`` actions from seed ``seed``."""

    episodes: int = 60
    steps: int = 50
    seed: int = 500_000

    def check(self) -> None:
        positive(self, "episodes", "steps")
        non_negative(self, "seed")


@dataclass
class TrainStage:
    """A stage driven by another command's config file plus ``key=value`` overrides."""

    config: str = ""
    overrides: list[str] = field(default_factory=list)


@dataclass
class PipelineConfig:
    """One task's chain (module docstring). Defaults: the reach demo (``configs/demo.yaml``)."""

    run_dir: str = "runs/demo"
    collect: CollectStage = field(default_factory=CollectStage)
    eval_clips: EvalClipsStage = field(default_factory=EvalClipsStage)
    pretrain: TrainStage = field(default_factory=lambda: TrainStage(
        "configs/pretrain/tiny_cpu.yaml", ["optimization.max_steps=900"]))
    ac: TrainStage = field(default_factory=lambda: TrainStage(
        "configs/ac/tiny_cpu.yaml", ["optimization.max_steps=600"]))
    plan: TrainStage = field(default_factory=lambda: TrainStage("configs/plan/fetch_reach.yaml"))
    seed: int = 0
    progress: bool = True


SEED_STRIDE = 10_000  # collection ids per seed: seeds never share an episode


class Pipeline:
    """Runs the stages of a :class:`PipelineConfig` in ``root`` (module docstring)."""

    def __init__(self, cfg: PipelineConfig, root: Path | None = None) -> None:
        self.cfg = cfg
        self.root = Path(root or cfg.run_dir)

    # ------------------------------------------------------------------------------- data
    def clips(self) -> Path:
        from eval.envs.collect import collect
        from jepa.data.trajectories import read_index

        out, c = self.root / "clips", self.cfg.collect
        have = len(read_index(out)["episodes"]) if (out / "index.json").exists() else 0
        if have < c.episodes:
            collect(c.env, out, c.episodes - have, c.steps, workers=c.workers, image_size=c.image_size,
                    seed=c.seed + SEED_STRIDE * self.cfg.seed, progress=self.cfg.progress, policy=c.policy,
                    env_options=c.env_options, hold=c.hold)
        return out

    def eval_clips(self) -> Path:
        from eval.envs.collect import collect
        from jepa.data.trajectories import read_index

        out, c, e = self.root / "eval_clips", self.cfg.collect, self.cfg.eval_clips
        have = len(read_index(out)["episodes"]) if (out / "index.json").exists() else 0
        if have < e.episodes:
            collect(c.env, out, e.episodes - have, e.steps, workers=c.workers, image_size=c.image_size,
                    seed=e.seed + SEED_STRIDE * self.cfg.seed, progress=self.cfg.progress, policy=c.policy,
                    env_options=c.env_options)
        return out

    # ------------------------------------------------------------------------------- configs
    def pretrain_config(self, clips: Path):
        from jepa.train.pretrain import PretrainConfig

        pc = load_config(PretrainConfig, bundled_config(self.cfg.pretrain.config), self.cfg.pretrain.overrides)
        pc.data.paths = [str(clips)]
        pc.data.crop_size = self.cfg.collect.image_size
        pc.meta.run_dir = str(self.root / "pretrain")
        pc.meta.progress = self.cfg.progress
        pc.meta.seed += self.cfg.seed
        return pc

    def ac_config(self, clips: Path, encoder: Path, name: str, encoder_init: str):
        from jepa.train.ac import ACConfig

        ac = load_config(ACConfig, bundled_config(self.cfg.ac.config), self.cfg.ac.overrides)
        ac.data.path = str(clips)
        ac.model.encoder = str(encoder)
        ac.model.encoder_init = encoder_init
        ac.meta.run_dir = str(self.root / name)
        ac.meta.progress = self.cfg.progress
        ac.meta.seed += self.cfg.seed
        return ac

    def plan_config(self, world_model: Path, name: str, solver: str | None = None):
        from eval.planning.benchmark import PlanConfig

        pc = load_config(PlanConfig, bundled_config(self.cfg.plan.config), self.cfg.plan.overrides)
        pc.world_model = str(world_model)
        pc.out_dir = str(self.root / name)
        pc.env = self.cfg.collect.env
        pc.env_options = dict(self.cfg.collect.env_options)
        pc.image_size = self.cfg.collect.image_size
        pc.progress = self.cfg.progress
        pc.seed += 1_000 * self.cfg.seed  # other held-out goals (and planner seeds) per seed
        if solver is not None:
            pc.solver = copy.deepcopy(pc.solver)
            pc.solver.name = solver
        if pc.goals.source == "dataset" and not pc.goals.dataset:
            pc.goals.dataset = str(self.eval_clips())
        return pc

    # ------------------------------------------------------------------------------- stages
    def pretrain(self, clips: Path) -> Path:
        from jepa.train.pretrain import run_pretraining

        run_pretraining(self.pretrain_config(clips))
        return self.root / "pretrain" / "latest.pt"

    def train_ac(self, clips: Path, encoder: Path, name: str = "ac",
                 encoder_init: Literal["pretrained", "random"] = "pretrained") -> Path:
        from jepa.train.ac import train_ac

        run_dir = self.root / name
        if (run_dir / "world_model.pt").exists() and (run_dir / "validation.json").exists():
            return run_dir / "world_model.pt"
        train_ac(self.ac_config(clips, encoder, name, encoder_init))
        return run_dir / "world_model.pt"

    def plan(self, world_model: Path, name: str = "plan", solver: str | None = None) -> dict:
        from eval.planning.benchmark import run_benchmark

        out = self.root / name
        pc = self.plan_config(world_model, name, solver)
        saved = out / "config.yaml"
        # cached only for the same plan settings (progress bars aside)
        if (out / "summary.json").exists() and saved.exists() and \
                saved.read_text() == to_yaml(dataclasses.replace(pc, progress=_saved_progress(saved))):
            return json.loads((out / "summary.json").read_text())
        summary, _ = run_benchmark(pc)
        return asdict(summary)


def _saved_progress(config_yaml: Path) -> bool:
    """The ``progress`` setting a saved plan config was run with."""
    from omegaconf import OmegaConf

    return bool(OmegaConf.load(config_yaml).get("progress", False))


class StageTimer:
    """Accumulates wall time per stage in ``path`` (JSON), so resumed runs add up."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.times: dict[str, float] = json.loads(path.read_text()) if path.exists() else {}

    def __call__(self, name: str, fn: Callable, *args):
        t0 = time.perf_counter()
        out = fn(*args)
        self.times[name] = self.times.get(name, 0.0) + time.perf_counter() - t0
        write_json(self.path, self.times)
        return out

    def total(self) -> dict[str, float]:
        self.times["total"] = sum(v for k, v in self.times.items() if k != "total")
        write_json(self.path, self.times)
        return self.times
