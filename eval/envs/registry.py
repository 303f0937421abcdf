"""Environments by name: a built-in (``fetch-reach``, ``fetch-push``, ``pusht``) or any class that
follows :class:`planners.protocol.GoalEnv`, given by import path (``"mypkg.envs:MyArm"``).

``make_env(name, image_size=64, **kwargs)``: built-ins take ``image_size``; a class given by path is
called with ``image_size`` only if its constructor accepts it, plus ``kwargs``, and is checked with
:func:`planners.protocol.check_env` (every method called once) before it is returned.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from jepa.errors import InputError

ENV_NAMES = ("fetch-reach", "fetch-push", "pusht")


def _builtin(name: str, image_size: int, kwargs: dict) -> Any:
    if name == "fetch-reach":
        from eval.envs.fetch import FetchEnv

        return FetchEnv(task="reach", image_size=image_size, **kwargs)
    if name == "fetch-push":
        from eval.envs.fetch import OBJECT_RED, PUSH_CAMERA, FetchEnv

        options = {"camera": PUSH_CAMERA, "object_rgba": OBJECT_RED, "goal_style": "pushed", "render_arm": "gripper",
                   **kwargs}
        return FetchEnv(task="push", image_size=image_size, **options)
    from eval.envs.pusht import PushTEnv

    return PushTEnv(image_size=image_size, **kwargs)


def import_object(path: str, what: str) -> Any:
    """The object ``"package.module:Name"`` names; a clear error if it cannot be imported."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise InputError(f"{what} {path!r}: expected a built-in name or an import path 'package.module:Name'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise InputError(f"{what} {path!r}: cannot import module {module_name!r} ({e})") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise InputError(f"{what} {path!r}: module {module_name!r} has no attribute {attr!r}") from None


def make_env(name: str, image_size: int = 64, **kwargs: Any) -> Any:
    """A :class:`planners.protocol.GoalEnv` by built-in name or import path (module docstring)."""
    if name in ENV_NAMES:
        return _builtin(name, image_size, kwargs)
    if ":" not in name:
        raise InputError(f"unknown env {name!r}; choose from {ENV_NAMES} or give an import path 'package.module:Class'")
    from planners.protocol import check_env

    cls = import_object(name, "env")
    accepts_size = "image_size" in inspect.signature(cls).parameters
    env = cls(image_size=image_size, **kwargs) if accepts_size else cls(**kwargs)
    check_env(env, call=True)
    return env
