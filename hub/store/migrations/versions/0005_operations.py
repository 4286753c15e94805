"""operations: operational records, operator controls, worker heartbeats

Revision ID: 0005_operations
Revises: 0004_appointments
"""
from alembic import op
import sqlalchemy as sa


revision = "0005_operations"
down_revision = "0004_appointments"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "operational_records",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("correlation_id", sa.String(64), nullable=True),
        sa.Column("component", sa.String(64), nullable=False),
        sa.Column("agency", sa.String(32), nullable=True),
        sa.Column("service", sa.String(64), nullable=True),
        sa.Column("operation", sa.String(64), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("answer", sa.String(64), nullable=True),
        sa.Column("fault_code", sa.String(64), nullable=True),
        sa.Column("fault_reason", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=True),
        sa.Column("received_at", TS, nullable=True),
        sa.Column("request_out_at", TS, nullable=True),
        sa.Column("response_in_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=True),
        sa.Column("request_bytes", sa.Integer(), nullable=True),
        sa.Column("response_bytes", sa.Integer(), nullable=True),
        sa.Column("node", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("operational_records") as batch:
        batch.create_index("ix_operational_records_message_id", ["message_id"])
        batch.create_index("ix_operational_records_correlation_id", ["correlation_id"])
        batch.create_index("ix_oprec_finished", ["finished_at"])
        batch.create_index("ix_oprec_agency_finished", ["agency", "finished_at"])
        batch.create_index("ix_oprec_series", ["agency", "service", "outcome"])
    op.create_table(
        "ops_controls",
        sa.Column("name", sa.String(96), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "worker_heartbeats",
        sa.Column("node", sa.String(128), nullable=False),
        sa.Column("component", sa.String(64), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("seen_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("node", "component"),
    )
    with op.batch_alter_table("worker_heartbeats") as batch:
        batch.create_index("ix_worker_heartbeats_seen_at", ["seen_at"])


def downgrade() -> None:
    op.drop_table("worker_heartbeats")
    op.drop_table("ops_controls")
    op.drop_table("operational_records")
