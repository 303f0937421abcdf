"""Action anticipation on frozen features, with the EPIC-KITCHENS-100 protocol.

``jepa eval anticipation CONFIG.yaml [key=value ...]``:

1. read the official annotation CSVs (:mod:`eval.anticipation.epic`), or render the embedded benchmark on the
   simulated arm first (:mod:`eval.anticipation.embedded`, ``data.source: embedded``);
2. for every segment, read the observed window (``frames_per_clip`` frames at ``sample_fps``, ending
   ``anticipation_time`` seconds before the action starts; ``window_end: stop_released`` reproduces
   the released code's window, which ends that long before the action's *stop* frame);
3. encode each window once with the frozen backbone and cache the tokens ``[N, D]`` on disk
   (:mod:`jepa.data.feature_cache`); unreadable videos and empty windows are skipped and counted; with
   ``backbone.future_tokens`` the frozen pretraining predictor appends its tokens of the moment the
   action starts (tau_a after the window), as the released ``AnticipativeWrapper`` does
   (:class:`jepa.models.future_tokens.FutureTokenEncoder`);
4. train a grid of attentive probes (learning rate x weight decay, :class:`eval.probes.probe.ProbeSweep`),
   each with three queries and linear heads for verb, noun and action (the (verb, noun) pairs seen
   in training), with sigmoid focal loss (as released) or cross-entropy;
5. report class-mean recall@5 for verb, noun and action, overall and, when their lists are given,
   for unseen participants and tail classes, as the official challenge evaluation computes it (a
   validation action never seen in training counts as a class that is never hit); the best probe on
   validation action recall is reported with the whole grid;
6. write ``results.json`` (best + grid), ``submission.json`` (the challenge's JSON format, from the
   best probe) and ``config.yaml`` into ``meta.run_dir``.

Training windows use the same fixed anticipation time as evaluation (features are cached once); the
released code samples it in [0.25, 1.75] s during training.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from eval.anticipation.embedded import EmbeddedConfig
from eval.anticipation.epic import (
    ActionVocab,
    AnnotationError,
    Segment,
    VideoLayout,
    WindowEnd,
    observed_indices,
    read_annotations,
    read_class_list,
    read_id_list,
    video_path,
)
from eval.anticipation.metrics import anticipation_metrics
from eval.probes.frozen import (
    BackboneConfig,
    EvalMetaConfig,
    ProbeConfig,
    cached_features,
    probe_sweep,
    start_run,
)
from eval.probes.probe import FeatureSet, SweepResult, fit_sweep
from jepa.config import (
    Checked,
    ConfigError,
    config_parser,
    in_range,
    non_negative,
    parse_config,
    positive,
    require,
)
from jepa.data.feature_cache import Skipped, file_identity
from jepa.data.transforms import VideoTransform
from jepa.data.video import VideoReadError, frame_step_for_fps, read_frames, video_info
from jepa.errors import InputError, SkipBudgetError
from jepa.files import write_json

HEADS = ("verb", "noun", "action")


# ------------------------------------------------------------------------------------------ config

@dataclass
class AnticipationDataConfig(Checked):
    source: Literal["embedded", "files"] = "embedded"  # "embedded": render the arm benchmark into embedded_root
    embedded: EmbeddedConfig = field(default_factory=EmbeddedConfig)
    embedded_root: str = "runs/eval/embedded_anticipation_data"
    video_root: str = ""  # files: <video_root>/<participant>/videos/<video_id>.MP4
    video_layout: VideoLayout = "auto"  # "videos", "flat" (no videos/ folder) or "auto"
    video_suffix: str = ".MP4"
    train_csv: str = ""  # files: EPIC_100_train.csv
    val_csv: str = ""  # files: EPIC_100_validation.csv
    unseen_participants_csv: str | None = None
    tail_verbs_csv: str | None = None
    tail_nouns_csv: str | None = None
    num_verbs: int = 0  # head sizes; 0 = largest class id seen + 1 (EPIC-KITCHENS-100: 97 and 300)
    num_nouns: int = 0
    frames_per_clip: int = 8
    sample_fps: float = 5.0  # frames per second sampled in the window (released: 8)
    anticipation_time: float = 1.0  # tau_a [s]
    window_end: WindowEnd = "start"  # "start" (tau_a before the action starts) or "stop_released"
    crop_size: int = 64
    drop_unseen_val_actions: bool = False  # True: drop val pairs not seen in training (released code)
    max_train_segments: int = 0  # 0 = all
    max_val_segments: int = 0

    def check(self) -> None:
        non_negative(self, "num_verbs", "num_nouns", "anticipation_time", "max_train_segments", "max_val_segments")
        positive(self, "frames_per_clip", "sample_fps", "crop_size")


@dataclass
class SubmissionConfig(Checked):
    """Self-declared supervision levels of the challenge's JSON (0-5 each)."""

    sls_pt: int = 0
    sls_tl: int = 0
    sls_td: int = 0
    top_actions: int = 100

    def check(self) -> None:
        for key in ("sls_pt", "sls_tl", "sls_td"):
            in_range(self, key, 0, 5)
        positive(self, "top_actions")


