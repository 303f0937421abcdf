"""The twin-video bench: identical twins up to the event, a visible violation from it on, reuse, data."""

import json

import numpy as np
import pytest

from eval.physics.twins import VIOLATIONS, TwinBenchConfig, ensure, load_frames, read_pairs, render_episodes
from jepa.data.clips import TrajectoryClipSource
from jepa.data.trajectories import TrajectoryDataset

TINY = TwinBenchConfig(pairs_per_violation=1, frames=24, image_size=32, min_event_frame=8, tail_frames=4,
                       max_episode_frames=90, min_block_pixels=2, min_changed_pixels=2, seed=1)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("twins")
    return root, ensure(root, TINY, progress=False)


def test_twins_are_identical_before_the_event_and_differ_from_it_on(bench):
    root, pairs = bench
    assert [p.violation for p in pairs] == list(VIOLATIONS)
    for p in pairs:
        a, b = load_frames(p.possible), load_frames(p.impossible)
        assert a.shape == b.shape == (24, 32, 32, 3) and a.dtype == np.uint8
        e = p.event_frame
        assert TINY.min_event_frame <= e <= TINY.frames - TINY.tail_frames
        assert np.array_equal(a[:e], b[:e]), p.violation
        changed = (a != b).any(axis=-1).sum(axis=(1, 2))  # pixels per frame
        assert (changed[e:] >= 1).all(), (p.violation, changed)  # the block stays visible and changed
        assert (root / "videos" / p.possible.name.replace(".npz", ".mp4")).is_file()


def test_a_colour_change_brings_a_new_colour_and_a_vanished_block_leaves_table_pixels(bench):
    _, pairs = bench
    by = {p.violation: p for p in pairs}
    a, b = load_frames(by["colour"].possible), load_frames(by["colour"].impossible)
    e = by["colour"].event_frame
    diff = (a[e] != b[e]).any(axis=-1)
    assert (b[e][diff][:, 2] > b[e][diff][:, 0]).any() or (b[e][diff][:, 1] > 150).any()  # blue or yellow now
    a, b = load_frames(by["vanish"].possible), load_frames(by["vanish"].impossible)
    e = by["vanish"].event_frame
    diff = (a[e] != b[e]).any(axis=-1)
    red_before = (a[e][diff][:, 0].astype(int) - a[e][diff][:, 1]).mean()
    red_after = (b[e][diff][:, 0].astype(int) - b[e][diff][:, 1]).mean()
    assert red_before > 40 > red_after  # the red block's pixels show the table or the arm instead


def test_the_index_and_manifest_and_reuse(bench, tmp_path):
    root, pairs = bench
    again = read_pairs(root)
    assert [(p.pair, p.event_frame, p.seed) for p in again] == [(p.pair, p.event_frame, p.seed) for p in pairs]
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["config"]["frames"] == 24 and manifest["pairs"] == {v: 1 for v in VIOLATIONS}
    stamp = (root / "pairs.csv").stat().st_mtime_ns
    ensure(root, TINY, progress=False)
    assert (root / "pairs.csv").stat().st_mtime_ns == stamp  # same settings: not rendered again
    with pytest.raises(FileNotFoundError, match="no pairs index"):
        read_pairs(tmp_path)
    with pytest.raises(ValueError, match="leaves no event frame"):
        TwinBenchConfig(frames=20, min_event_frame=16, tail_frames=8)


def test_pretraining_episodes_are_a_trajectory_dataset(tmp_path):
    root = render_episodes(tmp_path / "eps", 2, TINY, progress=False)
    data = TrajectoryDataset(root)
    ep = data.load(0)
    assert len(data) == 2 and ep.frames.shape[1:] == (32, 32, 3)
    assert ep.states.shape == (len(ep), 4) and ep.actions.shape == (len(ep) - 1, 4)
    assert np.abs(ep.actions[:, :3]).max() <= TINY.max_speed + 1e-6 and set(np.unique(ep.actions[:, 3])) <= {-1, 1}
    # a commanded move shows up in the next state: the gripper moves the way the action points
    moved = np.diff(ep.states[:, :3], axis=0)
    big = np.abs(ep.actions[:, :3]) > 0.2
    assert (np.sign(moved[big]) == np.sign(ep.actions[:, :3][big])).mean() > 0.9
    assert len(TrajectoryClipSource(root, 8, 1)) > 0
