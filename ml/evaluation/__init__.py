"""Full-ranking metrics and the tune-on-validation, report-on-test protocol."""
