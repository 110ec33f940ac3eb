"""Single configuration documents operators edit: points rules, tier policy."""
