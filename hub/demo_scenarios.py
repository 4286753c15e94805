"""The demo's scenarios: one or more per service, with the answers the simulators will give.

Test data is built here from the simulators' documented rules (``docs/exchanges.md``, "Simulator
rules", and e.g. `connectors.narsa.register`), so each scenario knows in advance what every agency
will answer. `sample_request` gives a valid request for any of the seven services; the demo, the
tests and the pages' browser test all start from it.
"""
from __future__ import annotations

import copy
import secrets
from typing import Any, Callable

from connectors.narsa import register
from hub.demo import Scenario


def document_id() -> str:
    """A well-formed attachment reference (the demo uploads real files in their place)."""
    return "att_" + secrets.token_urlsafe(18)


def _person(cnie: str = "AB123457", **changes: Any) -> dict[str, Any]:
    person = {"cnie": cnie, "passport_number": "AB1234567", "last_name": "Alaoui",
              "first_name": "Sara", "birth_date": "1990-02-03", "birth_place": "Casablanca",
              "father_name": "Ahmed", "mother_name": "Fatima"}
    person.update(changes)
    return {k: v for k, v in person.items() if v is not None}


def licence_request(answer: str, *, serial: int = 345678, status: str = "valid"
                    ) -> dict[str, Any]:
    return {
        "post": "ES-MAD",
        "licence": {"number": register.licence_number(serial=serial, answer=answer,
                                                      status=status),
                    "categories": [{"code": "B", "issued_on": "2015-06-01"}]},
        "holder": {"cnie": "AB123456", "last_name": "Alaoui", "first_name": "Sara",
                   "birth_date": "1990-02-03"},
        "requesting_authority": {"name": "DGT Madrid", "country": "ES", "reference": "DGT-77812"},
        "applicant": {"email": "sara.alaoui@example.org", "phone": "+34612345678"},
        "documents": {"licence_front": document_id(), "licence_back": document_id(),
                      "cnie_copy": document_id()},
    }


def repatriation_request(*, cnie: str = "BK456781", cause: str = "myocardial infarction",
                         non_contagion: bool = True, commune: str = "Casablanca",
                         border_post: str = "Casablanca Mohammed V airport") -> dict[str, Any]:
    documents = {"death_certificate": document_id(), "sealed_coffin_certificate": document_id(),
                 "exit_authorisation": document_id(), "costs_proof": document_id()}
    if non_contagion:
        documents["non_contagion_certificate"] = document_id()
    return {
        "post": "FR-PAR",
        "applicant": {"organisation": "Pompes funèbres Atlas", "contact_name": "Karim Bennani",
                      "email": "contact@pf-atlas.example.fr", "phone": "+33612345678"},
        "deceased": {"cnie": cnie, "last_name": "Tazi", "first_name": "Mohamed",
                     "birth_date": "1948-11-20", "birth_place": "Fès", "father_name": "Driss",
                     "mother_name": "Khadija", "date_of_death": "2026-11-20",
                     "place_of_death": {"city": "Paris", "country": "FR"},
                     "cause_of_death": cause},
        "family_contact": {"name": "Amina Tazi", "relationship": "child",
                           "phone": "+212612345678",
                           "address": {"line1": "12 rue Ibn Sina", "city": commune,
                                       "postal_code": "20250", "country": "MA"}},
        "burial": {"commune": commune, "province": "Casablanca-Settat",
                   "cemetery": "Cimetière Ghofrane"},
        "transport": {"expected_arrival_date": "2026-11-28", "border_post": border_post,
                      "flight_number": "AT751", "destination_airport": "CMN",
                      "receiver_name": "Amina Tazi"},
        "costs": {"covered_by": "insurance", "insurer": "Assurance Rapatriement SA"},
        "documents": documents,
    }


