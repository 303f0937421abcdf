"""Intuitive physics: surprise on videos and a twin-video test bench of the simulated arm."""
