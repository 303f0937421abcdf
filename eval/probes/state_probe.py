"""Does a frozen encoder see the object? A linear (ridge) probe from its tokens to the simulator state.

Planning from goal images can only move an object the energy can see. This probe asks it directly:
frames of a collected trajectory dataset are encoded by a world model's frozen encoder (the tokens
the planner's energy compares, ``[N, D]`` per frame, flattened), and a ridge regression is fitted
from them to

- the **object** (PushT: block x, y and the angle as sin/cos; FetchPush: the object's x, y), read
  from the env after restoring each frame's saved simulator state, and
- the **agent** (the recorded proprioceptive state: pusher or gripper),

on the frames of one dataset and scored (R^2 per target) on the frames of another, e.g. the
suite's held-out ``eval_clips``. The same probe on the raw pixels (downsampled) is the baseline an
encoder has to beat. The ridge is solved in its dual form (``n x n`` kernel), its strength chosen
on a held-out fifth of the training frames.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from jepa.data.trajectories import Episode, TrajectoryDataset
from jepa.errors import InputError

LAMBDAS = tuple(10.0 ** k for k in range(-4, 4))  # ridge strengths, relative to the kernel's mean diagonal


@dataclass
class ProbeFrames:
    """Sampled frames ``[n, H, W, 3]`` uint8 with their targets ``{name: [n, k]}``."""

    frames: np.ndarray
    targets: dict[str, np.ndarray]


def object_reader(env, angle_columns: Sequence[int] = ()) -> Callable[[np.ndarray], np.ndarray]:
    """``sim_state -> object target``: restores the state into ``env`` and reads the object's pose
    (``env.block_pose()`` where the env has one, else the first two of ``env.achieved_position()``);
    the columns in ``angle_columns`` become ``(sin, cos)`` pairs, so a probe need not wrap angles."""
    method = getattr(env, "block_pose", None) or (lambda: env.achieved_position()[:2])

    def read(sim_state: np.ndarray) -> np.ndarray:
        env.set_sim_state(sim_state)
        pose = np.asarray(method(), dtype=np.float64)
        keep = [pose[i:i + 1] for i in range(pose.shape[0]) if i not in angle_columns]
        angles = [np.array([np.sin(pose[i]), np.cos(pose[i])]) for i in angle_columns]
        return np.concatenate(keep + angles)

    return read


def sample_frames(root: str, every: int, max_frames: int, read_object: Callable[[np.ndarray], np.ndarray]
                  ) -> ProbeFrames:
    """Every ``every``-th frame of each episode of the dataset at ``root``, at most ``max_frames``,
    with ``{"object": ..., "agent": the recorded state}``. Needs the episodes' ``sim_states``."""
    data = TrajectoryDataset(root)
    frames, objects, agents = [], [], []
    for i in range(len(data)):
        ep: Episode = data.load(i)
        if ep.sim_states is None:
            raise InputError(f"{root}: episode {i} has no sim_states; collect it with `jepa collect` "
                             "(the object's state is read from them)")
        for t in range(0, len(ep), every):
            frames.append(ep.frames[t])
            objects.append(read_object(ep.sim_states[t]))
            agents.append(ep.states[t].astype(np.float64))
            if len(frames) == max_frames:
                break
        if len(frames) == max_frames:
            break
    return ProbeFrames(np.stack(frames), {"object": np.stack(objects), "agent": np.stack(agents)})


@torch.no_grad()
def encoder_features(encode: Callable[[np.ndarray], torch.Tensor], frames: np.ndarray, batch: int = 256
                     ) -> np.ndarray:
    """``encode(uint8 [b, H, W, 3]) -> [b, N, D]`` over ``frames`` -> flattened ``[n, N * D]`` float64."""
    out = [encode(frames[i:i + batch]).flatten(1).double().cpu().numpy() for i in range(0, len(frames), batch)]
    return np.concatenate(out)


def pixel_features(frames: np.ndarray, size: int = 16) -> np.ndarray:
    """The baseline: frames average-pooled to ``size x size`` RGB in [0, 1] -> ``[n, 3 * size^2]``."""
    x = torch.as_tensor(frames).permute(0, 3, 1, 2).float() / 255.0
    return F.adaptive_avg_pool2d(x, size).flatten(1).double().numpy()


def _dual_ridge(k_train: np.ndarray, y: np.ndarray, k_cross: np.ndarray, lambdas: Sequence[float]) -> list[np.ndarray]:
    """Predictions ``[m, k]`` for each ridge strength, from the centred train kernel ``[n, n]``, centred
    targets ``[n, k]`` and the cross kernel ``[m, n]`` (one eigendecomposition for all strengths)."""
    s, v = np.linalg.eigh(k_train)
    vy = v.T @ y
    scale = max(float(np.mean(np.diag(k_train))), 1e-12)
    return [k_cross @ (v @ (vy / (s + lam * scale)[:, None])) for lam in lambdas]


def r2_scores(pred: np.ndarray, y: np.ndarray) -> np.ndarray:
    """R^2 per column; ``nan`` for a column that does not vary."""
    var = y.var(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(var > 1e-12, 1.0 - ((pred - y) ** 2).mean(0) / var, np.nan)


def ridge_probe(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                lambdas: Sequence[float] = LAMBDAS, seed: int = 0) -> dict:
    """Fit ridge ``x -> y`` on the train rows, the strength chosen per target column on a random fifth
    of them, then refitted on all of them; returns ``{"r2": [k] test R^2, "lambda": [k] strengths}``."""
    if len(x_train) < 10:
        raise InputError(f"a ridge probe needs at least 10 training frames, got {len(x_train)}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x_train))
    val, fit = order[: len(order) // 5], order[len(order) // 5:]

    def predict(rows: np.ndarray, x_eval: np.ndarray) -> np.ndarray:
        mx, my = x_train[rows].mean(0), y_train[rows].mean(0)
        a, b = x_train[rows] - mx, x_eval - mx
        return np.stack([p + my for p in _dual_ridge(a @ a.T, y_train[rows] - my, b @ a.T, lambdas)])  # [L, m, k]

    val_r2 = np.stack([r2_scores(p, y_train[val]) for p in predict(fit, x_train[val])])  # [L, k]
    best = np.nanargmax(np.where(np.isnan(val_r2), -np.inf, val_r2), axis=0)  # [k]
    pred = predict(np.arange(len(x_train)), x_test)  # [L, m, k]
    chosen = pred[best, :, np.arange(y_train.shape[1])].T  # [m, k]
    return {"r2": r2_scores(chosen, y_test).tolist(), "lambda": [float(lambdas[i]) for i in best]}
