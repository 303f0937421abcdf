"""Class-mean recall@k (EPIC-KITCHENS-100) and top-k accuracy on hand-built predictions."""

import pytest
import torch

from eval.anticipation.epic import tail_classes
from eval.anticipation.metrics import anticipation_metrics, class_mean_recall, tail_masks, topk_accuracy


def _scores(labels, hits, num_classes=8, seed=0):
    """Scores [N, C] where each label is ranked first (hit) or last (miss); others random in (0, 1)."""
    g = torch.Generator().manual_seed(seed)
    s = torch.rand(len(labels), num_classes, generator=g)
    for i, (y, hit) in enumerate(zip(labels, hits)):
        s[i, y] = 10.0 if hit else -10.0
    return s


LABELS = torch.tensor([0, 0, 3, 5, 5, 5])
HITS = [True, False, True, False, False, True]


def test_recall_at_5_matches_hand_computed_value():
    # class 0: 1/2, class 3: 1/1, class 5: 1/3; the 5 classes without samples do not count
    expected = (1 / 2 + 1 + 1 / 3) / 3
    assert class_mean_recall(_scores(LABELS, HITS), LABELS, k=5) == pytest.approx(expected)
    assert expected != pytest.approx((1 / 2 + 1 + 1 / 3) / 8)  # what counting empty classes would give


def test_recall_differs_from_accuracy_and_uses_top_k():
    s = _scores(LABELS, HITS)
    assert topk_accuracy(s, LABELS, 5) == pytest.approx(3 / 6)
    # a label ranked 2nd counts at k=2 but not at k=1
    s2 = torch.tensor([[0.1, 0.9, 0.5, 0.0], [0.9, 0.1, 0.0, 0.0]])
    y = torch.tensor([2, 0])
    assert class_mean_recall(s2, y, k=1) == pytest.approx(0.5)
    assert class_mean_recall(s2, y, k=2) == pytest.approx(1.0)


def test_mask_selects_samples_and_empty_set_is_an_error():
    s = _scores(LABELS, HITS)
    mask = torch.tensor([False, False, False, True, True, True])
    assert class_mean_recall(s, LABELS, 5, mask) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="empty"):
        class_mean_recall(s, LABELS, 5, torch.zeros(6, dtype=torch.bool))


def test_labels_out_of_range_are_rejected():
    with pytest.raises(ValueError, match="labels must lie"):
        class_mean_recall(torch.zeros(2, 3), torch.tensor([0, 3]))


def test_unscored_action_keys_count_as_never_hit_classes():
    # columns are actions with keys 1002 and 2003; sample 2's action (key 4004) was never seen in training
    keys = torch.tensor([1002, 2003])
    scores = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    gt = torch.tensor([1002, 1002, 4004])
    # key 1002: hit at k=1 for sample 0 only -> 1/2; key 4004: 0/1 -> mean 1/4
    assert class_mean_recall(scores, gt, k=1, class_keys=keys) == pytest.approx(0.25)
    assert class_mean_recall(scores, gt, k=5, class_keys=keys) == pytest.approx(0.5)


def test_anticipation_report_overall_unseen_tail():
    verbs = torch.tensor([0, 0, 1, 2])
    nouns = torch.tensor([0, 1, 1, 1])
    hit_v, hit_n = [True, False, True, False], [True, True, False, True]
    scores = {"verb": _scores(verbs, hit_v, 7), "noun": _scores(nouns, hit_n, 7, seed=1)}
    report = anticipation_metrics(scores, {"verb": verbs, "noun": nouns}, k=5,
                                  unseen=torch.tensor([False, False, True, True]), tail_verbs=[2], tail_nouns=[0])
    assert report["overall"]["verb"] == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert report["overall"]["noun"] == pytest.approx((1 + 2 / 3) / 2)
    assert report["unseen"]["verb"] == pytest.approx((1 + 0) / 2)
    assert report["unseen"]["noun"] == pytest.approx(1 / 2)
    assert report["tail"]["verb"] == pytest.approx(0.0)  # only sample 3 has a tail verb
    assert report["tail"]["noun"] == pytest.approx(1.0)  # only sample 0 has a tail noun


def test_tail_action_mask_is_verb_or_noun():
    m = tail_masks(torch.tensor([0, 1, 2, 3]), torch.tensor([5, 6, 7, 5]), tail_verbs=[1], tail_nouns=[5])
    assert m["verb"].tolist() == [False, True, False, False]
    assert m["noun"].tolist() == [True, False, False, True]
    assert m["action"].tolist() == [True, True, False, True]


def test_tail_classes_smallest_classes_holding_a_fifth():
    labels = [0] * 50 + [1] * 30 + [2] * 12 + [3] * 5 + [4] * 3  # 100 instances
    assert tail_classes(labels, 0.2) == [2, 3, 4]  # 3 + 5 + 12 = 20 <= 20
    assert tail_classes(labels, 0.1) == [3, 4]
