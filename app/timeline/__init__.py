"""A member's history (joined, tier changes, orders, refunds, adjustments, merges),
written from the outbox's events by one handler."""
