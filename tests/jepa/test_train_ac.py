"""AC training end to end on real simulated-arm clips: it beats copying the last frame, and resumes exactly."""

import numpy as np
import pytest
import torch

from eval.envs.collect import collect
from jepa.config import load_config
from jepa.hub import export_backbone
from jepa.models.vit import VisionTransformer
from jepa.train import ac


@pytest.fixture(scope="module")
def clips_and_encoder(tmp_path_factory):
    root = tmp_path_factory.mktemp("ac")
    collect("fetch-reach", root / "clips", episodes=30, steps=12, workers=2, image_size=32, progress=False)
    torch.manual_seed(0)
    enc = VisionTransformer(img_size=32, patch_size=8, num_frames=2, embed_dim=48, depth=2, num_heads=3)
    return root / "clips", export_backbone(enc, root / "encoder.safetensors")


def config(tmp_path, clips, encoder, steps, **over):
    overrides = [f"data.path={clips}", "data.val_episodes=6", f"model.encoder={encoder}", "model.embed_dim=48",
                 "model.depth=2", "model.num_heads=4", "optimization.batch_size=16",
                 f"optimization.max_steps={steps}", "optimization.lr.warmup_steps=10",
                 "optimization.lr.decay_steps=20", f"meta.run_dir={tmp_path / 'run'}", "meta.device=cpu",
                 "meta.progress=false", "meta.log_every=5"] + [f"{k}={v}" for k, v in over.items()]
    return load_config(ac.ACConfig, None, overrides)


def test_validation_rollouts_beat_copying_the_last_frame(tmp_path, clips_and_encoder):
    clips, encoder = clips_and_encoder
    world, report = ac.train_ac(config(tmp_path, clips, encoder, steps=400, **{"optimization.lr.base": 2e-3}))
    assert report["rollout_l1_2"] < 0.92 * report["copy_last_l1_2"]
    assert report["rollout_l1_4"] < 0.92 * report["copy_last_l1_4"]
    assert (tmp_path / "run" / "world_model.pt").exists() and (tmp_path / "run" / "features" / "index.json").exists()


