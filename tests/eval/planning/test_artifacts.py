import imageio.v2 as imageio
import numpy as np
import pytest
import torch

from eval.planning.artifacts import energy_grid, plot_curves, plot_energy_landscape, side_by_side, write_episode_gif


def test_energy_grid_minimum_is_at_the_quadratic_optimum():
    target = torch.tensor([0.3, -0.5, 0.0])

    def cost(actions):  # [S, H, A] -> [S]
        return ((actions[:, 0] - target) ** 2).sum(-1)

    xs, ys, e = energy_grid(cost, torch.zeros(3), dims=(0, 1), low=-1, high=1, resolution=21)
    assert e.shape == (21, 21)
    iy, ix = np.unravel_index(np.argmin(e), e.shape)
    assert xs[ix] == pytest.approx(0.3, abs=1e-6)
    assert ys[iy] == pytest.approx(-0.5, abs=1e-6)
    # energies are indexed [y, x]: moving along x changes the first action dim
    assert e[iy, ix + 1] == pytest.approx(0.01, abs=1e-5)


def test_gif_has_one_frame_per_observation_and_shows_the_goal(tmp_path):
    obs = [np.full((8, 8, 3), i * 40, np.uint8) for i in range(4)]
    goal = np.zeros((8, 8, 3), np.uint8)
    goal[..., 0] = 255
    path = write_episode_gif(obs, goal, tmp_path / "ep.gif", scale=1)
    frames = imageio.mimread(path)
    assert len(frames) == 4
    assert frames[0].shape[:2] == (8, 18)
    assert frames[2][:, 10:, 0].min() > 200  # right half is the red goal


def test_side_by_side_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="differ in shape"):
        side_by_side(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8))


def test_plots_are_written(tmp_path):
    xs = np.linspace(-1, 1, 5)
    p = plot_energy_landscape(xs, xs, np.random.rand(5, 5), tmp_path / "e.png", true_best=(0.1, 0.2))
    q = plot_curves({"train": ([0, 1, 2], [3.0, 2.0, 1.0])}, tmp_path / "c.png", "loss", "loss")
    assert p.stat().st_size > 1000 and q.stat().st_size > 1000
