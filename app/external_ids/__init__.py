"""Calls a partner names by its own external id (orders, refunds, till spends, ...): each
has its effect once, and the same id again is a replay of the very same request or is
refused."""