def test_feature_cache_is_reused_and_matches_encoding_in_the_step(tmp_path, clips_and_encoder, monkeypatch):
    clips, encoder = clips_and_encoder
    ac.train_ac(config(tmp_path, clips, encoder, steps=2))
    mtime = (tmp_path / "run" / "features" / "index.json").stat().st_mtime_ns

    def no_encoding(*args, **kwargs):
        raise AssertionError("the frames were encoded again")

    with monkeypatch.context() as m:  # a re-run (same data, same encoder) reads the cache and encodes nothing
        m.setattr(ac.WorldModel, "encode", no_encoding)
        ac.train_ac(config(tmp_path, clips, encoder, steps=3, **{"meta.allow_changed": "true"}))  # a longer run
    assert (tmp_path / "run" / "features" / "index.json").stat().st_mtime_ns == mtime
    # encoding inside the step (cache_features=false, the large-data path) sees the same features
    cfg = config(tmp_path / "raw", clips, encoder, steps=2, **{"data.cache_features": "false"})
    world, _ = ac.train_ac(cfg)
    cached, raw = ac.build_windows(world, config(tmp_path, clips, encoder, 1), 3, tmp_path / "run")[0], \
        ac.build_windows(world, cfg, 3, tmp_path / "raw")[0]
    assert len(cached) == len(raw)
    for i in (0, len(raw) // 2, len(raw) - 1):
        z = ac.encode_windows(world, raw[i]["frames"][None], 1.35)[0]
        torch.testing.assert_close(z, cached[i]["z"], atol=2e-2, rtol=0)  # the cache stores float16
        torch.testing.assert_close(raw[i]["actions"], cached[i]["actions"])


def test_trains_on_raw_droid_episodes(tmp_path):
    from tests.helpers import write_droid_episode

    folders = []
    for e in range(5):
        write_droid_episode(tmp_path / f"ep{e}", frames=30)
        folders.append(str(tmp_path / f"ep{e}"))
    (tmp_path / "droid.txt").write_text("\n".join(folders) + "\n")
    torch.manual_seed(0)
    enc = VisionTransformer(img_size=32, patch_size=8, num_frames=2, embed_dim=48, depth=1, num_heads=3)
    encoder = export_backbone(enc, tmp_path / "encoder.safetensors")
    cfg = config(tmp_path, tmp_path / "droid.txt", encoder, steps=2,
                 **{"data.source": "droid", "data.window": 4, "data.cache_features": "false",
                    "data.val_episodes": 1, "optimization.batch_size": 4, "state_update": "{kind: pose}"})
    world, report = ac.train_ac(cfg)
    assert world.predictor.action_dim == 7 and world.predictor.state_dim == 7
    assert set(report) >= {"rollout_l1_2", "copy_last_l1_2", "rollout_l1_4"}
    assert (tmp_path / "run" / "world_model.pt").exists() and not (tmp_path / "run" / "features").exists()


class _Stop(Exception):
    pass


def test_resume_reproduces_the_uninterrupted_run(tmp_path, clips_and_encoder, monkeypatch):
    clips, encoder = clips_and_encoder
    straight, _ = ac.train_ac(config(tmp_path / "a", clips, encoder, steps=10))
    real = ac.ac_step

    def crashing(world, state, batch, cfg, info, device):
        if state.step == 7:
            raise _Stop
        return real(world, state, batch, cfg, info, device)

    monkeypatch.setattr(ac, "ac_step", crashing)
    cfg = config(tmp_path / "b", clips, encoder, steps=10, **{"meta.checkpoint_every": 5})
    with pytest.raises(_Stop):
        ac.train_ac(cfg)
    monkeypatch.setattr(ac, "ac_step", real)
    resumed, _ = ac.train_ac(config(tmp_path / "b", clips, encoder, steps=10, **{"meta.checkpoint_every": 5}))
    for (k, a), b in zip(straight.predictor.state_dict().items(), resumed.predictor.state_dict().values()):
        assert (a - b).abs().max() <= 1e-6, k


def test_train_ac_on_a_lerobot_dataset_stores_the_normalisation(tmp_path, capsys):
    from jepa.data.lerobot import LeRobotDataset
    from jepa.normalization import control_statistics
    from jepa.world_model import load_world_model
    from tests.helpers import write_lerobot_dataset

    write_lerobot_dataset(tmp_path / "ds", version="v3.0", episodes=5, length=10, cameras=("front", "wrist"))
    torch.manual_seed(0)
    enc = VisionTransformer(img_size=32, patch_size=8, num_frames=2, embed_dim=48, depth=1, num_heads=3)
    encoder = export_backbone(enc, tmp_path / "encoder.safetensors")
    argv = [f"data.path={tmp_path / 'ds'}", "data.format=lerobot", "data.camera=wrist", "data.frame_step=2",
            "data.val_episodes=1", f"model.encoder={encoder}", "model.embed_dim=48", "model.depth=1",
            "model.num_heads=4", "optimization.batch_size=4", "optimization.max_steps=2",
            "optimization.lr.warmup_steps=1", "optimization.lr.decay_steps=1", f"meta.run_dir={tmp_path / 'run'}",
            "meta.device=cpu", "meta.progress=false", "state_update={kind: additive, scale: [1, 1, 1, 0]}"]
    assert ac.main(argv) == 0
    assert "rollout_l1_2" in capsys.readouterr().out
    world = load_world_model(tmp_path / "run" / "world_model.pt")
    assert (world.predictor.action_dim, world.predictor.state_dim) == (3, 4)
    data = LeRobotDataset(tmp_path / "ds", "wrist")
    controls = [data.controls(i) for i in range(4)]  # the 4 training episodes (the last one is held out)
    expected = control_statistics([s for s, _ in controls], [a for _, a in controls], frame_step=2)
    stored = world.normalizer.to_dict()
    for k, v in expected.items():
        np.testing.assert_allclose(stored[k], v, rtol=1e-5)
    assert stored["state_std"][3] > 50 * stored["state_std"][2]  # per-dimension: units differ a lot here
    # the two spellings of the source must not disagree
    with pytest.raises(ValueError, match="data.format='lerobot' and data.source='droid' disagree"):
        ac.train_ac(load_config(ac.ACConfig, None, argv + ["data.source=droid"]))
    with pytest.raises(ValueError, match="needs data.camera"):
        ac.train_ac(load_config(ac.ACConfig, None, argv + ["data.camera=''"]))


def test_fitted_state_update_recovers_the_scale_and_a_wrong_length_is_refused(tmp_path):
    """``state_update.kind=fit`` estimates ``state += scale * action`` from the data (R^2 reported);
    an additive scale of the wrong length is an error, never a silent truncation."""
    import numpy as np

    from jepa.data.trajectories import TrajectoryWriter
    from jepa.train.ac import ACConfig
    from jepa.train.ac_data import resolve_state_update
    from jepa.world_model import StateUpdateConfig, fit_additive_scale

    rng = np.random.default_rng(0)
    writer = TrajectoryWriter(tmp_path / "d", {"env": "toy", "action_dim": 3, "state_dim": 3, "image_size": 8})
    true = np.array([0.05, 0.2, 0.0])
    for i in range(4):
        actions = rng.uniform(-1, 1, (9, 3)).astype(np.float32)
        steps = actions * true + rng.normal(0, 1e-4, (9, 3)) * [1, 1, 0]
        states = np.concatenate([np.zeros((1, 3)), np.cumsum(steps, 0)]).astype(np.float32)
        writer.add([writer.write_episode(i, np.zeros((10, 8, 8, 3), np.uint8), states, actions)])
    scale, r2 = fit_additive_scale([states], [actions])
    np.testing.assert_allclose(scale, true, atol=1e-3)
    assert r2[0] > 0.99 and r2[1] > 0.99 and r2[2] == 0.0
    cfg = ACConfig()
    cfg.data.path = str(tmp_path / "d")
    spec, fit = resolve_state_update(cfg.data, StateUpdateConfig(kind="fit"), 3, [0, 1, 2, 3])
    assert spec.kind == "additive" and fit["episodes"] == 4
    np.testing.assert_allclose(spec.scale, true, atol=1e-3)
    with pytest.raises(ValueError, match="has 4 values but the dataset's states have 3 dims"):
        resolve_state_update(cfg.data, StateUpdateConfig(), 3, [0])
