"""Idempotency-Key records: the first answer to a request, replayed for its retries."""
