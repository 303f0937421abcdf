"""The training loop shared by pretraining and AC training: resume -> [step -> log -> checkpoint]*.

What differs between trainings is the ``step_fn(state, batch) -> metrics`` and the data; the loop
owns the step counter, the data position, logging, checkpoints and resuming.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm import tqdm

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
                **self.extra}

    def restore(self, payload: dict) -> None:
        if self.sharded:
            from jepa.train.distributed import load_full_state_dicts

            load_full_state_dicts(self.modules, self.optimizer, {k: payload[k] for k in self.modules},
                                  payload["optimizer"])
        else:
            for name, m in self.modules.items():
                m.load_state_dict(payload[name])
            self.optimizer.load_state_dict(payload["optimizer"])
        self.step = int(payload["step"])
        self.epoch, self.batch = int(payload["data"]["epoch"]), int(payload["data"]["batch"])
        set_rng_state(payload["rng"])


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
) -> TrainState:
    """Run ``step_fn`` until ``max_steps``, resuming from the checkpointer's latest file if there is one.

    ``make_batches(epoch, batch)`` returns an iterable of batches starting at that data position.
    """
    saved = checkpointer.load()
    if saved is not None:
        state.restore(saved)
    bar = tqdm(total=max_steps, initial=state.step, desc="train", unit="step", disable=not (progress and is_main))
    batches = iter(make_batches(state.epoch, state.batch))
    while state.step < max_steps:
        metrics = step_fn(state, next(batches))
        state.step += 1
        state.batch += 1
        if state.batch >= batches_per_epoch:
            state.epoch, state.batch = state.epoch + 1, 0
        if state.step % log_every == 0 or state.step == max_steps:
            logger.log(state.step, metrics)
            bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items() if isinstance(v, float)})
        if (checkpointer.due(state.step) or state.step == max_steps) and (is_main or state.sharded):
            payload = state.payload(config)  # with FSDP a collective, so every rank builds it
            if is_main:
                checkpointer.save(payload, state.step)
        bar.update(1)
    bar.close()
    return state
