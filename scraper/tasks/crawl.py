"""Celery tasks that run crawls, each in its own process."""
