"""The one video transform of the project, shared by pretraining, AC training, evaluation and planning.

Frames come in as ``uint8`` ``[T, H, W, 3]`` (numpy or torch) and leave as normalised float
``[3, T, crop, crop]`` (ImageNet mean/std after scaling to [0, 1]).

- Evaluation (``training=False``) is the released V-JEPA 2 evaluation transform: resize the short
  side to ``int(crop * 256 / 224)`` (bilinear), centre crop ``crop x crop``, scale to [0, 1],
  normalise.
- Training: one random resized crop for the whole clip (area fraction ``random_resize_scale``,
  log-uniform aspect ratio ``random_resize_aspect_ratio``), bilinear resize to ``crop``, optional
  horizontal flip with probability 0.5, normalise.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _as_uint8_tensor(frames: np.ndarray | Tensor) -> Tensor:
    t = torch.from_numpy(np.ascontiguousarray(frames)) if isinstance(frames, np.ndarray) else frames
    if t.dtype != torch.uint8:
        raise ValueError(f"expected uint8 frames, got {t.dtype}")
    if t.shape[-1] != 3:
        raise ValueError(f"expected frames [..., H, W, 3], got shape {tuple(t.shape)}")
    return t


def normalize_frames(frames: np.ndarray | Tensor) -> Tensor:
    """``uint8 [..., H, W, 3]`` -> float ``[..., 3, H, W]``: /255, then ImageNet mean/std."""
    x = _as_uint8_tensor(frames).movedim(-1, -3).float().div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(3, 1, 1)
    return (x - mean) / std


def images_as_video(image: np.ndarray, num_frames: int) -> np.ndarray:
    """An image ``[H, W, 3]`` repeated into a clip ``[num_frames, H, W, 3]``."""
    return np.repeat(np.asarray(image)[None], num_frames, axis=0)


def _resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize of float ``[T, 3, H, W]`` to ``size``."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=False)


class VideoTransform:
    """``__call__(frames uint8 [T, H, W, 3], generator=None) -> float [3, T, crop, crop]``."""

    def __init__(
        self,
        crop_size: int,
        training: bool,
        random_resize_scale: tuple[float, float] = (0.3, 1.0),
        random_resize_aspect_ratio: tuple[float, float] = (0.75, 1.35),
        horizontal_flip: bool = True,
        eval_resize_ratio: float = 256 / 224,
    ) -> None:
        self.crop_size = crop_size
        self.training = training
        self.scale = random_resize_scale
        self.ratio = random_resize_aspect_ratio
        self.horizontal_flip = horizontal_flip
        self.eval_resize_ratio = eval_resize_ratio

    def __call__(self, frames: np.ndarray | Tensor, generator: torch.Generator | None = None) -> Tensor:
        x = _as_uint8_tensor(frames)
        if x.dim() == 3:
            x = x.unsqueeze(0)
        x = x.permute(0, 3, 1, 2).float()  # [T, 3, H, W] in 0..255
        x = self._random_crop(x, generator) if self.training else self._center_crop(x)
        x = x / 255.0
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return ((x - mean) / std).permute(1, 0, 2, 3).contiguous()

    def _center_crop(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        short = int(self.crop_size * self.eval_resize_ratio)
        if h <= w:
            size = (short, max(short, int(round(w * short / h))))
        else:
            size = (max(short, int(round(h * short / w))), short)
        x = _resize(x, size)
        top = (size[0] - self.crop_size) // 2
        left = (size[1] - self.crop_size) // 2
        return x[..., top : top + self.crop_size, left : left + self.crop_size]

    def _random_crop(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        h, w = x.shape[-2:]
        top, left, ch, cw = self._crop_box(h, w, generator)
        x = _resize(x[..., top : top + ch, left : left + cw], (self.crop_size, self.crop_size))
        if self.horizontal_flip and torch.rand((), generator=generator).item() < 0.5:
            x = x.flip(-1)
        return x

    def _crop_box(self, h: int, w: int, generator: torch.Generator | None) -> tuple[int, int, int, int]:
        area = h * w
        log_lo, log_hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        for _ in range(10):
            u = torch.rand(2, generator=generator).tolist()
            target = area * (self.scale[0] + u[0] * (self.scale[1] - self.scale[0]))
            aspect = math.exp(log_lo + u[1] * (log_hi - log_lo))
            cw = int(round(math.sqrt(target * aspect)))
            ch = int(round(math.sqrt(target / aspect)))
            if 0 < cw <= w and 0 < ch <= h:
                top = int(torch.randint(0, h - ch + 1, (1,), generator=generator))
                left = int(torch.randint(0, w - cw + 1, (1,), generator=generator))
                return top, left, ch, cw
        # Fallback: the largest centred crop whose aspect lies inside the allowed range.
        aspect = min(max(w / h, self.ratio[0]), self.ratio[1])
        cw, ch = (int(round(h * aspect)), h) if w / h > aspect else (w, int(round(w / aspect)))
        return (h - ch) // 2, (w - cw) // 2, ch, cw
