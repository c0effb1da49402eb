"""Model-accuracy metrics: read predictions from ``results``, compute, store, alert."""