@dataclass
class AnticipationConfig(Checked):
    data: AnticipationDataConfig = field(default_factory=AnticipationDataConfig)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    submission: SubmissionConfig = field(default_factory=SubmissionConfig)
    meta: EvalMetaConfig = field(default_factory=lambda: EvalMetaConfig(run_dir="runs/eval/anticipation"))

    def check(self) -> None:
        b = self.backbone
        require(not (b.future_tokens and b.init != "pretrained"), "backbone.future_tokens",
                "backbone.future_tokens needs the pretraining predictor of a checkpoint (backbone.init=pretrained)")
        require(not (b.future_tokens and b.out_layers), "backbone.out_layers",
                "backbone.future_tokens reads the last block's tokens only; set backbone.out_layers=null")
        if b.checkpoint is None:
            require(self.data.frames_per_clip >= b.tubelet_size, "data.frames_per_clip",
                    f"must be at least backbone.tubelet_size={b.tubelet_size}, got {self.data.frames_per_clip}",
                    ["backbone.tubelet_size"])


# ------------------------------------------------------------------------------------------ data

@dataclass
class AnticipationFiles:
    """Where the annotations and videos of one run are."""

    video_root: Path
    train_csv: Path
    val_csv: Path
    unseen_participants_csv: Path | None = None
    tail_verbs_csv: Path | None = None
    tail_nouns_csv: Path | None = None


def resolve_files(d: AnticipationDataConfig, progress: bool = True) -> AnticipationFiles:
    """The run's files; for ``source: embedded`` the benchmark is rendered first when missing."""
    if d.source == "embedded":
        from eval.anticipation.embedded import ensure

        bench = ensure(d.embedded_root, d.embedded, progress=progress)
        return AnticipationFiles(bench.videos, bench.file("EPIC_100_train.csv"), bench.file("EPIC_100_validation.csv"),
                                 bench.file("EPIC_100_unseen_participant_ids_validation.csv"),
                                 bench.file("EPIC_100_tail_verbs.csv"), bench.file("EPIC_100_tail_nouns.csv"))
    if not d.train_csv or not d.val_csv or not d.video_root:
        raise ConfigError("data.source=files needs data.train_csv, data.val_csv and data.video_root")
    opt = lambda p: Path(p) if p else None  # noqa: E731
    return AnticipationFiles(Path(d.video_root), Path(d.train_csv), Path(d.val_csv), opt(d.unseen_participants_csv),
                             opt(d.tail_verbs_csv), opt(d.tail_nouns_csv))


