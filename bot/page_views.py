"""What the stack page and the deploy page show, gathered from the store and the local git mirror.
No function here calls GitHub or fetches: a page view reads what webhooks and the worker recorded."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta

from bot.config import DeployConfig
from bot.domain import DeployState
from bot.infra.db.pull_requests import PullRequests

log = logging.getLogger("mainline.pages")

WAITING = [DeployState.QUEUED.value] + [s.value for s in DeployState if s.in_flight]
# GitHub's merge commit ("Merge pull request #12 from …") and squash merge ("Title (#12)").
PULL_IN_SUBJECT = re.compile(r"^Merge pull request #(\d{1,9}) |\(#(\d{1,9})\)$")
UNDEPLOYED_MAX = 50
BAD_STATES = {"failed", "reverted", "rolled_back", "rolling_back", "bisecting", "reverting"}


def recorded_config(svc) -> DeployConfig | None:
    """The production config recorded with the service's last request (no git, no network)."""
    if not svc.config_text:
        return None
    try:
        return DeployConfig.model_validate_json(svc.config_text)
    except ValueError:
        return None


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.removesuffix("Z"))
    except ValueError:
        return None


def duration(start: str | None, end: str | None) -> str:
    """`1m 05s`, `2h 03m`, or "" when either end is unknown."""
    a, b = parse_time(start), parse_time(end)
    if a is None or b is None:
        return ""
    seconds = max(0, int((b - a).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def seconds_text(seconds: float | None) -> str:
    """A DORA figure in seconds as a person reads it; "—" when there is no data."""
    if seconds is None:
        return "—"
    start = datetime(2000, 1, 1)
    return duration(start.isoformat(), (start + timedelta(seconds=float(seconds))).isoformat())


def pull_of(subject: str) -> int | None:
    match = PULL_IN_SUBJECT.search(subject or "")
    return int(match.group(1) or match.group(2)) if match else None


# -- the stack page ------------------------------------------------------------------------------


def stack_view(pipeline, service: str) -> dict:
    """Everything the stack page shows for `service`, one entry per environment."""
    svc = pipeline.store.service(service)  # NotFoundError: the page answers 404
    config = recorded_config(svc)
    recent = pipeline.deploys(service, limit=40)
    pulls = PullRequests(pipeline.store)
    environments = []
    for status in pipeline.status(service):
        env = status["environment"]
        queue = pipeline.store.deploys(svc.id, env, states=WAITING, limit=UNDEPLOYED_MAX)
        commits = undeployed(pipeline, svc, config, status, queue) if follows_branch(config, env) else []
        numbers = {c["pull"] for c in commits if c["pull"]} | {n for d in queue for n in d.pull_numbers or ()}
        known = pulls.get(svc.repo, numbers)
        for commit in commits:
            stored = known.get(commit["pull"]) if commit["pull"] else None
            commit["title"] = stored.title if stored else commit["subject"]
            commit["author"] = stored.author if stored else commit["author"]
        environments.append({
            **status,
            "commits": commits,
            "queue_rows": [{"id": d.id, "sha": d.sha, "state": d.state, "blocked_by": d.blocked_by,
                            "pulls": [(n, known[n].title if n in known else "") for n in d.pull_numbers or ()]}
                           for d in queue],
            "recent": [with_duration(d) for d in recent if d["environment"] == env][:10],
            "keys": four_keys(pipeline.store, service, env),
            "chart": chart(daily_series(pipeline.store, service, env)),
            "deployers": list(config.environments[env].deployers) if config and env in config.environments else [],
        })
    return {"service": svc.name, "repo": svc.repo, "branch": svc.branch, "environments": environments}


def follows_branch(config: DeployConfig | None, env: str) -> bool:
    """Environments fed by the production branch; the others take other branches."""
    if config is None or env not in config.environments:
        return True
    branches = config.environments[env].branches
    return not branches or branches == [config.branch]


def undeployed(pipeline, svc, config, status: dict, queue: list) -> list[dict]:
    """Commits on the production branch after the live one, newest first, each with the deploy
    that will carry it and why that deploy waits. From the local mirror; from the queue alone
    when the mirror does not hold them yet."""
    live = (status.get("live") or {}).get("sha")
    head = svc.head_sha
    if not head or head == live:
        return []
    reader = getattr(pipeline.w.git, "local_log", None)
    try:
        log_rows = reader(svc.clone_url, live, head, UNDEPLOYED_MAX) if reader else None
    except Exception as exc:  # a page shows less rather than fail
        log.warning("pages: could not read %s's commits locally: %s", svc.repo, exc)
        log_rows = None
    if log_rows is None:
        log_rows = [{"sha": d.sha, "author": "", "at": "", "subject": ""} for d in queue]
    by_sha = {d.sha: d for d in queue}
    commits, carrier = [], None
    # Oldest first: a commit waits on the first queued deploy at or after it (coalescing ships it there).
    for row in reversed(log_rows):
        commits.append({**row, "pull": pull_of(row["subject"]), "deploy": None})
    for commit in reversed(commits):  # newest first: the nearest newer deploy carries older commits
        carrier = by_sha.get(commit["sha"], carrier)
        if carrier is not None:
            commit["deploy"] = {"id": carrier.id, "state": carrier.state, "blocked_by": carrier.blocked_by,
                                "own": carrier.sha == commit["sha"]}
    for commit in commits:
        if commit["pull"] is None and by_sha.get(commit["sha"]) and by_sha[commit["sha"]].pull_numbers:
            commit["pull"] = by_sha[commit["sha"]].pull_numbers[0]
    return list(reversed(commits))


def with_duration(deploy: dict) -> dict:
    return {**deploy, "duration": duration(deploy.get("started_at") or deploy.get("created_at"),
                                           deploy.get("finished_at"))}


# -- the four keys (K1's bot/dora.py, when it is there) -------------------------------------------


def four_keys(store, service: str, environment: str) -> list[dict]:
    try:
        from bot import dora
    except ImportError:
        return []
    try:
        return [rows[0] for rows in (dora.four_keys(store, service, environment, days=d) for d in (7, 30, 90)) if rows]
    except Exception as exc:  # the keys are extra; the page stands without them
        log.warning("pages: four keys of %s/%s unavailable: %s", service, environment, exc)
        return []


def daily_series(store, service: str, environment: str) -> list[dict]:
    try:
        from bot import dora

        return list(dora.daily_series(store, service, environment, days=30))
    except ImportError:
        return []
    except Exception as exc:  # the chart is extra; the page stands without it
        log.warning("pages: daily series of %s/%s unavailable: %s", service, environment, exc)
        return []


def chart(series: list[dict], width: int = 300, height: int = 48) -> dict | None:
    """Bars for an inline SVG: each day's deployments, its failures stacked on top in red."""
    if not series:
        return None
    counts = [(int(d.get("deployments") or 0), int(d.get("failures") or 0)) for d in series]
    top = max([n + bad for n, bad in counts] + [1])
    step = width / len(series)
    bars = []
    for i, (day, (n, bad)) in enumerate(zip(series, counts, strict=True)):
        h, hb = height * n / top, height * bad / top
        bars.append({"x": round(i * step, 2), "w": round(max(step - 1, 1), 2), "h": round(h, 2),
                     "y": round(height - h, 2), "hb": round(hb, 2), "yb": round(height - h - hb, 2),
                     "label": f"{day.get('day')}: {n} deployed, {bad} failed"})
    return {"width": width, "height": height, "bars": bars, "top": top,
            "total": sum(n for n, _ in counts), "failures": sum(bad for _, bad in counts)}


# -- the deploy page -----------------------------------------------------------------------------

EVIDENCE_KEYS = ("probes", "failed_probes", "requests", "errors_5xx", "error_rate", "gate", "status", "reason")


def deploy_page_view(pipeline, deploy_id: int) -> dict:
    """One deploy: its state, its timeline with evidence, its PRs and commits."""
    row = pipeline.store.deploy(deploy_id)  # NotFoundError: 404
    view = pipeline.deploy_view(row, with_events=True)
    svc = pipeline.store.service(view["service"])
    known = PullRequests(pipeline.store).get(svc.repo, view["pull_numbers"])
    events, previous = [], view["created_at"]
    for e in view["events"]:
        data = e.get("data") or {}
        events.append({**e, "since_previous": duration(previous, e["at"]),
                       "evidence": [(k, data[k]) for k in EVIDENCE_KEYS if data.get(k) not in (None, "")],
                       "extra": {k: v for k, v in data.items() if k not in EVIDENCE_KEYS and k != "last_output"},
                       "output": data.get("last_output") or ""})
        previous = e["at"]
    reader = getattr(pipeline.w.git, "local_log", None)
    commits = None
    if reader and view["previous_sha"] and view["previous_sha"] != view["sha"]:
        try:
            commits = reader(svc.clone_url, view["previous_sha"], view["sha"], UNDEPLOYED_MAX)
        except Exception:  # the page shows the deploy's own sha instead
            commits = None
    return {**view, "repo": svc.repo, "events": events, "bad": view["state"] in BAD_STATES,
            "pulls": [(n, known[n].title if n in known else "", known[n].author if n in known else "")
                      for n in view["pull_numbers"]],
            "commits": commits or [], "duration": duration(view["started_at"] or view["created_at"],
                                                           view["finished_at"]),
            "approvals": [a.gate for a in pipeline.store.pending_approvals(deploy_id)]}
