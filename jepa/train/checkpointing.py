"""Training checkpoints: atomic ``latest.pt`` (+ numbered copies), exact resume including RNG state.

A checkpoint is a dict of named parts: model state dicts, ``optimizer``, ``step``, ``data``
(``{"epoch", "batch"}`` — the next batch to load), ``rng`` (python, numpy, torch CPU [and CUDA]) and
``config``. It is written to a temporary file, fsynced and renamed, so a crash mid-write leaves the
previous checkpoint intact.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from jepa.checkpoints import CheckpointError, atomic_torch_save


def rng_state() -> dict:
    """RNG states in plain types and tensors, so checkpoints load with ``weights_only=True``."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    numpy_state = {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                   "has_gauss": int(has_gauss), "cached": float(cached)}
    state = {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Checkpointer:
    """Writes ``run_dir/latest.pt`` every ``every`` steps (and on demand); keeps ``keep`` numbered copies."""

    def __init__(self, run_dir: str | Path, every: int, keep: int = 0) -> None:
        self.run_dir = Path(run_dir)
        self.every, self.keep = every, keep
        self._loaded: tuple[dict | None] | None = None  # the checkpoint read at start, read once
        self.extra: dict = {}  # parts added to every checkpoint (the dataset identity, by jepa.train.resume)

    @property
    def latest(self) -> Path:
        return self.run_dir / "latest.pt"

    def due(self, step: int) -> bool:
        return self.every > 0 and step % self.every == 0

    def save(self, payload: dict, step: int) -> Path:
        """Write ``payload`` as ``latest.pt`` (and ``stepNNNNNNNN.pt`` with ``keep``), atomically: a full
        disk leaves the previous checkpoint as it was (:class:`~jepa.errors.OutputError`)."""
        payload = {**payload, **self.extra}
        atomic_torch_save(payload, self.latest)
        if self.keep > 0:
            atomic_torch_save(payload, self.run_dir / f"step{step:08d}.pt")
            numbered = sorted(self.run_dir.glob("step*.pt"))
            for old in numbered[: -self.keep]:
                old.unlink()
        return self.latest

    def load(self) -> dict | None:
        """The checkpoint to resume from (read once, then cached), or None when the run has none."""
        if self._loaded is None:
            self._loaded = (self._read(),)
        return self._loaded[0]

    def _read(self) -> dict | None:
        if not self.latest.exists():
            return None
        try:
            payload = torch.load(self.latest, map_location="cpu", weights_only=True)
        except Exception as e:
            raise CheckpointError(f"{self.latest}: cannot resume, the file is damaged or not a checkpoint "
                                  f"({type(e).__name__}: {str(e)[:300]}); delete it to start over") from None
        missing = [k for k in ("step", "data", "rng", "optimizer") if not isinstance(payload, dict) or k not in payload]
        if missing:
            raise CheckpointError(f"{self.latest}: not a training checkpoint of this run (lacks {missing})")
        return payload
