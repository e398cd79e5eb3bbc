"""DORA's four keys on a real PostgreSQL: the same SQL as on SQLite, the same hand-computed values."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.dora import DoraCollector, daily_series, four_keys
from tests.dora_story import DAY, EXPECTED, NOW, play


@pytest.fixture
def store(open_store, database_url):
    store = open_store(database_url)
    store.migrate()
    assert store.engine.dialect.name == "postgresql"
    play(store)
    return store


@pytest.mark.parametrize("days", [7, 30, 90])
def test_each_key_matches_the_hand_computed_value_on_postgresql(store, days):
    expected = EXPECTED[("web", "production", days)]
    assert four_keys(store, "web", "production", days, now=NOW) == [pytest.approx(expected)]


def test_every_environment_is_listed_with_empty_ones_as_none_on_postgresql(store):
    rows = four_keys(store, now=NOW)
    assert rows == [pytest.approx(EXPECTED[(r["service"], r["environment"], 30)]) for r in rows]
    assert [(r["service"], r["environment"]) for r in rows] == [("api", "production"), ("web", "production"),
                                                               ("web", "staging")]


def test_the_daily_series_groups_by_utc_day_on_postgresql(store):
    by_day = {d["day"]: (d["deployments"], d["failures"]) for d in daily_series(store, "web", "production", 7, now=NOW)}
    assert len(by_day) == 7
    assert by_day[(NOW - 5 * DAY).date().isoformat()] == (1, 1)
    assert by_day[(NOW - DAY).date().isoformat()] == (0, 1)
    assert by_day[NOW.date().isoformat()] == (0, 0)
    assert by_day[(NOW - timedelta(days=6)).date().isoformat()] == (0, 0)


def test_the_gauges_read_postgresql_at_scrape_time(store, monkeypatch):
    monkeypatch.setattr("bot.dora.utcnow", lambda: NOW)
    families = {f.name: f for f in DoraCollector(store).collect()}
    cfr = {(s.labels["service"], s.labels["environment"], s.labels["days"]): s.value
           for s in families["mainline_dora_change_failure_rate"].samples}
    assert cfr == {("web", "production", "7"): 0.6667, ("web", "production", "30"): 0.4,
                   ("web", "production", "90"): 0.3333, ("api", "production", "7"): 0.5,
                   ("api", "production", "30"): 0.5, ("api", "production", "90"): 0.5}
