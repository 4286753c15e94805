"""The simulated Ministry of Health's rules for a sanitary clearance (see ``docs/exchanges.md``):

- a cause of death naming a notifiable contagious disease (`NOTIFIABLE`, in English, French or
  Spanish, accents and case ignored) is ``REFUSED`` (reason ``NOTIFIABLE_DISEASE``);
- otherwise, without a non-contagion certificate reference the answer is ``MORE_INFORMATION``
  (reason ``MISSING_CERTIFICATE``, ``missingDocuments: [nonContagion]``);
- otherwise ``CLEARED``.
"""
from __future__ import annotations

import unicodedata

NOTIFIABLE = (
    "cholera", "plague", "peste", "ebola", "smallpox", "variole", "viruela", "yellow fever",
    "fievre jaune", "fiebre amarilla", "anthrax", "charbon", "carbunco", "marburg", "lassa",
    "haemorrhagic fever", "hemorrhagic fever", "fievre hemorragique", "fiebre hemorragica",
    "mpox", "monkeypox", "typhus", "tifus",
)


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def decide(request: dict) -> tuple[str, str | None, list[str]]:
    """(result, reason, missing documents) for a ClearanceRequest."""
    cause = _fold(request["deceased"]["causeOfDeath"])
    if any(disease in cause for disease in NOTIFIABLE):
        return "REFUSED", "NOTIFIABLE_DISEASE", []
    if not (request.get("certificates") or {}).get("nonContagion"):
        return "MORE_INFORMATION", "MISSING_CERTIFICATE", ["nonContagion"]
    return "CLEARED", None, []
