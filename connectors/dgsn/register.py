"""The simulated DGSN registers: who is known, and which border posts receive remains.

Rules (the answers tests and the demo rely on, documented in ``docs/exchanges.md``), applied to
the person's CNIE, or to the passport number when there is no CNIE:

- a number starting with ``Z`` is not in the register: ``NOT_FOUND``;
- a number whose last digit is ``0`` belongs to someone else: ``MISMATCH`` (the names differ);
- otherwise the identity is ``CONFIRMED``.

A border notice repeats the identity rules (``IDENTITY_MISMATCH`` for not found or mismatch),
then refuses a border post that is not a Moroccan entry point (`ENTRY_POINTS`, by code or name).
"""
from __future__ import annotations

import unicodedata

#: Moroccan entry points for remains: airports (IATA code), ports and land crossings.
ENTRY_POINTS: dict[str, str] = {
    "CMN": "Casablanca Mohammed V airport",
    "RBA": "Rabat-Sale airport",
    "RAK": "Marrakech Menara airport",
    "FEZ": "Fes-Saiss airport",
    "TNG": "Tanger Ibn Battouta airport",
    "AGA": "Agadir Al Massira airport",
    "OUD": "Oujda Angads airport",
    "NDR": "Nador Al Aroui airport",
    "AHU": "Al Hoceima Cherif Al Idrissi airport",
    "TTU": "Tetouan Sania Ramel airport",
    "OZZ": "Ouarzazate airport",
    "EUN": "Laayoune Hassan I airport",
    "VIL": "Dakhla airport",
    "PORT-TANGER-MED": "Port of Tanger Med",
    "PORT-TANGER-VILLE": "Port of Tanger Ville",
    "PORT-NADOR": "Port of Nador Beni Ansar",
    "PORT-CASABLANCA": "Port of Casablanca",
    "BAB-SEBTA": "Bab Sebta crossing",
    "BAB-MELILIA": "Bab Melilia crossing",
}


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()


_KNOWN = {_fold(code) for code in ENTRY_POINTS} | {_fold(name) for name in ENTRY_POINTS.values()}


def is_entry_point(border_post: str) -> bool:
    return _fold(border_post) in _KNOWN


def identity(person: dict) -> tuple[str, list[str]]:
    """(result, mismatched fields) for a person as the register sees them."""
    number = str(person.get("cnie") or person.get("passportNumber") or "").upper()
    if not number or number.startswith("Z"):
        return "NOT_FOUND", []
    if number[-1] == "0":
        return "MISMATCH", ["lastName", "firstName"]
    return "CONFIRMED", []
