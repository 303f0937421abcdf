"""Frozen-backbone probes: the attentive probe and its sweep, the frozen encoder, feature caches,
video classification."""
