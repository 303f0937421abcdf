"""EPIC-KITCHENS-100 annotations, observed windows, submission JSON and skipping of bad videos."""

import csv
import json
import math

import numpy as np
import pytest
import torch

from eval.anticipation.epic import (
    REQUIRED_COLUMNS,
    ActionVocab,
    AnnotationError,
    Segment,
    anticipation_end,
    format_timestamp,
    observed_indices,
    parse_timestamp,
    read_annotations,
    video_path,
)
from eval.anticipation.metrics import anticipation_metrics
from eval.anticipation.run import (
    AnticipationClips,
    AnticipationDataConfig,
    SubmissionConfig,
    _actions_from_verbs_nouns,
    evaluate_submission,
    submission_json,
)
from tests.helpers import REPO_ROOT

HEADER = ["narration_id", "participant_id", "video_id", "narration_timestamp", "start_timestamp", "stop_timestamp",
          "start_frame", "stop_frame", "narration", "verb", "verb_class", "noun", "noun_class", "all_nouns",
          "all_noun_classes"]


def _write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _row(nid, pid, vid, start, stop, verb, noun, fps=10.0):
    return [nid, pid, vid, format_timestamp((start - 1) / fps), format_timestamp((start - 1) / fps),
            format_timestamp((stop - 1) / fps), start, stop, "x y", "x", verb, "y", noun, "['y']", f"[{noun}]"]


def _seg(start, stop=None, verb=0, noun=0, pid="P01", vid="P01_01", nid="P01_01_0", fps=10.0):
    stop = stop or start + 5
    return Segment(nid, pid, vid, (start - 1) / fps, (stop - 1) / fps, start, stop, verb, noun)


# ------------------------------------------------------------------------------------------ annotations

def test_reads_official_layout(tmp_path):
    p = _write_csv(tmp_path / "EPIC_100_train.csv", HEADER, [_row("P01_01_0", "P01", "P01_01", 31, 60, 3, 7)])
    (seg,) = read_annotations(p)
    assert (seg.start_frame, seg.stop_frame, seg.verb_class, seg.noun_class) == (31, 60, 3, 7)
    assert seg.start_time == pytest.approx(3.0) and seg.stop_time == pytest.approx(5.9)


@pytest.mark.parametrize("column", ["verb_class", "start_frame", "participant_id"])
def test_missing_column_is_rejected_naming_it_and_the_file(tmp_path, column):
    header = [c for c in HEADER if c != column]
    row = [v for c, v in zip(HEADER, _row("a", "P01", "P01_01", 1, 5, 0, 0)) if c != column]
    p = _write_csv(tmp_path / "EPIC_100_validation.csv", header, [row])
    with pytest.raises(AnnotationError) as e:
        read_annotations(p)
    assert column in str(e.value) and "EPIC_100_validation.csv" in str(e.value) and "missing column" in str(e.value)


def test_unreadable_value_names_line_and_column(tmp_path):
    rows = [_row("a", "P01", "P01_01", 1, 5, 0, 0), _row("b", "P01", "P01_01", 6, 9, "run", 0)]
    p = _write_csv(tmp_path / "ann.csv", HEADER, rows)
    with pytest.raises(AnnotationError, match=r"ann.csv:3: column 'verb_class'"):
        read_annotations(p)


def test_timestamps_round_trip():
    assert parse_timestamp("00:01:02.50") == pytest.approx(62.5)
    assert parse_timestamp(format_timestamp(3723.456)) == pytest.approx(3723.456)


def test_action_vocab_uses_training_pairs_only():
    train = [_seg(10, verb=1, noun=2), _seg(20, verb=0, noun=5), _seg(30, verb=1, noun=2)]
    val = [_seg(10, verb=4, noun=2)]
    v = ActionVocab.from_segments(train, val)
    assert v.pairs == [(0, 5), (1, 2)] and (v.num_verbs, v.num_nouns) == (5, 6)
    assert v.labels(val[0]) == {"verb": 4, "noun": 2, "action": -1, "action_key": 4002}
    assert v.keys().tolist() == [5, 1002]


def test_video_path_layouts(tmp_path):
    assert video_path(tmp_path, "P01", "P01_01") == tmp_path / "P01" / "videos" / "P01_01.MP4"
    flat = tmp_path / "P01" / "P01_01.MP4"
    flat.parent.mkdir()
    flat.write_bytes(b"x")
    assert video_path(tmp_path, "P01", "P01_01", "auto") == flat
    assert video_path(tmp_path, "P01", "P01_01", "videos") == tmp_path / "P01" / "videos" / "P01_01.MP4"


