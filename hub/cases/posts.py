"""Consular posts and their districts: which post covers an address.

The list of posts is ``hub/data/consulates.csv`` (code, city, country, timezone, and the city's
name in each of the seven languages, ``city_<lang>``). A post's code starts with the ISO 3166
country code of its country (``ES-MAD``); the country's name in a language comes from the CLDR
data Babel ships, so a page never shows a post as a bare code::

    >>> get_post("ES-SVQ").name("fr")
    'Séville (Espagne)'
 An address is covered by the
post of the same city when there is one, otherwise by the country's first listed post (its
general consulate for the rest of the country); an address in a country without a post goes to
the central directorate (``None``), which forwards by hand.

    >>> post_for_address("ES", "Girona").code
    'ES-GIR'
    >>> post_for_address("ES", "Toledo").code
    'ES-MAD'
"""
from __future__ import annotations

import csv
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

from babel import Locale


@dataclass(frozen=True)
class Post:
    code: str
    city: str
    country: str
    country_code: str
    timezone: str
    #: The city's name per language (``{"ar": "إشبيلية", "fr": "Séville", ...}``).
    cities: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def city_in(self, language: str) -> str:
        return self.cities.get(language) or self.city

    def country_in(self, language: str) -> str:
        return country_name(self.country_code, language) or self.country

    def name(self, language: str) -> str:
        """``City (Country)`` in ``language``: how pages name the post."""
        return f"{self.city_in(language)} ({self.country_in(language)})"


@lru_cache(maxsize=1024)
def country_name(code: str, language: str) -> str | None:
    """The name of the country with ISO 3166 ``code`` in ``language`` (CLDR), if known."""
    try:
        return Locale.parse(language).territories.get(code.upper())
    except (ValueError, TypeError):
        return None


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()


@lru_cache(maxsize=1)
def all_posts() -> tuple[Post, ...]:
    text = (resources.files("hub") / "data" / "consulates.csv").read_text("utf-8")
    return tuple(Post(code=row["code"], city=row["city"], country=row["country"],
                      country_code=row["code"].split("-")[0], timezone=row["timezone"],
                      cities={key.removeprefix("city_"): value for key, value in row.items()
                              if key.startswith("city_") and value})
                 for row in csv.DictReader(text.splitlines()))


def get_post(code: str) -> Post | None:
    return next((p for p in all_posts() if p.code == code), None)


def post_for_address(country_code: str, city: str) -> Post | None:
    """The post whose district covers ``city`` in ``country_code`` (None: central directorate)."""
    in_country = [p for p in all_posts() if p.country_code == country_code.upper()]
    if not in_country:
        return None
    wanted = _fold(city)
    for post in in_country:
        # The city as the address names it, in any of the languages (Sevilla, Séville).
        if wanted in {_fold(post.city), *map(_fold, post.cities.values())}:
            return post
    return in_country[0]
