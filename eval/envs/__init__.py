"""Simulated environments (Fetch arm, PushT) as GoalEnv adapters, and clip collection."""
