"""DORA's four keys per service and environment, from the event log, in SQL.

Definitions (DORA's, on Mainline's events):
- deployment frequency: deploys that reached `live` in the window, per day;
- lead time for changes: from each change's first commit to it running live (the `lead_time`
  events bot/notify/dora_reporter.py writes as a release goes live), the median;
- change failure rate: deploys judged bad (a `rolling_back` event: verification or rollout
  failed, or a person rolled a live release back) over all deploys that went out (went live or
  were judged bad). A rollback forced by infrastructure errors judges nothing and counts in neither;
- time to restore: from a bad deploy's first `rolling_back` event to a good release serving
  again (the next `rolled_back` or `live` event in that service and environment), the median.

Counts are SQL aggregates, portable between SQLite and PostgreSQL (SQLAlchemy Core, no dialect
functions). Medians are taken in Python over the durations SQL selects: a portable SQL percentile
is impractical (PostgreSQL's percentile_cont has no SQLite counterpart), and subtracting
timestamps in SQL differs per dialect (julianday() against EXTRACT(EPOCH ...))."""

from __future__ import annotations

import statistics
from datetime import date, datetime, timedelta

from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import Date, and_, distinct, func, or_, select

from bot.domain import utcnow
from bot.errors import MainlineError, NotFoundError
from bot.infra.db.models import DeployEventRow, DeployRow, EnvironmentRow, ServiceRow

WINDOWS = (7, 30, 90)
MAX_DAYS = 365
EVENTS = DeployEventRow.__table__
DEPLOYS = DeployRow.__table__
INFRASTRUCTURE = "infrastructure: "  # bot.pipeline's reason for a rollback that judged nothing

Pair = tuple[str, str]


def parse_days(text: str | None) -> int:
    """The `days` query parameter: a whole number of days, 1 to 365 (30 when absent)."""
    if text is None or text == "":
        return 30
    try:
        days = int(text)
    except ValueError:
        raise MainlineError(f"`days` must be a whole number of days from 1 to {MAX_DAYS} (7, 30 or 90)") from None
    if not 1 <= days <= MAX_DAYS:
        raise MainlineError(f"`days` must be from 1 to {MAX_DAYS} (7, 30 or 90), not {days}")
    return days


def four_keys(store, service: str | None = None, environment: str | None = None, days: int = 30, *,
              now: datetime | None = None) -> list[dict]:
    """One dict per (service, environment): the four keys over the `days` before `now`, each
    None where there is no data (no change shipped, nothing went out, nothing was restored)."""
    if not 1 <= days <= MAX_DAYS:
        raise MainlineError(f"days must be from 1 to {MAX_DAYS}")
    now = now or utcnow()
    since = now - timedelta(days=days)
    pairs = _pairs(store, service, environment)
    if not pairs:
        return []
    with store.session() as s:
        window = _window(since, now, service, environment)
        deployed = _counts(s, window, EVENTS.c.kind == "live")
        went_out = _counts(s, window, or_(EVENTS.c.kind == "live", _judged_bad()))
        failed = _counts(s, window, _judged_bad())
        leads = _lead_times(s, window)
        restores = _restore_times(s, window)
    out = []
    for pair in pairs:
        n, total = deployed.get(pair, 0), went_out.get(pair, 0)
        out.append({
            "service": pair[0], "environment": pair[1], "days": days, "deployments": n,
            "deployment_frequency_per_day": round(n / days, 4),
            "lead_time_p50_seconds": _p50(leads.get(pair)),
            "change_failure_rate": round(failed.get(pair, 0) / total, 4) if total else None,
            "time_to_restore_p50_seconds": _p50(restores.get(pair)),
        })
    return out


def daily_series(store, service: str, environment: str, days: int = 30, *,
                 now: datetime | None = None) -> list[dict]:
    """One dict per UTC day, oldest first, ending today: deploys that went live that day and
    deploys judged bad that day."""
    now = now or utcnow()
    first = now.date() - timedelta(days=days - 1)
    since = datetime.combine(first, datetime.min.time())
    _pairs(store, service, environment)  # unknown names are a 404, not an empty chart
    window = _window(since, now, service, environment)
    day = func.date(EVENTS.c.at, type_=Date)
    with store.session() as s:
        lives = s.execute(select(day, func.count(distinct(EVENTS.c.deploy_id)))
                          .where(window, EVENTS.c.kind == "live").group_by(day)).all()
        bad = _detections(window).subquery()
        bad_day = func.date(bad.c.detected, type_=Date)
        failures = s.execute(select(bad_day, func.count()).group_by(bad_day)).all()
    deployments, failed = _by_day(lives), _by_day(failures)
    series = []
    for i in range(days):
        d = first + timedelta(days=i)
        series.append({"day": d.isoformat(), "deployments": deployments.get(d, 0), "failures": failed.get(d, 0)})
    return series


# -- the queries ------------------------------------------------------------------------------------


def _window(since: datetime, now: datetime, service: str | None, environment: str | None):
    clauses = [EVENTS.c.at >= since, EVENTS.c.at <= now, EVENTS.c.deploy_id.is_not(None)]
    if service is not None:
        clauses.append(EVENTS.c.service == service)
    if environment is not None:
        clauses.append(EVENTS.c.environment == environment)
    return and_(*clauses)


