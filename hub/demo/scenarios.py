"""The demo's scenarios: one or more per service, with the answers the simulators will give.

Test data is built here from the simulators' documented rules (``docs/exchanges.md``, "Simulator
rules", and e.g. `connectors.narsa.register`, `connectors.dgsn.register`), so each scenario knows
in advance what every agency will answer. Every one of the seven services has a case that ends
well and one whose answer changes the case (rejected, more information, certificate refused). `sample_request` gives a valid request for any of the seven services; the demo, the
tests and the pages' browser test all start from it.
"""
from __future__ import annotations

import copy
import secrets
from typing import Any, Callable

from connectors.narsa import register
from hub.demo.script import DaysPass, Opened, PostRecords, Scenario
from hub.testing.livehub import AgencyHub


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


def judicial_document(justice_reference: str, *, city: str = "Madrid") -> dict[str, Any]:
    """A document as Justice sends it (wire fields of ``SubmitJudicialDocumentRequest``);
    the addressee's city picks the post (Madrid: ES-MAD)."""
    return {
        "justiceReference": justice_reference,
        "court": {"name": "Tribunal de premiere instance de Rabat", "code": "TPI-RABAT"},
        "courtCaseNumber": "2026/1201/455",
        "document": {"type": "SUMMONS", "title": "Convocation", "issuedOn": "2026-11-20"},
        "addressee": {"cnie": "AB123456", "lastName": "Alaoui", "firstName": "Sara",
                      "address": {"line1": "12 calle Mayor", "city": city, "country": "ES"}},
    }


#: Justice opens one case per reference (a document sent twice is one case): a run of the demo
#: sends its own references, so that a kept data directory (``--data-dir``) can be reused.
_RUN = secrets.token_hex(4).upper()


def _justice_reference_of(n: int) -> str:
    return f"MJ-DEMO-{_RUN}-{n}"


def _stranger(data: dict[str, Any]) -> dict[str, Any]:
    """The request made by someone the post never registered (another document, another name)."""
    data["person"].update(cnie="AB123451", passport_number="AC7654321", last_name="Bennis")
    return data


# -- how cases open ----------------------------------------------------------------------------

def from_justice(world: AgencyHub, scenario: Scenario, data: dict[str, Any]) -> Opened:
    """Justice sends the document to the hub's SOAP endpoint (a Zeep client of the hub's WSDL,
    signed with XML-DSig); the hub answers with the case it opened."""
    answer = world.simulators["justice"].send_document(world.server.url, data)
    return Opened(answer["caseReference"],
                  {"document_submission": ("justice", str(answer["status"]).lower())})


def from_justice_then_forgotten(world: AgencyHub, scenario: Scenario, data: dict[str, Any]
                                ) -> Opened:
    """As `from_justice`, then Justice's register loses the reference (a register mix-up): the
    certificate the hub returns later names a document Justice does not know."""
    opened = from_justice(world, scenario, data)
    world.simulators["justice"].sent.pop(data["justiceReference"], None)
    return opened


# -- faults aimed at one case --------------------------------------------------------------------

def _licence(data: dict[str, Any]) -> str:
    return data["licence"]["number"]


def _deceased(data: dict[str, Any]) -> str:
    return data["deceased"]["cnie"]


def _person_cnie(data: dict[str, Any]) -> str:
    return data["person"]["cnie"]


def _justice_reference(data: dict[str, Any]) -> str:
    return data["justiceReference"]


def _delivery(outcome: str) -> dict[str, Any]:
    return {"delivery": {"outcome": outcome, "date": "2026-12-01", "received_by": "Sara Alaoui"}}


LICENCE = "driving_licence_authentication"
REPATRIATION = "repatriation_of_remains"
JUDICIAL = "judicial_documents"
NEW, RENEWAL = "consular_registration_new", "consular_registration_renewal"
UPDATE, CERTIFICATE = "consular_registration_update", "registration_certificate"
#: The registration the update and the certificate below need.
REGISTERED = "registered by the post"

