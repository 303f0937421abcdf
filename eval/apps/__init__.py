"""Command front ends that are not one library function: ``jepa demo`` and ``jepa eval``."""
