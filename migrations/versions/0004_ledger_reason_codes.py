"""Ledger reason codes and member-facing texts, operators' notes apart; admins' last log-in

Revision ID: 0004
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

import app.db

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None

# Must agree with app.points.rules.REASON_TEXTS (a migration does not import the app's rules:
# they may change later, this backfill may not).
TEXTS = {
    "order": "订单积分",
    "refund": "订单退款",
    "redemption": "积分抵扣",
    "checkin": "每日签到",
    "signup": "注册奖励",
    "expiry": "积分过期",
    "adjustment": "积分调整",
    "merge": "账户合并",
    "debt_settlement": "退款欠分抵扣",
}
# Existing rows, by kind and what their reason or key said; the first match wins.
CODES = [
    ("expiry", "kind = 'expire'"),
    ("redemption", "kind = 'spend'"),
    ("debt_settlement", "kind = 'reverse' AND reason LIKE 'settles points owed%'"),
    ("refund", "kind = 'reverse'"),
    ("merge", "kind = 'adjust' AND (reason LIKE 'merged into member %' OR reason LIKE 'merged from member %')"),
    ("adjustment", "kind = 'adjust'"),
    ("signup", "kind = 'earn' AND (idempotency_key LIKE 'signup:%' OR reason = 'sign-up bonus')"),
    ("checkin", "kind = 'earn' AND (idempotency_key LIKE 'checkin:%' OR reason LIKE 'check-in %')"),
    ("order", "kind = 'earn' AND order_id IS NOT NULL"),
    ("adjustment", "1 = 1"),
]
BY = " (by "


def upgrade() -> None:
    with op.batch_alter_table("admin_users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_login_at", app.db.UTCDateTime(), nullable=True))
    with op.batch_alter_table("points_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reason_code", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("note", sa.String(length=255), nullable=True))

    # The old reason becomes the operators' note, less the operator's name on adjustments
    # (the audit log keeps who did it).
    op.execute("UPDATE points_entries SET note = reason")
    op.execute(
        f"UPDATE points_entries SET note = SUBSTR(note, 1, INSTR(note, '{BY}') - 1)"
        f" WHERE kind = 'adjust' AND INSTR(note, '{BY}') > 0"
    )
    for code, condition in CODES:
        op.execute(
            f"UPDATE points_entries SET reason_code = '{code}'"
            f" WHERE reason_code IS NULL AND ({condition})"
        )
    for code, text in TEXTS.items():
        op.execute(
            sa.text("UPDATE points_entries SET reason = :text WHERE reason_code = :code").bindparams(
                text=text, code=code
            )
        )
    with op.batch_alter_table("points_entries", schema=None) as batch_op:
        batch_op.alter_column("reason_code", existing_type=sa.String(length=32), nullable=False)


def downgrade() -> None:
    op.execute("UPDATE points_entries SET reason = note WHERE note IS NOT NULL")
    with op.batch_alter_table("points_entries", schema=None) as batch_op:
        batch_op.drop_column("note")
        batch_op.drop_column("reason_code")
    with op.batch_alter_table("admin_users", schema=None) as batch_op:
        batch_op.drop_column("last_login_at")
