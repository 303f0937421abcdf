"""Artefacts a person looks at: episode GIFs, energy landscapes and training curves."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch


def side_by_side(observation: np.ndarray, goal: np.ndarray, gap: int = 2) -> np.ndarray:
    """One frame showing the observation (left) beside the goal image (right): ``[H, 2W+gap, 3]``."""
    if observation.shape != goal.shape:
        raise ValueError(f"observation {observation.shape} and goal {goal.shape} differ in shape")
    spacer = np.full((observation.shape[0], gap, 3), 255, dtype=np.uint8)
    return np.concatenate([observation, spacer, goal], axis=1)


def write_episode_gif(
    observations: Sequence[np.ndarray], goal: np.ndarray, path: str | Path, fps: float = 5.0, scale: int = 2
) -> Path:
    """Write a GIF of ``observations`` (each ``[H, W, 3]`` uint8) beside ``goal``, upscaled ``scale``x."""
    import imageio.v2 as imageio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = [side_by_side(o, goal) for o in observations]
    if scale > 1:
        frames = [f.repeat(scale, axis=0).repeat(scale, axis=1) for f in frames]
    imageio.mimsave(path, frames, duration=1.0 / fps, loop=0)
    return path


def energy_grid(
    cost_fn: Callable[[torch.Tensor], torch.Tensor],
    base_action: torch.Tensor,
    dims: tuple[int, int],
    low: float,
    high: float,
    resolution: int = 21,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Energies of one-step plans over a 2-D grid of first actions.

    ``cost_fn`` maps ``[S, H, A]`` action sequences to ``[S]`` energies. The grid varies action
    dimensions ``dims`` over ``[low, high]`` (planner units) with the other dims taken from
    ``base_action`` ``[A]``. Returns ``(xs [R], ys [R], energies [R, R])`` with energies indexed
    ``[y, x]``.
    """
    xs = torch.linspace(low, high, resolution)
    gx, gy = torch.meshgrid(xs, xs, indexing="xy")
    actions = base_action.detach().cpu().float().repeat(resolution * resolution, 1)
    actions[:, dims[0]] = gx.reshape(-1)
    actions[:, dims[1]] = gy.reshape(-1)
    with torch.no_grad():
        energies = cost_fn(actions.unsqueeze(1)).float().cpu().reshape(resolution, resolution)
    return xs.numpy(), xs.numpy(), energies.numpy()


def plot_energy_landscape(
    xs: np.ndarray,
    ys: np.ndarray,
    energies: np.ndarray,
    path: str | Path,
    true_best: tuple[float, float] | None = None,
    labels: tuple[str, str] = ("action x", "action y"),
    title: str = "energy of the first action",
) -> Path:
    """Heat map of ``energies [len(ys), len(xs)]`` with the grid minimum and the true best action."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    mesh = ax.pcolormesh(xs, ys, energies, shading="auto", cmap="viridis")
    fig.colorbar(mesh, ax=ax, label="energy")
    iy, ix = np.unravel_index(np.argmin(energies), energies.shape)
    ax.plot(xs[ix], ys[iy], "w^", markersize=9, label="grid minimum")
    if true_best is not None:
        ax.plot(*true_best, "r*", markersize=13, label="true best action")
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def read_metrics(path: str | Path) -> list[dict]:
    """All records of a JSONL metrics log such as a training run's ``metrics.jsonl`` (blank lines ignored)."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_curves(
    series: dict[str, tuple[Sequence[float], Sequence[float]]], path: str | Path, ylabel: str, title: str
) -> Path:
    """Line plot of named ``(x, y)`` series (e.g. training loss against step)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for name, (x, y) in series.items():
        ax.plot(x, y, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if len(series) > 1:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
