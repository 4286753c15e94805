"""Alembic, driven from code: ``hub db upgrade`` and `Store.upgrade` call `upgrade`.

Migrations live in ``hub/store/migrations/versions``. To write one::

    hub db revision -m "add the appointments table"   # autogenerates from the models
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine, revision: str = "head", *, privacy: Any = None) -> None:
    """Migrate to ``revision``. ``privacy`` (`hub.store.privacy.Privacy`) lets migrations that seal
    personal data do it at once; without it such rows wait for ``hub keys reencrypt``."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        config.attributes["privacy"] = privacy
        command.upgrade(config, revision)


def revision(engine: Engine, message: str, autogenerate: bool = True) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=autogenerate)


def current(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
