import random

import pytest

from eval.anticipation.epic import ActionVocab, Segment
from eval.anticipation.oracle import observed_context, oracle_report, oracle_scores

FPS = 10.0


def _video(vid: str, verbs: list[int], nouns: list[int], length: int = 20, gap: int = 0) -> list[Segment]:
    """Back-to-back segments of ``length`` frames (1-based frame numbers), ``gap`` frames apart."""
    segs, start = [], 1
    for i, (v, n) in enumerate(zip(verbs, nouns)):
        stop = start + length - 1
        segs.append(Segment(f"{vid}_{i}", vid[:3], vid, (start - 1) / FPS, (stop - 1) / FPS, start, stop, v, n))
        start = stop + 1 + gap
    return segs


def test_a_deterministic_grammar_is_fully_predictable():
    # verb i is always followed by verb (i + 1) % 4, noun by the verb: knowing the current action is enough
    cycle = lambda k, n: [(k + j) % 4 for j in range(n)]  # noqa: E731
    train = [s for k in range(8) for s in _video(f"P01_{k:02d}", cycle(k, 6), cycle(k, 6))]
    val = [s for k in range(4) for s in _video(f"P02_{k:02d}", cycle(k + 1, 5), cycle(k + 1, 5))]
    report = oracle_report(train, val, FPS, tau_a=1.0)["overall"]
    assert report["verb"] == pytest.approx(1.0) and report["noun"] == pytest.approx(1.0)
    # top-1 too, except each video's first segment (nothing in progress 1 s before frame 1: empty window)
    assert report["verb_top1"] == pytest.approx(1.0)


def test_the_context_is_the_action_in_progress_and_its_elapsed_third():
    video = _video("P01_01", [3, 5, 7], [1, 2, 3], length=30)  # frames 1-30, 31-60, 61-90
    # target starts at 0-based frame 60; 1 s (10 frames) earlier the last observed frame is 49,
    # i.e. 19 frames into the second action of 29: its second third
    assert observed_context(video[2], video, FPS, 1.0) == (5, 2, 1)
    assert observed_context(video[0], video, FPS, 1.0) is None  # nothing before the first action
    gapped = _video("P01_02", [3, 5], [1, 2], length=10, gap=15)  # frames 1-10, then 26-35
    assert observed_context(gapped[1], gapped, FPS, 1.0) == ("none",)


def test_nothing_at_or_after_the_anticipation_point_changes_a_prediction():
    rng = random.Random(0)
    train = [s for k in range(6) for s in _video(f"P01_{k:02d}", [rng.randrange(5) for _ in range(8)],
                                                 [rng.randrange(4) for _ in range(8)], length=rng.randrange(6, 25))]
    val = _video("P02_01", [rng.randrange(5) for _ in range(10)], [rng.randrange(4) for _ in range(10)], length=12)
    vocab = ActionVocab.from_segments(train, val)
    base, kept = oracle_scores(train, val, vocab, FPS, 1.0)
    for j, i in enumerate(kept):
        # relabel the target and every later segment: the target's scores must not move
        changed = val[:i] + [Segment(s.narration_id, s.participant_id, s.video_id, s.start_time, s.stop_time,
                                     s.start_frame, s.stop_frame, (s.verb_class + 1) % 5, (s.noun_class + 1) % 4)
                             for s in val[i:]]
        scores, kept2 = oracle_scores(train, changed, vocab, FPS, 1.0)
        assert kept2 == kept
        for h in scores:
            assert scores[h][j].tolist() == base[h][j].tolist()
