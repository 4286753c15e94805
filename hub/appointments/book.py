"""Appointments: slots per post and service, bookings linked to cases, and the migration of the
legacy appointment-booking platform.

    book = hub.appointment_book()                # built by `hub.runtime.Hub`
    book.open_slots(staff, post="ES-MAD", service="consular_registration_new",
                    first=datetime(2027, 1, 4, 9, tzinfo=madrid), count=12, every=20, capacity=2)
    book.available(post="ES-MAD", service="consular_registration_new")   # free places
    book.book(reference, secret, slot_id)       # one active booking per case; rebooking moves it
    book.cancel(reference, secret)
    report = book.import_legacy(csv_text)        # imported / already imported / rejected (why)

A slot never holds more bookings than its capacity: the slot row is locked while counting. A
case books only a slot of its own post and service, and only for a service whose guide says an
appointment is optional or required.
"""
from __future__ import annotations

import csv
import io
import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from importlib import resources
from typing import Any, Mapping
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.cases.access import Principal
from hub.cases.book import find_case
from hub.cases.posts import get_post
from hub.cases.references import reference_is_well_formed, secret_matches
from hub.clock import aware
from hub.errors import (
    AccessDenied,
    IllegalTransition,
    SchemaViolation,
    SecurityError,
    UnknownRoute,
    UnknownService,
)
from hub.evidence.audit.log import AuditLog, AuditRecord
from hub.services import ServiceCatalog
from hub.store import Store
from hub.store.models import BookingRow, CaseRow, SlotRow, utcnow

MAX_SLOTS_PER_CALL = 500


@dataclass(frozen=True)
class Slot:
    id: int
    post: str
    service: str
    starts_at: datetime
    minutes: int
    capacity: int
    free: int

    def as_json(self) -> dict[str, Any]:
        post = get_post(self.post)
        starts_at = aware(self.starts_at)
        local = starts_at.astimezone(ZoneInfo(post.timezone)) if post else starts_at
        return {"id": self.id, "post": self.post, "service": self.service,
                "starts_at": starts_at.isoformat(), "local_time": local.isoformat(),
                "minutes": self.minutes, "capacity": self.capacity, "free": self.free}


