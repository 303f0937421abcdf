"""Pretraining end to end at tiny size: learning, collapse check, skipped files, exact resume, DDP."""

import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from jepa.config import load_config
from jepa.train import pretrain as pt
from jepa.train.distributed import finish_distributed
from tests.helpers import write_moving_bars


def tiny_config(tmp_path, csv, steps, **over):
    overrides = [
        "data.source=csv", f"data.paths=[{csv}]", "data.frames_per_clip=4", "data.frame_step=1",
        "data.crop_size=32", "data.random_resize_scale=[0.8,1.0]", "model.embed_dim=48", "model.depth=2",
        "model.num_heads=3", "model.patch_size=8", "model.pred_embed_dim=32", "model.pred_depth=1",
        "model.pred_num_heads=2", "optimization.global_batch=8", f"optimization.max_steps={steps}",
        "optimization.lr.base=1e-3", "optimization.lr.warmup_steps=5", f"meta.run_dir={tmp_path / 'run'}",
        "meta.log_every=1", "meta.progress=false", "meta.device=cpu",
    ] + [f"{k}={v}" for k, v in over.items()]
    return load_config(pt.PretrainConfig, None, overrides)


@pytest.fixture(scope="module")
def bars(tmp_path_factory):
    return write_moving_bars(tmp_path_factory.mktemp("bars"))


def read_metrics(run_dir):
    import json

    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_loss_falls_and_targets_do_not_collapse(tmp_path, bars):
    cfg = tiny_config(tmp_path, bars, steps=40)
    run = pt.run_pretraining(cfg)
    m = read_metrics(tmp_path / "run")
    first, last = np.mean([r["loss"] for r in m[:5]]), np.mean([r["loss"] for r in m[-5:]])
    assert last < 0.8 * first
    # Layer-normed features have unit variance over dims; a collapsed encoder maps every clip to the same
    # tokens, so the std across clips goes to 0. 0.1 is far below healthy values (~0.5) and far above collapse.
    # (``target_std`` is that std over each step's batch of clips.)
    assert min(r["target_std"] for r in m[-5:]) > 0.1
    assert (tmp_path / "run" / "latest.pt").exists() and (tmp_path / "run" / "config.yaml").exists()
    # the saved predictor reloads by itself (e.g. to predict future tokens for anticipation)
    from jepa.hub import load_predictor

    loaded = load_predictor(tmp_path / "run" / "latest.pt")
    tokens, idx = torch.randn(2, 6, run.encoder.embed_dim), torch.arange(6).expand(2, 6)
    with torch.no_grad():
        assert torch.allclose(loaded(tokens, idx, idx + 6, mask_index=0),
                              run.predictor.eval()(tokens, idx, idx + 6, mask_index=0), atol=1e-6)


def test_corrupt_truncated_and_empty_videos_are_skipped_and_counted(tmp_path, bars):
    folder = bars.parent
    good = (folder / "v0.mp4").read_bytes()
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "cut.mp4").write_bytes(good[: len(good) // 4])
    (tmp_path / "junk.mp4").write_bytes(os.urandom(3000))
    csv = tmp_path / "mixed.csv"
    csv.write_text(f"{folder / 'v1.mp4'} 0\n{tmp_path / 'empty.mp4'} 0\n{tmp_path / 'cut.mp4'} 1\n"
                   f"{tmp_path / 'junk.mp4'} 1\n{folder / 'v2.mp4'} 0\n")
    cfg = tiny_config(tmp_path, csv, steps=3, **{"optimization.global_batch": 5, "data.max_skip_fraction": 0.75})
    with pytest.warns(UserWarning, match="skipping unreadable clip"):
        pt.run_pretraining(cfg)
    skipped = sum(r["skipped"] for r in read_metrics(tmp_path / "run"))
    assert skipped >= 3 * 3  # every batch holds all 5 files; 3 are bad (more when a replacement is bad too)


class _Stop(Exception):
    pass


def test_kill_and_resume_reproduces_the_uninterrupted_run(tmp_path, bars, monkeypatch):
    straight = pt.run_pretraining(tiny_config(tmp_path / "a", bars, steps=8))
    cfg = tiny_config(tmp_path / "b", bars, steps=8, **{"meta.checkpoint_every": 4})
    real_step = pt.pretrain_step

    def crashing_step(run, batch):
        if run.state.step == 5:
            raise _Stop
        return real_step(run, batch)

    monkeypatch.setattr(pt, "pretrain_step", crashing_step)
    with pytest.raises(_Stop):
        pt.run_pretraining(cfg)
    monkeypatch.setattr(pt, "pretrain_step", real_step)
    resumed = pt.run_pretraining(tiny_config(tmp_path / "b", bars, steps=8, **{"meta.checkpoint_every": 4}))
    assert resumed.state.step == 8
    for name in ("encoder", "predictor", "target"):
        a, b = getattr(straight, name).state_dict(), getattr(resumed, name).state_dict()
        for k in a:
            assert (a[k] - b[k]).abs().max() <= 1e-6, (name, k)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dist_worker(rank, world, port, overrides):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    pt.run_pretraining(load_config(pt.PretrainConfig, None, overrides))
    finish_distributed()


@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_two_process_gloo_run_matches_one_process(tmp_path, bars, parallel):
    """2 processes x 4 clips make the same updates as 1 process x 8 clips. With FSDP (parameters,
    gradients and AdamW state sharded) the run is also stopped after step 1 and resumed from the
    gathered checkpoint, so saving and restoring sharded state is checked too."""
    base = tiny_config(tmp_path, bars, steps=2)
    overrides = [f"meta.run_dir={tmp_path / 'dist'}", "data.source=csv", f"data.paths=[{bars}]",
                 "data.frames_per_clip=4", "data.crop_size=32", "model.embed_dim=48", "model.depth=2",
                 "model.num_heads=3", "model.patch_size=8", "model.pred_embed_dim=32", "model.pred_depth=1",
                 "model.pred_num_heads=2", "optimization.global_batch=8", "optimization.lr.base=1e-3",
                 "optimization.lr.warmup_steps=5", "optimization.lr.total_steps=2", "meta.progress=false",
                 "meta.device=cpu", "data.random_resize_scale=[0.8,1.0]", f"meta.parallel={parallel}"]
    single = pt.run_pretraining(base)
    for steps in ([1, 2] if parallel == "fsdp" else [2]):  # extending max_steps on resume is a change: allowed
        mp.start_processes(_dist_worker, args=(2, _free_port(), [*overrides, f"optimization.max_steps={steps}",
                                                                 "meta.allow_changed=true"]),
                           nprocs=2, start_method="spawn")
    saved = torch.load(tmp_path / "dist" / "latest.pt", weights_only=True)
    assert saved["step"] == 2
    for name, module in (("encoder", single.encoder), ("predictor", single.predictor),
                         ("target_encoder", single.target)):
        for k, v in module.state_dict().items():
            assert (v - saved[name][k]).abs().max() < 1e-5, (name, k)


def test_init_from_starts_from_another_runs_weights(tmp_path, bars):
    first = pt.run_pretraining(tiny_config(tmp_path / "a", bars, steps=2))
    ckpt = tmp_path / "a" / "run" / "latest.pt"
    second = pt.build(tiny_config(tmp_path / "b", bars, steps=2, **{"meta.init_from": str(ckpt)}))
    for name in ("encoder", "predictor", "target"):
        for (k, a), b in zip(getattr(first, name).state_dict().items(), getattr(second, name).state_dict().values()):
            assert torch.equal(a, b), (name, k)
    assert second.state.step == 0
