"""EPIC-KITCHENS-100 annotations, action vocabulary and observed windows for action anticipation.

Annotation files are the official CSVs (``EPIC_100_train.csv``, ``EPIC_100_validation.csv``): one
row per action segment with at least the columns of :data:`REQUIRED_COLUMNS`. ``start_frame`` and
``stop_frame`` are 1-based frame numbers of the video at its own frame rate (frame ``f`` is shown at
``(f - 1) / fps`` seconds); videos live at ``<root>/<participant_id>/videos/<video_id>.MP4`` or
``<root>/<participant_id>/<video_id>.MP4``.

Observed window (``window_end="start"``, the task's definition): the anticipation point is
``tau_a`` seconds before the action *starts*; the clip is ``frames_per_clip`` frames spaced by
``frame_step`` whose last frame is the last one shown strictly before the anticipation point.
Indices before the video's first frame are clamped to frame 0 (as the released code).

``window_end="stop_released"`` reproduces the released V-JEPA 2 evaluation instead: with its
validation settings (anticipation point 0) the clip's last frame is ``int(stop - tau_a * fps)``,
i.e. it ends ``tau_a`` seconds before the action's *stop* frame, so the clip usually overlaps the
action it is asked to anticipate. Use it only to compare with the released numbers.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from eval.anticipation.metrics import action_key
from jepa.errors import JepaError

REQUIRED_COLUMNS = ("narration_id", "participant_id", "video_id", "start_timestamp", "stop_timestamp",
                    "start_frame", "stop_frame", "verb_class", "noun_class")
UNLABELLED_COLUMNS = REQUIRED_COLUMNS[:7]  # the test set's timestamps file has no classes
WindowEnd = Literal["start", "stop_released"]
VideoLayout = Literal["auto", "videos", "flat"]
WINDOW_ENDS: tuple[str, ...] = get_args(WindowEnd)
VIDEO_LAYOUTS: tuple[str, ...] = get_args(VideoLayout)


class AnnotationError(JepaError, ValueError):
    """An annotation file is missing, lacks a column or holds a value that cannot be parsed."""


@dataclass(frozen=True)
class Segment:
    """One annotated action. Frames are 1-based (EPIC convention), times in seconds.

    ``verb_class``/``noun_class`` are -1 in unlabelled (test) annotations.
    """

    narration_id: str
    participant_id: str
    video_id: str
    start_time: float
    stop_time: float
    start_frame: int
    stop_frame: int
    verb_class: int = -1
    noun_class: int = -1
    verb: str = ""
    noun: str = ""


def parse_timestamp(text: str) -> float:
    """``"HH:MM:SS.ff"`` (or ``"MM:SS.ff"``, or plain seconds) -> seconds."""
    parts = text.strip().split(":")
    if not 1 <= len(parts) <= 3:
        raise ValueError(f"not a timestamp: {text!r}")
    seconds = 0.0
    for p in parts:
        seconds = seconds * 60 + float(p)
    return seconds


def format_timestamp(seconds: float) -> str:
    """Seconds -> ``"HH:MM:SS.mmm"`` (the annotation files' layout)."""
    ms = int(round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    return f"{h:02d}:{m:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def _field(row: dict, column: str, path: Path, line: int, parse):
    try:
        return parse(row[column])
    except (TypeError, ValueError):
        raise AnnotationError(f"{path}:{line}: column {column!r} has an unreadable value {row[column]!r}") from None


def read_annotations(path: str | Path, labelled: bool = True) -> list[Segment]:
    """Segments of an EPIC-KITCHENS-100 annotation CSV (header row required).

    Raises :class:`AnnotationError` naming the file and the missing column(s), or the line and column
    of a value that cannot be parsed. ``labelled=False`` reads files without ``verb_class``/``noun_class``.
    """
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"{path}: no such annotation file")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        required = REQUIRED_COLUMNS if labelled else UNLABELLED_COLUMNS
        missing = [c for c in required if c not in header]
        if missing:
            raise AnnotationError(f"{path}: missing column(s) {', '.join(missing)} "
                                  f"(found: {', '.join(header) or 'no header'})")
        segments = [_segment(row, path, line, labelled) for line, row in enumerate(reader, start=2)]
    if not segments:
        raise AnnotationError(f"{path}: no annotation rows")
    return segments


def _segment(row: dict, path: Path, line: int, labelled: bool) -> Segment:
    seg = Segment(
        narration_id=row["narration_id"], participant_id=row["participant_id"], video_id=row["video_id"],
        start_time=_field(row, "start_timestamp", path, line, parse_timestamp),
        stop_time=_field(row, "stop_timestamp", path, line, parse_timestamp),
        start_frame=_field(row, "start_frame", path, line, int),
        stop_frame=_field(row, "stop_frame", path, line, int),
        verb_class=_field(row, "verb_class", path, line, int) if labelled else -1,
        noun_class=_field(row, "noun_class", path, line, int) if labelled else -1,
        verb=row.get("verb") or "", noun=row.get("noun") or "",
    )
    if seg.start_frame < 1 or seg.stop_frame < seg.start_frame:
        raise AnnotationError(f"{path}:{line}: frames {seg.start_frame}..{seg.stop_frame} are not 1 <= start <= stop")
    return seg


def read_id_list(path: str | Path, column: int = 0) -> list[str]:
    """First column (after a header row) of a small CSV such as the unseen-participants or tail lists."""
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"{path}: no such file")
    with path.open(newline="") as f:
        rows = [r for r in csv.reader(f) if r]
    if not rows:
        raise AnnotationError(f"{path}: empty file")
    return [r[column].strip() for r in rows[1:]]


