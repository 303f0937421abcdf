"""Attentive probes, the lr x wd sweep and classification on frozen features."""

import math

import numpy as np
import pytest
import torch

from eval.anticipation.metrics import topk_accuracy
from eval.probes.probe import (
    AttentiveClassifier,
    AttentivePooler,
    FeatureSet,
    MultiHeadAttentiveClassifier,
    ProbeSweep,
    fit_sweep,
    sigmoid_focal_loss,
)


def _separable(n, num_classes=4, tokens=8, dim=16, seed=0):
    """Noise tokens; half of them carry a class-specific direction. Features [n, 1, N, D], labels [n]."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(num_classes, dim, generator=torch.Generator().manual_seed(123))
    means = 4.0 * means / means.norm(dim=1, keepdim=True)
    y = torch.randint(0, num_classes, (n,), generator=g)
    x = torch.randn(n, tokens, dim, generator=g)
    for i in range(n):
        where = torch.randperm(tokens, generator=g)[: tokens // 2]
        x[i, where] += means[y[i]]
    return FeatureSet(x[:, None], {"label": y}, [str(i) for i in range(n)])


def test_pooler_shapes_and_released_parameter_names():
    pooler = AttentivePooler(embed_dim=32, num_queries=3, depth=4, num_heads=4)
    assert pooler(torch.randn(2, 10, 32)).shape == (2, 3, 32)
    names = set(AttentiveClassifier(32, 7, depth=4, num_heads=4).state_dict())
    assert {"pooler.query_tokens", "pooler.blocks.2.attn.qkv.weight", "pooler.cross_attention_block.xattn.q.weight",
            "pooler.cross_attention_block.xattn.kv.weight", "pooler.cross_attention_block.mlp.fc2.weight",
            "linear.weight"} <= names
    assert not any(n.startswith("pooler.blocks.3") for n in names)  # depth 4 = 3 self-attention + 1 cross
    assert not any("xattn.proj" in n for n in names)  # no output projection in the cross-attention
    out = MultiHeadAttentiveClassifier(32, {"verb": 5, "noun": 6, "action": 7}, depth=1, num_heads=4)(
        torch.randn(2, 10, 32))
    assert {k: tuple(v.shape) for k, v in out.items()} == {"verb": (2, 5), "noun": (2, 6), "action": (2, 7)}


def test_focal_loss_matches_its_formula():
    logits, y = torch.tensor([[2.0, -1.0, 0.5]]), torch.tensor([0])
    p = torch.sigmoid(logits)[0]
    expected = (0.25 * (1 - p[0]) ** 2 * -math.log(p[0])
                + 0.75 * p[1] ** 2 * -math.log(1 - p[1]) + 0.75 * p[2] ** 2 * -math.log(1 - p[2]))
    assert sigmoid_focal_loss(logits, y).item() == pytest.approx(float(expected), rel=1e-5)


def test_probe_sweep_learns_a_separable_task_and_reports_the_grid():
    train, val = _separable(192, seed=0), _separable(128, seed=1)
    epochs, bs = 5, 32
    sweep = ProbeSweep(lambda: AttentiveClassifier(16, 4, depth=1, num_heads=2), lrs=[1e-2, 1e-6],
                       weight_decays=[1e-4, 1e-2], total_steps=epochs * math.ceil(192 / bs), loss="ce")
    metrics = lambda s, lab: {"top1": topk_accuracy(s["label"], lab["label"], 1)}  # noqa: E731
    res = fit_sweep(sweep, train, val, epochs, bs, metrics, "top1")
    assert len(res.grid) == 4 and [(g["lr"], g["weight_decay"]) for g in res.grid] == [
        (1e-2, 1e-4), (1e-2, 1e-2), (1e-6, 1e-4), (1e-6, 1e-2)]
    assert res.best["top1"] == max(g["top1"] for g in res.grid)
    assert res.best["lr"] == 1e-2 and res.best["top1"] > 0.9, res.grid
    assert all(g["top1"] < 0.6 for g in res.grid if g["lr"] == 1e-6)  # a frozen-ish probe does not learn it
    assert res.best_scores["label"].shape == (128, 4)


def test_focal_sweep_with_several_heads_trains_each_probe_independently():
    data = _separable(64)
    data.labels["other"] = (data.labels["label"] + 1) % 4
    sweep = ProbeSweep(lambda: MultiHeadAttentiveClassifier(16, {"label": 4, "other": 4}, depth=1, num_heads=4),
                       [1e-3, 0.0], [0.0], total_steps=2, loss="focal")
    before = [p.pooler.query_tokens.detach().clone() for p in sweep.probes]
    sweep.step(data.features[:16, 0], {h: v[:16] for h, v in data.labels.items()})
    assert not torch.equal(before[0], sweep.probes[0].pooler.query_tokens)  # lr 1e-3 moved
    assert torch.equal(before[1], sweep.probes[1].pooler.query_tokens)  # lr 0 did not
    scores = sweep.predict(data.features[:5], ["label", "other"])
    assert len(scores) == 2 and scores[0]["other"].shape == (5, 4) and 0 <= scores[0]["label"].min() <= 1


def _write_video(path, frames, fps=10):
    import imageio.v2 as imageio

    with imageio.get_writer(str(path), fps=fps, codec="libx264", quality=9, macro_block_size=1,
                            ffmpeg_log_level="error") as w:
        for f in frames:
            w.append_data(f)


def test_spatial_views_spread_along_the_long_side():
    from eval.probes.classification import spatial_views

    frames = np.zeros((2, 32, 96, 3), np.uint8)
    frames[..., :32, 0] = 255  # left third red
    views = spatial_views(frames, 32, 3)
    assert views.shape == (3, 3, 2, 32, 32)
    red = views[:, 0].mean(dim=(1, 2, 3))
    assert red[0] > red[1] and red[0] > red[2]


def test_classification_end_to_end_on_moving_squares(tmp_path):
    """Class = colour of a moving square (red or blue); a random tiny encoder + probe separates it."""
    from eval.probes.classification import ClassifyConfig, run_classification
    from jepa.config import load_config

    rng = np.random.default_rng(0)
    lines = {"train": [], "val": []}
    for split, n in (("train", 10), ("val", 6)):
        for i in range(n):
            label = i % 2
            frames = np.full((8, 32, 32, 3), 40, np.uint8)
            y0, right = int(rng.integers(4, 20)), bool(rng.integers(0, 2))
            for t in range(8):
                x = 2 + 3 * t if right else 26 - 3 * t
                frames[t, y0 : y0 + 8, x : x + 4, 0 if label == 0 else 2] = 255
            path = tmp_path / f"{split}_{i}.mp4"
            _write_video(path, frames)
            lines[split].append(f"{path.name} {label}")
    (tmp_path / "bad.mp4").write_bytes(b"broken")
    lines["val"].append("bad.mp4 1")
    for split in lines:
        (tmp_path / f"{split}.csv").write_text("\n".join(lines[split]) + "\n")
    cfg = load_config(ClassifyConfig, None, [
        f"data.train_csv={tmp_path / 'train.csv'}", f"data.val_csv={tmp_path / 'val.csv'}", "data.frames_per_clip=8",
        "data.frame_step=1", "data.crop_size=32", "data.num_views=2", "backbone.init=random", "backbone.depth=2",
        "backbone.embed_dim=64", "probe.epochs=12", "probe.batch_size=5", "probe.lrs=[3e-3]",
        "probe.weight_decays=[1e-4]", f"meta.run_dir={tmp_path / 'run'}", "meta.progress=false", "meta.device=cpu"])
    res = run_classification(cfg)
    assert res.counts == {"train": 10, "train_skipped": 0, "val": 6, "val_skipped": 1}
    assert res.sweep.best["top1"] >= 5 / 6, res.sweep.grid
    assert (tmp_path / "run" / "results.json").is_file()


def test_standardized_and_positional_wrappers():
    from eval.probes.probe import Standardized, WithPositions, token_statistics

    feats = torch.randn(50, 2, 6, 4) * 3 + torch.arange(4.0)
    mean, std = token_statistics(feats)
    flat = feats.flatten(0, 1)
    assert torch.allclose(mean, flat.mean(0), atol=1e-5) and torch.allclose(std, flat.std(0, unbiased=False), atol=1e-4)
    seen = {}
    probe = Standardized(lambda x: seen.setdefault("x", x), mean, std)
    probe(flat)
    assert seen["x"].mean(0).abs().max() < 1e-4 and (seen["x"].std(0, unbiased=False) - 1).abs().max() < 1e-3
    pos = WithPositions(torch.nn.Identity(), 8, (1, 2, 3))
    out = pos(torch.zeros(1, 12, 8))  # two clips of a 1 x 2 x 3 grid: the table is repeated
    assert torch.equal(out[0, :6], out[0, 6:]) and not torch.equal(out[0, 0], out[0, 1])
    with pytest.raises(ValueError, match="multiple"):
        pos(torch.zeros(1, 7, 8))
