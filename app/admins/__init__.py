"""Operators and staff who use the admin API, and the audit log of their changes."""
