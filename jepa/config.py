"""Typed configuration: dataclass schemas filled from YAML files and ``key=value`` overrides.

Every task defines a dataclass schema whose defaults give the embedded, CPU-sized run. A YAML file
and command-line overrides are merged on top with omegaconf; a key the schema does not know, or a
value of the wrong type (including a string outside a ``Literal[...]`` choice), is an error naming
the file (or override) and the key, never ignored.

Range checks. A schema that subclasses :class:`Checked` defines ``check(self)``, written with the
helpers below (:func:`positive`, :func:`non_negative`, :func:`in_range`, :func:`known_device`,
:func:`require`, ...). Each helper raises :class:`ConfigValueError` with the key relative to the
dataclass that checks it. ``check`` runs when the dataclass is built in Python (``__post_init__``);
:func:`load_config` runs every nested config's ``check`` after the merge, innermost first, and
reports the full key and where the value came from::

    ConfigError: override 'optimization.lr.base=nan': key 'optimization.lr.base': must be finite and >= 0, got nan

To give a config range checks::

    @dataclass
    class SolverConfig(Checked):
        samples: int = 300
        momentum: float = 0.1

        def check(self) -> None:
            positive(self, "samples")
            in_range(self, "momentum", 0.0, 1.0)

A check that involves a nested config names the nested key, and the other keys it reads
(``require(self.data.frames >= self.model.tubelet, "data.frames", "...", ["model.tubelet"])``).
A subclass that needs its own ``__post_init__`` calls ``super().__post_init__()`` at its end.
"""

from __future__ import annotations

import argparse
import contextvars
import dataclasses
import functools
import math
import re
import typing
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from jepa.errors import JepaError

T = TypeVar("T")

_DEFER_CHECKS = contextvars.ContextVar("defer_config_checks", default=False)


class ConfigError(JepaError, ValueError):
    """A configuration file or override does not match its schema."""


class ConfigValueError(ConfigError):
    """A value outside its allowed range; ``key`` (and the ``related`` keys of a check across fields)
    are relative to the config that checked it."""

    def __init__(self, key: str, problem: str, related: Sequence[str] = ()) -> None:
        self.key, self.problem, self.related = key, problem, tuple(related)
        super().__init__(f"key {key!r}: {problem}")

    def under(self, prefix: str) -> ConfigValueError:
        """The same error with its keys seen from the parent config at ``prefix``."""
        up = (lambda k: f"{prefix}.{k}") if prefix else (lambda k: k)  # noqa: E731
        return ConfigValueError(up(self.key), self.problem, [up(k) for k in self.related])


class Checked:
    """Base of config dataclasses with range checks (see the module docstring). Fields typed
    ``Literal[...]`` (or ``Literal[...] | None``) are checked against their choices too, so a
    config built in Python rejects a bad choice as omegaconf does."""

    def __post_init__(self) -> None:
        if not _DEFER_CHECKS.get():
            self.validate()

    def validate(self) -> None:
        """The ``Literal`` choices, then :meth:`check`."""
        for name, choices in _literal_fields(type(self)).items():
            v = getattr(self, name)
            if v is not None and v not in choices:
                raise ConfigValueError(name, f"must be one of {list(choices)}, got {v!r}")
        self.check()

    def check(self) -> None:
        """Raise :class:`ConfigValueError` for a bad value; the default checks nothing."""


@functools.cache
def _literal_fields(cls: type) -> dict[str, tuple]:
    """``{field: choices}`` of the dataclass fields of ``cls`` typed ``Literal[...]`` (or optional)."""
    out = {}
    for name, hint in typing.get_type_hints(cls).items():
        args = [hint] if typing.get_origin(hint) is typing.Literal else typing.get_args(hint)
        lits = [a for a in args if typing.get_origin(a) is typing.Literal]
        if lits:
            out[name] = tuple(c for lit in lits for c in typing.get_args(lit))
    return out


# ------------------------------------------------------------------------------------------ checks

