"""Every model, imported once so the metadata (and Alembic) sees all tables."""

from app.admins.models import AdminUser, AuditEntry
from app.idempotency.models import IdempotencyRecord
from app.members.models import Member, MemberIdentity, MemberMerge
from app.ops.models import JobRun
from app.partners.models import Partner

__all__ = [
    "AdminUser",
    "AuditEntry",
    "IdempotencyRecord",
    "JobRun",
    "Member",
    "MemberIdentity",
    "MemberMerge",
    "Partner",
]
