"""Spiders of the scraper project; `product` serves every Source by its configuration."""
