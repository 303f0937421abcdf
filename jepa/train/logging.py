"""Machine-readable training logs: one JSON object per line in the run folder (rank 0 only)."""

from __future__ import annotations

import json
import time
from pathlib import Path


class MetricsLogger:
    def __init__(self, path: str | Path, enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled
        self.start = time.time()
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def log(self, step: int, metrics: dict) -> None:
        if not self.enabled:
            return
        record = {"step": step, "time": round(time.time() - self.start, 3), **metrics}
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
