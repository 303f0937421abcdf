"""Training: pretraining and action-conditioned loops and the infrastructure they share."""
