"""Canonical payloads (docs/exchanges.md shapes) that draw known answers from the simulators' rules:
for connector tests, end-to-end tests, the demo and benchmarks.

A `Sample` is one payload for one operation, with the outcome and answer data it draws. The five
first agencies build theirs with the functions below; an agency made by ``hub connector new``
keeps its samples as data, in ``connectors/<agency>/samples.yaml``, read by `agency_samples`
(its conformance test and ``hub demo`` use them, so adding one needs no Python)::

    samples:
      - operation: check_birth_record
        outcome: found
        payload: {person: {cnie: AB123456, last_name: Alaoui, ...}}
        data: {extract_number: EX-AB123456, checked_at: null}   # null: present, any value
    invalid_requests:
      - operation: check_birth_record
        payload: {person: {cnie: AB123456, birth_date: 3 Feb 1990, ...}}
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.narsa import register
from connectors.registry import agency_file
from hub.errors import ConfigurationError

#: The file of an agency's samples, in its package.
SAMPLES_FILE = "samples.yaml"


@dataclass(frozen=True)
class Sample:
    operation: str
    payload: dict[str, Any]
    #: The outcome the simulator's rules promise (None for invalid requests).
    outcome: str | None = None
    #: Test id; defaults to ``operation-outcome``.
    name: str | None = None
    #: The answer's data the rules promise, field by field (None: any value, but present).
    #: Left unset, only the outcome is checked; the conformance kit then asks that some other
    #: sample of the operation checks every field the reply mapping writes.
    data: dict[str, Any] | None = None

    @property
    def id(self) -> str:
        return self.name or f"{self.operation}-{self.outcome or 'invalid'}"


class _SampleEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    operation: str
    payload: dict[str, Any]
    outcome: str | None = None
    name: str | None = None
    data: dict[str, Any] | None = None


class _SamplesFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    samples: list[_SampleEntry] = Field(min_length=1)
    invalid_requests: list[_SampleEntry] = Field(default_factory=list)


def agency_samples(agency: str) -> tuple[list[Sample], list[Sample]]:
    """The samples and the invalid requests of ``connectors/<agency>/samples.yaml``."""
    resource = agency_file(agency, SAMPLES_FILE)
    if not resource.is_file():
        raise ConfigurationError(f"connectors/{agency}/{SAMPLES_FILE} is missing: a sample per"
                                 " outcome of every operation (docs/connectors.md)")
    try:
        parsed = _SamplesFile.model_validate(yaml.safe_load(resource.read_text("utf-8")))
    except (ValidationError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"connectors/{agency}/{SAMPLES_FILE}: {exc}") from None
    samples = [Sample(**entry.model_dump()) for entry in parsed.samples]
    for sample in samples:
        if sample.outcome is None:
            raise ConfigurationError(f"connectors/{agency}/{SAMPLES_FILE}: every sample names"
                                     f" the outcome it draws ({sample.operation})")
    return samples, [Sample(**entry.model_dump()) for entry in parsed.invalid_requests]


def has_samples(agency: str) -> bool:
    """Whether the agency keeps its samples as data (agencies made by ``hub connector new``)."""
    return agency_file(agency, SAMPLES_FILE).is_file()


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
