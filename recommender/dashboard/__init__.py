"""The staff dashboard of recommendation performance: selectors, chart geometry, the view."""
