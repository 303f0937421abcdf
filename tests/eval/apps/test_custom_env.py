"""A user's env from outside the package goes through collect -> pretrain -> train-ac -> plan with no
edit to the library: the env class below is given to every command by its import path."""

import gymnasium
import numpy as np
import pytest

from eval.apps.demo import run_demo
from eval.cli import main as jepa
from eval.planning.pipeline import CollectStage, PipelineConfig, TrainStage
from jepa.data.trajectories import read_index

ENV = "tests.eval.apps.test_custom_env:BlobArm"


class BlobArm:
    """A red dot on a grey table, moved by relative 2-D actions; success within 0.1 of the goal."""

    action_space = gymnasium.spaces.Box(-1.0, 1.0, (2,), np.float32)
    fps = 10.0
    state_semantics = "dot x, y [table widths, 0..1]"
    action_semantics = "dot displacement [units of 0.05 table widths]"
    position_dims, position_step = 2, 0.05

    def __init__(self, image_size: int = 32) -> None:
        self.size = image_size

    def reset(self, *, seed=None, options=None):
        rng = np.random.default_rng(seed)
        self.pos, self.goal = rng.uniform(0.2, 0.8, 2), rng.uniform(0.2, 0.8, 2)
        return self.image(), {}

    def step(self, action):
        self.pos = np.clip(self.pos + 0.05 * np.clip(action, -1, 1), 0.0, 1.0)
        return self.image(), 0.0, False, False, {}

    def _render(self, pos):
        img = np.full((self.size, self.size, 3), 120, np.uint8)
        yy, xx = np.mgrid[: self.size, : self.size] / (self.size - 1)
        img[(xx - pos[0]) ** 2 + (yy - pos[1]) ** 2 < 0.01] = (220, 30, 30)
        return img

    def image(self):
        return self._render(self.pos)

    def state(self):
        return self.pos.astype(np.float32)

    def goal_image(self):
        return self._render(self.goal)

    def is_success(self):
        return bool(self.distance_to_goal() < 0.1)

    def distance_to_goal(self):
        return float(np.linalg.norm(self.pos - self.goal))

    def close(self):
        pass


TINY_PRETRAIN = ["optimization.max_steps=2", "optimization.global_batch=4", "model.embed_dim=32", "model.depth=1",
                 "model.num_heads=2", "model.pred_embed_dim=16", "model.pred_depth=1", "model.pred_num_heads=2",
                 "optimization.lr.warmup_steps=1"]
TINY_AC = ["optimization.max_steps=2", "optimization.batch_size=4", "model.embed_dim=16", "model.depth=1",
           "model.num_heads=2", "data.val_episodes=1", "optimization.lr.warmup_steps=1",
           "optimization.lr.decay_steps=1", "state_update.kind=fit"]


def test_a_user_env_runs_the_whole_chain_by_import_path(tmp_path):
    cfg = PipelineConfig(run_dir=str(tmp_path / "run"), progress=False,
                         collect=CollectStage(env=ENV, episodes=5, steps=6, image_size=32, workers=1),
                         pretrain=TrainStage("configs/pretrain/tiny_cpu.yaml", TINY_PRETRAIN),
                         ac=TrainStage("configs/ac/tiny_cpu.yaml", TINY_AC),
                         plan=TrainStage("", ["episodes=2", "mpc.max_steps=3", "solver.cem.samples=8",
                                              "solver.cem.iterations=1", "solver.cem.topk=2", "gifs=1",
                                              "landscape_resolution=3"]))
    result = run_demo(cfg)
    index = read_index(tmp_path / "run" / "clips")
    assert index["env"] == ENV and index["action_dim"] == 2 and index["state_dim"] == 2
    assert index["state_semantics"] == BlobArm.state_semantics and len(index["episodes"]) == 5
    assert result["episodes"] == 2 and (tmp_path / "run" / "plan" / "episode_000.gif").exists()
    assert 1 <= result["env_steps"] <= 6


def test_jepa_collect_takes_an_env_and_a_policy_by_import_path(tmp_path, capsys):
    assert jepa(["collect", "--env", ENV, "--episodes", "2", "--steps", "3", "--out", str(tmp_path / "c"),
                 "--workers", "1", "--image-size", "16"]) == 0
    assert "2 episodes" in capsys.readouterr().out
    assert jepa(["collect", "--env", "tests.eval.apps.test_custom_env:Nope", "--episodes", "1", "--steps", "1",
                 "--out", str(tmp_path / "d"), "--workers", "1"]) == 2  # a clear error, no traceback
    assert "has no attribute 'Nope'" in capsys.readouterr().err


class Broken(BlobArm):
    def state(self):
        return self.pos  # float64: not the protocol's float32


def test_a_broken_env_is_named_before_anything_runs(tmp_path):
    from eval.envs.registry import make_env

    with pytest.raises(TypeError, match=r"state\(\) must be a finite float32 vector"):
        make_env("tests.eval.apps.test_custom_env:Broken", image_size=16)
