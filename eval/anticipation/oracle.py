"""How much of an anticipation benchmark a perfect *recogniser* could solve: a label-oracle ceiling.

The oracle is told what the observed window shows, in label form: the action in progress at the
window's last frame (``(verb, noun)``, or "none" between actions) and which third of that action
has elapsed. It predicts the next action from how often each one followed that context in the
training annotations (ties broken by the overall training frequency). An encoder + probe that
recognised the current action perfectly could reach about this recall@5 from the window alone, so:

- a benchmark whose encoders already score near the ceiling cannot rank better representations;
- the gap between an encoder's recall and the ceiling is what better perception could still win.

The oracle uses nothing at or after the anticipation point: the action in progress at the last
observed frame started before it (the window ends ``tau_a`` seconds before the target starts).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

import torch

from eval.anticipation.epic import ActionVocab, Segment, anticipation_end
from eval.anticipation.metrics import anticipation_metrics

Context = tuple  # (verb, noun, phase) or ("none",)


def in_progress(segments: Sequence[Segment], frame: int) -> Segment | None:
    """The segment of one video covering 0-based ``frame`` (the latest-starting one if several)."""
    covering = [s for s in segments if s.start_frame - 1 <= frame <= s.stop_frame - 1]
    return max(covering, key=lambda s: s.start_frame) if covering else None


def observed_context(seg: Segment, video: Sequence[Segment], fps: float, tau_a: float, phases: int = 3,
                     window_end: str = "start") -> Context | None:
    """``(verb, noun, phase)`` of the action in progress at the window's last frame, ``("none",)``
    between actions, or None when the window is empty. ``phase`` in ``[0, phases)``: elapsed third."""
    end = anticipation_end(seg, fps, tau_a, window_end)
    if end < 0:
        return None
    cur = in_progress([s for s in video if s.narration_id != seg.narration_id], end)
    if cur is None:
        return ("none",)
    length = max(1, cur.stop_frame - cur.start_frame)
    phase = min(phases - 1, int(phases * (end - (cur.start_frame - 1)) / length))
    return (cur.verb_class, cur.noun_class, phase)


def _by_video(segments: Sequence[Segment]) -> dict[str, list[Segment]]:
    videos: dict[str, list[Segment]] = defaultdict(list)
    for s in segments:
        videos[s.video_id].append(s)
    return videos


def oracle_scores(train: Sequence[Segment], val: Sequence[Segment], vocab: ActionVocab, fps: float, tau_a: float,
                  phases: int = 3, window_end: str = "start") -> tuple[dict[str, torch.Tensor], list[int]]:
    """Scores ``{"verb": [M, Cv], "noun": [M, Cn], "action": [M, Ca]}`` of the oracle for the ``M``
    validation segments whose window is not empty, and their indices into ``val``."""
    heads = {"verb": (vocab.num_verbs, lambda s: s.verb_class), "noun": (vocab.num_nouns, lambda s: s.noun_class),
             "action": (vocab.num_actions, lambda s: vocab.action_index(s.verb_class, s.noun_class))}
    counts: dict[str, dict[Context, Counter]] = {h: defaultdict(Counter) for h in heads}
    prior: dict[str, Counter] = {h: Counter() for h in heads}
    train_videos = _by_video(train)
    for s in train:
        ctx = observed_context(s, train_videos[s.video_id], fps, tau_a, phases, window_end)
        for h, (_, label) in heads.items():
            prior[h][label(s)] += 1
            if ctx is not None:
                counts[h][ctx][label(s)] += 1
    val_videos = _by_video(val)
    contexts = [observed_context(s, val_videos[s.video_id], fps, tau_a, phases, window_end) for s in val]
    kept = [i for i, c in enumerate(contexts) if c is not None]
    scores = {}
    for h, (n, _) in heads.items():
        base = torch.zeros(n, dtype=torch.float64)
        for c, m in prior[h].items():
            if c >= 0:
                base[c] += 1e-6 * m  # overall frequency only breaks ties
        rows = []
        for i in kept:
            row = base.clone()
            for c, m in counts[h].get(contexts[i], {}).items():
                if c >= 0:
                    row[c] += m
            rows.append(row)
        scores[h] = torch.stack(rows) if rows else torch.zeros(0, n, dtype=torch.float64)
    return scores, kept


def oracle_report(train: Sequence[Segment], val: Sequence[Segment], fps: float, tau_a: float, phases: int = 3,
                  window_end: str = "start", k: int = 5) -> dict[str, dict[str, float]]:
    """The oracle's class-mean recall@k report (overall), as :func:`eval.anticipation.metrics.anticipation_metrics`."""
    vocab = ActionVocab.from_segments(train, val)
    scores, kept = oracle_scores(train, val, vocab, fps, tau_a, phases, window_end)
    if not kept:
        raise ValueError("no validation segment has an observable window")
    segs = [val[i] for i in kept]
    labels = {"verb": torch.tensor([s.verb_class for s in segs]), "noun": torch.tensor([s.noun_class for s in segs]),
              "action": torch.tensor([vocab.labels(s)["action_key"] for s in segs])}
    return anticipation_metrics(scores, labels, k, action_keys=torch.from_numpy(vocab.keys()))