# ------------------------------------------------------------------------------------------ windows

def test_no_observed_frame_at_or_after_the_anticipation_point_property():
    rng = np.random.default_rng(0)
    for _ in range(3000):
        fps = float(rng.choice([10.0, 25.0, 29.97, 30.0, 50.0, 59.94, 60.0]))
        tau = float(rng.uniform(0.0, 3.0)) if rng.random() < 0.9 else float(rng.integers(0, 3))
        start = int(rng.integers(1, 3000))
        seg = _seg(start, start + int(rng.integers(0, 300)), fps=fps)
        frames, step = int(rng.integers(1, 33)), int(rng.integers(1, 9))
        idx = observed_indices(seg, fps, tau, frames, step)
        point = (start - 1) - tau * fps  # anticipation point in 0-based frame units
        if idx is None:
            assert point <= 0  # frame 0 is shown at t = 0, not before the point
            continue
        assert len(idx) == frames and idx.min() >= 0 and np.all(np.diff(idx) >= 0)
        assert np.all(idx < point), (start, fps, tau, idx)  # strictly before: i / fps < start_time - tau
        assert np.all(idx / fps < seg.start_time - tau + 1e-9)
        assert idx[-1] + 1 >= point  # the window ends at the last frame before the point
        if idx[0] > 0:
            assert np.all(np.diff(idx) == step)


def test_window_clamps_to_first_and_last_video_frames():
    idx = observed_indices(_seg(31), 10.0, 1.0, 8, 4)  # point at frame 20: last frame 19
    assert idx.tolist() == [0, 0, 0, 3, 7, 11, 15, 19]
    assert observed_indices(_seg(31), 10.0, 1.0, 3, 1, num_video_frames=12).tolist() == [11, 11, 11]


def test_released_window_ends_before_the_stop_frame():
    seg = _seg(31, 80)
    assert anticipation_end(seg, 10.0, 1.0, "start") == 19
    assert anticipation_end(seg, 10.0, 1.0, "stop_released") == 70  # int(80 - 1 s * 10 fps), inside the action
    with pytest.raises(ValueError, match="window_end"):
        anticipation_end(seg, 10.0, 1.0, "end")


def test_frames_read_for_a_window_precede_the_anticipation_point(tmp_path):
    """Decoded frames carry their index as brightness: none is at or after the point."""
    import imageio.v2 as imageio

    path = tmp_path / "P01" / "videos" / "P01_01.MP4"
    path.parent.mkdir(parents=True)
    with imageio.get_writer(str(path), fps=10, codec="libx264", quality=10, macro_block_size=1,
                            ffmpeg_log_level="error") as w:
        for i in range(30):
            w.append_data(np.full((32, 32, 3), 8 * i, np.uint8))
    d = AnticipationDataConfig(frames_per_clip=4, sample_fps=5.0, crop_size=32)
    seg = _seg(26, 29)  # starts at frame index 25 (2.5 s); point at 1.5 s = frame 15
    ds = AnticipationClips([seg], ActionVocab.from_segments([seg]), d, tmp_path)
    from jepa.data.video import read_frames

    idx = ds.indices(seg)
    decoded = np.round(read_frames(path, idx).mean(axis=(1, 2, 3)) / 8).astype(int)
    assert idx.tolist() == [8, 10, 12, 14] and decoded.tolist() == [8, 10, 12, 14]
    assert ds[0]["clips"].shape == (1, 1, 3, 4, 32, 32)


def test_unreadable_videos_are_skipped_counted_and_remembered(tmp_path, capsys):
    from eval.probes.frozen import BackboneConfig, EvalMetaConfig, cached_features
    from jepa.models.vit import VisionTransformer
    from tests.helpers import write_video

    bad = tmp_path / "P01" / "videos" / "P01_01.MP4"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a video")
    (tmp_path / "P01" / "videos" / "P01_03.MP4").parent.mkdir(exist_ok=True)
    write_video(tmp_path / "P01" / "videos" / "P01_03.MP4", frames=60, h=32, w=32)
    segs = [_seg(40, nid="P01_01_0"), _seg(50, vid="P01_02", nid="P01_02_0"),  # corrupt, then missing
            _seg(40, vid="P01_03", nid="P01_03_0")]
    d = AnticipationDataConfig(frames_per_clip=4, crop_size=32)
    ds = AnticipationClips(segs, ActionVocab.from_segments(segs), d, tmp_path)
    assert "P01_01.MP4" in ds[0].reason and "P01_02.MP4" in ds[1].reason
    torch.manual_seed(0)
    enc = VisionTransformer(img_size=32, patch_size=16, num_frames=4, embed_dim=16, depth=1, num_heads=2).eval()
    meta = EvalMetaConfig(device="cpu", batch_size=2, progress=False)
    args = ("val", ds, enc, tmp_path / "cache", BackboneConfig(), {"frames": 4}, meta, torch.device("cpu"))
    feats, skipped = cached_features(*args)
    assert skipped == 2 and feats.keys == ["P01_03_0"] and feats.features.shape == (1, 1, 2 * 2 * 2, 16)
    assert feats.labels["verb"].tolist() == [0]
    assert "P01_01.MP4" in capsys.readouterr().err
    # a re-run counts the same skips from the cache, without reading the videos again
    again, skipped = cached_features(*args)
    assert skipped == 2 and torch.equal(again.features, feats.features)
    assert "skipped:" not in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ submission

