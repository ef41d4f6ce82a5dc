"""The Django project: settings, urls, Celery app, site pages, visitors and events."""

from webapp.celery import app as celery_app

__all__ = ["celery_app"]
