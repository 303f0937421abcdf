"""The one feature cache: reused while nothing changed, stale when the encoder's weights, the
preprocessing or one input changes (and then only what depends on it is encoded again)."""

import os

import numpy as np
import pytest
import torch

from jepa.data.feature_cache import (
    FeatureCache,
    FeatureCacheError,
    Skipped,
    encoder_identity,
    entry_name,
    fill_cache,
    weights_sha256,
)
from jepa.data.trajectories import TrajectoryWriter
from jepa.train.ac import encode_dataset
from tests.helpers import make_world_model


class Items:
    """Toy cache items: item i is the vector ``values[i]``; ``None`` stands for an unreadable file."""

    def __init__(self, values, versions=None):
        self.values = values
        self.versions = versions or [0] * len(values)

    def __len__(self):
        return len(self.values)

    def key(self, i):
        return f"item{i}"

    def source(self, i):
        return {"version": self.versions[i]}

    def __getitem__(self, i):
        if self.values[i] is None:
            return Skipped(self.key(i), f"item{i}: unreadable")
        return {"x": torch.tensor(self.values[i], dtype=torch.float32)}


class Counting:
    def __init__(self, scale=2.0):
        self.calls, self.scale = [], scale

    def __call__(self, batch):
        self.calls.append(len(batch))
        return [{"y": self.scale * it["x"]} for it in batch]


def test_entries_are_reused_until_their_source_changes(tmp_path):
    items, enc = Items([[1.0], [2.0], None, [4.0]]), Counting()
    s = fill_cache(FeatureCache(tmp_path / "c", {"enc": 1}), items, enc, batch_size=2, progress=False)
    assert (s.encoded, s.reused, [k.key for k in s.skipped]) == (3, 0, ["item2"])
    again = Counting()
    cache = FeatureCache(tmp_path / "c", {"enc": 1})
    s = fill_cache(cache, items, again, progress=False)
    assert again.calls == [] and (s.encoded, s.reused, len(s.skipped)) == (0, 4, 1)  # skips are remembered
    assert cache.get("item3")["y"].tolist() == [8.0] and cache.written() == ["item0", "item1", "item3"]
    items.values[1], items.versions[1] = [5.0], 1  # one input changed
    once = Counting()
    cache = FeatureCache(tmp_path / "c", {"enc": 1})
    s = fill_cache(cache, items, once, progress=False)
    assert once.calls == [1] and (s.encoded, s.reused) == (1, 3)
    assert cache.get("item1")["y"].tolist() == [10.0] and cache.get("item0")["y"].tolist() == [2.0]


def test_another_identity_makes_every_entry_stale_and_removes_the_old_files(tmp_path):
    items = Items([[1.0], [2.0]])
    fill_cache(FeatureCache(tmp_path / "c", {"enc": 1}), items, Counting(), progress=False)
    assert sorted(p.name for p in (tmp_path / "c").glob("*.safetensors")) == ["item0.safetensors",
                                                                              "item1.safetensors"]
    fill_cache(FeatureCache(tmp_path / "c", {"enc": 1}), Items([[3.0]]), Counting(), progress=False)
    enc = Counting(scale=3.0)
    cache = FeatureCache(tmp_path / "c", {"enc": 2})
    assert len(cache) == 0
    fill_cache(cache, Items([[3.0]]), enc, progress=False)
    assert enc.calls == [1] and cache.get("item0")["y"].tolist() == [9.0]
    assert not (tmp_path / "c" / "item1.safetensors").exists()  # listed by the stale index: removed


def test_the_index_is_not_rewritten_when_nothing_changed(tmp_path):
    items = Items([[1.0]])
    fill_cache(FeatureCache(tmp_path / "c", {"a": [1, 2]}), items, Counting(), progress=False)
    before = (tmp_path / "c" / "index.json").stat().st_mtime_ns
    fill_cache(FeatureCache(tmp_path / "c", {"a": (1, 2)}), items, Counting(), progress=False)  # tuple == list
    assert (tmp_path / "c" / "index.json").stat().st_mtime_ns == before


