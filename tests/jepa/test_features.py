import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from eval.cli import main as cli_main
from jepa.hub import export_backbone, load_backbone
from jepa.models import VisionTransformer
from tests.helpers import write_video


@pytest.fixture
def backbone(tmp_path):
    torch.manual_seed(0)
    model = VisionTransformer(img_size=32, patch_size=16, num_frames=4, embed_dim=24, depth=1, num_heads=2)
    return export_backbone(model, tmp_path / "enc.safetensors")


def test_features_cli_writes_readable_files_and_counts_skips(tmp_path, backbone, capsys):
    a = write_video(tmp_path / "a.mp4", frames=12, h=32, w=64)
    write_video(tmp_path / "b.mp4", frames=6, h=40, w=40)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(np.random.default_rng(0).bytes(2000))
    listing = tmp_path / "list.csv"
    listing.write_text("a.mp4 0\nbad.mp4 1\nb.mp4 2\n")
    out = tmp_path / "feats"
    code = cli_main(["features", "--backbone", str(backbone), "--videos", str(listing), "--out", str(out),
                     "--frames", "4", "--frame-step", "2", "--size", "32", "--clips", "2", "--batch-size", "2",
                     "--device", "cpu"])
    assert code == 0
    text = capsys.readouterr()
    assert "wrote 2 feature files" in text.out and "skipped 1 unreadable" in text.out
    assert "bad.mp4" in text.out and "bad.mp4" in text.err
    feats = load_file(out / "a.safetensors")
    assert feats["tokens"].shape == (2, 2 * 2 * 2, 24) and feats["pooled"].shape == (2, 24)
    # the stored tokens are the backbone's output on the evaluation transform of those clips
    from jepa.data.transforms import VideoTransform
    from jepa.features import load_clips

    model = load_backbone(str(backbone))
    clips = load_clips(a, 4, 2, 2, VideoTransform(32, training=False))
    with torch.no_grad():
        torch.testing.assert_close(feats["tokens"], model(clips), atol=1e-5, rtol=1e-5)
