"""Real HTTP servers on loopback for the scraper's tests and benchmarks."""
