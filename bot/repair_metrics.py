"""`mainline_repairs_total`: the reconciler's repairs of what runs (a replica replaced, a stray
removed, a load balancer restarted), counted from the event log at scrape time, so the web
process shows what the worker repaired."""

from __future__ import annotations

from prometheus_client.core import CounterMetricFamily
from sqlalchemy import func, select

from bot.infra.db.models import DeployEventRow

REPAIR = "repair"


class RepairCollector:
    def __init__(self, store):
        self.store = store

    def collect(self):
        family = CounterMetricFamily("mainline_repairs", "Repairs the reconciler made to keep what runs equal to "
                                     "the live release", labels=["service", "environment"])
        with self.store.session() as s:
            rows = s.execute(select(DeployEventRow.service, DeployEventRow.environment, func.count())
                             .where(DeployEventRow.kind == REPAIR)
                             .group_by(DeployEventRow.service, DeployEventRow.environment)).all()
        for service, environment, count in rows:
            family.add_metric([service, environment], float(count))
        yield family
