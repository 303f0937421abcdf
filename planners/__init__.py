"""Planners: solvers over action sequences, objectives, the MPC loop and the env protocol."""

from planners.base import PlanConfidence, PlanResult, PlanSpace, Solver, shift_plan
from planners.baselines import DoNothing, RandomActions
from planners.cem import CEM, CEMConfig
from planners.gradient import GradientConfig, GradientSolver
from planners.icem import ICEM, ICEMConfig
from planners.mpc import EpisodeRecord, MPCConfig, plan_space_for_env, read_episodes, run_episode, write_episodes
from planners.mppi import MPPI, MPPIConfig
from planners.objectives import LatentWorldModel, Objective, ObjectiveConfig, WorldModelCost
from planners.registry import SolverConfig, build_solver, load_solver

__all__ = [
    "CEM", "ICEM", "CEMConfig", "DoNothing", "EpisodeRecord", "GradientConfig", "GradientSolver", "ICEMConfig",
    "LatentWorldModel", "MPCConfig", "MPPI", "MPPIConfig", "Objective", "ObjectiveConfig", "PlanConfidence",
    "PlanResult", "PlanSpace", "RandomActions", "Solver", "SolverConfig", "WorldModelCost", "build_solver",
    "load_solver", "plan_space_for_env", "read_episodes", "run_episode", "shift_plan", "write_episodes",
]