def _value(cfg: object, key: str) -> Any:
    for part in key.split("."):
        cfg = getattr(cfg, part)
    return cfg


def _values(cfg: object, key: str) -> Iterator[Any]:
    """The value at ``key``, or each element of a list/tuple value; ``None`` (an unset option) yields nothing."""
    v = _value(cfg, key)
    if v is None:
        return
    yield from (v if isinstance(v, (list, tuple)) else [v])


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _fail(cfg: object, key: str, problem: str) -> ConfigValueError:
    return ConfigValueError(key, f"{problem}, got {_value(cfg, key)!r}")


def require(condition: bool, key: str, problem: str, related: Sequence[str] = ()) -> None:
    """Raise ``ConfigValueError(key, problem)`` unless ``condition``; a check across fields names the
    other fields it reads in ``related`` (so the error can point at the override that set them)."""
    if not condition:
        raise ConfigValueError(key, problem, related)


def positive(cfg: object, *keys: str) -> None:
    """Each value (or each element of a list/tuple value) is a finite number > 0; ``None`` passes."""
    for key in keys:
        if not all(_number(v) and math.isfinite(v) and v > 0 for v in _values(cfg, key)):
            raise _fail(cfg, key, "must be > 0")


def non_negative(cfg: object, *keys: str) -> None:
    """Each value is a finite number >= 0 (learning rates, weight decays, counts); ``None`` passes."""
    for key in keys:
        if not all(_number(v) and math.isfinite(v) and v >= 0 for v in _values(cfg, key)):
            raise _fail(cfg, key, "must be finite and >= 0")


def in_range(cfg: object, key: str, low: float, high: float) -> None:
    """Each value is a finite number in ``[low, high]``; ``None`` passes."""
    if not all(_number(v) and math.isfinite(v) and low <= v <= high for v in _values(cfg, key)):
        raise _fail(cfg, key, f"must be in [{low:g}, {high:g}]")


def ordered_pair(cfg: object, key: str) -> None:
    """A ``(low, high)`` pair with ``low <= high``."""
    v = _value(cfg, key)
    if v is not None and not (len(v) == 2 and v[0] <= v[1]):
        raise _fail(cfg, key, "must be a (low, high) pair with low <= high")


def non_empty(cfg: object, *keys: str) -> None:
    """Each list value has at least one element; ``None`` passes."""
    for key in keys:
        v = _value(cfg, key)
        if v is not None and len(v) == 0:
            raise _fail(cfg, key, "must not be empty")


def known_device(cfg: object, key: str) -> None:
    """``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``."""
    from jepa.device import is_device_name

    if not is_device_name(_value(cfg, key)):
        raise _fail(cfg, key, "must be auto, cpu, cuda, cuda:N or mps")


