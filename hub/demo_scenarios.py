"""The demo's scenarios: one or more per service, with the answers the simulators will give.

Test data is built here from the simulators' documented rules (e.g. `connectors.narsa.register`),
so each scenario knows in advance what every agency will answer.
"""
from __future__ import annotations

from typing import Any

from connectors.narsa import register
from hub.demo import Scenario


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
    }


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
