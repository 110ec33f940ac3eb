"""The global lock order: every transaction that holds several row locks takes them in
this order, so two transactions never wait on each other in a cycle.

Each context keeps its row-lock queries (``FOR UPDATE``) in its own ``locks.py``; no other
module locks rows. Within one table, several rows are locked in ascending primary key.

1. ``members``: member rows (``app.members.locks``; a merge locks both, ascending id)
2. ``points``: points accounts (``app.points.locks``; ascending member id)
3. ``orders``: order rows (``app.orders.locks``; a refund locks the member's account first)
4. ``tiers``: members' tier rows (``app.tiers.locks``; ascending member id)

The intake of an order or a till spend (``app.orders.locks.lock_intake``) locks the
member's row, their account and their tier row in one statement, joined in this order;
it takes no order row. A request with an Idempotency-Key takes its key's row first, before
any of these (``app.idempotency.services.claim``): its twins wait there holding nothing.

Rows changed by a plain UPDATE (a merge moving lots, orders, check-ins) are locked by that
statement: it comes at its context's place in the order. Contexts whose locks are never
held together with another context's are locked alone, in their own transactions:
``partners``, ``admins`` and ``outbox``. A new context takes its place in this list
(coupons and stock after orders, say) and every use case follows it; a counter decremented
by ``app.counters.take`` is a lock too and takes its table's place.
"""

from __future__ import annotations

# The contexts that hold row locks together, in the order they are taken.
LOCK_ORDER: tuple[str, ...] = ("members", "points", "orders", "tiers")
# The contexts whose row locks are taken in transactions that hold no other lock.
LOCKED_ALONE: tuple[str, ...] = ("partners", "admins", "outbox")
