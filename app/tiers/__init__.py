"""Tiers: thresholds on a metric over a window; upgrade at once, downgrade at assessment."""
