"""Serving: candidates, ranking, blending and the recommendation API."""
