"""Bad input through every command's CLI entry point (``eval.cli.main``), as a table.

Each case builds its small files, runs one command, and is one of three classes:

- ``error``: exit status 2, an ``error: ...`` line that names the file or key, no traceback;
- ``skip``: exit status 0, the unreadable item named (warning or stderr) and the skips counted;
- ``accepted``: exit status 0 (with a check of what was written where that matters).

Nothing may end in a traceback (an exception escaping ``main`` fails the case) or in silently
accepted garbage (the ``check`` of a case looks at what was written).
"""

from __future__ import annotations

import errno
import json
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from eval.cli import main as jepa
from tests.helpers import (
    edit_index,
    full_disk,
    make_world_model,
    overwrite_episode,
    read_only,
    toy_episode,
    write_trajectories,
    write_video,
)

PRETRAIN = ["data.frames_per_clip=2", "data.crop_size=32", "data.horizontal_flip=false", "model.embed_dim=32",
            "model.depth=1", "model.num_heads=2", "model.patch_size=8", "model.pred_embed_dim=16",
            "model.pred_depth=1", "model.pred_num_heads=2", "optimization.global_batch=4",
            "optimization.max_steps=2", "optimization.lr.warmup_steps=1", "meta.device=cpu", "meta.progress=false",
            "meta.log_every=1"]
AC = ["data.val_episodes=1", "model.embed_dim=16", "model.depth=1", "model.num_heads=2", "optimization.batch_size=4",
      "optimization.max_steps=2", "optimization.lr.warmup_steps=1", "optimization.lr.decay_steps=1",
      "state_update.scale=[0.05,0.05]", "meta.device=cpu", "meta.progress=false", "meta.log_every=1"]
ENV = "tests.eval.apps.test_custom_env:BlobArm"


