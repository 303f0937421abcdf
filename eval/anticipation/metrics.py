"""Classification metrics: top-k accuracy and class-mean recall@k (the EPIC-KITCHENS-100 metric).

Class-mean recall@k follows the official EPIC-KITCHENS-100 challenge evaluation: a sample is a true
positive for its ground-truth class when that class is among the sample's k highest scores, and a
false negative otherwise; recall is ``TP / (TP + FN)`` per class, averaged over the classes that
have at least one sample. Classes with no samples do not count (they neither add a zero nor a one).

Ground-truth classes need not be among the scored classes: an EPIC-KITCHENS-100 validation action
(a verb-noun pair) never seen in training has no score column, can never be hit, and still counts
as a class with recall 0, as in the official evaluation. Such labels are given as class *keys*
(``verb * 1000 + noun``) together with the key of each score column (``action_keys``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import torch
from torch import Tensor

ACTION_KEY_BASE = 1000  # official action id: verb * 1000 + noun


def action_key(verb: int | Tensor, noun: int | Tensor) -> int | Tensor:
    """The official action id of a (verb, noun) pair: ``verb * 1000 + noun``."""
    return verb * ACTION_KEY_BASE + noun


def _check(scores: Tensor, labels: Tensor, k: int) -> None:
    if scores.dim() != 2:
        raise ValueError(f"scores must be [N, C], got shape {tuple(scores.shape)}")
    if labels.shape != (scores.shape[0],):
        raise ValueError(f"labels must be [N] with N={scores.shape[0]}, got shape {tuple(labels.shape)}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")


def topk_hits(scores: Tensor, labels: Tensor, k: int, class_keys: Tensor | None = None) -> Tensor:
    """Bool ``[N]``: is ``labels[i]`` among the ``k`` highest-scored classes of ``scores[i]``.

    ``scores [N, C]``; ``labels [N]`` are column indices, or keys when ``class_keys [C]`` names the
    key of each column (a label matching no column is never a hit).
    """
    _check(scores, labels, k)
    if class_keys is None:
        if labels.numel() and (labels.min() < 0 or labels.max() >= scores.shape[1]):
            lo, hi = int(labels.min()), int(labels.max())
            raise ValueError(f"labels must lie in [0, {scores.shape[1]}), got {lo}..{hi}")
        class_keys = torch.arange(scores.shape[1])
    elif class_keys.shape != (scores.shape[1],):
        raise ValueError(f"class_keys must be [C]={scores.shape[1]}, got shape {tuple(class_keys.shape)}")
    top = scores.topk(min(k, scores.shape[1]), dim=1).indices
    return (class_keys.to(labels.device)[top] == labels[:, None]).any(dim=1)


def topk_accuracy(scores: Tensor, labels: Tensor, k: int = 1, class_keys: Tensor | None = None) -> float:
    """Fraction of samples whose label is among their ``k`` top scores; ``scores [N, C]``, ``labels [N]``."""
    if labels.numel() == 0:
        raise ValueError("top-k accuracy of an empty set is undefined")
    return topk_hits(scores, labels, k, class_keys).float().mean().item()


def mean_class_recall_from_hits(hits: Tensor, labels: Tensor) -> float:
    """Mean over the distinct values of ``labels [N]`` of the hit rate ``hits [N]`` within each class."""
    if labels.numel() == 0:
        raise ValueError("class-mean recall of an empty set is undefined")
    classes, inverse = torch.unique(labels, return_inverse=True)
    tp = torch.zeros(len(classes), dtype=torch.float64).index_add_(0, inverse, hits.double())
    count = torch.bincount(inverse, minlength=len(classes)).double()
    return (tp / count).mean().item()


def class_mean_recall(scores: Tensor, labels: Tensor, k: int = 5, mask: Tensor | None = None,
                      class_keys: Tensor | None = None) -> float:
    """Mean over classes with >= 1 sample of ``TP / (TP + FN)`` at top-``k``.

    Args:
        scores: ``[N, C]`` scores (logits, probabilities: only their order matters).
        labels: ``[N]`` ground-truth class ids in ``[0, C)``, or keys when ``class_keys`` is given.
        k: how many top-scored classes count as a hit.
        mask: optional bool ``[N]``; only these samples are evaluated (e.g. unseen participants).
        class_keys: optional ``[C]`` key of each score column (see :func:`topk_hits`).
    """
    hits = topk_hits(scores, labels, k, class_keys)
    if mask is not None:
        if mask.shape != labels.shape:
            raise ValueError(f"mask must be [N]={tuple(labels.shape)}, got {tuple(mask.shape)}")
        hits, labels = hits[mask], labels[mask]
    return mean_class_recall_from_hits(hits, labels)


def tail_masks(verbs: Tensor, nouns: Tensor, tail_verbs: Collection[int],
               tail_nouns: Collection[int]) -> dict[str, Tensor]:
    """Which samples count for the tail split: verb if its verb is tail, noun if its noun is tail,
    action if its verb OR its noun is tail (as the official evaluation). ``verbs, nouns [N]``."""
    tv = torch.isin(verbs, torch.as_tensor(sorted(tail_verbs), dtype=verbs.dtype))
    tn = torch.isin(nouns, torch.as_tensor(sorted(tail_nouns), dtype=nouns.dtype))
    return {"verb": tv, "noun": tn, "action": tv | tn}


def anticipation_metrics(
    scores: Mapping[str, Tensor],
    labels: Mapping[str, Tensor],
    k: int = 5,
    unseen: Tensor | None = None,
    tail_verbs: Collection[int] | None = None,
    tail_nouns: Collection[int] | None = None,
    action_keys: Tensor | None = None,
) -> dict[str, dict[str, float]]:
    """EPIC-KITCHENS-100 anticipation report: class-mean recall@k for verb, noun and action.

    Args:
        scores: ``{"verb": [N, Cv], "noun": [N, Cn], "action": [N, Ca]}`` (any subset of the three).
        labels: ``"verb"``/``"noun"`` ``[N]`` column indices; ``"action"`` ``[N]`` column indices, or
            action keys (``verb * 1000 + noun``) when ``action_keys [Ca]`` gives each column's key.
        unseen: bool ``[N]``, samples from unseen participants; adds an ``"unseen"`` split.
        tail_verbs, tail_nouns: class ids of the tail classes; add a ``"tail"`` split (see
            :func:`tail_masks`; needs verb and noun labels).

    Returns ``{"overall": {"verb": r, "noun": r, "action": r}, "unseen": {...}, "tail": {...}}``
    (recalls in [0, 1]); ``overall`` also carries ``"<head>_top1"``/``"<head>_top{k}"`` accuracies.
    """
    heads = [h for h in ("verb", "noun", "action") if h in scores]
    keys = {h: (action_keys if h == "action" else None) for h in heads}
    overall: dict[str, float] = {}
    for h in heads:
        overall[h] = class_mean_recall(scores[h], labels[h], k, class_keys=keys[h])
        overall[f"{h}_top1"] = topk_accuracy(scores[h], labels[h], 1, keys[h])
        overall[f"{h}_top{k}"] = topk_accuracy(scores[h], labels[h], k, keys[h])
    report = {"overall": overall}
    if unseen is not None and bool(unseen.any()):
        report["unseen"] = {h: class_mean_recall(scores[h], labels[h], k, unseen, keys[h]) for h in heads}
    if tail_verbs is not None and tail_nouns is not None:
        masks = tail_masks(labels["verb"], labels["noun"], tail_verbs, tail_nouns)
        report["tail"] = {h: class_mean_recall(scores[h], labels[h], k, masks[h], keys[h])
                          for h in heads if masks[h].any()}
    return report