SCENARIOS = [
    # Driving-licence attestation: NARSA over REST (JWS both ways).
    Scenario("licence authentic", LICENCE,
             lambda: licence_request("authentic", serial=100001),
             {"licence_check": "authentic"}, "verified"),
    Scenario("licence forged", LICENCE,
             lambda: licence_request("not_authentic", serial=100002),
             {"licence_check": "not_authentic"}, "rejected"),
    Scenario("licence not in register", LICENCE,
             lambda: licence_request("unknown", serial=100003),
             {"licence_check": "unknown"}, "more_information_requested"),
    Scenario("NARSA outage, recovers", LICENCE,
             lambda: licence_request("authentic", serial=100004),
             {"licence_check": "authentic"}, "verified",
             faults=[("narsa", "status", {"status": 503, "count": 2})], marker=_licence),
    Scenario("NARSA down, dead letter replayed", LICENCE,
             lambda: licence_request("authentic", serial=100005),
             {"licence_check": "authentic"}, "verified",
             faults=[("narsa", "status", {"status": 503})], marker=_licence, replay=True),
    # Repatriation of remains: Health (REST; decides later and calls the hub back) and DGSN
    # (SOAP) in parallel, then Interior (SOAP).
    Scenario("cleared by all, Health by callback", REPATRIATION, repatriation_request,
             {"sanitary_clearance": "cleared", "border_notice": "cleared",
              "burial_permit": "granted"}, "agencies_cleared"),
    Scenario("contagious disease", REPATRIATION, lambda: repatriation_request(
                 cnie="BK456782", cause="cholera"),
             {"sanitary_clearance": "refused"}, "rejected"),
    Scenario("deceased's identity mismatch", REPATRIATION,
             lambda: repatriation_request(cnie="BK456780"),
             {"border_notice": "identity_mismatch"}, "more_information_requested"),
    Scenario("Interior outage, recovers", REPATRIATION,
             lambda: repatriation_request(cnie="BK456783"),
             {"sanitary_clearance": "cleared", "border_notice": "cleared",
              "burial_permit": "granted"}, "agencies_cleared",
             faults=[("interior", "soap_fault", {"count": 2})], marker=_deceased),
    # Judicial documents: Justice -> hub (SOAP, inbound), the post records the delivery, then
    # hub -> Justice (SOAP): the certificate of delivery.
    Scenario("served in person, certificate returned", JUDICIAL,
             lambda: judicial_document(_justice_reference_of(1)),
             {"document_submission": "received", "delivery_certificate": "received"},
             "certificate_returned", opens=from_justice,
             actions=(PostRecords("sent_to_post", "addressee_summoned"),
                      PostRecords("addressee_summoned", "served_in_person",
                                  _delivery("served_in_person")))),
    Scenario("refused, deemed served on the tenth day", JUDICIAL,
             lambda: judicial_document(_justice_reference_of(2)),
             {"document_submission": "received", "delivery_certificate": "received"},
             "certificate_returned", opens=from_justice,
             actions=(PostRecords("sent_to_post", "refused", _delivery("refused")),
                      DaysPass("refused", days=11))),
    Scenario("Justice outage, recovers", JUDICIAL,
             lambda: judicial_document(_justice_reference_of(3)),
             {"document_submission": "received", "delivery_certificate": "received"},
             "certificate_returned", opens=from_justice,
             faults=[("justice", "soap_fault", {"count": 2})], marker=_justice_reference,
             actions=(PostRecords("sent_to_post", "served_at_home",
                                  _delivery("served_at_home")),)),
    Scenario("Justice does not know the document", JUDICIAL,
             lambda: judicial_document(_justice_reference_of(4)),
             {"document_submission": "received", "delivery_certificate": "rejected"},
             "certificate_rejected", opens=from_justice_then_forgotten,
             actions=(PostRecords("sent_to_post", "served_in_person",
                                  _delivery("served_in_person")),)),
    # Consular registration: DGSN checks the identity (SOAP); the post registers.
    Scenario(REGISTERED, NEW, registration_request,
             {"identity_check": "confirmed"}, "registered",
             actions=(PostRecords("identity_verified", "registered"),)),
    Scenario("identity mismatch", NEW, lambda: registration_request(cnie="AB123450"),
             {"identity_check": "mismatch"}, "more_information_requested"),
    Scenario("not in the civil register", NEW, lambda: registration_request(cnie="Z12345"),
             {"identity_check": "not_found"}, "rejected"),
    Scenario("renewal, identity confirmed", RENEWAL,
             lambda: registration_request(cnie="AB123452", renewal=True),
             {"identity_check": "confirmed"}, "identity_verified"),
    Scenario("DGSN connection reset, recovers", RENEWAL,
             lambda: registration_request(cnie="AB123453", renewal=True),
             {"identity_check": "confirmed"}, "identity_verified",
             faults=[("dgsn", "reset", {"count": 1})], marker=_person_cnie),
    Scenario("renewal, not in the civil register", RENEWAL,
             lambda: registration_request(cnie="Z12346", renewal=True),
             {"identity_check": "not_found"}, "rejected"),
    # Registration update and certificate: the hub itself checks the register (no agency).
    Scenario("update of a current registration", UPDATE, registration_update_request,
             {"registration_check": "current"}, "registration_confirmed", after=(REGISTERED,)),
    Scenario("update, never registered", UPDATE,
             lambda: _stranger(registration_update_request()),
             {"registration_check": "none"}, "rejected"),
    Scenario("certificate of a current registration", CERTIFICATE, certificate_request,
             {"registration_check": "current"}, "eligible", after=(REGISTERED,)),
    Scenario("certificate, never registered", CERTIFICATE,
             lambda: _stranger(certificate_request()),
             {"registration_check": "none"}, "rejected"),
]
