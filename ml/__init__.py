"""Datasets, models, training, evaluation, model registry and training tasks."""
