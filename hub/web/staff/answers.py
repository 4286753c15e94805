"""What a case keeps of its agencies' answers, as the staff case page shows it.

A route step may keep fields of its agency's answer in the case (``keep:`` in the service
definition, stored under ``agency_answers.<step>`` of the case data: see
`hub.services.ANSWERS_KEY`). Staff who may read the case's contents see them in a block of their
own, one row per field, labelled by the catalogs (context ``answer``: ``msgctxt "answer"``,
``msgid "extract_number"``).

Only the answers of the current round are shown, and only for steps whose exchange of that round
has been answered: the hub writes a step's block when it applies the answer, replacing what was
there, so a value that did not come from the agency (an applicant's update starts a new round)
is never presented as the agency's.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hub.i18n.translate import Translator
from hub.services import ANSWERS_KEY, ServiceDefinition


@dataclass(frozen=True)
class KeptField:
    step: str
    agency: str
    field: str
    label: str
    value: Any


def kept_answers(definition: ServiceDefinition, detail: dict[str, Any], t: Translator
                 ) -> list[KeptField]:
    """The kept answer fields of a case (``detail`` as `hub.cases.staff.StaffDesk.case` gives
    it, with contents), in route order."""
    if definition.route is None or not detail.get("contents"):
        return []
    kept = (detail.get("data") or {}).get(ANSWERS_KEY) or {}
    answered = {e["step"] for e in detail.get("exchanges", ())
                if e["round"] == detail.get("round") and e["status"] == "answered"}
    rows = []
    for step in definition.route.steps:
        if not step.keep or step.name not in answered:
            continue
        values = kept.get(step.name) or {}
        rows += [KeptField(step.name, step.agency, name, t.pgettext("answer", name),
                           values[name]) for name in step.keep if name in values]
    return rows


def without_kept_answers(data: dict[str, Any]) -> dict[str, Any]:
    """The request as the applicant made it: the case data without the kept answers (shown
    in their own block)."""
    return {key: value for key, value in data.items() if key != ANSWERS_KEY}