class AnticipationClips(torch.utils.data.Dataset):
    """Observed windows of annotated segments, as feature-cache items (:class:`eval.probes.frozen.ProbeItems`).

    Item ``i``: ``{"key": narration_id, "clips": [1, 1, 3, T, S, S], "labels": {verb, noun, action,
    action_key}}``, or :class:`Skipped` (unreadable video, or no frame before the anticipation point).
    Its cache source is the segment's annotation and its video file's path, size and modification time.
    """

    def __init__(self, segments: Sequence[Segment], vocab: ActionVocab, d: AnticipationDataConfig,
                 video_root: Path) -> None:
        self.segments, self.vocab, self.d, self.video_root = list(segments), vocab, d, video_root
        self.transform = VideoTransform(d.crop_size, training=False)
        self._info: dict[Path, object] = {}

    def __len__(self) -> int:
        return len(self.segments)

    def key(self, i: int) -> str:
        return self.segments[i].narration_id

    def source(self, i: int) -> dict:
        seg = self.segments[i]
        return {"segment": asdict(seg), "video": file_identity(self.path(seg))}

    def labels(self, i: int) -> dict[str, int]:
        return self.vocab.labels(self.segments[i])

    def path(self, seg: Segment) -> Path:
        return video_path(self.video_root, seg.participant_id, seg.video_id, self.d.video_layout, self.d.video_suffix)

    def indices(self, seg: Segment) -> np.ndarray | None:
        """0-based frame indices of the segment's observed window (None: nothing to observe)."""
        path = self.path(seg)
        if path not in self._info:
            self._info[path] = video_info(path)
        info = self._info[path]
        step = frame_step_for_fps(info.fps, self.d.sample_fps)
        return observed_indices(seg, info.fps, self.d.anticipation_time, self.d.frames_per_clip, step,
                                self.d.window_end, info.num_frames)

    def __getitem__(self, i: int):
        seg = self.segments[i]
        try:
            idx = self.indices(seg)
            if idx is None:
                return Skipped(seg.narration_id, f"{seg.narration_id}: no frame before the anticipation point")
            frames = read_frames(self.path(seg), idx)
        except VideoReadError as e:
            return Skipped(seg.narration_id, f"{seg.narration_id}: {e}")
        clip = self.transform(frames)
        return {"key": seg.narration_id, "clips": clip[None, None], "labels": self.vocab.labels(seg)}


@dataclass
class Splits:
    train: list[Segment]
    val: list[Segment]
    vocab: ActionVocab
    unseen_participants: set[str]
    tail_verbs: list[int] | None
    tail_nouns: list[int] | None
    dropped_val: int = 0


def load_splits(files: AnticipationFiles, d: AnticipationDataConfig) -> Splits:
    """Annotations, the action vocabulary (training pairs) and the optional unseen/tail lists."""
    train, val = read_annotations(files.train_csv), read_annotations(files.val_csv)
    vocab = ActionVocab.from_segments(train, val, d.num_verbs, d.num_nouns)
    dropped = 0
    if d.drop_unseen_val_actions:
        kept = [s for s in val if vocab.action_index(s.verb_class, s.noun_class) >= 0]
        dropped, val = len(val) - len(kept), kept
        if not val:
            raise AnnotationError(f"{files.val_csv}: no validation action was seen in {files.train_csv}")
    if d.max_train_segments:
        train = train[: d.max_train_segments]
    if d.max_val_segments:
        val = val[: d.max_val_segments]
    unseen = set(read_id_list(files.unseen_participants_csv)) if files.unseen_participants_csv else set()
    tv = read_class_list(files.tail_verbs_csv) if files.tail_verbs_csv else None
    tn = read_class_list(files.tail_nouns_csv) if files.tail_nouns_csv else None
    return Splits(train, val, vocab, unseen, tv, tn, dropped)


# ------------------------------------------------------------------------------------------ backbone

def with_future_tokens(encoder: nn.Module, b: BackboneConfig, d: AnticipationDataConfig,
                       device: torch.device) -> nn.Module:
    """``encoder`` extended by the pretraining predictor's tokens at the action start
    (:class:`jepa.models.future_tokens.FutureTokenEncoder`)."""
    from jepa.hub import load_predictor
    from jepa.models.future_tokens import FutureTokenEncoder, future_offset

    # the predictor's flat token indices refer to the encoder's grid (an official file records none)
    predictor = load_predictor(b.predictor_checkpoint or b.checkpoint, device=device, grid=encoder.nominal_grid)
    offset = future_offset(d.anticipation_time, d.sample_fps, encoder.tubelet_size)
    return FutureTokenEncoder(encoder, predictor, offset, b.future_steps, b.future_mask_index)


