"""Admin of the scraper: sources and runs (`sources`), prices, matches and alerts (`prices`)."""

from scraper.admin import prices, sources

__all__ = ["prices", "sources"]
