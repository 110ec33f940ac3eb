"""Operational records: job runs."""
