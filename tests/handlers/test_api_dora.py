"""GET /api/dora and the mainline_dora_* gauges on /metrics: who may read them, what a bad query
gets, and the four keys of a known history."""

from __future__ import annotations

import pytest

from bot.app import create_app
from tests.conftest import authed
from tests.dora_story import EXPECTED, NOW, play

KEYS = {"service", "environment", "days", "deployments", "deployment_frequency_per_day", "lead_time_p50_seconds",
        "change_failure_rate", "time_to_restore_p50_seconds"}


@pytest.fixture
def story(wired, monkeypatch):
    play(wired.store)
    monkeypatch.setattr("bot.dora.utcnow", lambda: NOW)
    return wired


def test_the_four_keys_of_each_environment_of_a_service(client, story):
    resp = authed(client, story).get("/api/dora?service=web")
    assert resp.status_code == 200
    rows = resp.get_json()
    assert all(set(row) == KEYS for row in rows)
    assert rows == [pytest.approx(EXPECTED[("web", "production", 30)]), EXPECTED[("web", "staging", 30)]]


@pytest.mark.parametrize("days", [7, 30, 90])
def test_one_environment_over_7_30_or_90_days(client, story, days):
    resp = authed(client, story).get(f"/api/dora?service=web&environment=production&days={days}")
    assert resp.status_code == 200
    assert resp.get_json() == [pytest.approx(EXPECTED[("web", "production", days)])]


def test_any_window_from_1_to_365_days(client, story):
    reader = authed(client, story)
    assert reader.get("/api/dora?service=api&days=365").get_json()[0]["days"] == 365
    assert reader.get("/api/dora?service=api&days=1").get_json()[0]["deployments"] == 0


@pytest.mark.parametrize("query, status, error", [
    ("", 400, "the `service` query parameter is required"),
    ("?environment=production", 400, "the `service` query parameter is required"),
    ("?service=web&days=0", 400, "`days` must be from 1 to 365 (7, 30 or 90), not 0"),
    ("?service=web&days=366", 400, "`days` must be from 1 to 365 (7, 30 or 90), not 366"),
    ("?service=web&days=week", 400, "`days` must be a whole number of days from 1 to 365 (7, 30 or 90)"),
    ("?service=nope", 404, "unknown service 'nope'"),
    ("?service=web&environment=qa", 404, "web has no environment 'qa'"),
])
def test_a_bad_query_gets_a_json_reason(client, story, query, status, error):
    resp = authed(client, story).get("/api/dora" + query)
    assert (resp.status_code, resp.get_json()) == (status, {"error": error})


def test_the_four_keys_need_a_sign_in_or_a_token(client, story):
    resp = client.get("/api/dora?service=web")
    assert resp.status_code == 401 and "Authorization: Bearer" in resp.get_json()["error"]
    assert client.get("/api/dora?service=web", headers={"Authorization": "Bearer mlt_wrong"}).status_code == 401


def test_public_read_opens_the_four_keys_as_it_opens_the_services(settings, story):
    anyone = create_app(settings.model_copy(update={"public_read": True}), story).test_client()
    assert anyone.get("/api/dora?service=web").status_code == 200
    assert anyone.get("/api/services").status_code == 200


def test_the_four_keys_are_prometheus_gauges_per_window(client, story):
    metrics = authed(client, story).get("/metrics").get_data(as_text=True)
    web = 'environment="production",service="web"'
    assert f'mainline_dora_deployment_frequency_per_day{{days="30",{web}}} 0.1333' in metrics
    assert f'mainline_dora_deployment_frequency_per_day{{days="7",{web}}} 0.2857' in metrics
    assert f'mainline_dora_lead_time_p50_seconds{{days="30",{web}}} 2700.0' in metrics
    assert f'mainline_dora_change_failure_rate{{days="90",{web}}} 0.3333' in metrics
    assert f'mainline_dora_time_to_restore_p50_seconds{{days="7",{web}}} 210.0' in metrics
    # Staging shipped nothing: a frequency of 0, and no rate or median made up for it.
    assert 'mainline_dora_deployment_frequency_per_day{days="30",environment="staging",service="web"} 0.0' in metrics
    assert 'mainline_dora_change_failure_rate{days="30",environment="staging"' not in metrics
