"""Canonical payloads for connector tests, built from the simulators' documented rules."""
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
