"""Opening a run folder: a fresh start, or a resume with exactly what the checkpoint was made with.

:func:`open_run`, called by both trainers before they train (and before they write anything):

1. removes the temporary files that killed writes left in the run folder (checkpoints, the feature
   cache; :func:`jepa.files.remove_stale_temps`);
2. reads ``latest.pt`` when there is one and compares the run's config and dataset identity with the
   ones the checkpoint recorded (its ``config`` and ``dataset`` parts; every checkpoint the run writes
   records them). A difference is a
   :class:`~jepa.errors.ResumeMismatchError` that lists every changed key (old -> new) and the dataset
   change, unless ``allow_changed`` (``--allow-changed`` / ``meta.allow_changed=true``): then each
   change is printed and appended to ``resume.log``. Keys that do not change what is computed
   (:data:`NOT_COMPARED`: progress bars, logging and checkpoint intervals, workers, device) are not
   compared. A finished pretraining run (checkpoint at ``max_steps``) trains nothing more: a changed
   dataset alone is reported, not refused (the demo re-runs it as a cached stage after collecting more);
3. writes ``config.yaml`` (the run's config) and ``dataset.json`` (its dataset identity);
4. drops the rows of ``metrics.jsonl`` beyond the checkpoint's step (a killed run logged steps its
   checkpoint does not hold; the resumed run logs them again), so every step is in the log once.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path

from omegaconf import OmegaConf

from jepa.errors import ResumeMismatchError
from jepa.files import atomic_write_text, remove_stale_temps, write_json
from jepa.train.checkpointing import Checkpointer

NOT_COMPARED = frozenset({"meta.progress", "meta.allow_changed", "meta.log_every", "meta.checkpoint_every",
                          "meta.keep_checkpoints", "meta.device", "meta.compile", "data.num_workers",
                          "data.encode_batch"})


def _plain(value: object) -> object:
    """``value`` as JSON would store it (tuples become lists), so equal settings compare equal."""
    return json.loads(json.dumps(value, default=str))


def _flatten(value: object, prefix: str = "") -> dict[str, object]:
    if isinstance(value, Mapping) and value:
        out: dict[str, object] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def config_changes(old: Mapping, new: Mapping) -> list[str]:
    """``"key: old -> new"`` for every compared key whose value differs. Configs are typed, so a key only
    one side has is a setting another version of the library added or removed (a checkpoint written
    before ``data.max_skip_fraction`` existed, say): it is not compared, and such runs still resume."""
    a, b = _flatten(_plain(dict(old))), _flatten(_plain(dict(new)))
    return [f"{key}: {json.dumps(a[key])} -> {json.dumps(b[key])}" for key in sorted(set(a) & set(b))
            if key not in NOT_COMPARED and a[key] != b[key]]


def dataset_changes(old: object, new: object) -> list[str]:
    """What differs between two dataset identities (the ``path`` field is for messages, not compared)."""
    def strip(ident: object) -> object:
        if isinstance(ident, Mapping):
            return {k: strip(v) for k, v in ident.items() if k != "path"}
        if isinstance(ident, list):
            return [strip(v) for v in ident]
        return ident

    if strip(_plain(old)) == strip(_plain(new)):
        return []
    return [f"dataset: {summary(old)} at the checkpoint, now {summary(new)}"]


def summary(ident: object) -> str:
    """A dataset identity in a few words: path, episodes (or videos), frames."""
    if isinstance(ident, list):
        return " + ".join(summary(i) for i in ident)
    if not isinstance(ident, Mapping):
        return repr(ident)
    parts = [f"{ident[k]} {k}" for k in ("episodes", "videos", "frames") if k in ident]
    return f"{ident.get('path', '?')} ({', '.join(parts)}; sha256 {str(ident.get('sha256', ''))[:12]})"


def open_run(checkpointer: Checkpointer, config: Mapping, dataset: object, allow_changed: bool = False,
             is_main: bool = True, max_steps: int | None = None) -> dict | None:
    """Prepare ``checkpointer.run_dir`` for training (see the module docstring); returns the checkpoint
    to resume from (also cached in ``checkpointer``), or ``None`` for a fresh run.

    ``max_steps``: for a trainer that writes nothing once its checkpoint is at ``max_steps`` (pretraining),
    a finished run is a result, not a resume: a changed dataset alone is then reported on stderr, not an
    error, and the folder's records (``config.yaml``, ``dataset.json``) are left describing the
    checkpoint (a changed config is still an error: it asks for another run). A trainer that rebuilds
    outputs from the current data even when finished (AC training: features, normalisation,
    ``world_model.pt``) leaves it ``None`` and is always checked."""
    run_dir = checkpointer.run_dir
    checkpointer.extra["dataset"] = _plain(dataset)  # recorded in every checkpoint of the run
    if is_main:
        for p in remove_stale_temps(run_dir, recursive=True):  # the run's own files (and its feature cache)
            print(f"{run_dir}: removed {p.relative_to(run_dir)}, left by an interrupted write", file=sys.stderr)
    saved = checkpointer.load()
    changes, data_changes = [], []
    if saved is not None:
        changes = config_changes(saved.get("config") or {}, config)
        data_changes = dataset_changes(saved["dataset"], dataset) if "dataset" in saved else []
    if data_changes and not changes and max_steps is not None and int(saved["step"]) >= max_steps:
        print(f"{checkpointer.latest}: the run is finished (step {int(saved['step'])}) and trains nothing more, "
              "so this change is not used:\n  " + "\n  ".join(data_changes), file=sys.stderr)
        return saved
    changes += data_changes
    if changes and not allow_changed:
        raise ResumeMismatchError(
            f"{checkpointer.latest}: the run was started with other settings; resuming it would continue them "
            "silently. Changed:\n  " + "\n  ".join(changes) +
            "\nUse a new meta.run_dir, restore the settings, or resume anyway with --allow-changed "
            "(meta.allow_changed=true).")
    if is_main:
        if changes:
            _log_changes(run_dir, int(saved["step"]), changes)
        atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(OmegaConf.create(_plain(dict(config)))))
        write_json(run_dir / "dataset.json", dataset)
        trim_metrics(run_dir / "metrics.jsonl", int(saved["step"]) if saved is not None else 0)
    return saved


def _log_changes(run_dir: Path, step: int, changes: list[str]) -> None:
    text = f"resumed at step {step} with changes (--allow-changed):\n" + "".join(f"  {c}\n" for c in changes)
    print(f"{run_dir}: {text}", end="", file=sys.stderr)
    log = run_dir / "resume.log"
    old = log.read_text() if log.exists() else ""
    atomic_write_text(log, old + text)


def trim_metrics(path: Path, step: int) -> int:
    """Drop the rows of a ``metrics.jsonl`` with a step beyond ``step`` (and a torn last line); returns
    how many rows were dropped."""
    if not path.exists():
        return 0
    lines = path.read_text().splitlines()
    keep = []
    for line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and int(row.get("step", 0)) <= step:
            keep.append(line)
    if len(keep) != len(lines):
        atomic_write_text(path, "".join(f"{line}\n" for line in keep))
    return len(lines) - len(keep)
