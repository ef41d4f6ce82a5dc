"""Admin of sources, their schedules and scrape runs."""