def test_entry_names_stay_inside_the_cache_and_never_collide(tmp_path):
    assert entry_name("cam1/clip.mp4") == "cam1/clip.mp4" and entry_name("P01_01_3") == "P01_01_3"
    odd = ["/abs/clip.mp4", "abs/clip.mp4", "../up.mp4", "a/../b", "", "a b/ü.mp4"]
    names = [entry_name(k) for k in odd]
    assert len(set(names)) == len(odd)
    assert all(".." not in n.split("/") and not n.startswith("/") and n for n in names)
    cache = FeatureCache(tmp_path / "c", {})
    for k in odd:
        assert cache.put(k, {"t": torch.zeros(1)}, {}).resolve().is_relative_to((tmp_path / "c").resolve())


def test_keys_must_be_unique_and_a_foreign_index_is_not_overwritten(tmp_path):
    class Same(Items):
        def key(self, i):
            return "same"

    with pytest.raises(FeatureCacheError, match="unique"):
        fill_cache(FeatureCache(tmp_path / "c", {}), Same([[1.0], [2.0]]), Counting(), progress=False)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "index.json").write_text('{"episodes": []}')
    with pytest.raises(FeatureCacheError, match="folder of its own"):
        FeatureCache(tmp_path / "mine", {})


def test_the_weight_hash_sees_one_changed_weight():
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    before = weights_sha256(m)
    assert weights_sha256(m) == before and len(before) == 64
    with torch.no_grad():
        m[0].weight[2, 1] += 1e-6
    assert weights_sha256(m) != before
    assert encoder_identity(m)["weights"] == weights_sha256(m)


# ------------------------------------------------------------------------------------------ AC features

def _dataset(root, episodes=3, length=5, seed=0):
    rng = np.random.default_rng(seed)
    w = TrajectoryWriter(root, {"env": "test", "fps": 10, "image_size": 32, "state_dim": 4, "action_dim": 4})
    entries = [w.write_episode(i, rng.integers(0, 255, (length, 32, 32, 3), dtype=np.uint8),
                               rng.normal(size=(length, 4)).astype(np.float32),
                               rng.normal(size=(length - 1, 4)).astype(np.float32)) for i in range(episodes)]
    w.add(entries)
    return root


class _CountEncode:
    def __init__(self, world):
        self.world, self.real, self.frames = world, world.encode, 0

    def __call__(self, images):
        self.frames += len(images)
        return self.real(images)


def _encode(world, root, cache):
    counter = _CountEncode(world)
    world.encode = counter
    try:
        feats = encode_dataset(world, str(root), 4, cache, progress=False)
    finally:
        del world.encode
    return feats, counter.frames


def test_ac_features_are_reused_and_invalidated_by_one_weight_or_one_episode(tmp_path):
    root, cache = _dataset(tmp_path / "clips"), tmp_path / "run" / "features"
    world = make_world_model()
    feats, encoded = _encode(world, root, cache)
    assert encoded == 15 and [z.shape for z in feats.z] == [(5, 16, 32)] * 3 and feats.z[0].dtype == torch.float16
    # the cached tensors are the encoder's features of each frame (float16), as before the cache
    from jepa.data.trajectories import TrajectoryDataset

    ep = TrajectoryDataset(root).load(1)
    torch.testing.assert_close(feats.z[1], world.encode(ep.frames).half())
    torch.testing.assert_close(feats.actions[1], torch.from_numpy(ep.actions))
    _, encoded = _encode(world, root, cache)
    assert encoded == 0  # same data, same encoder: read from the cache
    # one changed episode (same size, new content): only its frames are encoded again
    path = root / "episodes" / "000002.npz"
    rng = np.random.default_rng(9)
    with np.load(path) as z:
        states, actions = z["states"], z["actions"]
    np.savez(path, frames=rng.integers(0, 255, (5, 32, 32, 3), dtype=np.uint8), states=states, actions=actions)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # a later write (clock granularity)
    feats2, encoded = _encode(world, root, cache)
    assert encoded == 5 and torch.equal(feats2.z[0], feats.z[0]) and not torch.equal(feats2.z[2], feats.z[2])
    # one changed weight of the encoder: every episode is encoded again
    with torch.no_grad():
        world.encoder.blocks[0].mlp.fc1.weight[0, 0] += 1e-3
    _, encoded = _encode(world, root, cache)
    assert encoded == 15
