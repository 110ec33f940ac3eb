"""Open API partners: the channels a partner may use and whether it is trusted; orders and
refunds record their partner, and external ids are scoped by partner; external_requests
keeps the fingerprint and answer of each call named by an external id

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 13:45:58.636613
"""

from alembic import op
import sqlalchemy as sa
import app.db


revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('external_requests',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('partner_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', app.db.BinaryString(length=32), nullable=False),
    sa.Column('channel', app.db.BinaryString(length=16), nullable=False),
    sa.Column('external_id', app.db.BinaryString(length=64), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('answer', sa.JSON(), nullable=False),
    sa.Column('created_at', app.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_external_requests_partner_id_partners')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_external_requests')),
    sa.UniqueConstraint('partner_id', 'kind', 'channel', 'external_id', name=op.f('uq_external_requests_partner_id_kind_channel_external_id')),
    mysql_charset='utf8mb4',
    mysql_collate='utf8mb4_unicode_ci'
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('partner_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.drop_constraint(batch_op.f('uq_orders_channel_external_id'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_orders_partner_id_channel_external_id'), ['partner_id', 'channel', 'external_id'])
        batch_op.create_foreign_key(batch_op.f('fk_orders_partner_id_partners'), 'partners', ['partner_id'], ['id'])

    # Existing partners keep every channel (channels NULL) and are not trusted: spending
    # points now needs the member's card QR code unless a partner is created --trusted.
    with op.batch_alter_table('partners', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channels', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('trusted', sa.Boolean(), nullable=False, server_default=sa.false()))

    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('partner_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.drop_constraint(batch_op.f('uq_refunds_channel_external_id'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_refunds_partner_id_channel_external_id'), ['partner_id', 'channel', 'external_id'])
        batch_op.create_foreign_key(batch_op.f('fk_refunds_partner_id_partners'), 'partners', ['partner_id'], ['id'])

    _record_senders_of_existing_rows()


def _record_senders_of_existing_rows() -> None:
    """Orders and refunds so far did not record their partner: with a single partner they
    are its own; with several, nobody can tell, and they stay unassigned (reports and
    points keep them; no partner can refund them through the open API). Till spends were
    keyed by app key, now by partner id."""
    bind = op.get_bind()
    partners = sa.table("partners", sa.column("id"), sa.column("app_key"))
    rows = bind.execute(sa.select(partners.c.id, partners.c.app_key)).all()
    if len(rows) == 1:
        only = rows[0].id
        for name in ("orders", "refunds"):
            table = sa.table(name, sa.column("partner_id"))
            bind.execute(table.update().where(table.c.partner_id.is_(None)).values(partner_id=only))
    entries = sa.table("points_entries", sa.column("idempotency_key"))
    for partner_id, app_key in rows:
        old_prefix, new_prefix = f"till:{app_key}:", f"till:{partner_id}:"
        bind.execute(
            entries.update()
            .where(entries.c.idempotency_key.startswith(old_prefix, autoescape=True))
            .values(
                idempotency_key=sa.literal(new_prefix)
                + sa.func.substr(entries.c.idempotency_key, len(old_prefix) + 1)
            )
        )


def downgrade() -> None:
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_refunds_partner_id_partners'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_refunds_partner_id_channel_external_id'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_refunds_channel_external_id'), ['channel', 'external_id'])
        batch_op.drop_column('partner_id')

    with op.batch_alter_table('partners', schema=None) as batch_op:
        batch_op.drop_column('trusted')
        batch_op.drop_column('channels')

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_orders_partner_id_partners'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_orders_partner_id_channel_external_id'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_orders_channel_external_id'), ['channel', 'external_id'])
        batch_op.drop_column('partner_id')

    op.drop_table('external_requests')
