"""Sources and their crawls (`sources`), competitors' products, prices and matches (`prices`)."""

from scraper.models.prices import (
    CompetitorProduct,
    ExchangeRate,
    PriceAlert,
    PriceAlertRule,
    PriceObservation,
    ProductMatch,
)
from scraper.models.sources import ScrapeRun, Source

__all__ = [
    "CompetitorProduct",
    "ExchangeRate",
    "PriceAlert",
    "PriceAlertRule",
    "PriceObservation",
    "ProductMatch",
    "ScrapeRun",
    "Source",
]
