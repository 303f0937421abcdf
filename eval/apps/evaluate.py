"""``jepa eval``: evaluations of frozen backbones.

    jepa eval anticipation CONFIG.yaml [key=value ...]   EPIC-KITCHENS-100 style action anticipation
    jepa eval classify CONFIG.yaml [key=value ...]       video classification with attentive probes

Each task lives in its own module, imported only when it runs.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

TASKS: dict[str, tuple[str, str]] = {
    "anticipation": ("eval.anticipation.run",
                     "action anticipation (EPIC-KITCHENS-100 protocol or the embedded arm set)"),
    "classify": ("eval.probes.classification", "video classification from `path label` lists"),
}


def usage() -> str:
    lines = ["usage: jepa eval TASK CONFIG.yaml [key=value ...]", "", "tasks:"]
    lines += [f"  {name:<14} {help_text}" for name, (_, help_text) in TASKS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    argv = list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] not in TASKS:
        print(f"jepa eval: unknown task {argv[0]!r}\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(TASKS[argv[0]][0])
    return int(module.main(argv[1:]) or 0)