# ------------------------------------------------------------------------------------------ metrics

@dataclass
class MetricContext:
    """What the anticipation metrics need beyond scores and labels."""

    action_keys: Tensor  # [Ca] official id of each action column
    unseen: Tensor | None  # bool [M]
    tail_verbs: list[int] | None
    tail_nouns: list[int] | None

    def report(self, scores: dict[str, Tensor], labels: dict[str, Tensor]) -> dict[str, dict[str, float]]:
        gt = {"verb": labels["verb"], "noun": labels["noun"], "action": labels["action_key"]}
        return anticipation_metrics(scores, gt, 5, self.unseen, self.tail_verbs, self.tail_nouns, self.action_keys)

    def flat(self, scores: dict[str, Tensor], labels: dict[str, Tensor]) -> dict[str, float]:
        return {f"{split}.{name}": v for split, m in self.report(scores, labels).items() for name, v in m.items()}


# ------------------------------------------------------------------------------------------ submission

def submission_json(keys: Sequence[str], scores: dict[str, Tensor], vocab: ActionVocab,
                    s: SubmissionConfig) -> dict:
    """The challenge's JSON: every verb and noun score and the top ``s.top_actions`` ``"verb,noun"`` scores."""
    top = min(s.top_actions, vocab.num_actions)
    results = {}
    for i, key in enumerate(keys):
        act = scores["action"][i]
        best = act.topk(top).indices.tolist()
        results[key] = {
            "verb": {str(c): float(v) for c, v in enumerate(scores["verb"][i].tolist())},
            "noun": {str(c): float(v) for c, v in enumerate(scores["noun"][i].tolist())},
            "action": {f"{vocab.pairs[j][0]},{vocab.pairs[j][1]}": float(act[j]) for j in best},
        }
    return {"version": "0.2", "challenge": "action_anticipation", "sls_pt": s.sls_pt, "sls_tl": s.sls_tl,
            "sls_td": s.sls_td, "results": results}


def _actions_from_verbs_nouns(verb: Tensor, noun: Tensor, top: int = 100) -> dict[str, float]:
    """The official fallback: softmax(verbs) x softmax(nouns) over the top-100 of each, top-100 pairs."""
    v_top = verb.topk(min(top, len(verb)))
    n_top = noun.topk(min(top, len(noun)))
    joint = v_top.values.softmax(0)[:, None] * n_top.values.softmax(0)[None]
    best = joint.flatten().topk(min(top, joint.numel()))
    out = {}
    for value, flat in zip(best.values.tolist(), best.indices.tolist()):
        vi, ni = divmod(flat, joint.shape[1])
        out[f"{int(v_top.indices[vi])},{int(n_top.indices[ni])}"] = value
    return out