class AppointmentBook:
    """Slots and bookings in ``store``, for the services of ``catalog`` whose guide offers an
    appointment; every booking, cancellation and import is recorded in ``audit``."""

    def __init__(self, store: Store, catalog: ServiceCatalog, audit: AuditLog) -> None:
        self.store = store
        self.catalog = catalog
        self.audit = audit

    # -- slots ---------------------------------------------------------------------------------

    def open_slots(self, principal: Principal, *, post: str, service: str, first: datetime,
                   count: int, every: int = 20, capacity: int = 1) -> list[int]:
        """Open ``count`` slots from ``first``, every ``every`` minutes (staff of the post or
        the central directorate). Existing slots at those times are kept, not duplicated."""
        if not principal.can_change_case(post, ""):
            raise AccessDenied(f"{principal.role} may not open slots at {post}")
        errors = []
        if get_post(post) is None:
            errors.append({"field": "post", "code": "unknown_post", "message": "no such post"})
        try:
            definition = self.catalog.get(service)
            if definition.guide is None or definition.guide.appointment == "none":
                errors.append({"field": "service", "code": "enum",
                               "message": "this service needs no appointment"})
        except UnknownService:
            errors.append({"field": "service", "code": "enum", "message": "no such service"})
        if not 1 <= count <= MAX_SLOTS_PER_CALL or not 5 <= every <= 480 or \
                not 1 <= capacity <= 100:
            errors.append({"field": "count", "code": "maximum",
                           "message": "count 1-500, every 5-480 minutes, capacity 1-100"})
        if errors:
            raise SchemaViolation("cannot open these slots", errors=errors)
        first = aware(first)
        created = []
        with self.store.transaction() as session:
            for n in range(count):
                starts_at = first + timedelta(minutes=every * n)
                existing = session.scalars(select(SlotRow).where(
                    SlotRow.post == post, SlotRow.service == service,
                    SlotRow.starts_at == starts_at)).first()
                if existing is None:
                    row = SlotRow(post=post, service=service, starts_at=starts_at,
                                  minutes=every, capacity=capacity, created_at=utcnow())
                    session.add(row)
                    session.flush()
                    created.append(row.id)
        return created

    def available(self, *, post: str, service: str, since: datetime | None = None,
                  limit: int = 200) -> list[Slot]:
        """Future slots of a post and service with at least one free place."""
        since = aware(since or utcnow())
        with self.store.session() as session:
            booked = (select(BookingRow.slot_id, func.count().label("n"))
                      .where(BookingRow.status == "booked").group_by(BookingRow.slot_id)
                      .subquery())
            rows = session.execute(
                select(SlotRow, func.coalesce(booked.c.n, 0))
                .outerjoin(booked, booked.c.slot_id == SlotRow.id)
                .where(SlotRow.post == post, SlotRow.service == service,
                       SlotRow.starts_at > since)
                .order_by(SlotRow.starts_at).limit(limit * 2)).all()
        slots = [Slot(s.id, s.post, s.service, aware(s.starts_at), s.minutes, s.capacity,
                      s.capacity - n) for s, n in rows]
        return [s for s in slots if s.free > 0][:limit]

    # -- bookings ------------------------------------------------------------------------------

    def _case(self, session: Session, reference: str, secret: str) -> CaseRow:

        case = find_case(session, reference) if reference_is_well_formed(reference) else None
        if case is None or not secret_matches(secret, case.secret_hash):
            raise SecurityError("unknown reference or wrong tracking secret",
                                code="tracking.denied")
        return session.scalars(select(CaseRow).where(CaseRow.id == case.id)
                               .with_for_update()).one()

    def current(self, session: Session, case_id: str) -> tuple[BookingRow, SlotRow] | None:
        row = session.execute(select(BookingRow, SlotRow).join(SlotRow, SlotRow.id ==
                                                               BookingRow.slot_id)
                              .where(BookingRow.case_id == case_id,
                                     BookingRow.status == "booked")).first()
        return (row[0], row[1]) if row else None

    def booked(self, session: Session, case_id: str) -> dict[str, Any] | None:
        """The case's booked appointment as the applicant sees it (or None)."""
        current = self.current(session, case_id)
        if current is None:
            return None
        slot = current[1]
        return Slot(slot.id, slot.post, slot.service, slot.starts_at, slot.minutes,
                    slot.capacity, 0).as_json()

    def book(self, reference: str, secret: str, slot_id: int) -> Slot:
        """Book ``slot_id`` for the case; an earlier booking of the case is cancelled in the
        same transaction (rebooking)."""
        with self.store.transaction() as session:
            case = self._case(session, reference, secret)
            definition = self.catalog.get(case.service)
            if definition.is_final(case.status):
                raise IllegalTransition(f"case {case.reference} is closed", current=case.status)
            if definition.guide is None or definition.guide.appointment == "none":
                raise IllegalTransition(f"{case.service} needs no appointment",
                                        current=case.status)
            slot = session.scalars(select(SlotRow).where(SlotRow.id == slot_id)
                                   .with_for_update()).first()
            if slot is None or slot.post != case.post or slot.service != case.service \
                    or aware(slot.starts_at) <= utcnow():
                raise SchemaViolation("this slot is not open to this case", errors=[
                    {"field": "slot", "code": "slot_unavailable",
                     "message": "choose one of the slots offered for this case"}])
            previous = self.current(session, case.id)
            if previous is not None and previous[1].id == slot.id:
                return self._slot(session, slot)
            taken = session.scalar(select(func.count()).select_from(BookingRow).where(
                BookingRow.slot_id == slot.id, BookingRow.status == "booked"))
            if taken >= slot.capacity:
                raise IllegalTransition("this slot is full", code="appointment.slot_full")
            if previous is not None:
                previous[0].status, previous[0].cancelled_at = "cancelled", utcnow()
            session.add(BookingRow(id=str(uuid.uuid4()), slot_id=slot.id, case_id=case.id,
                                   status="booked", source="portal", holder={},
                                   booked_at=utcnow()))
            self.audit.append(session, AuditRecord(
                action="booked", actor="applicant", component="appointments",
                correlation_id=case.reference,
                details={"slot": slot.id, "starts_at": aware(slot.starts_at).isoformat()}))
            session.flush()
            return self._slot(session, slot)

    def cancel(self, reference: str, secret: str) -> None:
        with self.store.transaction() as session:
            case = self._case(session, reference, secret)
            current = self.current(session, case.id)
            if current is None:
                raise UnknownRoute("this case has no appointment", code="appointment.none")
            current[0].status, current[0].cancelled_at = "cancelled", utcnow()
            self.audit.append(session, AuditRecord(
                action="cancelled", actor="applicant", component="appointments",
                correlation_id=case.reference, details={"slot": current[1].id}))

    def _slot(self, session: Session, slot: SlotRow) -> Slot:
        taken = session.scalar(select(func.count()).select_from(BookingRow).where(
            BookingRow.slot_id == slot.id, BookingRow.status == "booked"))
        return Slot(slot.id, slot.post, slot.service, aware(slot.starts_at), slot.minutes,
                    slot.capacity, slot.capacity - taken)

    def import_legacy(self, text: str, *, now: datetime | None = None,
                      dry_run: bool = False) -> ImportReport:
        """Import the legacy platform's bookings (CSV with `LEGACY_COLUMNS`), in one
        transaction.

        Rows already imported (same ``booking_id``) are reported and left alone, so the import
        can run again after fixing the rejected rows; each rejected row is reported with its
        line number and every reason. ``dry_run`` checks everything and writes nothing."""
        now = aware(now or utcnow())
        report = ImportReport()
        reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
        missing = [c for c in LEGACY_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise SchemaViolation(f"the file lacks columns {', '.join(missing)}", errors=[
                {"field": c, "code": "required", "message": "column missing"} for c in missing])
        seen: set[str] = set()
        try:
            with self.store.transaction() as session:
                _import_rows(self.catalog, session, reader, now, report, seen)
                if dry_run:
                    raise _DryRun
                self.audit.append(session, AuditRecord(
                    action="imported", actor="operator", component="appointments",
                    details={"imported": len(report.imported),
                             "already_imported": len(report.already_imported),
                             "rejected": len(report.rejected)}))
        except _DryRun:
            pass  # everything checked, nothing written
        return report


# -- the legacy platform -----------------------------------------------------------------------

#: Columns of the legacy platform's export (one booking per line, UTF-8, comma-separated).
LEGACY_COLUMNS = ("booking_id", "post", "service", "date", "time", "last_name", "first_name",
                  "email", "phone", "case_reference", "status")
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_PHONE = re.compile(r"^\+?[0-9 ().-]{8,20}$")
_ID = re.compile(r"^[A-Za-z0-9_.:/-]{1,64}$")


@lru_cache(maxsize=1)
def legacy_services() -> dict[str, str]:
    text = (resources.files("hub") / "data" / "legacy_services.yaml").read_text("utf-8")
    return {str(k).upper(): str(v) for k, v in (yaml.safe_load(text) or {}).items()}


@dataclass
class ImportReport:
    imported: list[str] = field(default_factory=list)
    already_imported: list[str] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"imported": len(self.imported), "already_imported": len(self.already_imported),
                "rejected": self.rejected}


