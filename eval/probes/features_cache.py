"""Frozen-backbone features computed once and stored on disk, so probes train without re-encoding.

Layout of a cache folder (format ``jepa-feature-cache``, version 1)::

    index.json                 format, version, feature shape/dtype, label names, meta, shards
    shard_00000.safetensors    "features" [n, V, N, D]; "label.<name>" [n] int64 per label

``index.json`` lists each shard's file and the sample keys it holds, in order. ``V`` is the number of
views per sample (1 for anticipation; spatial crops for classification), ``N`` the tokens per view,
``D`` the width. The index is written last (temp file + rename), so a folder without one is an
unfinished cache and is rebuilt.

Samples come from a dataset whose items are ``{"key": str, "clips": [V, C, 3, T, H, W], "labels":
{name: int}}`` or :class:`Skipped`; the ``C`` clips of a view are encoded separately and their
tokens concatenated (``[V, C * N, D]``), as the released multi-clip evaluation.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor
from tqdm import tqdm

from jepa.checkpoints import atomic_write

FORMAT, VERSION = "jepa-feature-cache", 1


class FeatureCacheError(ValueError):
    """A cache folder is missing, incomplete or inconsistent."""


@dataclass(frozen=True)
class Skipped:
    """A dataset item that could not be read; ``reason`` names the file and the problem."""

    key: str
    reason: str


def collate_skipping(items: list) -> tuple[dict | None, list[Skipped]]:
    """Batch the readable items (``clips`` stacked to ``[B, V, C, 3, T, H, W]``) and return the skips."""
    skipped = [it for it in items if isinstance(it, Skipped)]
    good = [it for it in items if not isinstance(it, Skipped)]
    if not good:
        return None, skipped
    batch = {
        "key": [it["key"] for it in good],
        "clips": torch.stack([it["clips"] for it in good]),
        "labels": {n: torch.tensor([it["labels"][n] for it in good]) for n in good[0]["labels"]},
    }
    return batch, skipped


@dataclass
class FeatureSet:
    """Features ``[M, V, N, D]``, labels ``{name: [M]}`` and sample keys, all in memory."""

    features: Tensor
    labels: dict[str, Tensor]
    keys: list[str]
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.keys)


class FeatureCacheWriter:
    """Append samples (``add``) and ``close()`` to write the last shard and the index."""

    def __init__(self, root: str | Path, shard_size: int = 256, meta: Mapping | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.shard_size, self.meta = shard_size, dict(meta or {})
        self.shards: list[dict] = []
        self._feats: list[Tensor] = []
        self._keys: list[str] = []
        self._labels: dict[str, list[int]] = {}
        self.shape: tuple[int, ...] | None = None
        self.dtype: torch.dtype | None = None

    def add(self, key: str, features: Tensor, labels: Mapping[str, int]) -> None:
        """Store one sample's ``features [V, N, D]`` with its integer ``labels``."""
        if features.dim() != 3:
            raise ValueError(f"{key}: features must be [V, N, D], got shape {tuple(features.shape)}")
        if self.shape is None:
            self.shape, self.dtype = tuple(features.shape), features.dtype
            self._labels = {n: [] for n in labels}
        if tuple(features.shape) != self.shape:
            raise ValueError(f"{key}: features {tuple(features.shape)} differ from the cache's {self.shape}")
        if set(labels) != set(self._labels):
            raise ValueError(f"{key}: labels {sorted(labels)} differ from the cache's {sorted(self._labels)}")
        self._feats.append(features.detach().to("cpu", self.dtype))
        self._keys.append(key)
        for n, v in labels.items():
            self._labels[n].append(int(v))
        if len(self._keys) == self.shard_size:
            self._flush()

    def _flush(self) -> None:
        from safetensors.torch import save_file

        if not self._keys:
            return
        name = f"shard_{len(self.shards):05d}.safetensors"
        tensors = {"features": torch.stack(self._feats).contiguous()}
        tensors.update({f"label.{n}": torch.tensor(v, dtype=torch.int64) for n, v in self._labels.items()})
        save_file(tensors, str(self.root / name))
        self.shards.append({"file": name, "keys": list(self._keys)})
        self._feats, self._keys = [], []
        self._labels = {n: [] for n in self._labels}

    def close(self) -> Path:
        """Write the pending shard and ``index.json``; returns the index path."""
        self._flush()
        if not self.shards:
            raise FeatureCacheError(f"{self.root}: no sample was written to the feature cache")
        index = {
            "format": FORMAT, "version": VERSION, "feature_shape": list(self.shape),
            "dtype": str(self.dtype).removeprefix("torch."), "label_names": list(self._labels),
            "meta": self.meta, "shards": self.shards,
        }
        path = self.root / "index.json"
        _write_index(path, index)
        return path


