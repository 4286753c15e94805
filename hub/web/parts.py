"""The parts of the hub that the applicant, staff and appointment blueprints use, each named and
typed.

`hub.web.app.create_app` puts them in ``app.extensions`` once (`install`); a view reads the one
it needs through the accessor of the same name, never the whole hub::

    opened = submissions().submit(service, data, language=lang)
    definition = catalog().get(service)
    limit = settings().max_attachment_bytes

Shared by several blueprints, this module imports none of them (Flask's tutorial layout). The
admin console and the inbound agency endpoints keep their own parts beside their blueprints
(`hub.web.admin.parts`, `hub.web.inbound.agencies.InboundParts`).
"""
from __future__ import annotations

from typing import TypeVar

from flask import Flask, current_app

from hub.appointments.book import AppointmentBook
from hub.cases.staff import StaffDesk
from hub.cases.submissions import Submissions
from hub.config import Settings
from hub.services import ServiceCatalog
from hub.store import Store

SETTINGS = "hub.settings"
STORE = "hub.store"
CATALOG = "hub.catalog"
SUBMISSIONS = "hub.submissions"
DESK = "hub.desk"
APPOINTMENTS = "hub.appointments"

T = TypeVar("T")


def install(app: Flask, *, settings: Settings, store: Store, catalog: ServiceCatalog,
            submissions: Submissions, desk: StaffDesk, appointments: AppointmentBook) -> None:
    """Give ``app``'s blueprints what they use (called once by the app factory)."""
    app.extensions.update({SETTINGS: settings, STORE: store, CATALOG: catalog,
                           SUBMISSIONS: submissions, DESK: desk, APPOINTMENTS: appointments})


def part(key: str, kind: type[T]) -> T:
    """The current app's part under ``key``, checked to be a ``kind`` (a wrongly composed app
    fails loudly at its first request, not deep inside a view)."""
    found = current_app.extensions[key]
    if not isinstance(found, kind):
        raise TypeError(f"app.extensions[{key!r}] is a {type(found).__name__},"
                        f" not a {kind.__name__}")
    return found


def settings() -> Settings:
    """The hub's settings (limits, default language)."""
    return part(SETTINGS, Settings)


def store() -> Store:
    """The hub's database, for the few reads a view makes itself."""
    return part(STORE, Store)


def catalog() -> ServiceCatalog:
    """The services the hub offers."""
    return part(CATALOG, ServiceCatalog)


def submissions() -> Submissions:
    """The applicant's use cases."""
    return part(SUBMISSIONS, Submissions)


def staff_desk() -> StaffDesk:
    """The staff's use cases."""
    return part(DESK, StaffDesk)


def appointment_book() -> AppointmentBook:
    """Slots and bookings."""
    return part(APPOINTMENTS, AppointmentBook)
