"""Domain events recorded in the transaction of the change they announce (the outbox),
and the drain that hands each one, at least once, to every handler subscribed to it."""
