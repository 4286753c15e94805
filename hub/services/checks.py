"""Local operations: the checks a route step asks of the hub itself (``agency: hub``).

Some services need no agency but still a check before staff act on them: a registration update
or a registration certificate needs a *current* consular registration of the same person, which
only the hub knows. Such a step is answered at once, inside the transaction that dispatched it,
and its answer drives the case exactly like an agency's (``outcomes`` in the route).

Each operation is a pure-ish function ``(context, payload) -> outcome`` registered in
`LOCAL_OPERATIONS` with the outcomes it can answer; the definition loader refuses a local step
naming an unknown operation or missing a rule for one of its outcomes. The vocabulary is small on
purpose and documented in ``docs/exchanges.md`` ("Local operations"), so that a new service is
still data only.

    find_record   payload: person (canonical person), post, kind, same_post (bool)
                  answers current | none
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from hub.keyset import normalize_document
from hub.mapping import MISSING, get_path
from hub.store.privacy import privacy_of
from hub.store.models import CaseIdentity, CaseRow
from hub.services.definition import ServiceDefinition


class RecordProviders(Protocol):
    """Where records of a kind come from (the catalog: `ServiceCatalog.providers`)."""

    def providers(self, kind: str) -> list[ServiceDefinition]: ...


@dataclass(frozen=True)
class LocalContext:
    """What a local operation may read: the session of the transaction and the catalog."""

    session: Session
    catalog: RecordProviders
    case: CaseRow


@dataclass(frozen=True)
class LocalOperation:
    run: Callable[[LocalContext, Mapping[str, Any]], str]
    outcomes: frozenset[str]


def _fold(value: Any) -> str:
    return str(value or "").strip().casefold()


def same_person(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Same identity document (CNIE or passport) and the same last name and birth date.

    The document number alone could be mistyped into someone else's; the name and birth date
    must agree too, so that a lookup cannot be used to probe other people's records. Numbers
    compare as `hub.keyset.normalize_document` writes them (``AB-123 456`` is ``AB123456``).
    """
    same_document = any(
        normalize_document(a.get(key) or "") and
        normalize_document(a.get(key) or "") == normalize_document(b.get(key) or "")
        for key in DOCUMENT_KINDS)
    return (same_document and _fold(a.get("last_name")) == _fold(b.get("last_name"))
            and _fold(a.get("birth_date")) == _fold(b.get("birth_date")))


#: The identity documents a person is found by, and their kind in the blind index.
DOCUMENT_KINDS = {"cnie": "cnie", "passport_number": "passport"}


def find_record(context: LocalContext, payload: Mapping[str, Any]) -> str:
    """``current`` when a case of a service providing ``kind`` is in one of its record statuses
    for the same person (and the same post when ``same_post``); ``none`` otherwise.

    Case data is encrypted at rest: candidates are found through the blind index
    (``case_identities``: keyed digests of the subject's CNIE or passport number), and only those
    few are decrypted to compare name and birth date."""
    person = payload.get("person")
    kind = payload.get("kind")
    if not isinstance(person, Mapping) or not isinstance(kind, str):
        return "none"
    privacy = privacy_of(context.session)
    for provider in context.catalog.providers(kind):
        spec = provider.record
        assert spec is not None  # providers() only returns definitions with a record
        wanted = [and_(CaseIdentity.path == f"{spec.subject}.{key}",
                       CaseIdentity.digest == privacy.digest(document, str(person[key])))
                  for key, document in DOCUMENT_KINDS.items()
                  if normalize_document(person.get(key) or "")]
        if not wanted:
            continue
        query = (select(CaseRow).join(CaseIdentity, CaseIdentity.case_id == CaseRow.id)
                 .where(CaseRow.service == provider.name, CaseRow.status.in_(spec.statuses),
                        CaseRow.id != context.case.id, or_(*wanted)))
        if payload.get("same_post"):
            query = query.where(CaseRow.post == payload.get("post"))
        for row in context.session.scalars(query):
            subject = get_path(row.data, spec.subject)
            if subject is not MISSING and isinstance(subject, Mapping) \
                    and same_person(subject, person):
                return "current"
    return "none"


LOCAL_OPERATIONS: dict[str, LocalOperation] = {
    "find_record": LocalOperation(find_record, frozenset({"current", "none"})),
}
