"""audit chain: chain position and hash on audit records, chain head, signed checkpoints

Revision ID: 0008_audit_chain
Revises: 0007_seen_messages
"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa


revision = "0008_audit_chain"
down_revision = "0007_seen_messages"
branch_labels = None
depends_on = None

GENESIS = "0" * 64


def upgrade() -> None:
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chain_position", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("chain_hash", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint("uq_audit_records_chain_position", ["chain_position"])
    op.create_index("ix_audit_records_unsealed", "audit_records", ["id"],
                    postgresql_where=sa.text("chain_position IS NULL"),
                    sqlite_where=sa.text("chain_position IS NULL"))
    head = op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(head, [{"id": 1, "position": 0, "hash": GENESIS,
                           "updated_at": datetime.now(timezone.utc)}])
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True,
                  nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("certificate", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("position"),
    )


def downgrade() -> None:
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_chain_head")
    op.drop_index("ix_audit_records_unsealed", table_name="audit_records")
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.drop_constraint("uq_audit_records_chain_position", type_="unique")
        batch_op.drop_column("chain_hash")
        batch_op.drop_column("chain_position")
