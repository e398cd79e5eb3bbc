"""The watchdog's figures as Prometheus gauges, read from the database at scrape time, so the web
process shows what the worker's watchdog found without sharing memory with it."""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily

from bot.domain import in_sync, utcnow


class SyncCollector:
    """`mainline_unsynced_seconds`: how long each environment's head has gone unaccounted for
    (0 when it is live, queued, in flight or held by a lock); `mainline_in_sync`: 1 or 0."""

    def __init__(self, store):
        self.store = store

    def collect(self):
        unsynced = GaugeMetricFamily("mainline_unsynced_seconds", "Seconds the production branch head has been "
                                     "neither live, queued, in flight nor held by a lock",
                                     labels=["service", "environment"])
        synced_gauge = GaugeMetricFamily("mainline_in_sync", "1 when the production branch head is live",
                                    labels=["service", "environment"])
        now = utcnow()
        for svc in self.store.services():
            for env in self.store.environments(svc.id):
                since = env.unsynced_since
                unsynced.add_metric([svc.name, env.name], (now - since).total_seconds() if since else 0.0)
                live = self.store.live_release(svc.id, env.name)
                synced = in_sync(live.sha if live else None, svc.head_sha)
                synced_gauge.add_metric([svc.name, env.name], float(synced))
        yield unsynced
        yield synced_gauge
