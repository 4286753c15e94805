"""The Celery pipeline a team would build instead of the hub, doing the same work per message.

Intake (Flask under waitress, like the hub's): validate the applicant's JSON with the *same* JSON
Schema, enqueue a task. Task (Celery worker on the same RabbitMQ): build the request from the same
route selection, then through the *same* connector (`connectors.narsa.NarsaConnector`): map with
the same mapping, validate against NARSA's OpenAPI schema, sign (the connector's signing seam,
so the same algorithm as the hub once configured), call the same simulator over HTTP, verify and
map the answer back; finally write the result to PostgreSQL (idempotent on the request id) and
commit. Delivery settings match the hub's guarantees: publisher confirms, ``acks_late`` (ack after
the row is committed), redelivery on a lost worker.

Configuration, from the environment: ``BENCH_CELERY_BROKER`` (amqp URL), ``BENCH_CELERY_QUEUE``,
``BENCH_CELERY_DB`` (PostgreSQL URL), ``HUB_AGENCY_NARSA_URL`` (the simulator),
``BENCH_CELERY_KEYS_DIR`` (the run's development PKI; required: the simulator refuses unsigned
requests).
"""
from __future__ import annotations

import os
import threading
import time
import uuid
from typing import Any

from celery import Celery
from sqlalchemy import (BigInteger, Column, DateTime, Float, MetaData, String, Table, Text,
                        create_engine, func)
from sqlalchemy.dialects.postgresql import JSONB, insert

from bench import workload

metadata = MetaData()
results = Table(
    "bench_results", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("request_id", String(36), unique=True, nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("agency_reference", String(64)),
    Column("data", JSONB),
    Column("wire_digest", String(64)),
    Column("error", Text),
    Column("submitted_at", Float),
    Column("written_at", Float, nullable=False),
    Column("created_at", DateTime(timezone=True), server_default=func.now()),
)

app = Celery("bench_pipeline")
app.conf.update(
    broker_url=os.environ.get("BENCH_CELERY_BROKER", "amqp://guest:guest@127.0.0.1:5672//"),
    broker_transport_options={"confirm_publish": True},
    task_default_queue=os.environ.get("BENCH_CELERY_QUEUE", "bench.celery"),
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    task_serializer="json", accept_content=["json"], result_backend=None, task_ignore_result=True,
    worker_hijack_root_logger=False, worker_redirect_stdouts=False,
    broker_connection_retry_on_startup=True,
    task_queue_ha_policy=None,
    # No remote control: its exclusive "pidbox" queue is per node name and not needed here.
    worker_enable_remote_control=False,
)

_local = threading.local()
_engine: Any = None
_engine_lock = threading.Lock()
_signing: Any = None


def engine() -> Any:
    global _engine
    with _engine_lock:
        if _engine is None:
            from hub.store import normalize_url

            _engine = create_engine(normalize_url(os.environ["BENCH_CELERY_DB"]), pool_size=10,
                                    max_overflow=10)
        return _engine


def create_tables(url: str) -> None:
    from hub.store import normalize_url

    eng = create_engine(normalize_url(url))
    metadata.create_all(eng)
    eng.dispose()


def signing() -> Any:
    """The hub party's `MessageSigning` over the run's PKI, loaded once per process (as the
    hub loads its keys at start): signs requests, verifies NARSA's signed answers."""
    global _signing
    with _engine_lock:
        if _signing is None:
            from connectors.signing import MessageSigning

            keys_dir = os.environ.get("BENCH_CELERY_KEYS_DIR", "")
            _signing = MessageSigning.load(keys_dir, "hub")
            if _signing is None:
                raise RuntimeError(f"no PKI in BENCH_CELERY_KEYS_DIR={keys_dir!r}: the pipeline"
                                   " signs every request like the hub")
        return _signing


def connector() -> Any:
    """One NARSA connector per worker thread (connectors are not shared between threads)."""
    if getattr(_local, "connector", None) is None:
        from connectors.base import ConnectorDeps
        from connectors.registry import build_connector, load_agencies

        config = load_agencies(urls={"narsa": os.environ["HUB_AGENCY_NARSA_URL"]})["narsa"]
        _local.connector = build_connector(config, ConnectorDeps(signing=signing()))
        _local.connector.start()
    return _local.connector


def warm() -> None:
    """What the hub's worker does before it serves: load the keys, compile the connector's
    mappings and schemas (cached per process), connect to the database. Without it the first
    tasks of a short run would pay for it."""
    from sqlalchemy import text

    from connectors.base import ConnectorDeps
    from connectors.registry import build_connector, load_agencies

    config = load_agencies(urls={"narsa": os.environ["HUB_AGENCY_NARSA_URL"]})["narsa"]
    probe = build_connector(config, ConnectorDeps(signing=signing()))
    probe.start()
    probe.close()
    with engine().connect() as db:
        db.execute(text("SELECT 1"))


@app.task(name="bench.verify_licence", bind=True, max_retries=5)
def verify_licence(self: Any, request_id: str, data: dict[str, Any], submitted_at: float) -> str:
    from hub.envelope import Envelope, SchemaRef
    from hub.errors import TransientError

    envelope = Envelope.new(
        correlation_id="BENCH", service=workload.SERVICE, kind="request",
        sender=data.get("post") or "hub", recipient="narsa",
        schema=SchemaRef(name="narsa.verify_licence.request", version="1"),
        payload=workload.canonical_payload(data))
    envelope = envelope.model_copy(update={"id": uuid.UUID(request_id)})
    try:
        reply = connector().send(envelope)
    except TransientError as exc:
        raise self.retry(exc=exc, countdown=1)
    with engine().begin() as db:
        db.execute(insert(results).values(
            request_id=request_id, outcome=reply.outcome, agency_reference=reply.agency_reference,
            data=reply.data, wire_digest=reply.wire_digest, submitted_at=submitted_at,
            written_at=time.time()).on_conflict_do_nothing(index_elements=["request_id"]))
    return reply.outcome


def intake_app() -> Any:
    """The pipeline's intake: the same JSON Schema as the hub's intake, then enqueue."""
    from flask import Flask, jsonify, request

    from hub.errors import SchemaViolation
    from hub.schemas import json_schema_validator, validate
    from hub.services import ServiceCatalog

    schema = ServiceCatalog.load().get(workload.SERVICE).intake_schema
    validator = json_schema_validator(schema)
    web = Flask("celery-intake")

    @web.post("/requests")
    def submit() -> Any:
        data = request.get_json(force=True)
        try:
            validate(validator, data, what="request")
        except SchemaViolation as exc:
            return jsonify(error=exc.message, fields=exc.errors), 422
        request_id = str(uuid.uuid4())
        verify_licence.apply_async(args=[request_id, data, time.time()], task_id=request_id)
        return jsonify(reference=request_id), 201

    return web
