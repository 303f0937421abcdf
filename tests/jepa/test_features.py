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
    feats = load_file(out / "a.mp4.safetensors")
    assert feats["tokens"].shape == (2, 2 * 2 * 2, 24) and feats["pooled"].shape == (2, 24)
    # the stored tokens are the backbone's output on the evaluation transform of those clips
    from jepa.data.transforms import VideoTransform
    from jepa.features import load_clips

    model = load_backbone(str(backbone))
    clips = load_clips(a, 4, 2, 2, VideoTransform(32, training=False))
    with torch.no_grad():
        torch.testing.assert_close(feats["tokens"], model(clips), atol=1e-5, rtol=1e-5)


def _run(videos, out, backbone):
    return cli_main(["features", "--backbone", str(backbone), "--videos", *map(str, videos), "--out", str(out),
                     "--frames", "4", "--frame-step", "1", "--size", "32", "--device", "cpu"])


def test_same_named_videos_in_different_folders_get_distinct_files(tmp_path, backbone, capsys):
    (tmp_path / "cam1").mkdir()
    (tmp_path / "cam2" / "day1").mkdir(parents=True)
    one = write_video(tmp_path / "cam1" / "clip.mp4", frames=8, h=32, w=32)
    two = tmp_path / "cam2" / "day1" / "clip.mp4"  # same name, other content (darker frames)
    import imageio.v2 as imageio

    imageio.mimwrite(two, [np.full((32, 32, 3), 200 - 20 * i, np.uint8) for i in range(8)], fps=10,
                     codec="libx264", macro_block_size=1, pixelformat="yuv420p")
    out = tmp_path / "feats"
    assert _run([one, two], out, backbone) == 0
    a, b = out / "cam1" / "clip.mp4.safetensors", out / "cam2" / "day1" / "clip.mp4.safetensors"
    assert a.is_file() and b.is_file()
    assert not torch.equal(load_file(a)["tokens"], load_file(b)["tokens"])
    assert "wrote 2 feature files" in capsys.readouterr().out


def test_a_rerun_encodes_only_new_or_changed_videos(tmp_path, backbone, capsys):
    videos = [write_video(tmp_path / f"v{i}.mp4", frames=8, h=32, w=32) for i in range(3)]
    out = tmp_path / "feats"
    assert _run(videos, out, backbone) == 0
    assert "wrote 3 feature files" in capsys.readouterr().out
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.safetensors")}
    assert _run(videos, out, backbone) == 0
    text = capsys.readouterr().out
    assert "wrote 0 feature files" in text and "3 already up to date" in text
    write_video(videos[1], frames=10, h=32, w=32)  # changed content and size
    assert _run(videos, out, backbone) == 0
    assert "wrote 1 feature files" in capsys.readouterr().out
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("*.safetensors")}
    assert after["v0.mp4.safetensors"] == before["v0.mp4.safetensors"]
    assert after["v1.mp4.safetensors"] != before["v1.mp4.safetensors"]
