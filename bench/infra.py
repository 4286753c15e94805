"""Real services for a run: fresh PostgreSQL databases and RabbitMQ namespaces, cleaned up after.

    with fresh_database() as url:      # postgresql+psycopg://.../hub_bench_1a2b3c4d, dropped after
        ...
    ns = new_namespace("hub")          # "bhub1a2b3c": prefix of every exchange and queue

The services are the ones the test suite uses: ``HUB_TEST_AMQP_URL`` and
``HUB_TEST_POSTGRES_URL`` (defaults: RabbitMQ and PostgreSQL on 127.0.0.1).
"""
from __future__ import annotations

import contextlib
import secrets
from typing import Any, Iterator

from hub.testing.plugin import amqp_url, postgres_admin_url, rabbitmq_problem


class ServicesMissing(RuntimeError):
    """RabbitMQ or PostgreSQL is not reachable: the benchmark needs both."""


def check_services() -> tuple[str, str]:
    """(amqp url, PostgreSQL admin url), or `ServicesMissing` saying which one is down."""
    from sqlalchemy import create_engine, text

    from hub.store import normalize_url

    amqp = amqp_url()
    problem = rabbitmq_problem(amqp)
    if problem:
        raise ServicesMissing(f"RabbitMQ at {amqp.split('@')[-1]} is unreachable: {problem}")
    admin = normalize_url(postgres_admin_url())
    try:
        engine = create_engine(admin, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        raise ServicesMissing(f"PostgreSQL at {admin.split('@')[-1]} is unreachable:"
                              f" {type(exc).__name__}") from None
    return amqp, admin


def new_namespace(kind: str) -> str:
    return f"b{kind[:6]}{secrets.token_hex(3)}"


@contextlib.contextmanager
def fresh_database(label: str = "bench") -> Iterator[str]:
    """A new, empty PostgreSQL database for one scenario; dropped (forcefully) afterwards."""
    from sqlalchemy import create_engine, text

    from hub.store import normalize_url

    admin_url = normalize_url(postgres_admin_url())
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"hub_bench_{label}_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base, _, _ = admin_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        _drop(admin, name)


def _drop(admin: Any, name: str, attempts: int = 5) -> None:
    """Drop a scenario's database, retrying across a PostgreSQL restart (other work on the
    machine may restart it)."""
    import time

    from sqlalchemy import text

    for attempt in range(attempts):
        try:
            admin.dispose()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        except Exception:  # noqa: BLE001 - retried, then left for the operator to see
            if attempt == attempts - 1:
                raise
            time.sleep(2.0)


def delete_queues(url: str, queues: list[str], exchanges: list[str] = ()) -> None:  # type: ignore[assignment]
    """Best-effort removal of queues and exchanges a scenario declared."""
    import pika

    try:
        connection = pika.BlockingConnection(pika.URLParameters(url))
    except Exception:  # noqa: BLE001 - clean-up must not hide the result
        return
    try:
        channel = connection.channel()
        for queue in queues:
            channel.queue_delete(queue)
        for exchange in exchanges:
            channel.exchange_delete(exchange)
    except Exception:  # noqa: BLE001
        pass
    finally:
        try:
            connection.close()
        except Exception:  # noqa: BLE001
            pass
