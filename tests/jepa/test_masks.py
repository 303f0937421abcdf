import numpy as np
import pytest
import torch

from jepa.masks import LONG_RANGE, SHORT_RANGE, MaskCollator, MaskConfig, batch_masks


@pytest.mark.parametrize("cfg,expected", [(SHORT_RANGE, 0.70), (LONG_RANGE, 0.88)])
def test_released_masks_hide_the_released_fraction(cfg, expected):
    # 256 px x 16 frames -> grid 8 x 16 x 16; masked fraction = share of tokens the context encoder never sees
    gen = np.random.default_rng(0)
    fractions = [1 - batch_masks(cfg, (8, 16, 16), 4, gen)[0].shape[1] / 2048 for _ in range(40)]
    assert abs(np.mean(fractions) - expected) < 0.04


def test_context_and_target_are_disjoint_and_sorted():
    ctx, tgt = batch_masks(SHORT_RANGE, (4, 8, 8), 6, np.random.default_rng(1))
    for c, t in zip(ctx.tolist(), tgt.tolist()):
        assert not set(c) & set(t)
        assert c == sorted(c) and t == sorted(t)
        assert len(set(c)) == len(c)
    assert ctx.max() < 256 and tgt.max() < 256


def test_blocks_span_the_whole_clip_in_time():
    _, tgt = batch_masks(MaskConfig(num_blocks=1, spatial_scale=(0.1, 0.1)), (4, 8, 8), 3, np.random.default_rng(2))
    t = tgt // 64
    for row in t:
        assert set(row.tolist()) == {0, 1, 2, 3}


def test_collator_is_reproducible_and_rank_slices_agree():
    cfgs = [SHORT_RANGE, LONG_RANGE]
    clips = [torch.zeros(3, 2, 8, 8) for _ in range(4)]
    full = MaskCollator(cfgs, (4, 8, 8), global_batch=4, seed=3)
    samples = [{"clip": c, "epoch": 1, "batch": 5, "row": r} for r, c in enumerate(clips)]
    a, b = full(samples), full(samples)
    for x, y in zip(a["context"] + a["target"], b["context"] + b["target"]):
        assert torch.equal(x, y)
    # two processes, each with half the global batch, get exactly the rows of the one-process batch
    rank1 = full(samples[2:])
    for x, y in zip(rank1["context"] + rank1["target"], a["context"] + a["target"]):
        assert torch.equal(x, y[2:])
    other = full([{**s, "batch": 6} for s in samples])
    assert not all(torch.equal(x, y) for x, y in zip(other["target"], a["target"]))


def test_impossible_mask_is_an_error():
    with pytest.raises(ValueError, match="covers every token"):
        batch_masks(MaskConfig(num_blocks=4, spatial_scale=(1.0, 1.0)), (2, 4, 4), 2, np.random.default_rng(0))


def test_end_anchored_blocks_hide_the_future():
    # one full-frame block of half the clip, anchored at the end: context = past steps, target = future steps
    future = MaskConfig(num_blocks=1, spatial_scale=(1.0, 1.0), aspect_ratio=(1.0, 1.0), temporal_scale=(0.5, 0.5),
                        temporal_anchor="end")
    ctx, tgt = batch_masks(future, (6, 4, 4), 3, np.random.default_rng(0))
    for c, t in zip(ctx.tolist(), tgt.tolist()):
        assert c == list(range(48)) and t == list(range(48, 96))
    # a smaller end-anchored block stays in the last steps, anywhere in space
    _, tgt = batch_masks(MaskConfig(num_blocks=1, spatial_scale=(0.25, 0.25), temporal_scale=(0.34, 0.34),
                                    temporal_anchor="end"), (6, 4, 4), 5, np.random.default_rng(1))
    assert set((tgt // 16).unique().tolist()) == {4, 5}
    with pytest.raises(ValueError, match="temporal_anchor"):
        MaskConfig(temporal_anchor="start")
