"""The domain's plug-in points, filled by the composition root.

Lower contexts declare what they need from the ones above them and never import those:
``members`` runs the merge steps registered in ``app.members.merge.MERGE_STEPS``, ``tiers``
reads the metric sources registered in ``app.tiers.metrics.METRICS``. ``create_app`` calls
``wire_domain`` once per app; calling it again replaces each registration in place.

Merge steps run in the order registered. Points come before tiers: the tier step reads
nothing the points step changes, but a fixed order makes every merge take its row locks in
the same order.
"""

from __future__ import annotations

from app.checkins.operations import move_checkins
from app.members.merge import MERGE_STEPS
from app.orders.operations import (
    move_orders,
    points_earned_net_by_member_between,
    spend_by_member_between,
    spend_gained,
    spend_of_member,
)
from app.points.operations import move_points
from app.settings.models import SettingsDocument
from app.tiers.metrics import METRICS, MetricSource
from app.tiers.models import Tier
from app.tiers.operations import move_tier
from app.timeline.operations import move_timeline

# The rows each process keeps between requests (app.caching.ConfigCache): a flush that
# writes one of these announces the change to every process.
CONFIG_MODELS: tuple[type, ...] = (SettingsDocument, Tier)


def wire_domain() -> None:
    _register_merge_steps()
    _register_tier_metrics()


def _register_merge_steps() -> None:
    # ``tables``: the tables each step answers for in a merge (it moves, folds or, for
    # history such as tier changes, deliberately leaves the loser's rows).
    MERGE_STEPS.register(
        "points",
        move_points,
        tables=("points_accounts", "points_entries", "points_lots", "points_expiry_reminders"),
    )
    MERGE_STEPS.register("orders", move_orders, tables=("orders",))
    MERGE_STEPS.register("tiers", move_tier, tables=("member_tiers", "tier_changes"))
    MERGE_STEPS.register("checkins", move_checkins, tables=("checkins",))
    MERGE_STEPS.register("timeline", move_timeline, tables=("member_timeline",))


def _register_tier_metrics() -> None:
    METRICS.register(
        "spend_cents",
        MetricSource(spend_by_member_between, spend_of_member, spend_gained),
    )
    METRICS.register("points_earned", MetricSource(points_earned_net_by_member_between))
