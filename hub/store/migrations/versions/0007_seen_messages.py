"""seen messages: signed message ids per party, for replay protection

Revision ID: 0007_seen_messages
Revises: 0006_outbox_notify
"""
from alembic import op
import sqlalchemy as sa


revision = "0007_seen_messages"
down_revision = "0006_outbox_notify"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "seen_messages",
        sa.Column("party", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=128), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("party", "message_id"),
    )
    op.create_index("ix_seen_messages_seen_at", "seen_messages", ["seen_at"])


def downgrade() -> None:
    op.drop_index("ix_seen_messages_seen_at", table_name="seen_messages")
    op.drop_table("seen_messages")
