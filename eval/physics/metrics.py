"""Metrics of the paired protocol: how often the impossible twin is more surprising, and AUROC."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import rankdata


def pairwise_accuracy(impossible: Sequence[float], possible: Sequence[float]) -> float:
    """Fraction of pairs whose impossible twin scores higher (a tie counts half), in [0, 1].

    ``impossible[i]`` and ``possible[i]`` are the scores of the twins of pair ``i``.
    """
    a, b = np.asarray(impossible, dtype=np.float64), np.asarray(possible, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"need two equal-length, non-empty score lists, got {a.shape} and {b.shape}")
    return float(np.mean((a > b) + 0.5 * (a == b)))


def auroc(positive: Sequence[float], negative: Sequence[float]) -> float:
    """Area under the ROC curve of scores separating ``positive`` from ``negative`` samples.

    The probability that a random positive scores above a random negative (ties count half), from the
    Mann-Whitney rank sum; 0.5 is chance, 1 a perfect separation.
    """
    pos, neg = np.asarray(positive, dtype=np.float64), np.asarray(negative, dtype=np.float64)
    if pos.size == 0 or neg.size == 0:
        raise ValueError("AUROC needs at least one positive and one negative score")
    ranks = rankdata(np.concatenate([pos, neg]))
    u = ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2
    return float(u / (pos.size * neg.size))
