"""The messages every scenario sends: driving-licence authentication requests (NARSA, REST/JSON).

Every request is valid and draws an ``authentic`` answer from the simulator, so every case ends
``verified`` and every scenario does the same work per message. `intake_request` is what an
applicant posts to the hub (and to the Celery pipeline's intake); `wire_request` is what NARSA
receives on the wire, made with the hub's own mapping, for the direct scenario.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


SERVICE = "driving_licence_authentication"
#: Statuses a case of this service reaches when its exchange is done (the end of a run's work).
DONE_STATUSES = ("verified", "rejected", "more_information_requested")


#: The documents the service requires (``documents`` of its intake schema), by field.
DOCUMENT_FIELDS = ("licence_front", "licence_back", "cnie_copy")


def document_reference(batch: str, n: int, field: str) -> str:
    """The reference of request ``n``'s ``field`` document in upload batch ``batch``."""
    return f"att_{batch}-{n:09d}-{field.replace('_', '-')}"


def intake_request(n: int, documents: str = "") -> dict[str, Any]:
    """Request ``n``: the demo's authentic-licence request (kept valid by the demo's own tests),
    with a licence number and a foreign reference of its own. ``documents``: the upload batch
    whose references it names (`provision_documents` made them); else the demo's references,
    which only pipelines that do not check uploads accept."""
    from hub.demo.scenarios import licence_request

    data = licence_request("authentic", serial=100000 + n % 800000)
    data["requesting_authority"] = {**data["requesting_authority"], "reference": f"DGT-{n:08d}"}
    if documents:
        data["documents"] = {field: document_reference(documents, n, field)
                             for field in DOCUMENT_FIELDS}
    return data


def provision_documents(database_url: str, batch: str, first: int, count: int) -> None:
    """The applicant's uploads, done before the load: unclaimed attachment rows for requests
    ``first .. first + count - 1`` of ``batch``, as ``POST /api/v1/attachments`` leaves them.

    The hub's intake requires each document to exist unclaimed, and claims it for the new case.
    An applicant uploads while filling in the form, not as part of the exchange, so the
    benchmark does it ahead in bulk (rows only: no exchange reads a document's bytes)."""
    from sqlalchemy import create_engine, text

    from hub.store import normalize_url

    url = normalize_url(database_url)
    engine = create_engine(url)
    columns = ("id, case_id, kind, field, content_type, size, sha256, storage_key, uploaded_by,"
               " created_at, claimed_at")
    try:
        with engine.begin() as db:
            if engine.dialect.name == "postgresql":
                # One statement: 10^5 rows in well under a second.
                db.execute(text(
                    f"INSERT INTO attachments ({columns}) SELECT 'att_' || :batch || '-'"
                    " || lpad(n::text, 9, '0') || '-' || f, NULL, 'applicant', NULL,"
                    " 'application/pdf', 1024, repeat('0', 64), 'bench/' || :batch || '.bin',"
                    " 'applicant', now(), NULL FROM generate_series(:lo, :hi - 1) AS n,"
                    " unnest(CAST(:fields AS text[])) AS f"),
                    {"batch": batch, "lo": first, "hi": first + count,
                     "fields": [f.replace("_", "-") for f in DOCUMENT_FIELDS]})
            else:
                from datetime import datetime, timezone

                now = datetime.now(timezone.utc).replace(tzinfo=None)
                db.execute(text(
                    f"INSERT INTO attachments ({columns}) VALUES (:id, NULL, 'applicant', NULL,"
                    " 'application/pdf', 1024, :sha, :key, 'applicant', :now, NULL)"),
                    [{"id": document_reference(batch, n, field), "sha": "0" * 64,
                      "key": f"bench/{batch}.bin", "now": now}
                     for n in range(first, first + count) for field in DOCUMENT_FIELDS])
    finally:
        engine.dispose()


def canonical_payload(data: dict[str, Any]) -> dict[str, Any]:
    """What the route's NARSA step sends (its ``input`` selection), through the hub's router."""
    from hub.cases import router
    from hub.services import ServiceCatalog

    global _step
    if _step is None:
        route = ServiceCatalog.load().get(SERVICE).route
        _step = next(step for step in route.steps if step.agency == "narsa")  # type: ignore[union-attr]
    return router.request_payload(_step, data)


_step: Any = None
_request_mapping = None


def wire_request(n: int, message_id: str, correlation_id: str = "BENCH") -> dict[str, Any]:
    """NARSA's VerificationRequest for request ``n``, through the hub's own mapping file."""
    global _request_mapping
    from hub.envelope import format_timestamp
    from hub.mapping import Mapping

    if _request_mapping is None:
        _request_mapping = Mapping.packaged("narsa", "verify_licence.request")
    now = format_timestamp(datetime.now(timezone.utc)).replace(".000000", "")
    return _request_mapping.apply(canonical_payload(intake_request(n)),
                                  {"message_id": message_id, "correlation_id": correlation_id,
                                   "created_at": now})
