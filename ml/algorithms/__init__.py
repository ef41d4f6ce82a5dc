"""Recommender algorithms behind one abstract base, looked up by name in the registry."""
