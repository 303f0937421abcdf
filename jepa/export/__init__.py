"""Export a world model for deployment: the encoder and one action-conditioned predictor step with an
explicit KV cache, as ONNX or ``torch.export`` programs, plus a JSON description (``model.json``).

- :mod:`jepa.export.graphs`: the export-friendly modules (tensors in, tensors out) over the model's
  own weights and code;
- :mod:`jepa.export.write`: tracing, writing, the description and the parity check;
- :mod:`jepa.export.runtime`: runs an exported folder (onnxruntime or ``torch.export.load``) like a
  :class:`~jepa.world_model.WorldModel`: ``encode`` and ``rollout``;
- :mod:`jepa.export.command`: ``jepa export WORLD_MODEL --format onnx|torch-export --out DIR``.
"""