def _parse_date(text: str) -> date | None:
    for pattern in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return None


def _parse_time(text: str) -> time | None:
    try:
        return datetime.strptime(text, "%H:%M").time()
    except ValueError:
        return None


def _check_row(row: Mapping[str, str], catalog: ServiceCatalog, now: datetime
               ) -> tuple[list[str], dict[str, Any]]:
    """Problems with one legacy row, and what it means when there are none."""
    problems: list[str] = []
    value = {k: (row.get(k) or "").strip() for k in LEGACY_COLUMNS}
    for name in ("booking_id", "post", "service", "date", "time", "last_name", "first_name"):
        if not value[name]:
            problems.append(f"{name} is missing")
    if value["booking_id"] and not _ID.match(value["booking_id"]):
        problems.append("booking_id has characters a booking id cannot have")
    post = get_post(value["post"]) if value["post"] else None
    if value["post"] and post is None:
        problems.append(f"unknown post {value['post']!r}")
    service = legacy_services().get(value["service"].upper(), value["service"])
    if value["service"]:
        try:
            catalog.get(service)
        except UnknownService:
            problems.append(f"unknown or unavailable service {value['service']!r}")
    day = _parse_date(value["date"]) if value["date"] else None
    hour = _parse_time(value["time"]) if value["time"] else None
    if value["date"] and day is None:
        problems.append(f"date {value['date']!r} is not YYYY-MM-DD or DD/MM/YYYY")
    if value["time"] and hour is None:
        problems.append(f"time {value['time']!r} is not HH:MM")
    starts_at = None
    if post is not None and day is not None and hour is not None:
        starts_at = datetime.combine(day, hour, ZoneInfo(post.timezone)).astimezone(timezone.utc)
        if starts_at <= now:
            problems.append("the appointment is in the past")
    if value["email"] and not _EMAIL.match(value["email"]):
        problems.append("email is not an e-mail address")
    if value["phone"] and not _PHONE.match(value["phone"]):
        problems.append("phone is not a phone number")
    status = value["status"].lower() or "booked"
    if status not in ("booked", "cancelled"):
        problems.append(f"status {value['status']!r} is neither booked nor cancelled")
    return problems, {**value, "service": service, "starts_at": starts_at, "status": status}


