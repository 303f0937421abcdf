"""Planners: solvers over action sequences, objectives, the MPC loop and the env protocol."""
