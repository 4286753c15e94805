"""The consular reference guide: each service described in the applicant's language.

Built from the service definitions and their intake schemas, never written twice: the title,
summary, eligibility, fees and steps come from the definition's ``guide``; the required and
optional documents from the ``documents`` object of the intake schema (the same one that
validates the request); the statuses from the state machine. The API serves it as JSON
(``GET /api/v1/services/<name>``), the pages render the same dictionaries.

    service_guide(catalog.get("registration_certificate"), translator("nl"))["fees"]
    # {'amount': 70.0, 'currency': 'MAD', 'note': '70 dirham in sommige posten, ...'}
"""
from __future__ import annotations

from typing import Any

from hub.web.forms import form_fields
from hub.i18n.translate import Translator
from hub.services import ServiceDefinition


def service_title(definition: ServiceDefinition, t: Translator) -> str:
    return t(definition.guide.title) if definition.guide else definition.name


def service_summary(definition: ServiceDefinition, t: Translator) -> dict[str, Any]:
    guide = definition.guide
    return {"name": definition.name, "version": definition.version,
            "title": service_title(definition, t),
            "summary": t(guide.summary) if guide else None,
            "reference_prefix": definition.reference_prefix}


def documents(definition: ServiceDefinition, t: Translator) -> list[dict[str, Any]]:
    """The documents of the intake schema: always required ones first, then the others."""
    root = form_fields(definition.intake_schema)
    group = next((c for c in root.children if c.name == "documents"), None)
    if group is None:
        return []
    found = [{"field": f.path, "title": t(f.title) if f.title else f.name,
              "description": t(f.description) if f.description else None,
              "required": f.required} for f in group.children]
    return sorted(found, key=lambda d: not d["required"])


def service_guide(definition: ServiceDefinition, t: Translator) -> dict[str, Any]:
    guide = definition.guide
    out: dict[str, Any] = {**service_summary(definition, t), "language": t.language,
                           "direction": t.direction,
                           "documents": documents(definition, t),
                           "statuses": [{"code": name, "label": t.status(name),
                                         "final": info.final}
                                        for name, info in definition.states.items()]}
    if guide is not None:
        out.update({
            "who": t(guide.who),
            "eligibility": [t(line) for line in guide.eligibility],
            "fees": {"amount": guide.fees.amount, "currency": guide.fees.currency,
                     "note": t(guide.fees.note) if guide.fees.note else None},
            "steps": [t(line) for line in guide.steps],
            "appointment": guide.appointment,
        })
    return out