def run(argv: list[str], capsys) -> tuple[int, str, str, list[str]]:
    """``(exit status, stdout, stderr, warnings)`` of ``jepa ARGV``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            code = jepa(argv)
        except SystemExit as e:  # argparse
            code = e.code
    out, err = capsys.readouterr()
    return int(code or 0), out, err, [str(w.message) for w in caught]


# ------------------------------------------------------------------------------------------ shared files

@dataclass
class World:
    """Valid files the cases start from (built once): a dataset, an encoder, runs and their checkpoints."""

    root: Path
    data: Path  # trajectory dataset: 5 episodes of 8 frames, 32 px, 2-D states and actions (as BlobArm)
    encoder: Path  # a tiny encoder (safetensors)
    pretrain_ckpt: Path  # a pretraining run's latest.pt
    ac_ckpt: Path  # an AC training run's latest.pt (predictor and optimizer only)
    world_model: Path  # the AC run's world_model.pt
    videos: Path  # folder with good.mp4 files and list.csv (path label)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    from jepa.hub import export_backbone
    from jepa.models.vit import VisionTransformer

    root = tmp_path_factory.mktemp("world")
    data = write_trajectories(root / "clips")
    torch.manual_seed(0)
    enc = VisionTransformer(img_size=32, patch_size=8, num_frames=2, embed_dim=32, depth=1, num_heads=2)
    encoder = export_backbone(enc, root / "encoder.safetensors")
    assert jepa(["pretrain", *PRETRAIN, f"data.paths=[{data}]", f"meta.run_dir={root / 'pre'}"]) == 0
    assert jepa(["train-ac", *AC, f"data.path={data}", f"model.encoder={encoder}", f"meta.run_dir={root / 'ac'}"]) == 0
    videos = root / "videos"
    videos.mkdir()
    for i in range(4):
        write_video(videos / f"good{i}.mp4", frames=8, h=32, w=32)
    (videos / "list.csv").write_text("".join(f"good{i}.mp4 {i % 2}\n" for i in range(4)))
    return World(root, data, Path(encoder), root / "pre" / "latest.pt", root / "ac" / "latest.pt",
                 root / "ac" / "world_model.pt", videos)


class Ctx:
    """What a case builds with: its own folder, the shared files, and pytest's monkeypatch."""

    def __init__(self, tmp: Path, world: World, monkeypatch) -> None:
        self.tmp, self.w, self.mp = tmp, world, monkeypatch

    def data(self) -> Path:
        """A copy of the shared dataset to break."""
        return Path(shutil.copytree(self.w.data, self.tmp / "clips"))

    def pretrain(self, *extra: str, data: Path | None = None, run_dir: Path | None = None) -> list[str]:
        return ["pretrain", *PRETRAIN, f"data.paths=[{data or self.w.data}]",
                f"meta.run_dir={run_dir or self.tmp / 'run'}", *extra]

    def pretrain_csv(self, csv: Path, *extra: str) -> list[str]:
        return self.pretrain("data.source=csv", "data.frames_per_clip=2", *extra, data=csv)

    def train_ac(self, *extra: str, data: Path | None = None, run_dir: Path | None = None) -> list[str]:
        return ["train-ac", *AC, f"data.path={data or self.w.data}", f"model.encoder={self.w.encoder}",
                f"meta.run_dir={run_dir or self.tmp / 'run'}", *extra]

    def plan(self, world_model: Path, *extra: str) -> list[str]:
        return ["plan", f"world_model={world_model}", f"env={ENV}", "image_size=32", "episodes=1",
                "mpc.max_steps=1", "solver.cem.samples=8", "solver.cem.iterations=1", "solver.cem.topk=2",
                "gifs=0", "landscape=false", "progress=false", "action_scale=[1.0]",
                f"out_dir={self.tmp / 'plan'}", *extra]

    def features(self, *videos: Path, out: Path | None = None) -> list[str]:
        return ["features", "--backbone", str(self.w.encoder), "--videos", *map(str, videos), "--out",
                str(out or self.tmp / "features"), "--frames", "2", "--frame-step", "1", "--size", "32",
                "--device", "cpu"]

    def collect(self, *extra: str, out: Path | None = None) -> list[str]:
        return ["collect", "--env", ENV, "--episodes", "2", "--steps", "3", "--out", str(out or self.tmp / "c"),
                "--workers", "1", "--image-size", "32", *extra]

    def broken_videos(self, n: int) -> list[Path]:
        """``n`` unreadable videos: empty, truncated and junk files in turn."""
        good = (self.w.videos / "good0.mp4").read_bytes()
        kinds = [b"", good[: len(good) // 3], bytes(range(256)) * 8]
        out = []
        for i in range(n):
            p = self.tmp / f"broken{i}.mp4"
            p.write_bytes(kinds[i % 3])
            out.append(p)
        return out

    def video_list(self, rows: list[str]) -> Path:
        p = self.tmp / "list.csv"
        p.write_text("".join(r + "\n" for r in rows))
        return p


@dataclass(frozen=True)
class Case:
    id: str
    expect: str  # "error" | "skip" | "accepted"
    build: Callable[[Ctx], tuple[list[str], list[str]]]  # -> (argv, strings the message must name)
    check: Callable[[Ctx, str], None] | None = None  # more checks on what was (not) written; gets stdout+stderr


# ------------------------------------------------------------------------------------------ the cases

def _corrupt_npz(c: Ctx):
    d = c.data()
    (d / "episodes" / "000002.npz").write_bytes(b"\x00garbage, not a zip")
    return c.pretrain(data=d), ["000002.npz", "unreadable episode"]


def _truncated_npz(c: Ctx):
    d = c.data()
    p = d / "episodes" / "000001.npz"
    p.write_bytes(p.read_bytes()[:3000])
    return c.train_ac(data=d), ["000001.npz", "unreadable episode"]


def _missing_npz(c: Ctx):
    d = c.data()
    (d / "episodes" / "000003.npz").unlink()
    return c.pretrain(data=d), ["000003.npz", "missing episode file"]


def _wrong_action_dim(c: Ctx):
    d = c.data()
    frames, states, actions = toy_episode(8, 1, action_dim=3)
    overwrite_episode(d, 1, actions=actions)
    return c.train_ac(data=d), ["000001.npz", "action_dim is 2"]


def _wrong_image_size(c: Ctx):
    d = c.data()
    overwrite_episode(d, 2, frames=toy_episode(8, 2, size=16)[0])
    return c.pretrain(data=d), ["000002.npz", "16x16 px", "image_size is 32"]


def _nan_states(c: Ctx):
    d = c.data()
    states = toy_episode(8, 0)[1]
    states[3, 1] = np.nan
    overwrite_episode(d, 0, states=states)
    return c.train_ac(data=d), ["000000.npz", "states contain NaN"]


def _huge_actions(c: Ctx):
    d = c.data()
    overwrite_episode(d, 4, actions=toy_episode(8, 4)[2] * 1e30)
    return c.train_ac(data=d), ["000004.npz", "actions reach |x| = ", "1e+06"]


def _index_outside(c: Ctx):
    d = c.data()
    shutil.copy(d / "episodes" / "000000.npz", c.tmp / "outside.npz")
    edit_index(d, lambda ix: ix["episodes"][0].update(file="../outside.npz"))
    return c.pretrain(data=d), ["index.json", "outside the dataset folder", "../outside.npz"]


def _index_duplicate_file(c: Ctx):
    d = c.data()
    edit_index(d, lambda ix: ix["episodes"][1].update(file=ix["episodes"][0]["file"]))
    return c.train_ac(data=d), ["index.json", "both point at"]


def _index_bad_json(c: Ctx):
    d = c.data()
    (d / "index.json").write_text('{"format": "jepa-trajectories", "episodes": [')
    return c.pretrain(data=d), ["index.json", "invalid JSON"]


def _index_no_dims(c: Ctx):
    d = c.data()
    edit_index(d, lambda ix: ix.pop("action_dim"))
    return c.train_ac(data=d), ["index.json", "action_dim is missing"]


def _index_zero_image(c: Ctx):
    d = c.data()
    edit_index(d, lambda ix: ix.update(image_size=0))
    return c.pretrain(data=d), ["index.json", "image_size must be a positive integer"]


def _no_dataset(c: Ctx):
    return c.train_ac(data=c.tmp / "nowhere"), ["nowhere", "no index.json"]


def _broken_videos_skipped(c: Ctx):
    # 3 broken videos between good ones: skipped, named and counted; the run goes on
    rows = [f"{c.w.videos / 'good0.mp4'} 0", *(f"{p} 1" for p in c.broken_videos(3)),
            *(f"{c.w.videos / f'good{i}.mp4'} {i % 2}" for i in (1, 2, 3))]
    return c.pretrain_csv(c.video_list(rows)), ["broken0.mp4", "skipping unreadable clip",
                                                "unreadable items were skipped"]


def _eleven_broken_in_a_row(c: Ctx):
    rows = [*(f"{p} 0" for p in c.broken_videos(11)),
            *(f"{c.w.videos / f'good{i % 4}.mp4'} 1" for i in range(13))]
    return (c.pretrain_csv(c.video_list(rows), "optimization.global_batch=8"),
            ["broken10.mp4", "unreadable items were skipped"])


def _all_videos_broken(c: Ctx):
    return c.pretrain_csv(c.video_list([f"{p} 0" for p in c.broken_videos(4)])), ["broken", "could not be read"]


def _list_missing(c: Ctx):
    return c.pretrain_csv(c.tmp / "nolist.csv"), ["nolist.csv", "no such video list"]


def _list_bad_line(c: Ctx):
    return c.pretrain_csv(c.video_list([f"{c.w.videos / 'good0.mp4'} 0", "just-one-field"])), ["list.csv:2",
                                                                                               "path label"]


def _list_bad_label(c: Ctx):
    return c.pretrain_csv(c.video_list([f"{c.w.videos / 'good0.mp4'} cat"])), ["list.csv:1", "'cat'"]


def _list_empty(c: Ctx):
    return c.pretrain_csv(c.video_list([])), ["list.csv", "empty"]


def _features_skip(c: Ctx):
    bad = c.broken_videos(2)
    return c.features(c.w.videos / "good0.mp4", *bad), ["broken0.mp4", "broken1.mp4", "skipped 2 unreadable"]


def _features_list_with_missing(c: Ctx):
    lst = c.tmp / "videos.txt"
    lst.write_text(f"{c.w.videos / 'good1.mp4'}\n{c.tmp / 'gone.mp4'}\n")
    return c.features(lst), ["gone.mp4", "skipped 1 unreadable"]


def _same_names(c: Ctx):
    for sub in ("a", "b"):
        (c.tmp / sub).mkdir()
        shutil.copy(c.w.videos / f"good{'ab'.index(sub)}.mp4", c.tmp / sub / "clip.mp4")
    return c.features(c.tmp / "a" / "clip.mp4", c.tmp / "b" / "clip.mp4"), []


def _same_names_check(c: Ctx, _: str):
    from safetensors import safe_open

    for sub in ("a", "b"):  # two files, each made from its own video
        with safe_open(str(c.tmp / "features" / sub / "clip.mp4.safetensors"), "pt") as f:
            assert f.metadata()["source"] == str(c.tmp / sub / "clip.mp4")


def _yaml_syntax(c: Ctx):
    cfg = c.tmp / "bad.yaml"
    cfg.write_text("optimization:\n  max_steps: [1, 2\nmeta:\n  seed: 1\n")
    return ["pretrain", str(cfg)], ["bad.yaml", "invalid YAML", "line 3"]


def _yaml_tab(c: Ctx):
    cfg = c.tmp / "tab.yaml"
    cfg.write_text("data:\n\tpath: x\n")
    return ["train-ac", str(cfg)], ["tab.yaml", "line 2, column 1"]


def _yaml_list(c: Ctx):
    cfg = c.tmp / "list.yaml"
    cfg.write_text("- episodes: 3\n")
    return ["plan", str(cfg)], ["list.yaml", "top level must be a mapping"]


def _config_missing(c: Ctx):
    return ["train-ac", str(c.tmp / "none.yaml")], ["none.yaml", "does not exist"]


def _unknown_key_in_file(c: Ctx):
    cfg = c.tmp / "typo.yaml"
    cfg.write_text("optimization:\n  max_step: 3\n")
    return ["pretrain", str(cfg)], ["typo.yaml", "max_step"]


def _unknown_override(c: Ctx):
    return c.pretrain("optimization.lr.bsae=1e-3"), ["optimization.lr.bsae"]


def _nan_lr(c: Ctx):
    return c.pretrain("optimization.lr.base=nan"), ["optimization.lr.base", "finite"]


def _ema_above_one(c: Ctx):
    return c.pretrain("optimization.ema=[0.99,1.5]"), ["optimization.ema", "[0, 1]"]


def _max_steps_zero(c: Ctx):
    return c.train_ac("optimization.max_steps=0"), ["override 'optimization.max_steps=0'", "> 0"]


def _state_update_typo(c: Ctx):
    return c.train_ac("state_update.scael=[1.0]"), ["scael"]


def _override_bad_yaml(c: Ctx):
    return c.pretrain("optimization.ema=[0.9, 0.99"), ["optimization.ema", "not valid YAML"]


def _override_not_key_value(c: Ctx):
    return ["eval", "classify", "data.train_csv=x.csv", "bogus"], ["bogus", "key=value"]


def _plan_zero_episodes(c: Ctx):
    return c.plan(c.w.world_model, "episodes=0"), ["override 'episodes=0'", "> 0"]


def _unknown_device(c: Ctx):
    return c.train_ac("meta.device=gpu0"), ["override 'meta.device=gpu0'", "cuda:N"]


def _collect_zero_episodes(c: Ctx):
    return c.collect("--episodes", "0"), ["episodes"]


def _collect_unknown_env(c: Ctx):
    return ["collect", "--env", "fetch-fly", "--episodes", "1", "--steps", "1", "--out", str(c.tmp / "c")], [
        "fetch-fly"]


def _collect_env_without_class(c: Ctx):
    return ["collect", "--env", "tests.eval.apps.test_custom_env:Nope", "--episodes", "1", "--steps", "1",
            "--out", str(c.tmp / "c")], ["Nope"]


def _collect_broken_env(c: Ctx):
    return c.collect("--env", "tests.eval.apps.test_custom_env:Broken"), ["Broken", "float32"]


def _collect_into_other_dataset(c: Ctx):
    return c.collect(out=c.data()), ["index.json", "env="]


def _demo_bad_override(c: Ctx):
    return ["demo", "reach", f"run_dir={c.tmp / 'demo'}", "collect.episodse=3"], ["collect.episodse"]


def _anticipation_missing_annotations(c: Ctx):
    return ["eval", "anticipation", "data.source=files", f"data.train_csv={c.tmp / 'train.csv'}",
            f"data.val_csv={c.tmp / 'val.csv'}", f"data.video_root={c.tmp}", "backbone.init=random",
            f"meta.run_dir={c.tmp / 'ant'}"], ["train.csv"]


def _classify_missing_list(c: Ctx):
    return ["eval", "classify", f"data.train_csv={c.tmp / 'nope.csv'}", f"data.val_csv={c.tmp / 'nope.csv'}",
            "backbone.init=random", f"meta.run_dir={c.tmp / 'cls'}"], ["nope.csv"]


# wrong checkpoints

def _pretrain_ckpt_as_world_model(c: Ctx):
    return c.plan(c.w.pretrain_ckpt), ["pre/latest.pt", "pretraining checkpoint", "world_model.pt"]


def _ac_ckpt_as_world_model(c: Ctx):
    return c.plan(c.w.ac_ckpt), ["ac/latest.pt", "AC training checkpoint"]


def _truncated_world_model(c: Ctx):
    p = c.tmp / "world_model.pt"
    p.write_bytes(c.w.world_model.read_bytes()[:5000])
    return c.plan(p), ["world_model.pt", "cannot read checkpoint", "truncated"]


def _missing_world_model(c: Ctx):
    return c.plan(c.tmp / "nothing.pt"), ["nothing.pt", "no such file"]


def _world_model_of_other_env(c: Ctx):
    p = make_world_model().save(c.tmp / "fetch_model.pt")  # 4-D actions; BlobArm has 2
    return c.plan(p), ["4 action dims", "2"]


def _ac_ckpt_as_backbone(c: Ctx):
    return c.train_ac(f"model.encoder={c.w.ac_ckpt}"), ["ac/latest.pt", "AC training checkpoint", "encoder"]


def _world_model_as_backbone(c: Ctx):
    # a world model holds its frozen encoder (target_encoder + encoder_arch): a valid backbone
    return c.features(c.w.videos / "good0.mp4", out=c.tmp / "f"), []


def _truncated_backbone(c: Ctx):
    p = c.tmp / "enc.safetensors"
    p.write_bytes(c.w.encoder.read_bytes()[:500])
    return ["features", "--backbone", str(p), "--videos", str(c.w.videos / "good0.mp4"), "--out",
            str(c.tmp / "f")], ["enc.safetensors", "not a readable safetensors file"]


def _truncated_init_from(c: Ctx):
    p = c.tmp / "init.pt"
    p.write_bytes(c.w.pretrain_ckpt.read_bytes()[:4000])
    return c.pretrain(f"meta.init_from={p}"), ["init.pt", "cannot read checkpoint"]


def _init_from_world_model(c: Ctx):
    return c.pretrain(f"meta.init_from={c.w.world_model}"), ["world_model.pt", "not a pretraining checkpoint"]


def _resume_run(c: Ctx, *first: str) -> Path:
    run_dir = c.tmp / "run"
    assert jepa(c.pretrain(*first, run_dir=run_dir)) == 0
    return run_dir


def _truncated_latest(c: Ctx):
    run_dir = _resume_run(c)
    p = run_dir / "latest.pt"
    p.write_bytes(p.read_bytes()[:3000])
    return c.pretrain(run_dir=run_dir), ["latest.pt", "cannot resume"]


def _resume_with_other_config(c: Ctx):
    run_dir = _resume_run(c)
    return c.pretrain("optimization.lr.base=1e-2", run_dir=run_dir), ["latest.pt", "optimization.lr.base",
                                                                       "--allow-changed"]


def _resume_with_grown_dataset(c: Ctx):
    d, run_dir = c.data(), c.tmp / "run"
    assert jepa(c.train_ac(data=d, run_dir=run_dir)) == 0
    write_trajectories(c.tmp / "more", episodes=7)
    shutil.rmtree(d)
    shutil.copytree(c.tmp / "more", d)
    return c.train_ac(data=d, run_dir=run_dir), ["latest.pt", "dataset", "5 episodes", "7 episodes"]


def _resume_allowed(c: Ctx):
    run_dir = _resume_run(c)
    (run_dir / ".latest.pt.999999.abcdefgh.tmp").write_bytes(b"left by a killed write")
    return c.pretrain("optimization.max_steps=4", run_dir=run_dir) + ["--allow-changed"], []


def _resume_allowed_check(c: Ctx, _: str):
    run_dir = c.tmp / "run"
    assert "optimization.max_steps: 2 -> 4" in (run_dir / "resume.log").read_text()
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]  # each step once
    assert not list(run_dir.glob(".*.tmp"))  # the stale temp file was removed


def _resume_other_architecture(c: Ctx):
    run_dir = _resume_run(c)
    return c.pretrain("model.depth=2", "meta.allow_changed=true", run_dir=run_dir), ["latest.pt", "encoder",
                                                                                      "blocks.1"]


# numbers

def _diverging_lr(c: Ctx):
    return c.pretrain("optimization.lr.base=1e30", "optimization.lr.start=1e30", "optimization.max_steps=4",
                      "meta.checkpoint_every=1"), ["training stopped", "at step", "last good checkpoint"]


def _diverging_check(c: Ctx, _: str):
    saved = torch.load(c.tmp / "run" / "latest.pt", weights_only=True)
    assert all(torch.isfinite(t).all() for part in ("encoder", "predictor", "target_encoder")
               for t in saved[part].values())


def _diverging_ac(c: Ctx):
    return c.train_ac("optimization.lr.base=1e30", "optimization.lr.start=1e30", "optimization.max_steps=6",
                      "optimization.clip_grad=null"), ["training stopped", "(total)", "at step"]


def _diverging_ac_check(c: Ctx, _: str):
    assert not (c.tmp / "run" / "world_model.pt").exists()


# disks

def _read_only_run_dir(c: Ctx):
    read_only(c.mp, c.tmp / "ro")
    return c.pretrain(run_dir=c.tmp / "ro" / "run"), ["ro/run", "read-only"]


def _read_only_collect(c: Ctx):
    out = c.tmp / "c"
    out.mkdir()
    read_only(c.mp, out, errno.EACCES)
    return c.collect(out=out), [str(out), "permission denied"]


def _read_only_features(c: Ctx):
    read_only(c.mp, c.tmp / "features")
    return c.features(c.w.videos / "good0.mp4"), ["features", "read-only"]


def _read_only_plan(c: Ctx):
    read_only(c.mp, c.tmp / "plan", errno.EACCES)
    return c.plan(c.w.world_model), ["plan", "permission denied"]


def _read_only_ac_features(c: Ctx):
    run_dir = c.tmp / "run"
    (run_dir / "features").mkdir(parents=True)
    read_only(c.mp, run_dir / "features")
    return c.train_ac(run_dir=run_dir), ["features", "read-only"]


def _full_disk_checkpoint(c: Ctx):
    full_disk(c.mp, free_bytes=20_000)  # room for config.yaml and dataset.json, not for the checkpoint
    return c.pretrain(), ["latest.pt", "no space left"]


def _full_disk_check(c: Ctx, _: str):
    run_dir = c.tmp / "run"
    assert not (run_dir / "latest.pt").exists() and not list(run_dir.glob(".*tmp*"))


def _full_disk_collect(c: Ctx):
    full_disk(c.mp, free_bytes=0)
    return c.collect(), ["index.json", "no space left"]


def _full_disk_episode(c: Ctx):
    full_disk(c.mp, free_bytes=4_000)  # the index fits, an episode does not
    return c.collect(), ["episodes/000000.npz", "no space left"]


def _full_disk_features(c: Ctx):
    full_disk(c.mp, free_bytes=0)
    return c.features(c.w.videos / "good0.mp4"), ["features", "no space left"]


def _full_disk_world_model(c: Ctx):
    full_disk(c.mp, free_bytes=200_000)  # the AC checkpoint fits; the world model (with its encoder) not
    return c.train_ac(), ["world_model.pt", "no space left"]


def _full_disk_plan(c: Ctx):
    full_disk(c.mp, free_bytes=0)
    return c.plan(c.w.world_model), ["config.yaml", "no space left"]


def _world_model_of_other_states(c: Ctx):
    from jepa.models.ac_predictor import ActionConditionedPredictor
    from jepa.models.vit import VisionTransformer
    from jepa.world_model import WorldModel

    torch.manual_seed(0)
    enc = VisionTransformer(img_size=32, patch_size=8, num_frames=2, embed_dim=32, depth=1, num_heads=2)
    pred = ActionConditionedPredictor(32, (4, 4), predictor_embed_dim=16, depth=1, num_heads=2, action_dim=2,
                                      state_dim=5)
    p = WorldModel(enc, pred, {"kind": "additive", "scale": [0.05, 0.05]}, 32).save(c.tmp / "wm.pt")
    return c.plan(p), ["5-D states", "2-D states"]


def _plan_accepted(c: Ctx):
    return c.plan(c.w.world_model), []


def _plan_accepted_check(c: Ctx, _: str):
    summary = json.loads((c.tmp / "plan" / "summary.json").read_text())  # strict JSON: NaN would not parse
    assert summary["episodes"] == 1


CASES = [
    # trajectory datasets
    Case("corrupt npz", "error", _corrupt_npz),
    Case("truncated npz", "error", _truncated_npz),
    Case("missing npz", "error", _missing_npz),
    Case("actions of another dim", "error", _wrong_action_dim),
    Case("32 px episode in a 64 px-style dataset", "error", _wrong_image_size),
    Case("NaN states", "error", _nan_states),
    Case("actions x1e30", "error", _huge_actions),
    Case("index entry outside the folder", "error", _index_outside),
    Case("two entries, one file", "error", _index_duplicate_file),
    Case("index not JSON", "error", _index_bad_json),
    Case("index without action_dim", "error", _index_no_dims),
    Case("index image_size 0", "error", _index_zero_image),
    Case("no dataset", "error", _no_dataset),
    # videos and lists
    Case("broken videos among good ones", "skip", _broken_videos_skipped),
    Case("11 broken videos in a row", "skip", _eleven_broken_in_a_row),
    Case("every video broken", "error", _all_videos_broken),
    Case("video list missing", "error", _list_missing),
    Case("video list line without label", "error", _list_bad_line),
    Case("video list label not an integer", "error", _list_bad_label),
    Case("video list empty", "error", _list_empty),
    Case("features: broken videos", "skip", _features_skip),
    Case("features: list names a missing video", "skip", _features_list_with_missing),
    Case("features: same file name in two folders", "accepted", _same_names, _same_names_check),
    # configs and overrides
    Case("YAML syntax error", "error", _yaml_syntax),
    Case("YAML tab", "error", _yaml_tab),
    Case("YAML top level a list", "error", _yaml_list),
    Case("config file missing", "error", _config_missing),
    Case("unknown key in file", "error", _unknown_key_in_file),
    Case("unknown override", "error", _unknown_override),
    Case("NaN learning rate", "error", _nan_lr),
    Case("EMA above 1", "error", _ema_above_one),
    Case("max_steps 0", "error", _max_steps_zero),
    Case("typo inside state_update", "error", _state_update_typo),
    Case("override value not YAML", "error", _override_bad_yaml),
    Case("argument not key=value", "error", _override_not_key_value),
    Case("plan episodes 0", "error", _plan_zero_episodes),
    Case("unknown device", "error", _unknown_device),
    Case("collect 0 episodes", "error", _collect_zero_episodes),
    Case("collect unknown env", "error", _collect_unknown_env),
    Case("collect env path without class", "error", _collect_env_without_class),
    Case("collect env breaking the protocol", "error", _collect_broken_env),
    Case("collect into another env's dataset", "error", _collect_into_other_dataset),
    Case("demo unknown override", "error", _demo_bad_override),
    Case("anticipation annotations missing", "error", _anticipation_missing_annotations),
    Case("classify list missing", "error", _classify_missing_list),
    # checkpoints
    Case("pretraining checkpoint as world model", "error", _pretrain_ckpt_as_world_model),
    Case("AC training checkpoint as world model", "error", _ac_ckpt_as_world_model),
    Case("truncated world model", "error", _truncated_world_model),
    Case("missing world model", "error", _missing_world_model),
    Case("world model of another env", "error", _world_model_of_other_env),
    Case("world model of other states", "error", _world_model_of_other_states),
    Case("AC training checkpoint as backbone", "error", _ac_ckpt_as_backbone),
    Case("world model as backbone", "accepted", _world_model_as_backbone),
    Case("truncated backbone", "error", _truncated_backbone),
    Case("truncated init_from", "error", _truncated_init_from),
    Case("world model as init_from", "error", _init_from_world_model),
    Case("truncated latest.pt on resume", "error", _truncated_latest),
    Case("resume with another config", "error", _resume_with_other_config),
    Case("resume with a grown dataset", "error", _resume_with_grown_dataset),
    Case("resume with --allow-changed", "accepted", _resume_allowed, _resume_allowed_check),
    Case("resume with another architecture", "error", _resume_other_architecture),
    # numbers
    Case("pretraining diverges", "error", _diverging_lr, _diverging_check),
    Case("AC training diverges", "error", _diverging_ac, _diverging_ac_check),
    # disks
    Case("read-only run folder", "error", _read_only_run_dir),
    Case("read-only collect folder", "error", _read_only_collect),
    Case("read-only features folder", "error", _read_only_features),
    Case("read-only plan folder", "error", _read_only_plan),
    Case("read-only feature cache of train-ac", "error", _read_only_ac_features),
    Case("full disk at the checkpoint", "error", _full_disk_checkpoint, _full_disk_check),
    Case("full disk at the dataset index", "error", _full_disk_collect),
    Case("full disk at an episode", "error", _full_disk_episode),
    Case("full disk at the features", "error", _full_disk_features),
    Case("full disk at the world model", "error", _full_disk_world_model),
    Case("full disk at the plan outputs", "error", _full_disk_plan),
    Case("plan, valid input", "accepted", _plan_accepted, _plan_accepted_check),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, world: World, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.delenv("JEPA_DEBUG", raising=False)
    ctx = Ctx(tmp_path, world, monkeypatch)
    argv, names = case.build(ctx)
    capsys.readouterr()  # what building printed
    code, out, err, warned = run(argv, capsys)
    text = "\n".join([out, err, *warned])
    assert "Traceback" not in text, text
    if case.expect == "error":
        lines = [line for line in err.splitlines() if line.startswith("error: ")]
        assert code == 2 and lines, (code, text)
        message = err[err.index("error: "):]
        for name in names:
            assert name in message, (name, message)
    else:
        assert code == 0, (code, text)
        for name in names:
            assert name in text, (name, text)
    if case.check is not None:
        case.check(ctx, text)


def test_debug_shows_the_traceback_and_bugs_keep_theirs(tmp_path, world, monkeypatch, capsys):
    argv = ["plan", f"world_model={world.pretrain_ckpt}", f"out_dir={tmp_path / 'p'}", "progress=false"]
    from jepa.checkpoints import CheckpointError

    with pytest.raises(CheckpointError, match="pretraining checkpoint"):
        jepa([*argv, "--debug"])
    monkeypatch.setenv("JEPA_DEBUG", "1")
    with pytest.raises(CheckpointError):
        jepa(argv)
    monkeypatch.delenv("JEPA_DEBUG")

    def bug(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    import eval.planning.benchmark as benchmark

    monkeypatch.setattr(benchmark, "run_benchmark", bug)
    with pytest.raises(ZeroDivisionError):  # not a library error: the traceback is kept
        jepa(argv)
