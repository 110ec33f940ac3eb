"""The outbox (domain events and their deliveries) and the member timeline

Revision ID: 0006
Revises: 0005
"""

from alembic import op
import sqlalchemy as sa
import app.db

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TABLE_OPTIONS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci"}


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("payload", app.db.JSONDocument(), nullable=False),
        sa.Column("member_id", BIG_ID, nullable=True),
        sa.Column("created_at", app.db.UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("available_at", app.db.UTCDateTime(), nullable=False),
        sa.Column("leased_until", app.db.UTCDateTime(), nullable=True),
        sa.Column("lease_owner", sa.String(96), nullable=True),
        sa.Column("handled_at", app.db.UTCDateTime(), nullable=True),
        sa.Column("dead_at", app.db.UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        **TABLE_OPTIONS,
    )
    op.create_index("ix_outbox_pending", "outbox", ["handled_at", "dead_at", "available_at"])
    op.create_index("ix_outbox_member_id", "outbox", ["member_id"])
    op.create_table(
        "outbox_deliveries",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("message_id", BIG_ID, nullable=False),
        sa.Column("handler", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(255), nullable=True),
        sa.Column("handled_at", app.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"], ["outbox.id"], name=op.f("fk_outbox_deliveries_message_id_outbox")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_deliveries")),
        **TABLE_OPTIONS,
    )
    op.create_index(
        "uq_outbox_deliveries_message_id_handler",
        "outbox_deliveries",
        ["message_id", "handler"],
        unique=True,
    )
    op.create_table(
        "member_timeline",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("member_id", BIG_ID, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("occurred_at", app.db.UTCDateTime(), nullable=False),
        sa.Column("summary", app.db.JSONDocument(), nullable=False),
        sa.Column("event_id", BIG_ID, nullable=False),
        sa.Column("created_at", app.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_member_timeline_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_timeline")),
        **TABLE_OPTIONS,
    )
    op.create_index("uq_member_timeline_event_id", "member_timeline", ["event_id"], unique=True)
    op.create_index(
        "ix_member_timeline_member_id_occurred_at", "member_timeline", ["member_id", "occurred_at"]
    )


def downgrade() -> None:
    op.drop_table("member_timeline")
    op.drop_table("outbox_deliveries")
    op.drop_table("outbox")
