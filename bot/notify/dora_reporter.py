"""Lead time for changes, recorded as each release goes live.

When a deploy goes live, each change it brings to the production branch (each commit on the
first-parent chain since what was live: a merged pull request, a squash, a direct push) gets a
`lead_time` event holding when its work began and how long it took to run live. bot/dora.py reads
these events in SQL; git is read once here, never at query time."""

from __future__ import annotations

import logging
import subprocess
from datetime import UTC, datetime

from bot.errors import MainlineError
from bot.ports import DeployNotice

log = logging.getLogger("mainline.dora")

LEAD_TIME = "lead_time"
# A first deploy, or one after a long pause, is bounded: a page of events per deploy at most.
MAX_CHANGES = 100

Graph = list[tuple[str, tuple[str, ...], int]]


def change_starts(graph: Graph, tip: str, only_tip: bool = False) -> list[tuple[str, int]]:
    """(sha, UNIX time its work began) of each first-parent change in `graph` up to `tip`,
    oldest first. A change began at the earliest author time among the commits it brought in:
    for a merge, its pull request's commits (reachable from its second parent, not from the
    branch before it); for a squash or a direct push, itself. `only_tip`: just `tip`'s change
    (a first release, whose graph is the whole history)."""
    nodes = {sha: (parents, at) for sha, parents, at in graph}
    chain = []
    sha: str | None = tip
    while sha in nodes:
        chain.append(sha)
        parents = nodes[sha][0]
        sha = parents[0] if parents else None
    if only_tip:
        chain = chain[:1]
    if not chain:
        return []
    # Processed oldest first, `claimed` is everything the branch held before each change.
    oldest_parents = nodes[chain[-1]][0]
    claimed = _reach(nodes, list(oldest_parents[:1]), set())
    starts = []
    for change in reversed(chain):
        brought = _reach(nodes, list(nodes[change][0][1:]), claimed) | {change}
        starts.append((change, min(nodes[c][1] for c in brought)))
        claimed |= brought
    return starts


def _reach(nodes: dict, starts: list[str], stop: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = [s for s in starts if s in nodes and s not in stop]
    while todo:
        sha = todo.pop()
        if sha in seen:
            continue
        seen.add(sha)
        todo += [p for p in nodes[sha][0] if p in nodes and p not in stop and p not in seen]
    return seen


class LeadTimeReporter:
    """bot.ports.Reporter: on a deploy's `live` transition, one `lead_time` event per change it
    shipped. Once per deploy (a deploy that goes live again adds nothing); never raises."""

    def __init__(self, store, git):
        self.store, self.git = store, git

    def notify(self, notice: DeployNotice) -> None:
        if notice.kind != "transition" or notice.state != "live" or not notice.deploy_id:
            return
        if not hasattr(self.git, "commit_graph"):
            return  # a Git port that cannot read history: no lead times
        try:
            self._record(notice)
        except (MainlineError, subprocess.SubprocessError) as exc:
            log.warning("no lead times for %s@%s: %s", notice.service, notice.sha[:12], exc)

    def _record(self, notice: DeployNotice) -> None:
        events = self.store.events(notice.deploy_id)
        if any(e.kind == LEAD_TIME for e in events):
            return
        lives = [e.at for e in events if e.kind == "live"]
        if not lives:
            return
        live_at = lives[-1]
        deploy = self.store.deploy(notice.deploy_id)
        svc = self.store.service(notice.service)
        if deploy.previous_sha == deploy.sha:
            return  # the same sha again: nothing new shipped
        base = deploy.previous_sha
        graph = self.git.commit_graph(svc.clone_url, base, deploy.sha)
        for sha, started in change_starts(graph, deploy.sha, only_tip=base is None)[-MAX_CHANGES:]:
            began = datetime.fromtimestamp(started, UTC).replace(tzinfo=None)
            seconds = max(0.0, (live_at - began).total_seconds())
            self.store.add_event(deploy.id, notice.service, notice.environment, LEAD_TIME,
                                 f"{sha[:12]}: first commit {began.isoformat(timespec='seconds')}Z, live "
                                 f"{_duration(seconds)} later",
                                 data={"sha": sha, "first_commit_at": began.isoformat() + "Z",
                                       "live_at": live_at.isoformat() + "Z", "seconds": seconds})


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
