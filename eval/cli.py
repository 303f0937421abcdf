"""The ``jepa`` command: the top layer, the only place that names sub-commands of every layer
(``jepa``, ``planners``, ``eval``). Each sub-command lives in its own module and is imported only
when used, so ``jepa --help`` is fast.

It is also the one error boundary of every command: a library error (:func:`jepa.errors.is_library_error`:
a bad file, key or value, a folder that cannot be written, a training that diverged) is printed as
``error: <file>: <problem>`` and the command exits with status 2, without a traceback; ``--debug``
(anywhere on the command line) or ``JEPA_DEBUG=1`` shows the traceback. Any other exception is a bug
and keeps its traceback. Ctrl-C exits with status 130 (training resumes from its last checkpoint)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from jepa.errors import EXIT_CODE, describe, is_library_error

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
    p = argparse.ArgumentParser(prog="jepa", description="JEPA world models: train, plan, evaluate.",
                                epilog="--debug (or JEPA_DEBUG=1) shows the traceback of an error.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, _, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return p


def debug_requested(argv: Sequence[str]) -> bool:
    """``--debug`` on the command line or ``JEPA_DEBUG`` set to anything but empty or ``0``."""
    return "--debug" in argv or os.environ.get("JEPA_DEBUG", "") not in ("", "0")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(argv)
    argv = [a for a in argv if a != "--debug"]
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        parser = _parser()
        if argv and argv[0] not in ("-h", "--help"):
            parser.error(f"unknown command {argv[0]!r}; choose from {', '.join(COMMANDS)}")
        parser.print_help()
        return 0
    module, func, _ = COMMANDS[argv[0]]
    try:
        fn = getattr(importlib.import_module(module), func)
        return int(fn(argv[1:]) or 0)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"jepa {argv[0]}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if debug or not is_library_error(e):
            raise
        print(f"error: {describe(e)}", file=sys.stderr)
        return EXIT_CODE


if __name__ == "__main__":
    raise SystemExit(main())
