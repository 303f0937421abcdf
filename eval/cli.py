"""The ``jepa`` command: the top layer, the only place that names sub-commands of every layer
(``jepa``, ``planners``, ``eval``). Each sub-command lives in its own module and is imported only
when used, so ``jepa --help`` is fast."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> (module, function taking argv, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "features": ("jepa.features", "main", "embed video files with a frozen backbone"),
    "pretrain": ("jepa.train.pretrain", "main", "masked latent prediction pretraining (JEPA)"),
    "train-ac": ("jepa.train.ac", "main", "train the action-conditioned predictor on robot clips"),
    "collect": ("eval.envs.collect", "main", "collect robot clips in a simulated env"),
    "plan": ("eval.planning.benchmark", "main", "goal-image MPC episodes with a trained world model"),
    "demo": ("eval.apps.demo", "main", "the whole chain on the simulated arm: collect, pretrain, train-ac, plan"),
    "eval": ("eval.apps.evaluate", "main", "evaluate frozen backbones: probes, classification, action anticipation"),
    "surprise": ("eval.physics.command", "main", "surprise per time step of videos (did something impossible happen?)"),
    "export": ("jepa.export.command", "main", "export a world model (encoder + one predictor step with a KV cache)"),
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jepa", description="JEPA world models: train, plan, evaluate.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, _, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        parser = _parser()
        if argv and argv[0] not in ("-h", "--help"):
            parser.error(f"unknown command {argv[0]!r}; choose from {', '.join(COMMANDS)}")
        parser.print_help()
        return 0
    module, func, _ = COMMANDS[argv[0]]
    fn = getattr(importlib.import_module(module), func)
    return int(fn(argv[1:]) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
