"""The training loop shared by pretraining and AC training: resume -> [step -> log -> checkpoint]*.

What differs between trainings is the ``step_fn(state, batch) -> metrics`` and the data; the loop
owns the step counter, the data position, logging, checkpoints and resuming.

Numerical guard: a non-finite loss (``metrics[loss_key]``) stops the run with a
:class:`~jepa.errors.TrainingDivergedError` naming the step, before anything of that step is saved,
and no checkpoint is ever written with non-finite weights: the last good ``latest.pt`` stays, and
the run can resume from it (with a lower learning rate, say: ``--allow-changed``). Unreadable items
the data skipped (``metrics["skipped"]``) are counted over the run (kept across resumes) and
reported at the end.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm import tqdm

from jepa.checkpoints import CheckpointError, load_state_dict_strict
from jepa.errors import TrainingDivergedError
from jepa.train.checkpointing import Checkpointer, rng_state, set_rng_state
from jepa.train.logging import MetricsLogger


@dataclass
class TrainState:
    """Everything a resume needs: named modules, the optimizer, the step and the data position."""

    modules: dict[str, nn.Module]
    optimizer: torch.optim.Optimizer
    step: int = 0
    epoch: int = 0
    batch: int = 0
    skipped: int = 0  # unreadable items the data skipped over the run
    extra: dict = field(default_factory=dict)
    # FSDP: modules hold shards; payload() gathers full state dicts and restore() scatters them, both
    # collectively (every rank calls them). The optimizer state is then keyed by parameter names.
    sharded: bool = False

    def payload(self, config: dict) -> dict:
        if self.sharded:
            from jepa.train.distributed import full_state_dicts

            models, optim = full_state_dicts(self.modules, self.optimizer)
        else:
            models = {name: m.state_dict() for name, m in self.modules.items()}
            optim = self.optimizer.state_dict()
        return {**models, "optimizer": optim, "step": self.step,
                "data": {"epoch": self.epoch, "batch": self.batch}, "rng": rng_state(), "config": config,
                "skipped": self.skipped, **self.extra}

    def restore(self, payload: dict, source: str = "checkpoint") -> None:
        """Load a :meth:`payload`; a part that does not match the modules (another architecture) is a
        :class:`~jepa.checkpoints.CheckpointError` naming ``source`` and the keys."""
        missing = [name for name in self.modules if name not in payload]
        if missing:
            raise CheckpointError(f"{source}: lacks the parts {missing} of this run (parts: {sorted(payload)})")
        if self.sharded:
            from jepa.train.distributed import load_full_state_dicts

            load_full_state_dicts(self.modules, self.optimizer, {k: payload[k] for k in self.modules},
                                  payload["optimizer"])
        else:
            for name, m in self.modules.items():
                load_state_dict_strict(m, payload[name], f"{source} [{name}]")
            try:
                self.optimizer.load_state_dict(payload["optimizer"])
            except (ValueError, KeyError, RuntimeError) as e:
                raise CheckpointError(f"{source} [optimizer]: does not match this run's optimizer ({e})") from None
        self.skipped = int(payload.get("skipped", 0))
        self.step = int(payload["step"])
        self.epoch, self.batch = int(payload["data"]["epoch"]), int(payload["data"]["batch"])
        set_rng_state(payload["rng"])


def nonfinite_parts(payload: dict, names: Iterable[str]) -> list[str]:
    """The model parts of a checkpoint payload (state dicts under ``names``) that hold NaN or inf."""
    return [name for name in names
            if any(t.is_floating_point() and not bool(torch.isfinite(t).all()) for t in payload[name].values())]


def train_loop(
    state: TrainState,
    step_fn: Callable[[TrainState, dict], dict],
    make_batches: Callable[[int, int], Iterable[dict]],
    batches_per_epoch: int,
    max_steps: int,
    checkpointer: Checkpointer,
    logger: MetricsLogger,
    config: dict,
    log_every: int = 10,
    is_main: bool = True,
    progress: bool = True,
    loss_key: str = "loss",
) -> TrainState:
    """Run ``step_fn`` until ``max_steps``, resuming from the checkpointer's latest file if there is one.

    ``make_batches(epoch, batch)`` returns an iterable of batches starting at that data position;
    ``metrics[loss_key]`` is the loss the numerical guard watches (module docstring).
    """
    saved = checkpointer.load()
    if saved is not None:
        state.restore(saved, str(checkpointer.latest))
    last_good = state.step if saved is not None else None
    batches = iter(make_batches(state.epoch, state.batch))
    with tqdm(total=max_steps, initial=state.step, desc="train", unit="step",
              disable=not (progress and is_main)) as bar:
        while state.step < max_steps:
            metrics = step_fn(state, next(batches))
            loss = metrics.get(loss_key)
            if loss is not None and not math.isfinite(loss):
                raise diverged(checkpointer, f"the loss ({loss_key}) is {loss} at step {state.step + 1}", last_good)
            state.step += 1
            state.batch += 1
            state.skipped += int(metrics.get("skipped", 0))
            if state.batch >= batches_per_epoch:
                state.epoch, state.batch = state.epoch + 1, 0
            if state.step % log_every == 0 or state.step == max_steps:
                logger.log(state.step, metrics)
                bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items() if isinstance(v, float)})
            if (checkpointer.due(state.step) or state.step == max_steps) and (is_main or state.sharded):
                payload = state.payload(config)  # with FSDP a collective, so every rank builds it
                if is_main:
                    save_if_finite(checkpointer, payload, state, last_good)
                    last_good = state.step
            bar.update(1)
    if state.skipped and is_main:
        print(f"{checkpointer.run_dir}: {state.skipped} unreadable items were skipped over the run (each is named "
              "in a warning; metrics.jsonl counts them per step)", file=sys.stderr)
    return state


def save_if_finite(checkpointer: Checkpointer, payload: dict, state: TrainState, last_good: int | None) -> None:
    """Save ``payload`` unless a model part holds NaN or inf: then stop the run, keeping the last good file."""
    bad = nonfinite_parts(payload, state.modules)
    if bad:
        raise diverged(checkpointer, f"the weights of {bad} are NaN or inf at step {state.step}", last_good)
    checkpointer.save(payload, state.step)


def diverged(checkpointer: Checkpointer, what: str, last_good: int | None) -> TrainingDivergedError:
    """The error that stops a diverged run: what happened, and which checkpoint is kept."""
    kept = (f"the last good checkpoint {checkpointer.latest} (step {last_good}) is kept; resume from it with a "
            "lower learning rate (optimization.lr, with --allow-changed) or check the data"
            if last_good is not None else "no checkpoint was written; lower the learning rate (optimization.lr) "
            "or check the data (actions, states) and start again")
    return TrainingDivergedError(f"{checkpointer.run_dir}: training stopped: {what}; {kept}")