def test_submission_json_evaluates_like_the_direct_metrics():
    g = torch.Generator().manual_seed(0)
    train = [_seg(10 * i + 1, verb=v, noun=n, nid=f"t{i}") for i, (v, n) in enumerate([(0, 1), (1, 2), (2, 0), (0, 2)])]
    pairs = [(0, 1), (1, 2), (2, 1), (0, 2), (1, 2), (2, 0)]
    val = [_seg(10 * i + 1, verb=v, noun=n, nid=f"v{i}", pid="P01" if i % 2 else "P02")
           for i, (v, n) in enumerate(pairs)]
    vocab = ActionVocab.from_segments(train, val)
    scores = {"verb": torch.rand(6, vocab.num_verbs, generator=g), "noun": torch.rand(6, vocab.num_nouns, generator=g),
              "action": torch.rand(6, vocab.num_actions, generator=g)}
    sub = json.loads(json.dumps(submission_json([s.narration_id for s in val], scores, vocab,
                                                SubmissionConfig(top_actions=100))))
    assert sub["challenge"] == "action_anticipation" and sub["version"] == "0.2"
    assert set(sub["results"]["v0"]["action"]) == {"0,1", "0,2", "1,2", "2,0"}
    labels = {"verb": torch.tensor([s.verb_class for s in val]), "noun": torch.tensor([s.noun_class for s in val]),
              "action": torch.tensor([s.verb_class * 1000 + s.noun_class for s in val])}
    unseen = torch.tensor([s.participant_id == "P02" for s in val])
    direct = anticipation_metrics(scores, labels, 2, unseen, [2], [0], torch.from_numpy(vocab.keys()))
    via_json = evaluate_submission(sub, val, {"P02"}, [2], [0], k=2)
    for split in direct:
        for h in ("verb", "noun", "action"):
            assert via_json[split][h] == pytest.approx(direct[split][h]), (split, h)
    # (2, 1) was never seen in training: a class that is never hit
    assert direct["overall"]["action"] <= 4 / 5


def test_missing_action_scores_fall_back_to_verb_times_noun():
    out = _actions_from_verbs_nouns(torch.tensor([0.0, 2.0, 1.0]), torch.tensor([3.0, 0.0]), top=100)
    assert len(out) == 6 and max(out, key=out.get) == "1,0"
    assert sum(out.values()) == pytest.approx(1.0)
    assert out["1,0"] == pytest.approx(math.exp(2) / (1 + math.exp(2) + math.e) * math.exp(3) / (math.exp(3) + 1))


def test_required_columns_are_the_official_names():
    assert set(REQUIRED_COLUMNS) <= set(HEADER)


def test_config_rejects_unknown_keys_and_bad_choices():
    from eval.anticipation.run import AnticipationConfig
    from jepa.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="probe.lr"):
        load_config(AnticipationConfig, None, ["probe.lr=0.1"])
    with pytest.raises(ValueError, match="window_end"):
        load_config(AnticipationConfig, None, ["data.window_end=end"])
    root = REPO_ROOT
    cfg = load_config(AnticipationConfig, root / "configs/eval/anticipation_ek100_vitl.yaml")
    assert (cfg.probe.depth, cfg.probe.num_heads, len(cfg.probe.lrs) * len(cfg.probe.weight_decays)) == (4, 16, 20)
    assert (cfg.data.frames_per_clip, cfg.data.sample_fps, cfg.data.num_verbs, cfg.data.num_nouns) == (32, 8.0, 97, 300)
    assert cfg.backbone.future_tokens  # the released anticipation model appends predicted tokens
