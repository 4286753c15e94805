"""Appointments: slots per post and service, booking and cancellation linked to a case, and the
import of the legacy platform's bookings (rejections reported, safe to run twice)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from hub.demo.scenarios import sample_request
from hub.store.models import BookingRow, SlotRow
from hub.web.app import create_app
from webkit import authenticator, bearer, staff_tokens, with_uploaded_documents

SOON = (datetime.now(timezone.utc) + timedelta(days=30)).replace(hour=8, minute=0, second=0,
                                                                 microsecond=0)


@pytest.fixture
def web(hub):
    return create_app(hub, authenticate=authenticator(staff_tokens())).test_client()


def submit(web, service, **changes):
    data = with_uploaded_documents(web, sample_request(service, **changes))
    response = web.post(f"/api/v1/services/{service}/requests", json=data)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def open_slots(web, who="madrid", post="ES-MAD", service="consular_registration_new", **extra):
    return web.post("/api/v1/backoffice/slots", headers=bearer(who), json={
        "post": post, "service": service, "first": SOON.isoformat(), "count": 3, "every": 30,
        "capacity": 1, **extra})


def free(web, post="ES-MAD", service="consular_registration_new"):
    response = web.get(f"/api/v1/posts/{post}/slots?service={service}")
    assert response.status_code == 200
    return {s["id"]: s for s in response.get_json()["slots"]}


def test_staff_open_slots_at_their_own_post_only(web):
    created = open_slots(web)
    assert created.status_code == 201 and len(created.get_json()["created"]) == 3
    assert open_slots(web).get_json()["created"] == []  # the same times are not duplicated
    assert open_slots(web, who="paris").status_code == 403
    assert open_slots(web, who="callcentre").status_code == 403
    assert open_slots(web, service="driving_licence_authentication").status_code == 422
    slots = free(web)
    assert len(slots) == 3
    first = min(slots.values(), key=lambda s: s["starts_at"])
    assert first["local_time"].endswith(("+01:00", "+02:00"))  # shown in Madrid's time


def test_booking_is_linked_to_the_case_and_respects_capacity(web):
    slot_ids = open_slots(web).get_json()["created"]
    one = submit(web, "consular_registration_new")
    two = submit(web, "consular_registration_new")
    url = "/api/v1/cases/{}/appointment"
    secret = lambda case: {"X-Tracking-Secret": case["secret"]}  # noqa: E731

    booked = web.put(url.format(one["reference"]), json={"slot": slot_ids[0]}, headers=secret(one))
    assert booked.status_code == 200 and booked.get_json()["free"] == 0
    assert slot_ids[0] not in free(web)
    full = web.put(url.format(two["reference"]), json={"slot": slot_ids[0]}, headers=secret(two))
    assert full.status_code == 409
    assert full.get_json()["error"]["code"] == "appointment.slot_full"
    wrong_secret = web.put(url.format(two["reference"]), json={"slot": slot_ids[1]},
                           headers=secret(one))
    assert wrong_secret.status_code == 401

    # Rebooking moves the appointment: the first slot is free again.
    moved = web.put(url.format(one["reference"]), json={"slot": slot_ids[1]}, headers=secret(one))
    assert moved.status_code == 200
    assert slot_ids[0] in free(web) and slot_ids[1] not in free(web)
    view = web.get(f"/api/v1/cases/{one['reference']}", headers=secret(one)).get_json()
    assert view["appointment"]["id"] == slot_ids[1]

    assert web.delete(url.format(one["reference"]), headers=secret(one)).status_code == 204
    assert slot_ids[1] in free(web)
    assert web.delete(url.format(one["reference"]), headers=secret(one)).status_code == 404


def test_a_case_books_only_its_own_post_service_and_when_an_appointment_is_needed(web):
    madrid = open_slots(web).get_json()["created"]
    paris = open_slots(web, who="paris", post="FR-PAR").get_json()["created"]
    case = submit(web, "consular_registration_new")
    headers = {"X-Tracking-Secret": case["secret"]}
    url = f"/api/v1/cases/{case['reference']}/appointment"
    assert web.put(url, json={"slot": paris[0]}, headers=headers).status_code == 422
    assert web.put(url, json={"slot": 10**9}, headers=headers).status_code == 422
    assert web.put(url, json={"slot": "x"}, headers=headers).status_code == 422
    assert web.put(url, json={"slot": madrid[0]}, headers=headers).status_code == 200
    licence = submit(web, "driving_licence_authentication")
    needless = web.put(f"/api/v1/cases/{licence['reference']}/appointment",
                       json={"slot": madrid[1]},
                       headers={"X-Tracking-Secret": licence["secret"]})
    assert needless.status_code == 409


LEGACY = """booking_id,post,service,date,time,last_name,first_name,email,phone,case_reference,status
L-1001,ES-MAD,IMMATRICULATION,{d1},09:00,Alaoui,Sara,sara@example.org,+34612345678,,booked
L-1002,ES-MAD,IMMATRICULATION,{d1},09:00,Bennani,Omar,omar@example.org,,,booked
L-1003,FR-PAR,ATTESTATION_IMMATRICULATION,{d2},10:20,Tazi,Amina,,+33612345678,,cancelled
L-1004,XX-NOP,IMMATRICULATION,{d1},09:00,Idrissi,Nora,,,,booked
L-1005,ES-MAD,IMMATRICULATION,2020-01-01,09:00,Idrissi,Nora,,,,booked
L-1006,ES-MAD,VISA_SCHENGEN,{d1},25:00,Idrissi,Nora,not-an-email,,,booked
L-1001,ES-MAD,IMMATRICULATION,{d1},10:00,Alaoui,Sara,,,,booked
L-1007,ES-MAD,consular_registration_renewal,{d1},11:40,,Karim,,,,pending
"""


def legacy_csv():
    day = (SOON + timedelta(days=1)).date()
    return LEGACY.format(d1=day.isoformat(), d2=day.strftime("%d/%m/%Y"))


def counts(hub):
    with hub.store.session() as session:
        return (session.scalar(select(func.count()).select_from(SlotRow)),
                session.scalar(select(func.count()).select_from(BookingRow)))


def test_legacy_import_reports_rejections_and_is_safe_to_run_twice(hub):
    first = hub.appointment_book().import_legacy(legacy_csv())
    assert first.imported == ["L-1001", "L-1002", "L-1003"]
    reasons = {r["line"]: r["reasons"] for r in first.rejected}
    assert reasons[5] == ["unknown post 'XX-NOP'"]
    assert reasons[6] == ["the appointment is in the past"]
    assert set(reasons[7]) == {"unknown or unavailable service 'VISA_SCHENGEN'",
                               "time '25:00' is not HH:MM", "email is not an e-mail address"}
    assert reasons[8] == ["booking_id appears twice in the file"]
    assert set(reasons[9]) == {"last_name is missing",
                               "status 'pending' is neither booked nor cancelled"}
    # Two bookings of one legacy slot: the slot is widened to hold both.
    with hub.store.session() as session:
        (slot,) = session.scalars(select(SlotRow).where(SlotRow.post == "ES-MAD")).all()
        assert slot.capacity == 2
        assert slot.starts_at.hour in (7, 8)  # 09:00 in Madrid, stored in UTC
    before = counts(hub)

    second = hub.appointment_book().import_legacy(legacy_csv())
    assert second.imported == [] and second.already_imported == ["L-1001", "L-1002", "L-1003"]
    assert [r["line"] for r in second.rejected] == [5, 6, 7, 8, 9]
    assert counts(hub) == before


def test_legacy_import_dry_run_and_cli(hub, tmp_path):
    dry = hub.appointment_book().import_legacy(legacy_csv(), dry_run=True)
    assert dry.imported == ["L-1001", "L-1002", "L-1003"]
    assert counts(hub) == (0, 0)
    from hub.cli import main

    # The command builds its own hub from the environment: use a service it always offers.
    lines = legacy_csv().splitlines()
    path = tmp_path / "legacy.csv"
    path.write_text("\n".join([lines[0], lines[3], lines[4]]) + "\n", "utf-8")
    env = {"HUB_DATA_DIR": str(hub.settings.data_dir), "HUB_LOG_LEVEL": "ERROR"}
    result = CliRunner().invoke(main, ["appointments", "import", str(path)], env=env)
    assert result.exit_code == 1, result.output  # a row was rejected
    report = json.loads(result.stdout)
    assert (report["imported"], len(report["rejected"])) == (1, 1)
    again = CliRunner().invoke(main, ["appointments", "import", str(path)], env=env)
    assert json.loads(again.stdout)["already_imported"] == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("id,when\n1,2\n", "utf-8")
    refused = CliRunner().invoke(main, ["appointments", "import", str(bad)], env=env)
    assert refused.exit_code == 1 and "lacks columns" in refused.output
