"""Smoke tests: each example script runs at tiny size and prints what it promises."""

import os
import subprocess
import sys

import pytest

from tests.helpers import REPO_ROOT

ROOT = REPO_ROOT


@pytest.mark.parametrize("script, expect", [
    ("frozen_backbone.py", "tokens (1, 128, 192) [B, N, D], pooled (1, 192) [B, D]"),
    ("goal_image_mpc.py", "success rate"),
])
def test_example_runs_tiny(script, expect):
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    out = subprocess.run([sys.executable, str(ROOT / "examples" / script), "--tiny"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert expect in out.stdout, out.stdout
