"""Admin of competitor products, price history, matches and alerts."""
