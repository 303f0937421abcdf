"""The embedded anticipation benchmark: scripted arm videos in the EPIC-KITCHENS-100 layout, end to end."""

import csv
import json

import pytest
import torch

from eval.anticipation.embedded import EK_HEADER, NOUNS, VERBS, EmbeddedConfig, ensure
from eval.anticipation.epic import read_annotations, read_class_list, read_id_list, video_path
from eval.anticipation.run import AnticipationConfig, evaluate_submission, run_anticipation
from jepa.config import load_config
from jepa.data.video import video_info

TINY = EmbeddedConfig(train_videos=3, val_videos=2, participants=1, unseen_participants=1, tasks_per_video=(1, 2),
                      image_size=32, seed=3)


def _overrides(root, run_dir):
    return [f"data.embedded_root={root}", "data.embedded.train_videos=3", "data.embedded.val_videos=2",
            "data.embedded.participants=1", "data.embedded.unseen_participants=1",
            "data.embedded.tasks_per_video=[1,2]",
            "data.embedded.image_size=32", "data.embedded.seed=3", "data.crop_size=32", "data.frames_per_clip=4",
            "backbone.init=random", "backbone.embed_dim=32", "backbone.depth=1", "backbone.num_heads=2",
            "probe.epochs=2", "probe.lrs=[1e-3]", "probe.weight_decays=[1e-4,1e-2]", "probe.num_heads=2",
            f"meta.run_dir={run_dir}", "meta.progress=false", "meta.device=cpu"]


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("embedded") / "data"
    return ensure(root, TINY, progress=False)


