"""Canonical payloads (docs/exchanges.md shapes) that draw known answers from the simulators' rules:
for connector tests, end-to-end tests, the demo and benchmarks."""
from __future__ import annotations

from typing import Any

from connectors.narsa import register


def person(cnie: str = "AB123456", **changes: Any) -> dict[str, Any]:
    return {"cnie": cnie, "last_name": "Alaoui", "first_name": "Sara",
            "birth_date": "1990-02-03", **changes}


def licence(answer: str) -> dict[str, Any]:
    return {"licence": {"number": register.licence_number(answer=answer),
                        "categories": [{"code": "B", "issued_on": "2015-06-01"}]},
            "holder": person(),
            "requesting_authority": {"name": "DGT Madrid", "country": "ES",
                                     "reference": "DGT-77812"}}


def transport(border_post: str = "CMN") -> dict[str, Any]:
    return {"expected_arrival_date": "2026-12-05", "border_post": border_post,
            "flight_number": "AT971", "transit_airports": ["MAD"],
            "destination_airport": "CMN", "receiver_name": "Youssef Alaoui"}


def deceased(cnie: str = "AB123456", cause: str = "cardiac arrest", **changes: Any
             ) -> dict[str, Any]:
    return {**person(cnie), "date_of_death": "2026-11-20",
            "place_of_death": {"city": "Madrid", "country": "ES"}, "cause_of_death": cause,
            **changes}


def certificates(non_contagion: bool = True) -> dict[str, Any]:
    found = {"death": "DOC-DEATH-1", "sealed_coffin": "DOC-COFFIN-1"}
    if non_contagion:
        found["non_contagion"] = "DOC-NC-1"
    return found


def burial(commune: str = "Casablanca") -> dict[str, Any]:
    return {"commune": commune, "province": "Casablanca-Settat", "cemetery": "Ghofrane"}


def family_contact() -> dict[str, Any]:
    return {"name": "Youssef Alaoui", "relationship": "son", "phone": "+212612345678",
            "address": {"line1": "12 rue Ibn Sina", "city": "Casablanca", "country": "MA"}}


def certificate(reference: str = "MJ-2026-000001", outcome: str = "served_in_person"
                ) -> dict[str, Any]:
    return {"justice_reference": reference,
            "court": {"name": "Tribunal de premiere instance de Rabat", "code": "TPI-RABAT"},
            "court_case_number": "2026/1201/455",
            "addressee": person(),
            "delivery": {"outcome": outcome, "date": "2026-11-25", "received_by": "Sara Alaoui"}}
