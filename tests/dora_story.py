"""A delivery history with hand-computed DORA keys, written into a store the way the pipeline
writes it (create_deploy, add_event), each record at a chosen time. Shared by the SQLite, the
PostgreSQL and the API tests of bot/dora.py."""

from __future__ import annotations

from datetime import datetime, timedelta
from unittest import mock

NOW = datetime(2026, 12, 31, 12, 0, 0)
DAY = timedelta(days=1)


def at(when: datetime):
    """Every record the store makes inside this block is stamped `when`."""
    return mock.patch("bot.infra.db.store.utcnow", return_value=when)


class History:
    def __init__(self, store):
        self.store = store
        self._shas = iter(f"{i:040x}" for i in range(1, 10_000))

    def service(self, name: str, *envs: str):
        svc = self.store.upsert_service(name, f"acme/{name}", f"/nowhere/{name}.git", "master")
        for env in envs:
            self.store.environment(svc.id, env)
        return svc

    def deploy(self, svc, env: str, when: datetime, reason: str | None = None):
        with at(when):
            row, _ = self.store.create_deploy(svc.id, env, next(self._shas), "refs/heads/master", "github")
        if reason:
            self.store.update_deploy(row.id, None, reason=reason)
        return row

    def event(self, deploy, kind: str, when: datetime, **data) -> None:
        svc = next(s for s in self.store.services() if s.id == deploy.service_id)
        with at(when):
            self.store.add_event(deploy.id, svc.name, deploy.environment, kind, f"{kind} at {when}", data=data)

    def live(self, svc, env: str, when: datetime, *leads: float):
        """A deploy through its forward path, live at `when`, shipping changes with `leads`."""
        d = self.deploy(svc, env, when - timedelta(minutes=5))
        for offset, kind in ((300, "gating"), (240, "building"), (120, "rolling_out"), (60, "verifying")):
            self.event(d, kind, when - timedelta(seconds=offset))
        self.event(d, "live", when)
        for seconds in leads:
            self.event(d, "lead_time", when, seconds=seconds, sha=d.sha)
        return d

    def bad(self, svc, env: str, found: datetime, restored_after: float | None, reason="verification failed"):
        """A release judged bad at `found` (two rolling_back events, as the pipeline writes them),
        rolled back `restored_after` seconds later (or never, when None) and reverted."""
        d = self.deploy(svc, env, found - timedelta(minutes=5), reason=reason)
        self.event(d, "rolling_out", found - timedelta(seconds=120))
        self.event(d, "verifying", found - timedelta(seconds=60))
        self.event(d, "rolling_back", found)
        self.event(d, "rolling_back", found + timedelta(seconds=5))
        if restored_after is not None:
            self.event(d, "rolled_back", found + timedelta(seconds=restored_after))
            self.event(d, "reverting", found + timedelta(seconds=restored_after + 1))
            self.event(d, "reverted", found + timedelta(seconds=restored_after + 2))
        else:
            self.event(d, "failed", found + timedelta(seconds=30))
        return d


def play(store) -> History:
    """web/production over 90 days, api/production, web/staging empty; see EXPECTED."""
    h = History(store)
    web = h.service("web", "production", "staging")
    api = h.service("api", "production")
    h.live(web, "production", NOW - 60 * DAY)                        # only in the 90-day window
    h.live(web, "production", NOW - 20 * DAY, 3600, 7200)
    h.live(web, "production", NOW - 10 * DAY, 1800)
    h.bad(web, "production", NOW - 5 * DAY, restored_after=300)      # v3: rolled back after 5 min
    h.live(web, "production", NOW - 5 * DAY + timedelta(seconds=600), 60)  # its revert goes live
    five = h.live(web, "production", NOW - 2 * DAY)
    # A person rolls the live release back a day later; production is good again 2 min after.
    h.event(five, "rolling_back", NOW - DAY)
    h.event(five, "rolled_back", NOW - DAY + timedelta(seconds=120))
    # Infrastructure failed the rollout: the previous release was put back, nothing was judged.
    h.bad(web, "production", NOW - 3 * DAY, restored_after=60, reason="infrastructure: rolling_out failed: x")
    build = h.deploy(web, "production", NOW - 4 * DAY)  # a build that failed never went out
    h.event(build, "failed", NOW - 4 * DAY)
    # api: a bad release whose rollback was refused keeps serving until a fix goes live 15 min on.
    h.bad(api, "production", NOW - 3 * DAY, restored_after=None)
    h.live(api, "production", NOW - 3 * DAY + timedelta(seconds=900), 100, 200, 600)
    return h


def keys(service, environment, days, deployments, cfr, lead, ttr) -> dict:
    return {"service": service, "environment": environment, "days": days, "deployments": deployments,
            "deployment_frequency_per_day": round(deployments / days, 4), "lead_time_p50_seconds": lead,
            "change_failure_rate": cfr, "time_to_restore_p50_seconds": ttr}


# Worked by hand from play(): deploys live in the window; judged bad over (live or judged bad);
# the median lead time of the changes shipped; the median of 300 s and 120 s restores.
EXPECTED = {
    ("web", "production", 30): keys("web", "production", 30, 4, 0.4, 2700.0, 210.0),   # lead: 60 1800 3600 7200
    ("web", "production", 7): keys("web", "production", 7, 2, 0.6667, 60.0, 210.0),    # bad: v3 and the rollback
    ("web", "production", 90): keys("web", "production", 90, 5, round(2 / 6, 4), 2700.0, 210.0),
    ("web", "staging", 30): keys("web", "staging", 30, 0, None, None, None),
    ("api", "production", 30): keys("api", "production", 30, 1, 0.5, 200.0, 900.0),
}
