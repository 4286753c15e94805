"""encryption at rest: key id columns, blind index of identity documents, sealing of old rows

Adds the column that records which data key sealed each personal value (``cases.data_key``,
``exchanges.reply_key``, ``appointments.holder_key``, ``outbox.body_key``,
``dead_letters.body_key``, ``attachments.data_key``), ``cases.anonymized_at`` (retention) and the
``case_identities`` table (blind-index digests of identity documents).

Rows written before this revision hold personal data in clear (their key column is NULL). When
the upgrade runs with the hub's data keys (`Hub.setup`, ``hub db upgrade`` with keys), they are
sealed here, in the migration's transaction; otherwise ``hub keys reencrypt`` seals them later
(the application reads a NULL-key row as clear until then). Attachment files were always
encrypted: their key id is filled in by ``hub keys reencrypt``, which reads it from each file.

Revision ID: 0009_encryption_at_rest
Revises: 0008_audit_chain
"""
from __future__ import annotations

import json
from typing import Any

from alembic import context, op
import sqlalchemy as sa


revision = "0009_encryption_at_rest"
down_revision = "0008_audit_chain"
branch_labels = None
depends_on = None

_KEYED = (("cases", "data_key", True), ("exchanges", "reply_key", True),
          ("appointments", "holder_key", False), ("outbox", "body_key", True),
          ("dead_letters", "body_key", True), ("attachments", "data_key", True))


def upgrade() -> None:
    for table, column, indexed in _KEYED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column(column, sa.String(length=64), nullable=True))
            if table == "cases":
                batch_op.add_column(sa.Column("anonymized_at", sa.DateTime(timezone=True),
                                              nullable=True))
        if indexed:
            op.create_index(f"ix_{table}_{column}", table, [column])
    op.create_table(
        "case_identities",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True,
                  nullable=False),
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("path", sa.String(length=128), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_case_identities_case_id", "case_identities", ["case_id"])
    op.create_index("ix_case_identities_digest", "case_identities", ["digest"])
    privacy = context.config.attributes.get("privacy")
    if privacy is not None:
        _seal_existing(op.get_bind(), privacy)


def _seal_existing(conn: Any, privacy: Any) -> None:
    """Seal what earlier revisions stored in clear (same format and contexts as the models)."""
    def loads(value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    meta = sa.MetaData()
    cases = sa.Table("cases", meta, sa.Column("id", sa.String), sa.Column("reference", sa.String),
                     sa.Column("data", sa.JSON), sa.Column("data_key", sa.String))
    identities = sa.Table("case_identities", meta, sa.Column("case_id", sa.String),
                          sa.Column("path", sa.String), sa.Column("digest", sa.String))
    for row in conn.execute(sa.select(cases).where(cases.c.data_key.is_(None))).all():
        data = loads(row.data)
        sealed, key_id = privacy.encrypt_json(data, context=f"case:{row.reference}")
        conn.execute(cases.update().where(cases.c.id == row.id)
                     .values(data=sealed, data_key=key_id))
        for path, digest in privacy.identities(data or {}).items():
            conn.execute(identities.insert().values(case_id=row.id, path=path, digest=digest))
    for table, column, prefix in (("exchanges", "reply", "exchange"),
                                  ("appointments", "holder", "appointment")):
        target = sa.Table(table, meta, sa.Column("id", sa.String), sa.Column(column, sa.JSON),
                          sa.Column(f"{column}_key", sa.String))
        key_column = target.c[f"{column}_key"]
        for row in conn.execute(sa.select(target).where(key_column.is_(None))).all():
            sealed, key_id = privacy.encrypt_json(loads(row[1]), context=f"{prefix}:{row.id}")
            conn.execute(target.update().where(target.c.id == row.id)
                         .values({column: sealed, key_column: key_id}))
    for table in ("outbox", "dead_letters"):
        target = sa.Table(table, meta, sa.Column("id", sa.BigInteger),
                          sa.Column("message_id", sa.String), sa.Column("body", sa.LargeBinary),
                          sa.Column("body_key", sa.String))
        for row in conn.execute(sa.select(target).where(target.c.body_key.is_(None))).all():
            body, key_id = privacy.encrypt_body(bytes(row.body), message_id=row.message_id)
            conn.execute(target.update().where(target.c.id == row.id)
                         .values(body=body, body_key=key_id))


def downgrade() -> None:
    # Encrypted values stay sealed: decrypting a whole database back into clear is not a
    # migration's job (and would need the keys); drop the columns only.
    op.drop_index("ix_case_identities_digest", table_name="case_identities")
    op.drop_index("ix_case_identities_case_id", table_name="case_identities")
    op.drop_table("case_identities")
    for table, column, indexed in reversed(_KEYED):
        if indexed:
            op.drop_index(f"ix_{table}_{column}", table_name=table)
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column(column)
            if table == "cases":
                batch_op.drop_column("anonymized_at")
