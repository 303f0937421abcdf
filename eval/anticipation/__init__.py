"""Action anticipation: EPIC-KITCHENS-100 data and metrics, the runner, the label oracle and the
embedded simulated-arm benchmark in the EPIC layout."""
