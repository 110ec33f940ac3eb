"""A till spend is recorded by its own ledger entry: the entry keeps the request's fingerprint

The answer of a till spend (member and balance after) is its ledger entry already; with
the fingerprint on the entry, a replay is one read and a new spend one write fewer. Till
spends recorded in external_requests get their fingerprint copied onto their entries.

Revision ID: 0007
Revises: 0006
"""

from alembic import op
import sqlalchemy as sa

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COPY_MYSQL = """
UPDATE points_entries e
JOIN external_requests x
  ON x.kind = 'till_spend'
 AND e.idempotency_key = CONCAT('till:', x.partner_id, ':', x.external_id)
SET e.request_fingerprint = x.fingerprint
"""
COPY_SQLITE = """
UPDATE points_entries SET request_fingerprint = (
    SELECT x.fingerprint FROM external_requests x
    WHERE x.kind = 'till_spend'
      AND points_entries.idempotency_key = 'till:' || x.partner_id || ':' || x.external_id
)
WHERE idempotency_key LIKE 'till:%'
"""


def upgrade() -> None:
    with op.batch_alter_table("points_entries") as batch:
        batch.add_column(sa.Column("request_fingerprint", sa.String(64), nullable=True))
    dialect = op.get_bind().dialect.name
    op.execute(COPY_MYSQL if dialect == "mysql" else COPY_SQLITE)
    op.execute("DELETE FROM external_requests WHERE kind = 'till_spend'")


def downgrade() -> None:
    with op.batch_alter_table("points_entries") as batch:
        batch.drop_column("request_fingerprint")
