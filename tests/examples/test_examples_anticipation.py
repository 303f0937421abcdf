"""Smoke test: the anticipation example runs at tiny size from nothing and prints its recalls."""

import os
import subprocess
import sys

from tests.helpers import REPO_ROOT

ROOT = REPO_ROOT


def test_anticipation_example_runs_tiny(tmp_path):
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "anticipation_benchmark.py"), "--tiny",
                          "--out", str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "verb/noun/action recall@5:" in out.stdout, out.stdout
    assert "overall class-mean recall@5" in out.stdout
    assert (tmp_path / "tiny" / "run" / "submission.json").is_file()