def _write_index(path: Path, index: dict) -> None:
    text = json.dumps(index, indent=1).encode()
    atomic_write(path, lambda f: f.write(text))


class FeatureCache:
    """A finished cache folder; ``load()`` reads every shard into a :class:`FeatureSet`."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        path = self.root / "index.json"
        if not path.is_file():
            raise FeatureCacheError(f"{path}: no feature cache index (missing or unfinished cache)")
        try:
            self.index = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise FeatureCacheError(f"{path}: not valid JSON ({e})") from None
        if self.index.get("format") != FORMAT or self.index.get("version") != VERSION:
            found = (self.index.get("format"), self.index.get("version"))
            raise FeatureCacheError(f"{path}: not a {FORMAT} v{VERSION} index (format, version = {found})")

    @staticmethod
    def exists(root: str | Path) -> bool:
        return (Path(root) / "index.json").is_file()

    @property
    def keys(self) -> list[str]:
        return [k for s in self.index["shards"] for k in s["keys"]]

    @property
    def meta(self) -> dict:
        return dict(self.index.get("meta", {}))

    def __len__(self) -> int:
        return sum(len(s["keys"]) for s in self.index["shards"])

    def update_meta(self, **values) -> None:
        """Add ``values`` to the index's ``meta`` (rewritten atomically)."""
        self.index["meta"] = {**self.index.get("meta", {}), **values}
        _write_index(self.root / "index.json", self.index)

    def load(self) -> FeatureSet:
        from safetensors.torch import load_file

        feats, labels = [], {n: [] for n in self.index["label_names"]}
        shape = tuple(self.index["feature_shape"])
        for shard in self.index["shards"]:
            path = self.root / shard["file"]
            if not path.is_file():
                raise FeatureCacheError(f"{path}: shard listed in the index is missing")
            t = load_file(str(path))
            f = t["features"]
            if tuple(f.shape[1:]) != shape or f.shape[0] != len(shard["keys"]):
                raise FeatureCacheError(f"{path}: features {tuple(f.shape)} do not match the index "
                                        f"({len(shard['keys'])} x {shape})")
            feats.append(f)
            for n in labels:
                if f"label.{n}" not in t:
                    raise FeatureCacheError(f"{path}: label {n!r} is missing")
                labels[n].append(t[f"label.{n}"])
        merged = {n: torch.cat(v) for n, v in labels.items()}
        return FeatureSet(torch.cat(feats), merged, self.keys, self.meta)


@dataclass
class CacheSummary:
    written: int = 0
    skipped: list[Skipped] = field(default_factory=list)


@torch.no_grad()
def encode_clips(encoder: Callable[[Tensor], Tensor], clips: Tensor) -> Tensor:
    """``clips [B, V, C, 3, T, H, W]`` -> tokens ``[B, V, C * N, D]`` (the C clips' tokens concatenated)."""
    b, v, c = clips.shape[:3]
    tokens = encoder(clips.flatten(0, 2))
    return tokens.reshape(b, v, c * tokens.shape[1], tokens.shape[2])


def build_feature_cache(
    encoder: Callable[[Tensor], Tensor],
    dataset: torch.utils.data.Dataset,
    root: str | Path,
    batch_size: int = 4,
    num_workers: int = 0,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float16,
    meta: Mapping | None = None,
    shard_size: int = 256,
    progress: bool = True,
    desc: str | None = None,
) -> CacheSummary:
    """Encode every readable item of ``dataset`` with the frozen ``encoder`` and write the cache at ``root``.

    Unreadable items (:class:`Skipped`) are counted and reported on stderr. ``dtype`` is the storage
    precision (float16 halves the disk use; the probes compute in float32). On CUDA the encoder runs
    under bf16 autocast.
    """
    device = torch.device(device)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=num_workers,
                                         collate_fn=collate_skipping)
    writer = FeatureCacheWriter(root, shard_size=shard_size, meta=meta)
    summary = CacheSummary()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    for batch, skipped in tqdm(loader, desc=desc or f"features -> {Path(root).name}", unit="batch",
                               disable=not progress):
        for s in skipped:
            print(f"skipped: {s.reason}", file=sys.stderr)
        summary.skipped.extend(skipped)
        if batch is None:
            continue
        with autocast:
            tokens = encode_clips(encoder, batch["clips"].to(device)).float().cpu()
        for i, key in enumerate(batch["key"]):
            writer.add(key, tokens[i].to(dtype), {n: int(v[i]) for n, v in batch["labels"].items()})
            summary.written += 1
    writer.close()
    return summary
