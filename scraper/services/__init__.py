"""Writes of the scraper: crawls and ingestion; prices, matching and alerts."""
