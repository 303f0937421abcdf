import numpy as np
import pytest
import torch

from jepa.data.transforms import IMAGENET_MEAN, IMAGENET_STD, VideoTransform, images_as_video, normalize_frames


def test_normalize_frames_values_and_layout():
    frames = np.zeros((2, 4, 5, 3), np.uint8)
    frames[..., 1] = 255
    out = normalize_frames(frames)
    assert out.shape == (2, 3, 4, 5)
    assert out[0, 0, 0, 0].item() == pytest.approx(-IMAGENET_MEAN[0] / IMAGENET_STD[0], rel=1e-5)
    assert out[1, 1, 3, 4].item() == pytest.approx((1 - IMAGENET_MEAN[1]) / IMAGENET_STD[1], rel=1e-5)
    with pytest.raises(ValueError, match="uint8"):
        normalize_frames(np.zeros((2, 2, 3), np.float32))


def test_eval_transform_resizes_short_side_and_centre_crops():
    # 2 frames 146 x 300; crop 128 -> short side int(128 * 256/224) = 146 (no resize needed), centre crop.
    frames = np.zeros((2, 146, 300, 3), np.uint8)
    frames[:, :, 150:, :] = 255  # right half white
    out = VideoTransform(128, training=False)(frames)
    assert out.shape == (3, 2, 128, 128)
    white = (1 - IMAGENET_MEAN[0]) / IMAGENET_STD[0]
    black = -IMAGENET_MEAN[0] / IMAGENET_STD[0]
    # crop columns 86..213 of 300: column 150 is crop column 64
    assert out[0, 0, 64, 63].item() == pytest.approx(black, abs=1e-5)
    assert out[0, 0, 64, 64].item() == pytest.approx(white, abs=1e-5)
    assert out[0, 0, 9, 0].item() == pytest.approx(black, abs=1e-5)


def test_eval_transform_resizes_portrait_inputs():
    out = VideoTransform(64, training=False)(np.full((1, 200, 100, 3), 128, np.uint8))
    assert out.shape == (3, 1, 64, 64)


def test_training_transform_is_seeded_and_flips_sometimes():
    frames = np.random.default_rng(0).integers(0, 255, (3, 40, 60, 3), dtype=np.uint8)
    t = VideoTransform(32, training=True)
    a = t(frames, torch.Generator().manual_seed(5))
    b = t(frames, torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, b)
    assert a.shape == (3, 3, 32, 32)
    # full-frame crops: the output is either the resized clip or its mirror image
    full = VideoTransform(32, training=True, random_resize_scale=(1.0, 1.0), random_resize_aspect_ratio=(1.5, 1.5))
    plain = VideoTransform(32, training=True, random_resize_scale=(1.0, 1.0),
                           random_resize_aspect_ratio=(1.5, 1.5), horizontal_flip=False)
    outs = [full(frames, torch.Generator().manual_seed(s)) for s in range(12)]
    ref = plain(frames, torch.Generator().manual_seed(0))
    flipped = sum(torch.allclose(o, ref.flip(-1)) for o in outs)
    same = sum(torch.allclose(o, ref) for o in outs)
    assert flipped + same == 12 and 0 < flipped < 12


def test_images_as_video():
    clip = images_as_video(np.zeros((4, 5, 3), np.uint8), 6)
    assert clip.shape == (6, 4, 5, 3)
