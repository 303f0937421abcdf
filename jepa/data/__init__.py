"""Data: video and trajectory datasets, the one video transform, raw-DROID reading."""