def evaluate_submission(submission: dict, segments: Sequence[Segment], unseen_participants: set[str] | None = None,
                        tail_verbs: list[int] | None = None, tail_nouns: list[int] | None = None,
                        k: int = 5) -> dict[str, dict[str, float]]:
    """Class-mean recall@k of a challenge JSON against ground-truth segments, as the official script.

    Every segment must have a prediction; action scores missing from the JSON are computed from the
    verb and noun scores as the official script does.
    """
    res = submission.get("results")
    if not isinstance(res, dict):
        raise InputError("submission has no 'results' mapping")
    missing = [s.narration_id for s in segments if s.narration_id not in res]
    if missing:
        raise InputError(f"submission lacks {len(missing)} segment(s), e.g. {missing[:3]}")
    nv = 1 + max(max(int(c) for c in res[s.narration_id]["verb"]) for s in segments)
    nn_ = 1 + max(max(int(c) for c in res[s.narration_id]["noun"]) for s in segments)
    verbs, nouns, action_rows = torch.zeros(len(segments), nv), torch.zeros(len(segments), nn_), []
    for i, s in enumerate(segments):
        r = res[s.narration_id]
        for c, v in r["verb"].items():
            verbs[i, int(c)] = float(v)
        for c, v in r["noun"].items():
            nouns[i, int(c)] = float(v)
        action_rows.append(r.get("action") or _actions_from_verbs_nouns(verbs[i], nouns[i]))
    # action scores over the union of the submitted pairs (absent pairs score -inf)
    pairs = sorted({tuple(int(x) for x in p.split(",")) for row in action_rows for p in row})
    col = {p: j for j, p in enumerate(pairs)}
    actions = torch.full((len(segments), len(pairs)), float("-inf"))
    for i, row in enumerate(action_rows):
        for p, v in row.items():
            actions[i, col[tuple(int(x) for x in p.split(","))]] = float(v)
    keys = torch.tensor([v * 1000 + n for v, n in pairs], dtype=torch.int64)
    labels = {"verb": torch.tensor([s.verb_class for s in segments]),
              "noun": torch.tensor([s.noun_class for s in segments]),
              "action": torch.tensor([s.verb_class * 1000 + s.noun_class for s in segments])}
    unseen = None
    if unseen_participants:
        unseen = torch.tensor([s.participant_id in unseen_participants for s in segments])
    return anticipation_metrics({"verb": verbs, "noun": nouns, "action": actions}, labels, k, unseen,
                                tail_verbs, tail_nouns, keys)


# ------------------------------------------------------------------------------------------ run

@dataclass
class AnticipationResult:
    report: dict[str, dict[str, float]]  # the best probe's metrics (overall / unseen / tail)
    sweep: SweepResult
    counts: dict[str, int]
    run_dir: Path
    seconds: float

    def lines(self) -> list[str]:
        o = self.report["overall"]
        best = self.sweep.best
        out = [f"segments: train {self.counts['train']} (skipped {self.counts['train_skipped']}), "
               f"val {self.counts['val']} (skipped {self.counts['val_skipped']})",
               f"best probe: lr {best['lr']:g}, weight decay {best['weight_decay']:g} "
               f"(of {len(self.sweep.grid)}, selected on val action recall@5)"]
        pct = lambda m, h: f"{100 * m[h]:.1f}" if h in m else "n/a"  # noqa: E731  (no tail sample of that head)
        for split, m in self.report.items():
            out.append(f"{split:>8} class-mean recall@5: verb {pct(m, 'verb')}  noun {pct(m, 'noun')}  "
                       f"action {pct(m, 'action')}")
        out.append(f"top-1 accuracy: verb {100 * o['verb_top1']:.1f}  noun {100 * o['noun_top1']:.1f}  "
                   f"action {100 * o['action_top1']:.1f}")
        return out


def _data_identity(d: AnticipationDataConfig) -> dict:
    """The preprocessing of the observed windows (part of the feature cache's identity)."""
    keep = ("frames_per_clip", "sample_fps", "anticipation_time", "window_end", "crop_size", "video_layout",
            "video_suffix")
    return {k: getattr(d, k) for k in keep}


def _unseen_mask(keys: Sequence[str], by_key: dict[str, Segment], unseen: set[str]) -> Tensor | None:
    if not unseen:
        return None
    return torch.tensor([by_key[k].participant_id in unseen for k in keys])