class _DryRun(Exception):
    """Rolls the import's transaction back after a complete check."""


def _import_rows(catalog: ServiceCatalog, session: Session, reader: csv.DictReader,
                 now: datetime, report: ImportReport, seen: set[str]) -> None:
    """Check each row, report it, and import it if it is good and new."""
    for line, row in enumerate(reader, start=2):
        problems, value = _check_row(row, catalog, now)
        booking_id = value["booking_id"]
        if booking_id in seen:
            problems.append("booking_id appears twice in the file")
        seen.add(booking_id)
        case = None
        if not problems and value["case_reference"]:
            case = find_case(session, value["case_reference"]) \
                if reference_is_well_formed(value["case_reference"]) else None
            if case is None or case.post != value["post"] or \
                    case.service != value["service"]:
                problems.append("case_reference names no case of this post and service")
        if problems:
            report.rejected.append({"line": line, "booking_id": booking_id,
                                    "reasons": problems})
            continue
        if session.scalars(select(BookingRow.id).where(
                BookingRow.legacy_id == booking_id)).first() is not None:
            report.already_imported.append(booking_id)
            continue
        _import_row(session, value, case)
        report.imported.append(booking_id)


def _import_row(session: Session, value: dict[str, Any], case: CaseRow | None) -> None:
    slot = session.scalars(select(SlotRow).where(
        SlotRow.post == value["post"], SlotRow.service == value["service"],
        SlotRow.starts_at == value["starts_at"])).first()
    if slot is None:
        slot = SlotRow(post=value["post"], service=value["service"],
                       starts_at=value["starts_at"], minutes=20, capacity=1,
                       created_at=utcnow())
        session.add(slot)
        session.flush()
    elif value["status"] == "booked":
        taken = session.scalar(select(func.count()).select_from(BookingRow).where(
            BookingRow.slot_id == slot.id, BookingRow.status == "booked"))
        # The legacy platform booked it: honour it, widening the slot if it was overbooked.
        slot.capacity = max(slot.capacity, taken + 1)
    session.add(BookingRow(
        id=str(uuid.uuid4()), slot_id=slot.id, case_id=case.id if case else None,
        status=value["status"], source="legacy", legacy_id=value["booking_id"],
        holder={k: value[k] for k in ("last_name", "first_name", "email", "phone") if value[k]},
        booked_at=utcnow(), cancelled_at=utcnow() if value["status"] == "cancelled" else None))
