"""Deterministic, resumable batches shared by every process.

Batch ``b`` of epoch ``e`` is a fixed function of ``(seed, e, b)`` — a slice of a per-epoch
permutation, or a weighted draw with replacement when sample weights are given (dataset mixing).
Each rank loads its own rows of that global batch. Resuming at ``(epoch, batch)`` therefore
continues the exact data stream, and per-sample randomness (crops, masks) can be seeded from the
sample's place in it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import TypeVar

import numpy as np
import torch

from jepa.config import ConfigError
from jepa.data.transforms import VideoTransform
from jepa.data.video import VideoReadError
from jepa.errors import InputError, SkipBudgetError

T = TypeVar("T")


class GlobalBatches:
    def __init__(self, num_samples: int, global_batch: int, seed: int, world_size: int = 1, rank: int = 0,
                 sample_weights: np.ndarray | None = None) -> None:
        if global_batch % world_size:
            raise ConfigError(f"the global batch {global_batch} is not divisible by the {world_size} processes")
        if num_samples < 1:
            raise InputError("no samples to draw batches from (the dataset is empty)")
        self.n, self.global_batch, self.seed = num_samples, global_batch, seed
        self.world_size, self.rank = world_size, rank
        self.weights = sample_weights
        self.per_epoch = max(1, num_samples // global_batch)

    def indices(self, epoch: int, batch: int) -> np.ndarray:
        """Dataset indices ``[global_batch]`` of one global batch."""
        if self.weights is not None:
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, epoch, batch]))
            return rng.choice(self.n, self.global_batch, p=self.weights)
        perm = np.random.default_rng(np.random.SeedSequence([self.seed, epoch])).permutation(self.n)
        if self.n < self.global_batch:
            perm = np.resize(perm, self.global_batch)
        return perm[batch * self.global_batch : (batch + 1) * self.global_batch]

    def local_rows(self) -> range:
        per_rank = self.global_batch // self.world_size
        return range(self.rank * per_rank, (self.rank + 1) * per_rank)

    def stream(self, epoch: int = 0, batch: int = 0) -> Iterator[list[tuple[int, int, int, int]]]:
        """Endless ``[(epoch, batch, row, index), ...]`` lists for this rank, from ``(epoch, batch)`` on."""
        while True:
            idx = self.indices(epoch, batch)
            yield [(epoch, batch, r, int(idx[r])) for r in self.local_rows()]
            batch += 1
            if batch >= self.per_epoch:
                epoch, batch = epoch + 1, 0


class BatchStream:
    """A ``batch_sampler`` for ``DataLoader`` that starts at a saved data position."""

    def __init__(self, batches: GlobalBatches, epoch: int = 0, batch: int = 0) -> None:
        self.batches, self.epoch, self.batch = batches, epoch, batch

    def __iter__(self):
        return self.batches.stream(self.epoch, self.batch)


class SkipBudget:
    """The unreadable items of one dataset over a run (in one process: each DataLoader worker keeps its own).

    An item that failed once is remembered and skipped later without reading it again (and without
    another warning); it still counts in every sample that skips it, so counts do not depend on which
    worker saw it first. Once more than ``max_fraction`` of the ``size`` items are known unreadable,
    :meth:`add` raises :class:`~jepa.errors.SkipBudgetError` naming the count and the last problem.
    """

    def __init__(self, size: int, max_fraction: float = 0.5, what: str = "item") -> None:
        self.size, self.max_fraction, self.what = size, max_fraction, what
        self.bad: dict[int, str] = {}

    def __contains__(self, index: int) -> bool:
        return index in self.bad

    def add(self, index: int, reason: str) -> None:
        self.bad[index] = reason
        if len(self.bad) > self.max_fraction * self.size:
            raise SkipBudgetError(f"too many unreadable {self.what}s: {len(self.bad)} of {self.size} could not be "
                                  f"read, more than max_skip_fraction={self.max_fraction:g} of the dataset; last: "
                                  f"{reason}")


def first_readable(read: Callable[[int], T], index: int, size: int, errors: tuple[type[Exception], ...],
                   what: str, budget: SkipBudget | None = None) -> tuple[T, int]:
    """``(read(i), skipped)`` for the first ``i`` from ``index`` on (wrapping at ``size``) that reads
    without one of ``errors``. Each unreadable item is skipped with a warning naming it (once) and
    recorded in ``budget`` (a fresh one when ``None``), which raises
    :class:`~jepa.errors.SkipBudgetError` once too much of the dataset is unreadable; so does a
    dataset with no readable item at all."""
    budget = budget if budget is not None else SkipBudget(size, what=what)
    last = ""
    for skipped in range(size):
        i = (index + skipped) % size
        if i in budget:
            last = budget.bad[i]
            continue
        try:
            return read(i), skipped
        except errors as e:
            warnings.warn(f"skipping unreadable {what}: {e}", stacklevel=2)
            last = str(e)
            budget.add(i, last)
    raise SkipBudgetError(f"none of the {size} {what}s could be read; last: {last}")


class ClipDataset(torch.utils.data.Dataset):
    """Turns a clip source into transformed samples keyed by ``(epoch, batch, row, index)``.

    An unreadable item is skipped (with a warning naming the file) and replaced by the next index;
    the sample reports how many it skipped. More than ``max_skip_fraction`` of the source unreadable
    stops the run (:class:`SkipBudget`).
    """

    def __init__(self, source, transform: VideoTransform, seed: int, max_skip_fraction: float = 0.5) -> None:
        self.source, self.transform, self.seed = source, transform, seed
        self.budget = SkipBudget(len(source), max_skip_fraction, "clip")

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, key: tuple[int, int, int, int]) -> dict:
        epoch, batch, row, index = key
        seq = np.random.SeedSequence([self.seed, epoch, batch, row])
        rng = np.random.default_rng(seq)
        gen = torch.Generator().manual_seed(int(seq.generate_state(1)[0]))
        frames, skipped = first_readable(lambda i: self.source.frames(i, rng), index, len(self.source),
                                         (VideoReadError,), "clip", self.budget)
        return {"clip": self.transform(frames, gen), "epoch": epoch, "batch": batch, "row": row,
                "skipped": skipped}
