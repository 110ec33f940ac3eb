"""Changes to a member's points, inside the caller's transaction (flush, never commit).

Every change locks the member's account row first (``app.points.locks``), so concurrent
spends, earnings and refunds of one member queue up and the balance, the lots and the
ledger always agree. One module per concern; this package is what other contexts import.
"""

from app.points.locks import MergedMeanwhile, lock_account
from app.points.operations.earning import EarnResult, earn, grant_signup_bonus
from app.points.operations.expiry import expire_due, locked_balance
from app.points.operations.ledger import RULES_KEY, entry_by_key, points_rules
from app.points.operations.merge import move_points
from app.points.operations.reversal import ReverseResult, reverse
from app.points.operations.spending import adjust, spend

__all__ = [
    "RULES_KEY",
    "EarnResult",
    "MergedMeanwhile",
    "ReverseResult",
    "adjust",
    "earn",
    "entry_by_key",
    "expire_due",
    "grant_signup_bonus",
    "lock_account",
    "locked_balance",
    "move_points",
    "points_rules",
    "reverse",
    "spend",
]
