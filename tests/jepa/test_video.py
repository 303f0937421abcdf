import imageio.v2 as imageio
import numpy as np
import pytest

from jepa.data.video import (
    VideoReadError,
    clip_indices,
    frame_step_for_fps,
    is_image_path,
    read_frames,
    read_image,
    video_info,
)
from tests.helpers import write_video


@pytest.fixture
def video(tmp_path):
    return write_video(tmp_path / "clip.mp4")


def test_info_and_frames_in_requested_order(video):
    info = video_info(video)
    assert (info.num_frames, info.height, info.width) == (12, 32, 48)
    assert info.fps == pytest.approx(10)
    frames = read_frames(video, [3, 0, 11, 5])
    assert frames.shape == (4, 32, 48, 3) and frames.dtype == np.uint8
    levels = frames.reshape(4, -1).mean(1)
    assert np.abs(levels - np.array([60, 0, 220, 100])).max() < 6


def test_out_of_range_indices_named(video):
    with pytest.raises(VideoReadError, match=r"clip.mp4: frame indices 0\.\.12 outside"):
        read_frames(video, [0, 12])


@pytest.mark.parametrize("kind", ["empty", "garbage", "missing"])
def test_unreadable_files_raise_with_the_name(tmp_path, kind):
    path = tmp_path / f"{kind}.mp4"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(VideoReadError, match=f"{kind}.mp4"):
        read_frames(path, [0])


def test_truncated_file_raises_or_reads_consistently(tmp_path):
    full = write_video(tmp_path / "full.mp4", frames=40)
    data = full.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 3])
    # A truncated MP4 either fails to open or its last frames cannot be decoded; it never returns garbage shapes.
    with pytest.raises(VideoReadError, match="cut.mp4"):
        read_frames(cut, list(range(40)))


def test_images(tmp_path):
    img = np.random.default_rng(0).integers(0, 255, (10, 12, 3), dtype=np.uint8)
    imageio.imwrite(tmp_path / "a.png", img)
    assert is_image_path(tmp_path / "a.PNG") and not is_image_path("a.mp4")
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), img)


def test_clip_indices():
    assert clip_indices(100, 4, 3, rng=None).tolist() == [[0, 3, 6, 9]]
    spread = clip_indices(100, 4, 3, rng=None, num_clips=3)
    assert spread[:, 0].tolist() == [0, 44, 88] and spread[-1, -1] == 97
    short = clip_indices(5, 4, 2, rng=None)
    assert short.tolist() == [[0, 2, 4, 4]]  # padded with the last frame
    rng_a, rng_b = np.random.default_rng(1), np.random.default_rng(1)
    np.testing.assert_array_equal(clip_indices(50, 4, 2, rng_a, 5), clip_indices(50, 4, 2, rng_b, 5))
    assert frame_step_for_fps(29.97, 4) == 7 and frame_step_for_fps(15, 4) == 3 and frame_step_for_fps(2, 4) == 1
