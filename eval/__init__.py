"""Evaluation: probes, action anticipation, planning benchmarks and the simulated envs."""
