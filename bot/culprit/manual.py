"""A search a person asks for (`mainline bisect`, `/bisect` in Slack) on a release that was
reverted in full: the search runs in the worker like the automatic one, and on a culprit the
commits that did not break production are put back on the branch (cherry-picked, oldest first),
then ship through the normal path. When the search stops, nothing changes."""

from __future__ import annotations

import time
import uuid
from typing import Any

from bot.culprit.plan import _named, _round_lines, culprit_plan
from bot.culprit.search import Outcome
from bot.domain import DeployRequest, DeployState
from bot.engine.transitions import Transition
from bot.errors import MainlineError, NotFoundError

S = DeployState
REQUESTED = "bisect_requested"
# Events that end a search's request: once one of these follows it, the request is spent.
SPENT = ("reverting", "reverted", "culprit")
MAX_COMMITS = 256  # 8 rounds


def requested(s: Any) -> dict | None:
    """The person's request when this search was asked for by hand, else None."""
    for event in reversed(s.ctx.store.events(s.deploy.id)):
        if event.kind == REQUESTED:
            return dict(event.data or {})
        if event.kind in SPENT:
            return None
    return None


def request_bisect(pipeline: Any, service: str, environment: str, by: str, good: str | None = None,
                   bad: str | None = None) -> dict:
    """Queue a search of a release reverted in full (the newest, or the one whose sha is `bad`),
    from `good` (default: the release before it). The worker runs it."""
    ctx, store, git = pipeline.ctx, pipeline.ctx.store, pipeline.ctx.w.git
    svc = store.service(service)
    config = ctx.service_config(service)
    if environment not in config.environments:
        raise NotFoundError(f"{service} has no environment {environment!r}")
    reverted = list(store.deploys(svc.id, environment, states=[S.REVERTED.value], limit=50))
    bad_sha = git.resolve(svc.clone_url, bad) if bad else None
    deploy = next((d for d in reverted if bad_sha is None or d.sha == bad_sha), None)
    if deploy is None:
        raise NotFoundError(f"no release of {service} reverted in {environment}"
                            + (f" at {bad_sha[:12]}" if bad_sha else ""))
    done = next((e.data for e in reversed(store.events(deploy.id)) if e.kind == "culprit"), None)
    if done and done.get("culprit"):
        raise MainlineError(f"{deploy.sha[:12]} was already bisected: {done['culprit'][:12]} broke it")
    good_sha = git.resolve(svc.clone_url, good) if good else deploy.previous_sha
    if not good_sha or good_sha == deploy.sha or not git.is_ancestor(svc.clone_url, good_sha, deploy.sha):
        raise MainlineError(f"--good must be an earlier commit of {deploy.sha[:12]}'s history")
    count = len(git.first_parent_commits(svc.clone_url, good_sha, deploy.sha))
    if not 2 <= count <= MAX_COMMITS:
        raise MainlineError(f"{good_sha[:12]}..{deploy.sha[:12]} holds {count} commit(s): a search needs 2 to "
                            f"{MAX_COMMITS}")
    token = _lease(ctx, svc.id, service, environment)
    try:
        if store.deploys(svc.id, environment, states=[s.value for s in S if s.in_flight]):
            raise MainlineError(f"a deploy of {service} is in flight in {environment}; try again when it is done")
        pipeline.transitions.apply(deploy, token, Transition(
            S.BISECTING, f"{by} asks which of the {count} commits of {deploy.sha[:12]} broke it", by=by,
            kind=REQUESTED, data={"good": good_sha, "bad": deploy.sha, "by": by}))
    finally:
        store.release_lease(store.environment(svc.id, environment).id, token)
    ctx.enqueue_drive(service, environment)
    return {"id": deploy.id, "service": service, "environment": environment, "good": good_sha, "bad": deploy.sha,
            "commits": count}


def _lease(ctx: Any, service_id: int, service: str, environment: str) -> int:
    env = ctx.store.environment(service_id, environment)
    deadline = time.monotonic() + 10
    while (token := ctx.store.acquire_lease(env.id, f"{ctx.owner}/bisect-{uuid.uuid4().hex[:8]}",
                                            ctx.opts.lease_seconds)) is None:
        if time.monotonic() > deadline:
            raise MainlineError(f"{service} in {environment} is being driven; try again in a moment")
        time.sleep(0.1)
    return token


def manual_end(s: Any, outcome: Outcome, request: dict, builds: int) -> Transition:
    """Where a person's search leaves the release: still reverted, with the innocent commits put
    back when the culprit was found."""
    by = request.get("by") or "a person"
    if outcome.culprit is None:
        why = outcome.stopped or "no culprit"
        story = [*_round_lines(outcome.rounds), f"{why}: the release stays reverted in full"]
        return Transition(S.REVERTED, f"{by}'s search stopped: {why}; the release stays reverted in full",
                          kind="culprit", data={"culprit": None, "stopped": why, "story": story, "builds": builds})
    found = culprit_plan(s, outcome, builds=builds, closure=False)
    data = dict(found.data or {})
    ctx, service = s.ctx, s.service
    innocent = data["innocent"]
    pulls = ", ".join(f"#{n}" for n in data["innocent_pulls"]) or ", ".join(c[:12] for c in innocent)
    put = ctx.w.git.reapply(service.clone_url, service.branch, innocent,
                            f"Mainline put this back: {by}'s search found that {data['culprit'][:12]} broke "
                            f"{s.deploy.environment}, not this.")
    if put.conflicted:
        why = f"putting back {pulls} conflicts in {', '.join(put.conflict_files)}: put them back by hand"
        return Transition(S.REVERTED, f"{found.message}; {why}", kind="culprit",
                          data={**data, "story": [*data["story"], why]}, fields=found.fields)
    head = ctx.w.git.head(service.clone_url, service.branch)
    if head:
        ctx.store.set_head(service.id, head)
    back = f"put back: {pulls}"
    story = [line for line in data["story"] if not line.startswith("held back")] + [
        back + (f" as {put.sha[:12]}" if put.sha else " (already there)")]
    return Transition(S.REVERTED, f"{by}'s search: {_named(data['culprit'], data['culprit_pulls'])} broke the "
                      f"release; {back}" + (f" as {put.sha[:12]}" if put.sha else ""), kind="culprit",
                      data={**data, "story": story, "reapplied": list(put.reverted)}, fields=found.fields,
                      request=DeployRequest(service.repo, service.clone_url, f"refs/heads/{service.branch}", head,
                                            environment=s.deploy.environment, requested_by="mainline", requeue=True,
                                            pull_numbers=tuple(data["innocent_pulls"])) if head else None)