def _judged_bad():
    """A `rolling_back` event of a deploy whose rollback was not forced by infrastructure errors."""
    judged = select(DEPLOYS.c.id).where(or_(DEPLOYS.c.reason.is_(None),
                                            DEPLOYS.c.reason.not_like(INFRASTRUCTURE + "%")))
    return and_(EVENTS.c.kind == "rolling_back", EVENTS.c.deploy_id.in_(judged))


def _counts(s, window, which) -> dict[Pair, int]:
    """Distinct deploys per (service, environment) with an event matching `which` in the window."""
    query = (select(EVENTS.c.service, EVENTS.c.environment, func.count(distinct(EVENTS.c.deploy_id)))
             .where(window, which).group_by(EVENTS.c.service, EVENTS.c.environment))
    return {(svc, env): n for svc, env, n in s.execute(query)}


def _lead_times(s, window) -> dict[Pair, list[float]]:
    seconds = EVENTS.c.data["seconds"].as_float()
    query = select(EVENTS.c.service, EVENTS.c.environment, seconds).where(window, EVENTS.c.kind == "lead_time")
    out: dict[Pair, list[float]] = {}
    for svc, env, value in s.execute(query):
        if value is not None:
            out.setdefault((svc, env), []).append(float(value))
    return out


def _detections(window):
    """Each deploy judged bad in the window, with when it was first found bad."""
    return (select(EVENTS.c.service, EVENTS.c.environment, EVENTS.c.deploy_id,
                   func.min(EVENTS.c.at).label("detected"))
            .where(window, _judged_bad())
            .group_by(EVENTS.c.service, EVENTS.c.environment, EVENTS.c.deploy_id))


def _restore_times(s, window) -> dict[Pair, list[float]]:
    """Seconds from each detection to the first good release serving after it (a rollback that
    verified, or any deploy going live); detections not yet restored are left out."""
    bad = _detections(window).subquery()
    later = EVENTS.alias("later")
    restored = (select(func.min(later.c.at))
                .where(later.c.service == bad.c.service, later.c.environment == bad.c.environment,
                       later.c.kind.in_(("rolled_back", "live")), later.c.at > bad.c.detected)
                .scalar_subquery())
    query = select(bad.c.service, bad.c.environment, bad.c.detected, restored.label("restored"))
    out: dict[Pair, list[float]] = {}
    for svc, env, detected, back in s.execute(query):
        if back is not None:
            out.setdefault((svc, env), []).append((_as_datetime(back) - _as_datetime(detected)).total_seconds())
    return out


def _pairs(store, service: str | None, environment: str | None) -> list[Pair]:
    """The (service, environment) pairs asked for, sorted; NotFoundError for an unknown name."""
    query = (select(ServiceRow.name, EnvironmentRow.name)
             .join(EnvironmentRow, EnvironmentRow.service_id == ServiceRow.id)
             .order_by(ServiceRow.name, EnvironmentRow.name))
    if service is not None:
        query = query.where(ServiceRow.name == service)
    with store.session() as s:
        pairs: list[Pair] = [(svc, env) for svc, env in s.execute(query)]
        unknown = (service is not None and not pairs
                   and s.scalar(select(ServiceRow.id).where(ServiceRow.name == service)) is None)
        if unknown:
            raise NotFoundError(f"unknown service {service!r}")
    if environment is not None:
        pairs = [p for p in pairs if p[1] == environment]
        if not pairs and service is not None:
            raise NotFoundError(f"{service} has no environment {environment!r}")
    return pairs


def _p50(values: list[float] | None) -> float | None:
    return round(statistics.median(values), 3) if values else None


def _as_datetime(value) -> datetime:
    # A scalar subquery's MIN() comes back typed on PostgreSQL, and as text on some SQLite builds.
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _by_day(rows) -> dict[date, int]:
    out: dict[date, int] = {}
    for day, n in rows:
        key = day if isinstance(day, date) else date.fromisoformat(str(day)[:10])
        out[key] = out.get(key, 0) + n
    return out


GAUGES = (
    ("deployment_frequency_per_day", "Deploys that went live per day over the window"),
    ("lead_time_p50_seconds", "Median seconds from a change's first commit to it running live"),
    ("change_failure_rate", "Deploys rolled back or reverted over all deploys that went out"),
    ("time_to_restore_p50_seconds", "Median seconds from a bad release found to a good one serving"),
)


class DoraCollector:
    """DORA's four keys as Prometheus gauges `mainline_dora_<key>{service, environment, days}`
    for 7, 30 and 90 days, read from the database at scrape time (so the web process shows
    what the worker recorded). A key without data is left out rather than shown as 0."""

    def __init__(self, store):
        self.store = store

    def collect(self):
        families = {key: GaugeMetricFamily(f"mainline_dora_{key}", help_text,
                                           labels=["service", "environment", "days"])
                    for key, help_text in GAUGES}
        now = utcnow()
        for days in WINDOWS:
            for row in four_keys(self.store, days=days, now=now):
                for key, family in families.items():
                    if row[key] is not None:
                        family.add_metric([row["service"], row["environment"], str(days)], float(row[key]))
        yield from families.values()
