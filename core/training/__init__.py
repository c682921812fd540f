"""Training: model presets and layer plans, the run's config, the Keras fit."""
