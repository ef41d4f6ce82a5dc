"""Scrapy project plus the Django models of sources, runs and prices."""
