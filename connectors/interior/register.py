"""The simulated Interior register of communes: a burial permit is granted in a Moroccan commune
it knows (`COMMUNES`, accents and case ignored) and refused anywhere else."""
from __future__ import annotations

import unicodedata

COMMUNES = (
    "Agadir", "Al Hoceima", "Azrou", "Beni Mellal", "Berkane", "Berrechid", "Casablanca",
    "Chefchaouen", "Dakhla", "El Jadida", "Errachidia", "Essaouira", "Fes", "Figuig", "Guelmim",
    "Ifrane", "Kenitra", "Khemisset", "Khouribga", "Ksar El Kebir", "Laayoune", "Larache",
    "Marrakech", "Meknes", "Midelt", "Mohammedia", "Nador", "Ouarzazate", "Oujda", "Rabat",
    "Safi", "Sale", "Sefrou", "Settat", "Tanger", "Taourirt", "Taroudant", "Taza", "Temara",
    "Tetouan", "Tinghir", "Tiznit", "Zagora",
)


def fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c))
                    .casefold().replace("-", " ").split())


_KNOWN = {fold(c) for c in COMMUNES}


def is_commune(name: str) -> bool:
    return fold(name) in _KNOWN
