"""Reading frames from video and image files (decord), and choosing which frames to read.

Every failure to read a file raises :class:`VideoReadError` naming the file and the problem, so
data loaders can skip and count it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jepa.errors import JepaError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class VideoReadError(JepaError, RuntimeError):
    """A video or image file could not be read (unreadable, truncated, empty or too short)."""


@dataclass(frozen=True)
class VideoInfo:
    num_frames: int
    fps: float
    height: int
    width: int


def is_image_path(path: str | Path) -> bool:
    return str(path).lower().endswith(IMAGE_SUFFIXES)


def _open(path: str | Path):
    import decord

    path = Path(path)
    if not path.is_file():
        raise VideoReadError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise VideoReadError(f"{path}: empty file (0 bytes)")
    try:
        reader = decord.VideoReader(str(path), num_threads=1, ctx=decord.cpu(0))
    except Exception as e:  # decord raises its own DECORDError and RuntimeError types
        raise VideoReadError(f"{path}: cannot decode video ({type(e).__name__}: {str(e)[:200]})") from None
    if len(reader) == 0:
        raise VideoReadError(f"{path}: video has no frames")
    return reader


def video_info(path: str | Path) -> VideoInfo:
    """Frame count, frame rate and size of a video file."""
    reader = _open(path)
    h, w = reader[0].shape[:2]
    return VideoInfo(num_frames=len(reader), fps=float(reader.get_avg_fps()), height=h, width=w)


def read_frames(path: str | Path, indices: Sequence[int]) -> np.ndarray:
    """Frames at ``indices`` of a video as uint8 ``[T, H, W, 3]``."""
    reader = _open(path)
    idx = np.asarray(indices, dtype=np.int64)
    if idx.size == 0:
        raise VideoReadError(f"{path}: no frame indices requested")
    if idx.min() < 0 or idx.max() >= len(reader):
        raise VideoReadError(
            f"{path}: frame indices {int(idx.min())}..{int(idx.max())} outside the video's {len(reader)} frames"
        )
    try:
        frames = reader.get_batch(idx.tolist()).asnumpy()
    except Exception as e:
        # decord fails on some frame sizes (e.g. 48 px wide); ffmpeg decodes those, sequentially.
        frames = _read_with_ffmpeg(path, idx, reason=f"{type(e).__name__}: {str(e)[:200]}")
    if frames.shape[0] != idx.size:
        raise VideoReadError(f"{path}: got {frames.shape[0]} frames, expected {idx.size} (truncated file?)")
    return frames


def _read_with_ffmpeg(path: str | Path, idx: np.ndarray, reason: str) -> np.ndarray:
    import imageio.v2 as imageio

    wanted = set(idx.tolist())
    found: dict[int, np.ndarray] = {}
    try:
        with imageio.get_reader(str(path), format="ffmpeg") as reader:
            for i, frame in enumerate(reader):
                if i in wanted:
                    found[i] = np.asarray(frame)[..., :3]
                if i >= idx.max():
                    break
    except Exception as e:
        raise VideoReadError(f"{path}: decoding failed, file truncated? ({reason}; ffmpeg: {str(e)[:200]})") from None
    if len(found) != len(wanted):
        raise VideoReadError(f"{path}: decoding failed after {len(found)} of {len(wanted)} frames (truncated file?)")
    return np.stack([found[i] for i in idx.tolist()])


def read_image(path: str | Path) -> np.ndarray:
    """An image file as uint8 ``[H, W, 3]``."""
    import imageio.v2 as imageio

    try:
        image = np.asarray(imageio.imread(path))
    except Exception as e:
        raise VideoReadError(f"{path}: cannot read image ({type(e).__name__}: {str(e)[:200]})") from None
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    return np.ascontiguousarray(image[..., :3]).astype(np.uint8)


def frame_step_for_fps(video_fps: float, target_fps: float) -> int:
    """Frame stride that samples a ``video_fps`` video at about ``target_fps`` (as released)."""
    return max(1, int(np.ceil(video_fps)) // int(target_fps))


def clip_indices(
    num_video_frames: int,
    frames_per_clip: int,
    frame_step: int,
    rng: np.random.Generator | None,
    num_clips: int = 1,
) -> np.ndarray:
    """Frame indices ``[num_clips, frames_per_clip]`` of clips spanning ``frames_per_clip * frame_step``.

    With ``rng`` each clip starts at a random frame; without it the clips are spread evenly over the
    video (evaluation). A video shorter than one clip is padded by repeating its last frame.
    """
    if num_video_frames < 1:
        raise ValueError("a video needs at least one frame")
    span = frames_per_clip * frame_step
    last_start = max(0, num_video_frames - span)
    if rng is not None:
        starts = rng.integers(0, last_start + 1, size=num_clips)
    else:
        starts = np.linspace(0, last_start, num_clips).round().astype(np.int64)
    offsets = np.arange(frames_per_clip) * frame_step
    return np.minimum(starts[:, None] + offsets[None], num_video_frames - 1)
