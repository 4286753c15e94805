"""Consular posts and their districts: which post covers an address.

The list of posts is ``hub/data/consulates.csv`` (code, city, country, timezone). A post's code
starts with the ISO 3166 country code of its country (``ES-MAD``). An address is covered by the
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
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources


@dataclass(frozen=True)
class Post:
    code: str
    city: str
    country: str
    country_code: str
    timezone: str


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()


@lru_cache(maxsize=1)
def all_posts() -> tuple[Post, ...]:
    text = (resources.files("hub") / "data" / "consulates.csv").read_text("utf-8")
    return tuple(Post(code=row["code"], city=row["city"], country=row["country"],
                      country_code=row["code"].split("-")[0], timezone=row["timezone"])
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
        if _fold(post.city) == wanted:
            return post
    return in_country[0]
