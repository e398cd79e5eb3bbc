"""The engine's `bisecting` state: once production is back on the last good release, find which
commit of the failed release broke it, and say what `reverting` reverts.

A round builds the candidate (the registry keeps images, so a commit is built once) and tries it
through the `CandidateTrial` port, judged by the same health and 5xx rules as a release. Anything
that goes wrong with the machinery (a build, Docker, the registry, git) never blames a pull
request: the search stops, and the whole release is reverted, as before bisection existed, saying
"could not bisect: <reason>"."""

from __future__ import annotations

import logging
import shutil
import uuid
from typing import Any

from bot.culprit import search
from bot.culprit.manual import manual_end, requested
from bot.culprit.plan import batch_plan, culprit_plan
from bot.culprit.search import BAD, GOOD, INCONCLUSIVE, Limits, Outcome, Round, Verdict
from bot.domain import DeployState
from bot.engine.transitions import Transition
from bot.errors import BuildError, LeaseLostError

log = logging.getLogger("mainline.culprit")
S = DeployState
# The reasons a rollback may be followed by a bisection: the release itself was judged bad.
JUDGED = ("verification failed", "rollout failed")


class CouldNotBisectError(Exception):
    """The machinery failed during a round: nothing is learnt about the candidate."""


def release_commits(s: Any, request: dict | None = None) -> list[str]:
    """The failed release's first-parent commits after the last good one (or the one a person
    named), oldest first."""
    good = (request or {}).get("good") or s.deploy.previous_sha
    if not good:
        return []
    return list(reversed(s.ctx.w.git.first_parent_commits(s.service.clone_url, good, s.deploy.sha)))


def wants_bisection(s: Any) -> bool:
    """A release judged bad that carried more than one commit."""
    if not (s.deploy.reason or "").startswith(JUDGED):
        return False
    return len(release_commits(s)) > 1


class CandidateJudge:
    """`search.Judge` for one deploy: build the candidate, try it, read the report."""

    def __init__(self, s: Any):
        self.s = s
        self.options = s.config.culprit
        self.builds = 0

    def __call__(self, sha: str) -> Verdict:
        s = self.s
        trial = s.ctx.w.trial
        target = s.config.environments[s.deploy.environment].target
        if trial is None or target != "docker":
            raise CouldNotBisectError(f"the {target} target of {s.deploy.environment} has no way to try a candidate "
                                      "beside production")
        image = self._build(sha)
        checks = tuple((c.path, c.status) for c in self.options.checks)
        weight = self.options.weight if self.options.mode == "canary" else 0
        report = trial.judge(s.plan(sha, image), checks, s.sink, weight=weight)
        evidence = {"probes": report.probes, "failed_probes": report.failed_probes, "requests": report.requests,
                    "errors_5xx": report.errors_5xx}
        if report.probes == 0:
            return Verdict(INCONCLUSIVE, report.reason or "no probe was made", evidence)
        return Verdict(GOOD if report.healthy else BAD, report.reason or "healthy through the bake", evidence)

    def _build(self, sha: str) -> str:
        ctx, service = self.s.ctx, self.s.service
        image = ctx.image(service.name, sha)
        if ctx.w.builder.image_exists(image):
            return image
        workspace = ctx.opts.state_dir / "work" / f"{service.name}-bisect-{sha[:12]}-{uuid.uuid4().hex[:6]}"
        try:
            ctx.w.git.checkout(service.clone_url, sha, workspace)
            ctx.w.builder.ensure_image(workspace, image, self.s.sink)
            self.builds += 1
        except BuildError as exc:
            # A commit in the middle of a batch may not build for reasons of its own, or of the
            # builder's; either way it says nothing about which PR broke production.
            raise CouldNotBisectError(f"building {sha[:12]} failed: {exc}") from exc
        finally:
            shutil.rmtree(workspace, ignore_errors=True)
        return image


def bisecting(s: Any) -> Transition:
    request = requested(s)  # a person's search of a release reverted in full
    commits = release_commits(s, request)
    options = s.config.culprit
    judge = CandidateJudge(s)
    limits = Limits(max_rounds=options.max_rounds, budget=options.budget_seconds())

    def told(done: Round, verdict: Verdict) -> None:
        what = "confirmed" if done.confirm else "judged"
        s.notices.event(s.deploy, "bisect", f"round {done.round}: {done.sha[:12]} {what} {done.verdict}: "
                        f"{verdict.reason}", data={**done.event(), "confirm": done.confirm, "reason": verdict.reason,
                                                  **verdict.evidence})

    try:
        outcome = search.run(commits, judge, limits, on_round=told)
    except LeaseLostError:
        raise
    except Exception as exc:
        log.warning("%s: could not bisect: %s", s.deploy.sha[:12], exc)
        if request is not None:
            return manual_end(s, Outcome(commits, stopped=f"could not bisect: {exc}"), request, judge.builds)
        return batch_plan(s, commits, f"could not bisect: {exc}", builds=judge.builds)
    if request is not None:
        return manual_end(s, outcome, request, judge.builds)
    if outcome.culprit is None:
        return batch_plan(s, commits, outcome.stopped or "no culprit", rounds=outcome.rounds, builds=judge.builds)
    return culprit_plan(s, outcome, builds=judge.builds)


__all__ = ["BAD", "GOOD", "CouldNotBisectError", "bisecting", "wants_bisection"]