def run_checks(cfg: object, prefix: str = "") -> None:
    """Run ``check()`` of ``cfg`` and of every config nested in it (innermost first), raising
    :class:`ConfigValueError` with keys relative to the top (``prefix`` prepended)."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        for f in dataclasses.fields(cfg):
            run_checks(getattr(cfg, f.name), f"{prefix}.{f.name}" if prefix else f.name)
        if isinstance(cfg, Checked):
            try:
                cfg.validate()
            except ConfigValueError as e:
                raise e.under(prefix) from None
    elif isinstance(cfg, (list, tuple)):
        for i, item in enumerate(cfg):
            run_checks(item, f"{prefix}[{i}]")
    elif isinstance(cfg, dict):
        for k, item in cfg.items():
            run_checks(item, f"{prefix}.{k}" if prefix else str(k))


# ------------------------------------------------------------------------------------------ loading

def load_config(schema: type[T], path: str | Path | None = None, overrides: Sequence[str] = ()) -> T:
    """Build a ``schema`` instance from its defaults, then ``path`` (YAML), then ``overrides``, and
    run the range checks of every nested config.

    ``overrides`` are ``"a.b=value"`` strings (omegaconf dot-list syntax).
    """
    cfg = OmegaConf.structured(schema)
    if path is not None:
        path = Path(path)
        try:
            cfg = OmegaConf.merge(cfg, read_yaml(path))
        except OmegaConfBaseException as e:
            raise ConfigError(f"{path}: {_describe(e)}") from None
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise ConfigError(f"overrides must look like key=value, got {bad}")
    for o in overrides:
        try:
            OmegaConf.from_dotlist([o])
        except yaml.YAMLError as e:
            problem = _yaml_problem(e, where=False)
            raise ConfigError(f"override {o!r}: the value is not valid YAML ({problem})") from None
    try:
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
    except OmegaConfBaseException as e:
        raise ConfigError(f"{_bad_override(cfg, overrides)}: {_describe(e)}") from None
    token = _DEFER_CHECKS.set(True)
    try:
        obj = OmegaConf.to_object(cfg)
    except OmegaConfBaseException as e:
        raise ConfigError(f"{_source(getattr(e, 'full_key', None), path, overrides)}: {_describe(e)}") from None
    except ValueError as e:  # a schema's own __post_init__ validation (without a key)
        raise ConfigError(f"{_source(None, path, overrides)}: {e}") from None
    finally:
        _DEFER_CHECKS.reset(token)
    try:
        run_checks(obj)
    except ConfigValueError as e:
        raise ConfigError(f"{_source(e.key, path, overrides, e.related)}: {e}") from None
    return obj


def read_yaml(path: str | Path) -> DictConfig:
    """A YAML config file as a mapping; a missing file, a folder, text that is not UTF-8, a YAML syntax
    error (with its line and column) or a top level that is not a mapping is a :class:`ConfigError`."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder, not a YAML config file")
    try:
        loaded = OmegaConf.load(path)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML ({_yaml_problem(e)})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text (UTF-8) file; expected a YAML config") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config ({e.strerror or e})") from None
    if not isinstance(loaded, DictConfig):
        raise ConfigError(f"{path}: the top level must be a mapping (key: value lines), got a "
                          f"{type(loaded).__name__.removesuffix('Config').lower()}")
    return loaded


def _yaml_problem(e: yaml.YAMLError, where: bool = True) -> str:
    """A YAML error in one line: where (line, column; 1-based, unless ``where=False``) and what."""
    if isinstance(e, yaml.MarkedYAMLError):
        mark = e.problem_mark or e.context_mark
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None and where else ""
        return at + (e.problem or e.context or "syntax error")
    return str(e).splitlines()[0]


def _bad_override(cfg: Any, overrides: Sequence[str]) -> str:
    """The first override that does not merge on its own (omegaconf names keys inside list
    elements without the list's path, so the key alone may not say which override it was)."""
    for o in overrides:
        try:
            OmegaConf.merge(cfg, OmegaConf.from_dotlist([o]))
        except OmegaConfBaseException:
            return f"override {o!r}"
    return f"override {list(overrides)}"


def _source(key: str | None, path: Path | None, overrides: Sequence[str], related: Sequence[str] = ()) -> str:
    """Where the value at ``key`` (or at one of the ``related`` keys) came from: the override that sets
    it (or a parent or child of it), else the file, else the overrides or the defaults."""
    for k in [key, *related] if key else []:
        k = re.sub(r"\[\d+\]", "", k)
        for o in reversed(overrides):  # the last override of a key is the one that holds
            okey = o.split("=", 1)[0].strip()
            if okey == k or k.startswith(okey + ".") or okey.startswith(k + "."):
                return f"override {o!r}"
    if path is not None:
        return str(path)
    return f"override {list(overrides)}" if overrides else "defaults"


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
    """Write the resolved config next to a run's outputs (atomically; a full disk or a read-only folder is
    an :class:`~jepa.errors.OutputError` naming the file)."""
    from jepa.files import atomic_write_text

    atomic_write_text(path, to_yaml(cfg))
