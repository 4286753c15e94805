"""outbox notify: on PostgreSQL, committing outbox rows wakes every relay (LISTEN hub_outbox)

A relay in its own process is not woken by other processes' commits; without this it finds new
rows only at its next poll (HUB_RELAY_POLL_INTERVAL), which adds up to one poll interval of
latency per hop. The trigger fires once per INSERT statement; PostgreSQL delivers the
notification at commit and folds repeats within a transaction. SQLite: nothing (one process).

Revision ID: 0006_outbox_notify
Revises: 0005_operations
"""
from alembic import op

revision = "0006_outbox_notify"
down_revision = "0005_operations"
branch_labels = None
depends_on = None

CHANNEL = "hub_outbox"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"""
        CREATE OR REPLACE FUNCTION hub_outbox_notify() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', '');
            RETURN NULL;
        END;
        $$ LANGUAGE plpgsql
    """)
    op.execute("""
        CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
        FOR EACH STATEMENT EXECUTE FUNCTION hub_outbox_notify()
    """)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS outbox_notify ON outbox")
    op.execute("DROP FUNCTION IF EXISTS hub_outbox_notify()")