def registration_request(*, cnie: str = "AB123457", post: str = "ES-MAD",
                         age_group: str = "adult", renewal: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "post": post,
        "age_group": age_group,
        "person": _person(cnie),
        "civil": {"sex": "F", "marital_status": "married", "spouse_name": "Youssef Idrissi",
                  "children_count": 1, "profession": "Engineer"},
        "residence": {"address": {"line1": "Calle Mayor 12", "postal_code": "28013",
                                  "city": "Madrid", "country": "ES"},
                      "permit": {"kind": "residence_card", "number": "X1234567L",
                                 "valid_until": "2029-05-31"}},
        "contact": {"email": "sara.alaoui@example.org", "phone": "+34612345678"},
        "phone_in_morocco": "+212522123456",
        "documents": {"passport_copy": document_id(), "cnie_copy": document_id(),
                      "residence_permit_copy": document_id(), "photo_1": document_id(),
                      "photo_2": document_id()},
    }
    if renewal:
        data["previous_registration"] = {"post": post, "number": "CRN-2023-4Q7M2XH",
                                         "registered_on": "2023-03-01"}
    return data


def registration_update_request(*, cnie: str = "AB123457", post: str = "ES-MAD"
                                ) -> dict[str, Any]:
    person = _person(cnie)
    person.pop("birth_place"), person.pop("father_name"), person.pop("mother_name")
    return {
        "post": post, "person": person, "reason": "new_address_in_district",
        "changes": {"address": {"line1": "Calle de Alcalá 100", "postal_code": "28009",
                                "city": "Madrid", "country": "ES"}},
        "contact": {"email": "sara.alaoui@example.org", "phone": "+34612345678"},
        "documents": {"supporting_document": document_id()},
    }


def certificate_request(*, cnie: str = "AB123457", post: str = "ES-MAD") -> dict[str, Any]:
    person = _person(cnie)
    person.pop("birth_place"), person.pop("father_name"), person.pop("mother_name")
    return {
        "post": post, "person": person, "copies": 1, "purpose": "Family reunification file",
        "contact": {"email": "sara.alaoui@example.org", "phone": "+34612345678"},
        "documents": {"id_copy": document_id(), "residence_permit_copy": document_id(),
                      "address_proof": document_id()},
    }


#: A valid request for each service, by name (the judicial documents come from Justice, inbound).
SAMPLES: dict[str, Callable[[], dict[str, Any]]] = {
    "driving_licence_authentication": lambda: licence_request("authentic", serial=100001),
    "repatriation_of_remains": repatriation_request,
    "consular_registration_new": registration_request,
    "consular_registration_renewal": lambda: registration_request(renewal=True),
    "consular_registration_update": registration_update_request,
    "registration_certificate": certificate_request,
}


def sample_request(service: str, **changes: Any) -> dict[str, Any]:
    """A deep copy of the sample request of ``service`` with top-level ``changes`` applied."""
    data = copy.deepcopy(SAMPLES[service]())
    data.update(changes)
    return data


def _licence(data: dict[str, Any]) -> str:
    return data["licence"]["number"]


SCENARIOS = [
    Scenario("licence authentic", "driving_licence_authentication",
             lambda: licence_request("authentic", serial=100001),
             {"licence_check": "authentic"}, "verified"),
    Scenario("licence forged", "driving_licence_authentication",
             lambda: licence_request("not_authentic", serial=100002),
             {"licence_check": "not_authentic"}, "rejected"),
    Scenario("licence not in register", "driving_licence_authentication",
             lambda: licence_request("unknown", serial=100003),
             {"licence_check": "unknown"}, "more_information_requested"),
    Scenario("NARSA outage, recovers", "driving_licence_authentication",
             lambda: licence_request("authentic", serial=100004),
             {"licence_check": "authentic"}, "verified",
             faults=[("narsa", "status", {"status": 503, "count": 2})], marker=_licence),
    Scenario("NARSA down, dead letter replayed", "driving_licence_authentication",
             lambda: licence_request("authentic", serial=100005),
             {"licence_check": "authentic"}, "verified",
             faults=[("narsa", "status", {"status": 503})], marker=_licence, replay=True),
]
