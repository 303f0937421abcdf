"""The feature cache: what a frozen encoder made of a dataset, stored once and reused until it is stale.

It is the one cache of encoder outputs in the project: AC training (``jepa train-ac``: the
layer-normed tokens of every frame of every episode), the frozen-feature probes (``eval.probes``,
``eval.anticipation``: the tokens of every clip) and ``jepa features`` (one file per video) all
write and read it. It lives in :mod:`jepa.data` because it is a dataset format, like the trajectory
format: entries keyed like the dataset they were made from, with the identity of the data they came
from and of the encoder that made them.

Layout of a cache folder (format ``jepa-feature-cache``, version 2)::

    ROOT/index.json             format, version, identity, entries (in order), meta
    ROOT/<name>.safetensors     one file per entry: its named tensors (e.g. "z" [T, N, D])

An entry's ``name`` is its key when the key is a plain relative path (``cam1/clip.mp4``,
``episodes/000003.npz``, a narration id), else a sanitised key plus a hash of it, so two keys never
share a file.

When is it stale? Two levels, both compared exactly:

- the cache's ``identity``, what every entry depends on: :func:`encoder_identity` (a sha256 over the
  names, dtypes, shapes and bytes of every tensor of the encoder's state dict, plus its modules'
  architectures) and the preprocessing (image size, frames, transform settings, layers taken,
  precision, storage dtype). Any difference makes every entry stale: the listed files are removed;
- each entry's ``source``, what identifies its input: e.g. the episode's index entry with the file's
  size and modification time (:func:`file_identity`), or a video's path, size and modification time
  with the annotation of the segment. A different source makes that entry stale; the others are reused.

An unreadable input is recorded as skipped with its reason and source, so a re-run counts the same
skips without reading again and retries once the input changes. Entry files are written atomically
(temp file + rename) and the index last (and every ``commit_every`` entries), so an interrupted build
leaves a cache whose listed entries are complete.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn
from tqdm import tqdm

from jepa.errors import JepaError
from jepa.files import atomic_write

FORMAT, VERSION = "jepa-feature-cache", 2
_PLAIN_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\- ]*$")


class FeatureCacheError(JepaError, ValueError):
    """A cache folder or one of its entries is missing or inconsistent (the message names the file)."""


@dataclass(frozen=True)
class Skipped:
    """A dataset item that could not be read; ``reason`` names the file and the problem."""

    key: str
    reason: str


# ------------------------------------------------------------------------------------------ identity

def weights_sha256(module: nn.Module) -> str:
    """sha256 over every state-dict tensor of ``module``: its name, dtype, shape and raw bytes."""
    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def encoder_identity(module: nn.Module) -> dict:
    """What fixes a frozen module's function: the hash of its weights, its class and the ``arch``
    (constructor arguments) of every submodule that records one."""
    archs = {name or "": m.arch for name, m in module.named_modules() if isinstance(getattr(m, "arch", None), dict)}
    return {"class": type(module).__name__, "arch": archs, "weights": weights_sha256(module)}


def file_identity(path: str | Path, root: str | Path | None = None) -> dict:
    """``{"path", "size", "mtime_ns"}`` of a file (``path`` relative to ``root`` when given), or
    ``{"path", "missing": True}``."""
    path = Path(path)
    shown = path.relative_to(root).as_posix() if root is not None else str(path)
    try:
        st = path.stat()
    except OSError:
        return {"path": shown, "missing": True}
    return {"path": shown, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _plain(value: Any) -> Any:
    """``value`` as stored in JSON (tuples become lists), so equal settings compare equal."""
    return json.loads(json.dumps(value))


def entry_name(key: str) -> str:
    """The entry's file name (without ``.safetensors``): ``key`` itself when it is a plain relative
    path, else a sanitised key plus a hash of it."""
    parts = key.split("/")
    if all(_PLAIN_PART.match(p) for p in parts) and len(key) <= 200:
        return key
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", key).strip("._")[-80:] or "entry"
    return f"{stem}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


# ------------------------------------------------------------------------------------------ the cache

class FeatureCache:
    """A cache folder for one ``identity`` (see the module docstring).

    Opening it with another identity (or over an unfinished or older cache) starts it empty and
    removes the files the old index listed. ``put``/``put_skipped`` add entries; ``commit`` writes the
    index. ``get(key)`` reads an entry's tensors.
    """

    def __init__(self, root: str | Path, identity: Mapping, meta: Mapping | None = None,
                 commit_every: int = 1000) -> None:
        self.root = Path(root)
        self.identity = _plain(dict(identity))
        self.commit_every = commit_every
        self.entries: dict[str, dict] = {}
        self.meta = dict(meta or {})
        self._pending = 0
        old = self._read_index()
        if old is not None and old.get("version") == VERSION and old.get("identity") == self.identity:
            self.entries = {e["key"]: e for e in old["entries"]}
        elif old is not None:
            self._remove_listed(old)

    @classmethod
    def read(cls, root: str | Path) -> FeatureCache:
        """An existing cache as it is, whatever its identity (to read what another run wrote)."""
        cache = cls.__new__(cls)
        cache.root, cache.commit_every, cache._pending = Path(root), 1000, 0
        index = cache._read_index()
        if index is None or index.get("version") != VERSION:
            raise FeatureCacheError(f"{cache.root / 'index.json'}: no {FORMAT} v{VERSION} index (missing or "
                                    "unfinished)")
        cache.identity, cache.meta = index["identity"], dict(index.get("meta", {}))
        cache.entries = {e["key"]: e for e in index["entries"]}
        return cache

    def _read_index(self) -> dict | None:
        path = self.root / "index.json"
        if not path.is_file():
            return None
        try:
            index = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            print(f"feature cache {path}: unreadable index ({e}); rebuilding", file=sys.stderr)
            return None
        if not isinstance(index, dict) or index.get("format") != FORMAT:
            raise FeatureCacheError(f"{path}: not a {FORMAT} index; give the cache a folder of its own")
        return index

    def _remove_listed(self, index: dict) -> None:
        files = [e.get("file") for e in index.get("entries", [])] + [s.get("file") for s in index.get("shards", [])]
        for name in filter(None, files):
            path = (self.root / name).resolve()
            if path.is_relative_to(self.root.resolve()):
                path.unlink(missing_ok=True)
        (self.root / "index.json").unlink(missing_ok=True)

    # ----------------------------------------------------------------------------- entries

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def written(self) -> list[str]:
        """Keys of the entries that hold tensors (not the recorded skips), in the order they were added."""
        return [k for k, e in self.entries.items() if "file" in e]

    def fresh(self, key: str, source: Mapping) -> bool:
        """Whether ``key`` is cached (written or skipped) from this ``source``."""
        entry = self.entries.get(key)
        return entry is not None and entry["source"] == _plain(dict(source))

    def skipped(self, key: str) -> str | None:
        """The reason ``key`` was recorded as unreadable, or ``None``."""
        entry = self.entries.get(key)
        return None if entry is None else entry.get("skipped")

    def path(self, key: str) -> Path:
        """The file of a written entry."""
        return self.root / self.entries[key]["file"]

    def put(self, key: str, tensors: Mapping[str, Tensor], source: Mapping,
            metadata: Mapping[str, str] | None = None) -> Path:
        """Write ``key``'s tensors (atomically) and list the entry; ``metadata`` goes into the file."""
        from safetensors.torch import save

        file = f"{entry_name(key)}.safetensors"
        data = save({k: t.detach().cpu().contiguous() for k, t in tensors.items()},
                    metadata={"key": key, **dict(metadata or {})})
        path = self.root / file
        atomic_write(path, lambda f: f.write(data))
        self._list(key, {"key": key, "file": file, "source": _plain(dict(source)),
                         "tensors": {k: [str(t.dtype).removeprefix("torch."), list(t.shape)]
                                     for k, t in tensors.items()}})
        return path

    def put_skipped(self, key: str, reason: str, source: Mapping) -> None:
        """Record ``key`` as unreadable from this ``source``."""
        self._list(key, {"key": key, "skipped": reason, "source": _plain(dict(source))})

    def _list(self, key: str, entry: dict) -> None:
        self.entries.pop(key, None)
        self.entries[key] = entry
        self._pending += 1
        if self._pending >= self.commit_every:
            self.commit()

    def get(self, key: str) -> dict[str, Tensor]:
        """The tensors of a written entry."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        entry = self.entries.get(key)
        if entry is None or "file" not in entry:
            raise FeatureCacheError(f"{self.root}: no features cached for {key!r}")
        path = self.root / entry["file"]
        try:
            out = load_file(str(path))
        except (OSError, SafetensorError) as e:
            raise FeatureCacheError(f"{path}: unreadable feature file ({e}); delete {self.root} to rebuild") from None
        if set(out) != set(entry["tensors"]):
            raise FeatureCacheError(f"{path}: holds {sorted(out)}, the index lists {sorted(entry['tensors'])}")
        return out

    def commit(self) -> Path:
        """Write ``index.json`` (atomically); returns its path."""
        index = {"format": FORMAT, "version": VERSION, "identity": self.identity,
                 "entries": list(self.entries.values()), "meta": self.meta}
        text = json.dumps(index, indent=1).encode()
        path = self.root / "index.json"
        atomic_write(path, lambda f: f.write(text))
        self._pending = 0
        return path


# ------------------------------------------------------------------------------------------ filling it

class CacheItems(Protocol):
    """What :func:`fill_cache` encodes: ``len``, a ``key(i)`` and a ``source(i)`` known without reading
    the data, and ``items[i]``: a dict for the encoder, or :class:`Skipped`."""

    def __len__(self) -> int: ...

    def key(self, i: int) -> str: ...

    def source(self, i: int) -> dict: ...

    def __getitem__(self, i: int) -> dict | Skipped: ...


@dataclass
class FillSummary:
    encoded: int = 0
    reused: int = 0
    skipped: list[Skipped] = field(default_factory=list)  # this run's and recorded ones, in item order


class _Subset(torch.utils.data.Dataset):
    def __init__(self, items: CacheItems, indices: Sequence[int]) -> None:
        self.items, self.indices = items, list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, j: int) -> dict | Skipped:
        return self.items[self.indices[j]]


def _as_list(batch: list) -> list:
    return batch


def fill_cache(cache: FeatureCache, items: CacheItems, encode: Callable[[list[dict]], list[dict[str, Tensor]]],
               batch_size: int = 1, num_workers: int = 0, progress: bool = True, desc: str = "features",
               metadata: Callable[[dict], dict] | None = None) -> FillSummary:
    """Encode every item of ``items`` whose entry is missing or stale, and commit the index.

    ``encode(batch)`` maps a list of readable items (at most ``batch_size``, loaded by a
    ``DataLoader`` with ``num_workers``) to one ``{name: tensor}`` per item. Unreadable items
    (:class:`Skipped`) are reported on stderr and recorded. ``metadata(item)`` adds text metadata to
    an entry's file.
    """
    keys = [items.key(i) for i in range(len(items))]
    if len(set(keys)) != len(keys):
        dup = sorted(k for k, n in Counter(keys).items() if n > 1)[:3]
        raise FeatureCacheError(f"{cache.root}: keys must be unique, e.g. {dup} repeat")
    sources = [items.source(i) for i in range(len(items))]
    todo = [i for i in range(len(items)) if not cache.fresh(keys[i], sources[i])]
    summary = FillSummary(reused=len(items) - len(todo))
    loader = torch.utils.data.DataLoader(_Subset(items, todo), batch_size=batch_size, num_workers=num_workers,
                                         collate_fn=_as_list)
    done = 0
    with tqdm(loader, desc=desc, unit="batch", disable=not progress or not todo) as bar:
        for batch in bar:
            picked = todo[done : done + len(batch)]
            done += len(batch)
            good = [(i, it) for i, it in zip(picked, batch) if not isinstance(it, Skipped)]
            for i, it in zip(picked, batch):
                if isinstance(it, Skipped):
                    print(f"skipped: {it.reason}", file=sys.stderr)
                    cache.put_skipped(keys[i], it.reason, sources[i])
            if good:
                for (i, it), tensors in zip(good, encode([it for _, it in good])):
                    cache.put(keys[i], tensors, sources[i], metadata(it) if metadata else None)
                    summary.encoded += 1
    if todo or not (cache.root / "index.json").is_file():  # a cache that is up to date is not rewritten
        cache.commit()
    summary.skipped = [Skipped(k, cache.skipped(k)) for k in keys if cache.skipped(k) is not None]
    return summary