def run_anticipation(cfg: AnticipationConfig) -> AnticipationResult:
    """The whole evaluation (see the module docstring); writes its outputs into ``cfg.meta.run_dir``."""
    t0 = time.time()
    run_dir, device, encoder = start_run(cfg, cfg.data.crop_size, cfg.data.frames_per_clip)
    if cfg.backbone.future_tokens:
        encoder = with_future_tokens(encoder, cfg.backbone, cfg.data, device)
    files = resolve_files(cfg.data, cfg.meta.progress)
    splits = load_splits(files, cfg.data)
    grid = encoder.token_grid(cfg.data.frames_per_clip, cfg.data.crop_size, cfg.data.crop_size)
    feats, skipped = {}, {}
    for name, segs in (("train", splits.train), ("val", splits.val)):
        ds = AnticipationClips(segs, splits.vocab, cfg.data, files.video_root)
        feats[name], skipped[name] = cached_features(name, ds, encoder, run_dir / "features" / name, cfg.backbone,
                                                     _data_identity(cfg.data), cfg.meta, device)
    del encoder
    by_key = {s.narration_id: s for s in splits.val}
    ctx = MetricContext(torch.from_numpy(splits.vocab.keys()), _unseen_mask(feats["val"].keys, by_key,
                        splits.unseen_participants), splits.tail_verbs, splits.tail_nouns)
    result = train_probes(cfg, splits, feats["train"], feats["val"], ctx, device, run_dir, grid)
    counts = {"train": len(feats["train"]), "train_skipped": skipped["train"], "val": len(feats["val"]),
              "val_skipped": skipped["val"], "val_dropped_unseen_actions": splits.dropped_val,
              "actions": splits.vocab.num_actions}
    report = ctx.report(result.best_scores, feats["val"].labels)
    out = AnticipationResult(report, result, counts, run_dir, time.time() - t0)
    write_outputs(out, cfg, feats["val"].keys, splits.vocab)
    return out


def train_probes(cfg: AnticipationConfig, splits: Splits, train: FeatureSet, val: FeatureSet, ctx: MetricContext,
                 device: torch.device, run_dir: Path, grid: Sequence[int] | None = None) -> SweepResult:
    """Train the probe grid on ``train`` features ``[M, 1, N, D]`` and score it on ``val`` with ``ctx``."""
    p = cfg.probe
    if len(train) == 0 or len(val) == 0:
        raise SkipBudgetError("no training or validation segment could be read (see the skipped messages above)")
    v = splits.vocab
    classes = {"verb": v.num_verbs, "noun": v.num_nouns, "action": v.num_actions}
    sweep = probe_sweep(p, classes, train, device, cfg.meta.seed, grid)
    log = (run_dir / "train_log.jsonl").open("w")

    def on_epoch(epoch: int, losses: list[float]) -> None:
        log.write(json.dumps({"epoch": epoch, "loss": losses}) + "\n")
        log.flush()

    train_set = FeatureSet(train.features, {h: train.labels[h] for h in HEADS}, train.keys)
    try:
        return fit_sweep(sweep, train_set, val, p.epochs, p.batch_size, ctx.flat, select="overall.action",
                         seed=cfg.meta.seed, on_epoch=on_epoch)
    finally:
        log.close()


def write_outputs(res: AnticipationResult, cfg: AnticipationConfig, val_keys: Sequence[str],
                  vocab: ActionVocab) -> None:
    """``results.json`` (best, grid, counts) and ``submission.json`` (challenge format) in the run folder."""
    results = {"best": res.sweep.best, "report": res.report, "grid": res.sweep.grid, "counts": res.counts,
               "seconds": res.seconds, "metric": "class-mean recall@5 (EPIC-KITCHENS-100 anticipation)"}
    write_json(res.run_dir / "results.json", results)  # strict JSON: a metric of an empty class is null
    sub = submission_json(val_keys, res.sweep.best_scores, vocab, cfg.submission)
    write_json(res.run_dir / "submission.json", sub, indent=None)


def main(argv: Sequence[str]) -> int:
    p = config_parser("jepa eval anticipation", __doc__.splitlines()[0],
                      "YAML config (defaults: the embedded arm benchmark)", "backbone.checkpoint=runs/x/latest.pt")
    cfg, _ = parse_config(p, AnticipationConfig, argv)
    res = run_anticipation(cfg)  # errors: the jepa command's error boundary (eval.cli)
    for line in res.lines():
        print(line)
    print(f"outputs: {res.run_dir} (results.json, submission.json) in {res.seconds:.0f} s")
    return 0