def read_class_list(path: str | Path) -> list[int]:
    """Integer class ids of a tail-class list (``EPIC_100_tail_verbs.csv`` / ``..._nouns.csv``)."""
    ids = read_id_list(path)
    try:
        return [int(x) for x in ids]
    except ValueError:
        raise AnnotationError(f"{path}: the first column must hold integer class ids") from None


def tail_classes(labels: Iterable[int], fraction: float = 0.2) -> list[int]:
    """The smallest classes that together hold ``fraction`` of the instances (EPIC's tail definition)."""
    counts = Counter(labels)
    total, acc, tail = sum(counts.values()), 0, []
    for cls, n in sorted(counts.items(), key=lambda kv: (kv[1], kv[0])):
        if acc + n > fraction * total:
            break
        acc += n
        tail.append(cls)
    return sorted(tail)


@dataclass
class ActionVocab:
    """Verb and noun heads over the official class ids; the action head over the training pairs.

    ``num_verbs``/``num_nouns`` are head sizes (class ids are kept, not re-indexed, so predictions
    cover the official classes); ``pairs[i]`` is the (verb, noun) of action column ``i``.
    """

    num_verbs: int
    num_nouns: int
    pairs: list[tuple[int, int]]

    @classmethod
    def from_segments(cls, train: Sequence[Segment], others: Iterable[Segment] = (), num_verbs: int = 0,
                      num_nouns: int = 0) -> ActionVocab:
        """Actions = (verb, noun) pairs seen in ``train``; head sizes from the largest id seen (or given)."""
        every = list(train) + list(others)
        nv = max(num_verbs, 1 + max(s.verb_class for s in every))
        nn = max(num_nouns, 1 + max(s.noun_class for s in every))
        pairs = sorted({(s.verb_class, s.noun_class) for s in train})
        return cls(nv, nn, pairs)

    @property
    def num_actions(self) -> int:
        return len(self.pairs)

    def keys(self) -> np.ndarray:
        """``[num_actions]`` official action ids (``verb * 1000 + noun``) of the action columns."""
        return np.array([action_key(v, n) for v, n in self.pairs], dtype=np.int64)

    def action_index(self, verb: int, noun: int) -> int:
        """Column of the pair, or -1 for a pair never seen in training."""
        if not hasattr(self, "_index"):
            self._index = {p: i for i, p in enumerate(self.pairs)}
        return self._index.get((verb, noun), -1)

    def labels(self, seg: Segment) -> dict[str, int]:
        """``verb``, ``noun``, ``action`` (column or -1) and ``action_key`` labels of a segment."""
        return {"verb": seg.verb_class, "noun": seg.noun_class,
                "action": self.action_index(seg.verb_class, seg.noun_class),
                "action_key": int(action_key(seg.verb_class, seg.noun_class))}


def video_path(root: str | Path, participant_id: str, video_id: str, layout: str = "auto",
               suffix: str = ".MP4") -> Path:
    """``<root>/<participant>/videos/<video>.MP4`` (``"videos"``) or without ``videos/`` (``"flat"``).

    ``"auto"`` returns the first that exists (the ``videos/`` layout when neither does).
    """
    if layout not in VIDEO_LAYOUTS:
        raise ValueError(f"unknown video layout {layout!r}; use one of {VIDEO_LAYOUTS}")
    nested = Path(root) / participant_id / "videos" / f"{video_id}{suffix}"
    flat = Path(root) / participant_id / f"{video_id}{suffix}"
    if layout == "videos":
        return nested
    if layout == "flat":
        return flat
    return flat if (not nested.exists() and flat.exists()) else nested


def anticipation_end(seg: Segment, fps: float, tau_a: float, window_end: str = "start") -> int:
    """0-based index of the last observed frame (may be negative: nothing observable).

    ``"start"``: the last frame shown strictly before ``start - tau_a`` seconds, where the action
    starts at 0-based frame ``start_frame - 1``. ``"stop_released"``: ``int(stop_frame - tau_a * fps)``
    as the released code (which indexes the decoded video with the annotation's frame number).
    """
    if window_end == "start":
        point = (seg.start_frame - 1) - tau_a * fps  # anticipation point, in 0-based frame units
        return math.ceil(point) - 1
    if window_end == "stop_released":
        return int(seg.stop_frame - tau_a * fps)
    raise ValueError(f"unknown window_end {window_end!r}; use one of {WINDOW_ENDS}")


def observed_indices(seg: Segment, fps: float, tau_a: float, frames_per_clip: int, frame_step: int,
                     window_end: str = "start", num_video_frames: int | None = None) -> np.ndarray | None:
    """0-based frame indices ``[frames_per_clip]`` of the observed window, or None if it is empty.

    The window ends at :func:`anticipation_end` and spans ``(frames_per_clip - 1) * frame_step``
    frames before it; earlier indices are clamped to 0 and, when ``num_video_frames`` is given, later
    ones to the last frame of the video.
    """
    end = anticipation_end(seg, fps, tau_a, window_end)
    if end < 0:
        return None
    idx = end - frame_step * np.arange(frames_per_clip - 1, -1, -1)
    idx = np.maximum(idx, 0)
    if num_video_frames is not None:
        idx = np.minimum(idx, num_video_frames - 1)
    return idx.astype(np.int64)


def participants(segments: Collection[Segment]) -> list[str]:
    return sorted({s.participant_id for s in segments})
