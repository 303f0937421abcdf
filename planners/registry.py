"""Solvers by name, so a config picks one: ``build_solver("cem", CEMConfig(...))``.

A YAML file under ``configs/plan/solvers/`` fills :class:`SolverConfig`; ``load_solver(path, overrides)``
builds the solver it names. Adding a solver is one file plus one line in ``SOLVERS``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jepa.config import Checked, load_config, require
from planners.base import Solver
from planners.baselines import DoNothing, DoNothingConfig, RandomActions, RandomActionsConfig
from planners.cem import CEM, CEMConfig
from planners.gradient import GradientConfig, GradientSolver
from planners.icem import ICEM, ICEMConfig
from planners.mppi import MPPI, MPPIConfig

SOLVERS: dict[str, tuple[type, Callable[[Any], Solver]]] = {
    "cem": (CEMConfig, CEM),
    "icem": (ICEMConfig, ICEM),
    "mppi": (MPPIConfig, MPPI),
    "gradient": (GradientConfig, GradientSolver),
    "do-nothing": (DoNothingConfig, DoNothing),
    "random": (RandomActionsConfig, RandomActions),
}


def build_solver(name: str, config: Any | None = None) -> Solver:
    """The solver called ``name`` with ``config`` (its config dataclass, or ``None`` for defaults)."""
    if name not in SOLVERS:
        raise ValueError(f"unknown solver {name!r}; known: {sorted(SOLVERS)}")
    schema, cls = SOLVERS[name]
    config = schema() if config is None else config
    if not isinstance(config, schema):
        raise TypeError(f"solver {name!r} needs a {schema.__name__}, got {type(config).__name__}")
    return cls(config)


@dataclass
class SolverConfig(Checked):
    """Which solver to use (``name``) and the settings of each; only the named section is used."""

    name: str = "cem"
    cem: CEMConfig = field(default_factory=CEMConfig)
    icem: ICEMConfig = field(default_factory=ICEMConfig)
    mppi: MPPIConfig = field(default_factory=MPPIConfig)
    gradient: GradientConfig = field(default_factory=GradientConfig)

    def check(self) -> None:
        require(self.name in SOLVERS, "name", f"unknown solver {self.name!r}; known: {sorted(SOLVERS)}")


def solver_from_config(cfg: SolverConfig) -> Solver:
    """Build the solver ``cfg.name`` from its section of ``cfg`` (the baselines have none)."""
    if cfg.name not in SOLVERS:
        raise ValueError(f"unknown solver {cfg.name!r}; known: {sorted(SOLVERS)}")
    return build_solver(cfg.name, getattr(cfg, cfg.name, None))


def load_solver(path: str | Path | None = None, overrides: Sequence[str] = ()) -> Solver:
    """Read a ``configs/plan/solvers/*.yaml`` file (plus ``key=value`` overrides) and build its solver."""
    return solver_from_config(load_config(SolverConfig, path, overrides))
