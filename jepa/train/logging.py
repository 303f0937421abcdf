"""Machine-readable training logs: one JSON object per line in the run folder (rank 0 only).

Values that are not finite are written as ``null`` (strict JSON). A resumed run first drops the rows
beyond its checkpoint's step (:func:`jepa.train.resume.trim_metrics`), so each step is logged once.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from jepa.errors import write_error
from jepa.files import finite_json


class MetricsLogger:
    def __init__(self, path: str | Path, enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled
        self.start = time.time()
        if enabled:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise write_error(self.path, e) from None

    def log(self, step: int, metrics: dict) -> None:
        if not self.enabled:
            return
        record = finite_json({"step": step, "time": round(time.time() - self.start, 3), **metrics})
        try:
            with open(self.path, "a") as f:
                f.write(json.dumps(record, allow_nan=False) + "\n")
        except OSError as e:
            raise write_error(self.path, e) from None
