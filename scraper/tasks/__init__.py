"""Celery tasks of the scraper: crawls (`crawl`) and what follows them (`prices`)."""

from scraper.tasks import crawl, prices

__all__ = ["crawl", "prices"]
