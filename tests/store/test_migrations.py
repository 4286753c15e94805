"""The migrations build exactly the tables the models describe (this part's tables included)."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from hub.store import Store
from hub.store.models import Base


def test_migrations_match_the_models(tmp_path):
    store = Store.from_url(f"sqlite:///{tmp_path / 'hub.db'}")
    store.upgrade()
    with store.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    # The scheduler's job table belongs to APScheduler, not to the models.
    diff = [d for d in diff if not (d[0] == "remove_table" and d[1].name == "scheduled_jobs")
            and not (d[0] == "remove_index" and d[1].table.name == "scheduled_jobs")]
    assert diff == []
    store.dispose()
