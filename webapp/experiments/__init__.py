"""Experiments: A/B tests and multi-armed bandits (statistics engine in ``stats``)."""
