"""Every model, imported once so the metadata (and Alembic) sees all tables."""

from app.admins.models import AdminSession, AdminUser, AuditEntry
from app.checkins.models import Checkin
from app.external_ids.models import ExternalRequest
from app.idempotency.models import IdempotencyRecord
from app.members.models import Member, MemberIdentity, MemberMerge, MemberSession
from app.ops.models import JobRun
from app.orders.models import Order, OrderItem, Refund
from app.outbox.models import OutboxDelivery, OutboxMessage
from app.partners.models import Partner
from app.points.models import ExpiryReminder, PointsAccount, PointsEntry, PointsLot
from app.settings.models import SettingsDocument
from app.tiers.models import MemberTier, Tier, TierChange
from app.timeline.models import TimelineEntry

__all__ = [
    "AdminSession",
    "AdminUser",
    "AuditEntry",
    "Checkin",
    "ExpiryReminder",
    "ExternalRequest",
    "IdempotencyRecord",
    "JobRun",
    "Member",
    "MemberIdentity",
    "MemberMerge",
    "MemberSession",
    "MemberTier",
    "Order",
    "OrderItem",
    "OutboxDelivery",
    "OutboxMessage",
    "Partner",
    "PointsAccount",
    "PointsEntry",
    "PointsLot",
    "Refund",
    "SettingsDocument",
    "Tier",
    "TierChange",
    "TimelineEntry",
]
