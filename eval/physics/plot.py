"""A figure of surprise over time with the video's frames beneath (matplotlib, written to a file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_surprise(path: str | Path, times: np.ndarray, values: np.ndarray, frames: np.ndarray,
                  frame_times: np.ndarray, title: str = "", thumbnails: int = 8) -> Path:
    """Write a PNG: the surprise curve ``values [T']`` at ``times [T']`` (s; NaN steps leave gaps) above
    ``thumbnails`` evenly spaced frames of uint8 ``frames [F, H, W, 3]`` taken at ``frame_times [F]`` (s),
    each drawn from its own time on the shared axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 4.2), sharex=True, gridspec_kw={"height_ratios": [2.2, 1]})
    top.plot(times, values, marker="o", markersize=3, lw=1.5, color="tab:red")
    if np.isfinite(values).any():
        i = int(np.nanargmax(values))
        top.axvline(times[i], color="0.5", ls="--", lw=1)
        top.annotate(f"max {values[i]:.3f}", (times[i], values[i]), textcoords="offset points", xytext=(4, 4))
    top.set_ylabel("surprise (L1)")
    top.set_title(title)
    top.grid(alpha=0.3)
    end = float(frame_times[-1]) if len(frame_times) else 1.0
    picks = np.unique(np.linspace(0, len(frames) - 1, min(thumbnails, len(frames))).round().astype(int))
    width = end / max(len(picks), 1)
    for k in picks:  # each thumbnail starts at its own time
        x0 = float(frame_times[k])
        bottom.imshow(frames[k], extent=(x0, x0 + width * 0.96, 0, 1), aspect="auto")
    bottom.set_xlim(0.0, end + width)
    bottom.set_ylim(0, 1)
    bottom.set_yticks([])
    bottom.set_xlabel("time (s)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
