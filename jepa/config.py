"""Typed configuration: dataclass schemas filled from YAML files and ``key=value`` overrides.

Every task defines a dataclass schema whose defaults give the embedded, CPU-sized run. A YAML file
and command-line overrides are merged on top with omegaconf; a key the schema does not know, or a
value of the wrong type, is an error naming the file (or override) and the key, never ignored.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration file or override does not match its schema."""


def load_config(schema: type[T], path: str | Path | None = None, overrides: Sequence[str] = ()) -> T:
    """Build a ``schema`` instance from its defaults, then ``path`` (YAML), then ``overrides``.

    ``overrides`` are ``"a.b=value"`` strings (omegaconf dot-list syntax).
    """
    cfg = OmegaConf.structured(schema)
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            cfg = OmegaConf.merge(cfg, OmegaConf.load(path))
        except OmegaConfBaseException as e:
            raise ConfigError(f"{path}: {_describe(e)}") from None
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise ConfigError(f"overrides must look like key=value, got {bad}")
    try:
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
        return OmegaConf.to_object(cfg)
    except OmegaConfBaseException as e:
        raise ConfigError(f"override {list(overrides)}: {_describe(e)}") from None


def config_parser(prog: str, description: str, config_help: str, example: str) -> argparse.ArgumentParser:
    """The parser every command shares: an optional YAML config and ``key=value`` overrides
    (``example`` shows one). Commands add their own flags to it."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("config", nargs="?", default=None, help=config_help)
    p.add_argument("overrides", nargs="*", help=f"key=value overrides, e.g. {example}")
    return p


def parse_config(parser: argparse.ArgumentParser, schema: type[T], argv: Sequence[str]) -> tuple[T, argparse.Namespace]:
    """Parse ``argv`` with a :func:`config_parser` and load the config; a first argument that contains
    ``=`` is an override, not a file name."""
    args = parser.parse_args(list(argv))
    if args.config is not None and "=" in args.config:
        args.config, args.overrides = None, [args.config, *args.overrides]
    return load_config(schema, args.config, args.overrides), args


def _describe(e: OmegaConfBaseException) -> str:
    key = getattr(e, "full_key", None)
    msg = str(e).splitlines()[0]
    return f"key {key!r}: {msg}" if key else msg


def to_yaml(cfg: object) -> str:
    """The resolved config as YAML text."""
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def save_config(cfg: object, path: str | Path) -> None:
    """Write the resolved config next to a run's outputs."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_yaml(cfg))
