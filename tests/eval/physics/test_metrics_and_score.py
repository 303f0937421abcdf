"""Pairwise accuracy, AUROC and the bench result computed from surprise curves."""

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from eval.physics.metrics import auroc, pairwise_accuracy
from eval.physics.score import BenchResult, PairScore, ScoreConfig, frames_to_clip
from eval.physics.twins import Pair


def test_pairwise_accuracy_counts_ties_half():
    assert pairwise_accuracy([2, 1, 3, 5], [1, 2, 3, 4]) == pytest.approx(0.625)
    with pytest.raises(ValueError, match="equal-length"):
        pairwise_accuracy([1, 2], [1])


def test_auroc_is_the_probability_a_positive_outscores_a_negative():
    rng = np.random.default_rng(0)
    pos, neg = rng.integers(0, 5, 9).astype(float), rng.integers(0, 5, 7).astype(float)  # with ties
    brute = np.mean([(p > n) + 0.5 * (p == n) for p, n in itertools.product(pos, neg)])
    assert auroc(pos, neg) == pytest.approx(brute)
    assert auroc([3, 4], [1, 2]) == 1.0 and auroc([1, 2], [3, 4]) == 0.0
    with pytest.raises(ValueError, match="at least one"):
        auroc([], [1.0])


def _curve(*values):
    return torch.tensor([math.nan, *values])


def test_bench_result_metrics_from_curves():
    def pair(n, violation):
        return Pair(n, violation, 4, n, Path("a.npz"), Path("b.npz"))

    scores = [  # event at step 2 (frame 4, tubelet 2, step 1)
        PairScore(pair(0, "vanish"), _curve(1.0, 1.0, 1.0), _curve(1.0, 3.0, 1.0), 2),  # imp max at step 2
        PairScore(pair(1, "vanish"), _curve(2.0, 1.0, 1.0), _curve(2.0, 1.5, 1.0), 2),  # max tie, mean higher
        PairScore(pair(2, "colour"), _curve(1.0, 2.0, 1.0), _curve(1.0, 1.0, 0.5), 2),  # impossible lower
    ]
    res = BenchResult(scores, predict_steps=1)
    assert set(res.metrics) == {"all", "vanish", "colour"}
    m = res.metrics["all"]
    assert m["pairs"] == 3
    assert m["pairwise_max"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert m["pairwise_mean"] == pytest.approx(2 / 3)
    assert m["localised"] == pytest.approx(1 / 3)  # argmax steps 2, 1, 1; the event window is [2, 3] for k = 1
    assert res.metrics["vanish"]["pairwise_mean"] == 1.0 and res.metrics["colour"]["auroc_max"] == 0.0
    assert res.rows()[0]["impossible_max"] == 3.0 and res.rows()[0]["impossible_argmax"] == 2
    assert len(res.lines()) == 4


def test_frames_to_clip_samples_and_trims_to_tubelets():
    frames = np.arange(11, dtype=np.uint8)[:, None, None, None].repeat(16, 1).repeat(16, 2).repeat(3, 3)
    clip = frames_to_clip(frames, 2, 16, 2)  # frames 0, 2, .., 10 -> 6 kept, 6 is a multiple of 2
    assert clip.shape == (3, 6, 16, 16)
    assert frames_to_clip(frames, 3, 16, 2).shape == (3, 4, 16, 16)  # 0, 3, 6, 9
    with pytest.raises(ValueError, match="no full tubelet"):
        frames_to_clip(frames[:1], 1, 16, 2)
    with pytest.raises(ValueError, match=">= 1"):
        ScoreConfig(frame_step=0)


def test_the_copy_baseline_is_zero_on_a_still_video_and_flags_the_changed_step():
    from eval.physics.score import copy_baseline_curve
    from jepa.hub import freeze
    from jepa.models.vit import build_vit

    torch.manual_seed(0)
    enc = freeze(build_vit("tiny", img_size=16, num_frames=8, patch_size=8, embed_dim=32, depth=1, num_heads=2))
    still = np.random.default_rng(0).integers(0, 255, (1, 16, 16, 3), dtype=np.uint8).repeat(12, 0)
    curve = copy_baseline_curve(enc, still, ScoreConfig(crop_size=16), context_steps=2)
    assert torch.isnan(curve[:2]).all() and torch.allclose(curve[2:], torch.zeros(4), atol=1e-4)
    changed = still.copy()
    changed[8:] = 255 - changed[8:]  # from step 4 on
    curve = copy_baseline_curve(enc, changed, ScoreConfig(crop_size=16), context_steps=2)
    assert curve[4] > 0.1 and torch.allclose(curve[[2, 3, 5]], torch.zeros(3), atol=1e-4)
