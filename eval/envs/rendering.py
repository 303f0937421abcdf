"""Headless rendering for simulated envs: call :func:`prepare_headless_rendering` before your env
creates its first OpenGL context (the built-in Fetch adapter does).

Two things go wrong otherwise on a machine without a screen:

- MuJoCo needs a headless GL backend: ``MUJOCO_GL=egl`` (set here unless already set; ``osmesa``
  also works) and ``PYOPENGL_PLATFORM`` to match;
- importing triton *after* MuJoCo has created an EGL context segfaults the process (torch 2.14 CUDA
  wheels with mujoco 3.3, measured), and torch imports triton lazily (``torch._dynamo``, e.g. via
  timm or ``torch.compile``), so a process that renders first and builds a model afterwards would
  crash. Importing triton first avoids it.
"""

from __future__ import annotations

import os


def prepare_headless_rendering(backend: str = "egl") -> None:
    """Choose the headless GL backend (unless ``MUJOCO_GL`` is set) and import triton (if installed)
    before any GL context exists. Safe to call more than once."""
    os.environ.setdefault("MUJOCO_GL", backend)
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
    try:
        import triton  # noqa: F401
    except ImportError:
        pass
