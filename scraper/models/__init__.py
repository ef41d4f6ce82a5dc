"""Sources and their crawls (`sources`), competitors' products, prices and matches (`prices`)."""

from scraper.models.prices import CompetitorProduct, PriceObservation
from scraper.models.sources import ScrapeRun, Source

__all__ = ["CompetitorProduct", "PriceObservation", "ScrapeRun", "Source"]