@pytest.fixture(scope="module")
def result(bench, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    cfg = load_config(AnticipationConfig, None, _overrides(bench.root, run_dir))
    return run_anticipation(cfg)


def test_annotations_follow_the_official_layout(bench):
    with bench.file("EPIC_100_train.csv").open() as f:
        assert next(csv.reader(f)) == list(EK_HEADER)
    train = read_annotations(bench.file("EPIC_100_train.csv"))
    val = read_annotations(bench.file("EPIC_100_validation.csv"))
    unseen = read_id_list(bench.file("EPIC_100_unseen_participant_ids_validation.csv"))
    assert unseen == ["P02"] and {s.participant_id for s in train} == {"P01"}
    assert {s.participant_id for s in val} == {"P01", "P02"}
    for seg in train + val:
        assert VERBS[seg.verb_class] == seg.verb and NOUNS[seg.noun_class] == seg.noun
        assert seg.start_time == pytest.approx((seg.start_frame - 1) / TINY.fps, abs=1e-3)
    tail_v = read_class_list(bench.file("EPIC_100_tail_verbs.csv"))
    assert set(tail_v) <= {s.verb_class for s in train}


def test_videos_exist_and_cover_their_segments(bench):
    segs = read_annotations(bench.file("EPIC_100_validation.csv"))
    for vid in {(s.participant_id, s.video_id) for s in segs}:
        path = video_path(bench.videos, *vid)
        assert path.parent.name == "videos"
        info = video_info(path)
        assert info.fps == pytest.approx(TINY.fps) and (info.height, info.width) == (32, 32)
        last = max(s.stop_frame for s in segs if s.video_id == vid[1])
        assert info.num_frames == last  # the video ends with its last action
        starts = sorted(s.start_frame for s in segs if s.video_id == vid[1])
        assert starts[0] > TINY.fps  # an idle lead-in: the first action has more than 1 s of past


def test_existing_benchmark_is_reused(bench):
    video = next(bench.videos.rglob("*.MP4"))
    before = video.stat().st_mtime_ns
    ensure(bench.root, TINY, progress=False)
    assert video.stat().st_mtime_ns == before


def test_end_to_end_run_reports_recall_and_writes_a_submission(bench, result):
    rep = result.report
    assert set(rep) == {"overall", "unseen", "tail"} or set(rep) == {"overall", "unseen"}
    assert {"verb", "noun", "action"} <= set(rep["overall"]) and {"verb", "noun", "action"} == set(rep["unseen"])
    for split in rep.values():
        for h in set(split) & {"verb", "noun", "action"}:
            assert 0.0 <= split[h] <= 1.0
    assert len(result.sweep.grid) == 2 and result.counts["train"] > 0 and result.counts["val"] > 0
    saved = json.loads((result.run_dir / "results.json").read_text())
    assert saved["report"]["overall"]["action"] == pytest.approx(rep["overall"]["action"])
    sub = json.loads((result.run_dir / "submission.json").read_text())
    assert sub["challenge"] == "action_anticipation" and len(sub["results"]) == result.counts["val"]
    assert len(next(iter(sub["results"].values()))["verb"]) == len(VERBS)
    val = [s for s in read_annotations(bench.file("EPIC_100_validation.csv")) if s.narration_id in sub["results"]]
    again = evaluate_submission(sub, val, {"P02"}, read_class_list(bench.file("EPIC_100_tail_verbs.csv")),
                                read_class_list(bench.file("EPIC_100_tail_nouns.csv")))
    for split in rep:
        for h in set(rep[split]) & {"verb", "noun", "action"}:
            assert again[split][h] == pytest.approx(rep[split][h], abs=1e-6), (split, h)


def test_cli_reuses_cached_features(bench, result, capsys):
    from eval.apps.evaluate import main

    index = result.run_dir / "features" / "val" / "index.json"
    before = index.stat().st_mtime_ns
    assert main(["anticipation", *_overrides(bench.root, result.run_dir)]) == 0
    out = capsys.readouterr().out
    assert "overall class-mean recall@5: verb" in out and "unseen" in out
    assert index.stat().st_mtime_ns == before  # features were not recomputed


def _cached(root):
    """The ``features`` of every entry of a feature cache folder, stacked."""
    from jepa.data.feature_cache import FeatureCache

    cache = FeatureCache.read(root)
    return torch.stack([cache.get(k)["features"] for k in cache.written()])


def test_random_init_has_the_checkpoint_shape(tmp_path):
    from eval.probes.frozen import BackboneConfig, build_backbone
    from jepa.hub import export_backbone
    from jepa.models.vit import build_vit

    src = build_vit("tiny", img_size=32, num_frames=4, patch_size=8, embed_dim=32, depth=1, num_heads=2)
    path = export_backbone(src, tmp_path / "enc.safetensors")
    pre = build_backbone(BackboneConfig(checkpoint=str(path)), 32, 4)
    rnd = build_backbone(BackboneConfig(checkpoint=str(path), init="random"), 32, 4)
    assert pre.arch == rnd.arch
    a, b = pre.state_dict(), rnd.state_dict()
    assert a.keys() == b.keys() and all(a[k].shape == b[k].shape for k in a)
    assert torch.equal(a["patch_embed.proj.weight"], src.state_dict()["patch_embed.proj.weight"])
    assert not torch.equal(a["patch_embed.proj.weight"], b["patch_embed.proj.weight"])
    assert not any(p.requires_grad for p in rnd.parameters())


def test_future_tokens_extend_the_cached_features_with_the_predicted_step(bench, tmp_path):
    from jepa.checkpoints import FORMAT
    from jepa.models.predictor import MaskedPredictor
    from jepa.models.vit import build_vit

    enc = build_vit("tiny", img_size=32, num_frames=4, patch_size=8, embed_dim=32, depth=1, num_heads=2)
    pred = MaskedPredictor(32, (2, 4, 4), predictor_embed_dim=16, depth=1, num_heads=2, num_mask_tokens=2)
    ckpt = tmp_path / "pretrain.pt"
    torch.save({"format": FORMAT, "version": 1, "encoder_arch": enc.arch, "predictor_arch": pred.arch,
                "target_encoder": enc.state_dict(), "predictor": pred.state_dict()}, ckpt)
    over = [o for o in _overrides(bench.root, tmp_path / "run") if not o.startswith("backbone.")]
    cfg = load_config(AnticipationConfig, None, [*over, f"backbone.checkpoint={ckpt}", "backbone.future_tokens=true"])
    res = run_anticipation(cfg)
    assert res.counts["val"] > 0 and 0.0 <= res.report["overall"]["action"] <= 1.0
    feats = _cached(tmp_path / "run" / "features" / "val")
    assert feats.shape[-2:] == (32 + 16, 32)  # (2 x 4 x 4) observed tokens + one predicted step of 4 x 4
    # a random encoder has no pretraining predictor
    with pytest.raises(ValueError, match="future_tokens needs"):
        load_config(AnticipationConfig, None, [*over, "backbone.init=random", "backbone.future_tokens=true"])
    with pytest.raises(ValueError, match="out_layers=null"):  # the predictor reads the last block only
        load_config(AnticipationConfig, None, [*over, f"backbone.checkpoint={ckpt}", "backbone.future_tokens=true",
                                               "backbone.out_layers=[0,-1]"])


def test_out_layers_concatenate_the_named_blocks_along_channels(bench, tmp_path):
    from eval.probes.frozen import BackboneConfig, ConcatLayers, backbone_settings
    from jepa.models.vit import build_vit

    enc = build_vit("tiny", img_size=32, num_frames=4, patch_size=8, embed_dim=32, depth=3, num_heads=2).eval()
    x = torch.randn(2, 3, 4, 32, 32)
    both = ConcatLayers(enc, [-1, 0])  # negative from the end; output in block order
    out = both(x)
    assert out.shape == (2, 32, 64) and both.embed_dim == 64 and both.token_grid(4, 32, 32) == (2, 4, 4)
    assert torch.allclose(out[..., 32:], enc(x), atol=1e-6)  # the last block's slice is the usual output
    assert not torch.allclose(out[..., :32], out[..., 32:])
    with pytest.raises(ValueError, match="out_layers"):
        ConcatLayers(enc, [3])
    assert backbone_settings(BackboneConfig(out_layers=[0, -1])) != backbone_settings(BackboneConfig())
    # end to end: the cached features hold the wider tokens
    over = [*_overrides(bench.root, tmp_path / "run"), "backbone.depth=2", "backbone.out_layers=[0,1]"]
    res = run_anticipation(load_config(AnticipationConfig, None, over))
    assert res.counts["val"] > 0
    assert _cached(tmp_path / "run" / "features" / "val").shape[-1] == 64
