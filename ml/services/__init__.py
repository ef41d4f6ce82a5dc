"""Writes of the ml app: `registry` (model versions), `training_runs` and `training`
(retraining), `artifacts` (saved models on disk). Import the modules themselves."""
