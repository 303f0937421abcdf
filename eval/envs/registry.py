"""Built-in environments by name: ``make_env("fetch-reach" | "fetch-push" | "pusht", image_size, ...)``."""

from __future__ import annotations

ENV_NAMES = ("fetch-reach", "fetch-push", "pusht")


def make_env(name: str, image_size: int = 64):
    """A :class:`planners.protocol.GoalEnv` by name."""
    if name in ("fetch-reach", "fetch-push"):
        from eval.envs.fetch import FetchEnv

        return FetchEnv(task=name.split("-")[1], image_size=image_size)
    if name == "pusht":
        from eval.envs.pusht import PushTEnv

        return PushTEnv(image_size=image_size)
    raise ValueError(f"unknown env {name!r}; choose from {ENV_NAMES}")
