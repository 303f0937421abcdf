"""Planning benchmarks: ``jepa plan`` episodes and their artefacts (GIFs, energy landscapes)."""
