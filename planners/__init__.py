"""Planners: solvers over action sequences, objectives, the MPC loop and the env protocol."""

from planners.base import PlanResult, PlanSpace, Solver, shift_plan
from planners.cem import CEM, CEMConfig
from planners.gradient import GradientConfig, GradientSolver
from planners.mpc import EpisodeRecord, MPCConfig, plan_space_for_env, read_jsonl, run_episode, write_jsonl
from planners.mppi import MPPI, MPPIConfig
from planners.objectives import LatentWorldModel, Objective, ObjectiveConfig, WorldModelCost
from planners.registry import SolverConfig, build_solver, load_solver

__all__ = [
    "CEM", "CEMConfig", "EpisodeRecord", "GradientConfig", "GradientSolver", "LatentWorldModel", "MPCConfig",
    "MPPI", "MPPIConfig", "Objective", "ObjectiveConfig", "PlanResult", "PlanSpace", "Solver", "SolverConfig",
    "WorldModelCost", "build_solver", "load_solver", "plan_space_for_env", "read_jsonl", "run_episode",
    "shift_plan", "write_jsonl",
]
