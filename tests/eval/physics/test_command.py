"""`jepa surprise`: per-video CSV and plot, max and mean, defaults from the pretraining checkpoint."""

import csv
import math

import torch

from eval.cli import main as cli_main
from eval.physics.command import pretraining_defaults
from eval.physics.score import frames_to_clip
from jepa.checkpoints import FORMAT
from jepa.data.video import read_frames
from jepa.hub import freeze
from jepa.models.predictor import MaskedPredictor
from jepa.models.vit import build_vit
from jepa.physics import surprise
from tests.helpers import write_video


def _checkpoint(path):
    torch.manual_seed(0)
    enc = build_vit("tiny", img_size=32, num_frames=8, patch_size=16, embed_dim=32, depth=1, num_heads=2)
    pred = MaskedPredictor(32, (4, 2, 2), predictor_embed_dim=32, depth=1, num_heads=2, num_mask_tokens=3,
                           zero_init_mask_tokens=False)
    config = {"masks": [{"temporal_anchor": "random"}, {"temporal_anchor": "random"}, {"temporal_anchor": "end"}],
              "data": {"frame_step": 1}, "model": {"num_mask_tokens": 3}}
    torch.save({"format": FORMAT, "version": 1, "encoder_arch": enc.arch, "predictor_arch": pred.arch,
                "encoder": enc.state_dict(), "target_encoder": enc.state_dict(), "predictor": pred.state_dict(),
                "config": config}, path)
    return freeze(enc), freeze(pred)


def test_scores_videos_writes_csv_plot_and_summary(tmp_path, capsys):
    enc, pred = _checkpoint(tmp_path / "run.pt")
    assert pretraining_defaults(str(tmp_path / "run.pt")) == {"mask_index": 2, "frame_step": 1}
    video = write_video(tmp_path / "clip.mp4", frames=12, h=32, w=48)
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    out = tmp_path / "out"
    rc = cli_main(["surprise", str(video), str(tmp_path / "broken.mp4"), "--backbone", str(tmp_path / "run.pt"),
                   "--out", str(out), "--device", "cpu"])
    assert rc == 0
    with (out / "clip.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == list(range(6)) and [int(r["first_frame"]) for r in rows][:2] == [0, 2]
    assert [r["surprise"] == "" for r in rows] == [True] * 3 + [False] * 3  # 3 context steps
    expected = surprise(enc, pred, frames_to_clip(read_frames(video, range(12)), 1, 32, 2), mask_index=2)
    got = torch.tensor([float(r["surprise"]) if r["surprise"] else math.nan for r in rows])
    torch.testing.assert_close(got, expected, equal_nan=True, rtol=1e-4, atol=1e-5)
    assert (out / "clip.png").stat().st_size > 1000
    with (out / "summary.csv").open() as f:
        summary = list(csv.DictReader(f))
    assert len(summary) == 1 and float(summary[0]["max"]) == max(float(r["surprise"]) for r in rows if r["surprise"])
    printed = capsys.readouterr()
    assert "1 videos scored, 1 skipped" in printed.out and "skipped" in printed.err and "broken.mp4" in printed.err
