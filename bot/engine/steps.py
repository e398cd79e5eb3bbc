"""One function per state: do that state's work (build, roll out, verify, restore, revert) and
say where the deploy goes next as a Transition. A step writes no deploy state; everything it
does can be done again after a crash (an image already pushed is not built again, a target
observes what runs, a revert already on the branch is not made twice)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from bot.authority import follows_production
from bot.canary.errors import CanaryStuckError
from bot.config import DeployConfig
from bot.culprit.plan import revert_plan
from bot.culprit.step import bisecting, wants_bisection
from bot.domain import DeployRequest, DeployState
from bot.domain.records import DeployRecord, ServiceRecord
from bot.engine.canary import canary_stuck, with_control
from bot.engine.context import Context
from bot.engine.infrastructure import infrastructure_failed
from bot.engine.notices import Notices
from bot.engine.release import release_command
from bot.engine.transitions import Transition
from bot.errors import BuildError, InfrastructureFailure, RolloutError, SecretError
from checks.repo_checks import repo_checks_gate

S = DeployState
# The reason of a deploy given up on because of the infrastructure, not the release.
INFRASTRUCTURE = "infrastructure: "


@dataclass(frozen=True)
class Step:
    """What a step is given: the engine's context, the notices, and the deploy at hand."""

    ctx: Context
    notices: Notices
    service: ServiceRecord
    deploy: DeployRecord
    token: int
    config: DeployConfig

    def target(self):
        return self.ctx.w.target_for(self.service.name, self.deploy.environment, self.config)

    def plan(self, sha: str, image: str | None):
        return self.ctx.plan(self.service, self.deploy.environment, self.config, sha, image or "")

    @property
    def sink(self):
        return self.notices.sink(self.deploy)


def gating(s: Step) -> Transition:
    return Transition(S.BUILDING, f"building {s.deploy.sha[:12]}")


def building(s: Step) -> Transition:
    ctx, deploy, service = s.ctx, s.deploy, s.service
    live = ctx.store.live_release(service.id, deploy.environment)
    if live and live.sha != deploy.sha and ctx.w.git.same_tree(service.clone_url, live.sha, deploy.sha):
        # A revert (or an empty merge) brings back what already runs: nothing to roll out.
        ctx.store.set_live(service.id, deploy.environment, deploy.sha, live.image, deploy.id, s.token)
        return Transition(S.LIVE, f"{deploy.sha[:12]} has the same tree as the live {live.sha[:12]}: "
                          "live without a rollout", fields={"image": live.image}, follow=coalesced(s))
    image = ctx.image(service.name, deploy.sha)
    workspace = ctx.opts.state_dir / "work" / f"{service.name}-{deploy.sha[:12]}-{uuid.uuid4().hex[:6]}"
    try:
        if not ctx.w.builder.image_exists(image):
            ctx.w.git.checkout(service.clone_url, deploy.sha, workspace)
            ctx.w.builder.ensure_image(workspace, image, s.sink)
    except BuildError as exc:
        return Transition(S.FAILED, f"build failed: {exc}", fields={"reason": f"build failed: {exc}"})
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
    if s.config.checks and ctx.w.checker is not None:
        verdict = repo_checks_gate(ctx.w.checker.run_all(image, s.config.checks, on_event=s.sink))
        s.notices.event(deploy, "waiting" if not verdict.passed else "checks", verdict.reason or "repo checks passed",
                        data={"gate": verdict.gate, "status": verdict.status.value, "reason": verdict.reason})
        if not verdict.passed:
            return Transition(S.FAILED, f"repo checks failed: {verdict.reason}",
                              fields={"reason": f"{verdict.gate}: {verdict.reason}", "image": image})
    return Transition(S.ROLLING_OUT, f"rolling out {image}", fields={"image": image})


def rolling_out(s: Step) -> Transition:
    deploy = s.deploy
    plan = with_control(s.plan(deploy.sha, deploy.image), s.ctx.store, deploy.id)
    try:
        held = release_command(s, plan)  # `release: {command}`, once, before anything changes
        if held is not None:
            return held
        s.target().roll_out(plan, s.sink)
    except CanaryStuckError as exc:
        return canary_stuck(exc)
    except SecretError as exc:
        # Resolved before anything changes: production is untouched and the release not judged.
        return Transition(S.FAILED, f"{exc}; nothing was changed", fields={"reason": f"secrets: {exc}"})
    except InfrastructureFailure as exc:
        return infrastructure_failed(s, exc)
    except RolloutError as exc:
        s.ctx.store.mark_release_bad(s.service.id, deploy.environment, deploy.sha)
        return Transition(S.ROLLING_BACK, f"rollout failed: {exc}", fields={"reason": f"rollout failed: {exc}"})
    return Transition(S.VERIFYING, f"all {plan.replicas} replicas serve {deploy.sha[:12]}; baking "
                      f"{plan.health.bake:g}s")


def verifying(s: Step) -> Transition:
    deploy, target = s.deploy, s.target()
    plan = s.plan(deploy.sha, deploy.image)
    report = target.verify(plan, s.sink)
    evidence = {"probes": report.probes, "failed_probes": report.failed_probes, "requests": report.requests,
                "errors_5xx": report.errors_5xx, "error_rate": round(report.error_rate, 4),
                "last_output": report.last_output[-500:]}
    if not report.healthy:
        s.ctx.store.mark_release_bad(s.service.id, deploy.environment, deploy.sha)
        return Transition(S.ROLLING_BACK, f"verification failed: {report.reason}",
                          fields={"reason": f"verification failed: {report.reason}"}, data=evidence)
    target.finish(plan, s.sink)
    s.ctx.store.set_live(s.service.id, deploy.environment, deploy.sha, deploy.image or "", deploy.id, s.token)
    return Transition(S.LIVE, f"{deploy.sha[:12]} is live in {deploy.environment}", data=evidence,
                      follow=coalesced(s))


def coalesced(s: Step) -> tuple[tuple[DeployRecord, Transition], ...]:
    """Older queued shas go live inside this one: they are done (coalesced)."""
    ctx, deploy = s.ctx, s.deploy
    return tuple((older, Transition(S.SUPERSEDED, f"went live inside {deploy.sha[:12]}",
                                    fields={"reason": f"included in {deploy.sha[:12]}"}))
                 for older in ctx.store.deploys(s.service.id, deploy.environment, states=[S.QUEUED.value])
                 if older.id != deploy.id and ctx.w.git.is_ancestor(s.service.clone_url, older.sha, deploy.sha))


def rolling_back(s: Step) -> Transition:
    deploy, service = s.deploy, s.service
    if not deploy.previous_sha:
        s.target().discard(s.plan(deploy.sha, deploy.image), s.sink)
        return Transition(S.FAILED, "the first release failed and there is nothing to roll back to; fix forward",
                          fields={"reason": (deploy.reason or "") + "; nothing to roll back to"})
    if not s.config.rollback.auto and not deploy.manual:
        return Transition(S.FAILED, "automatic rollback is off (rollback.auto: false): "
                          f"roll back by hand with `mainline rollback {service.name}`",
                          fields={"reason": (deploy.reason or "") + "; automatic rollback is off"})
    refused = None if deploy.manual else _rollback_refused(s)
    if refused is not None:
        return refused
    target = s.target()  # target settings and health come from the production config, for both releases
    good = s.plan(deploy.previous_sha, deploy.previous_image)
    s.notices.event(deploy, "rolling_back", f"restoring {deploy.previous_sha[:12]} ({deploy.previous_image})")
    target.roll_out(good, s.sink)
    report = target.verify(good, s.sink)
    if not report.healthy:
        return Transition(S.FAILED, f"the rollback to {deploy.previous_sha[:12]} did not verify: {report.reason}; "
                          "a human must look", fields={"reason": f"rollback did not verify: {report.reason}"})
    if deploy.image:
        target.discard(s.plan(deploy.sha, deploy.image), s.sink)
    target.finish(good, s.sink)
    s.ctx.store.set_live(service.id, deploy.environment, deploy.previous_sha, deploy.previous_image or "", None,
                         s.token)
    return Transition(S.ROLLED_BACK, f"rolled back to {deploy.previous_sha[:12]}; it verified healthy")


def _rollback_refused(s: Step) -> Transition | None:
    """The gates' guard: never roll back automatically past a contract migration."""
    gates = s.ctx.w.gates
    if gates is None:
        return None
    allowed, why = gates.rollback_allowed(s.ctx, s.service, s.deploy, s.config)
    if allowed:
        return None
    deploy = s.deploy
    if deploy.image:
        # It serves, and it is on the branch: say so, rather than name the release that no
        # longer runs. It stays marked bad for the person who decides.
        s.ctx.store.set_live(s.service.id, deploy.environment, deploy.sha, deploy.image, deploy.id, s.token)
        if not (deploy.reason or "").startswith(INFRASTRUCTURE):
            s.ctx.store.mark_release_bad(s.service.id, deploy.environment, deploy.sha)
    return Transition(S.FAILED, why, fields={"reason": (deploy.reason or "") + "; " + why})


def rolled_back(s: Step) -> Transition:
    deploy = s.deploy
    if (deploy.reason or "").startswith(INFRASTRUCTURE):
        return Transition(S.FAILED, "restored the previous release after infrastructure errors; the release was "
                          "not judged, so nothing is reverted: deploy it again "
                          f"({(deploy.reason or '').removeprefix(INFRASTRUCTURE)[:500]})",
                          fields={"reason": deploy.reason})
    if not follows_production(s.config, deploy.environment):
        return Transition(S.FAILED, "rolled back; this environment does not follow the production branch, so "
                          "nothing is reverted", fields={"reason": deploy.reason})
    if wants_bisection(s):
        return Transition(S.BISECTING, "the release carried several commits: trying them one at a time beside "
                          "production to find the one that broke it")
    return Transition(S.REVERTING, f"reverting the bad commits on {s.service.branch}")


def reverting(s: Step) -> Transition:
    ctx, deploy, service = s.ctx, s.deploy, s.service
    plan = revert_plan(s)  # after a bisection: the culprit only, or the whole release saying why
    commits = plan.commits if plan else ctx.w.git.first_parent_commits(service.clone_url, deploy.previous_sha or "",
                                                                       deploy.sha)
    message = plan.message if plan else (f"Mainline rolled back {deploy.sha[:12]} in {deploy.environment}: "
                                         f"{deploy.reason or 'bad release'}")
    if s.config.rollback.revert == "pull-request" and ctx.w.reverter is not None:
        outcome = ctx.w.reverter(service=service, deploy=deploy, commits=commits, reason=message,
                                 evidence="\n".join(e for e in (evidence(s), plan.evidence if plan else "") if e))
    else:
        outcome = ctx.w.git.revert_and_push(service.clone_url, service.branch, commits, message)
    if outcome.conflicted:
        reason = (f"the revert of {deploy.sha[:12]} conflicts in {', '.join(outcome.conflict_files)}: "
                  f"revert by hand, then `mainline unlock {service.name}`")
        ctx.store.lock(service.name, deploy.environment, "mainline", reason)
        return Transition(S.FAILED, reason, fields={"reason": reason})
    # Shas queued after the bad one that still carry its changes must not go out; a revert
    # (and all after it) still has the bad commit as an ancestor, so ancestry cannot decide.
    carrying = tuple((queued, Transition(S.SUPERSEDED, f"carries the reverted {deploy.sha[:12]}",
                                         fields={"reason": f"contains reverted {deploy.sha[:12]}"}))
                     for queued in ctx.store.deploys(service.id, deploy.environment, states=[S.QUEUED.value])
                     if any(ctx.w.git.carries_unreverted(service.clone_url, bad, queued.sha)
                            for bad in (plan.commits if plan else [deploy.sha])))
    head = ctx.w.git.head(service.clone_url, service.branch)
    if head:
        ctx.store.set_head(service.id, head)
    return Transition(S.REVERTED, f"reverted {len(outcome.reverted)} commit(s) on {service.branch}"
                      + (f" as {outcome.sha[:12]}" if outcome.sha else " (already reverted)"),
                      fields={"revert_sha": outcome.sha}, follow=carrying,
                      data={"reverted": list(outcome.reverted), **({"culprit": plan.culprit, "story": plan.story}
                                                                     if plan else {})},
                      request=DeployRequest(service.repo, service.clone_url, f"refs/heads/{service.branch}", head,
                                            environment=deploy.environment, requested_by="mainline", requeue=True,
                                            pull_numbers=plan.innocent_pulls if plan else ())
                      if head else None)


def evidence(s: Step) -> str:
    """What showed the release was bad, as markdown for the revert and the PR comments."""
    deploy = s.deploy
    lines = [f"- {deploy.reason}"] if deploy.reason else []
    for event in s.ctx.store.events(deploy.id):
        data = event.data or {}
        if event.kind == "rolling_back" and data.get("requests") is not None:
            lines.append(f"- 5xx: {data.get('errors_5xx')} of {data.get('requests')} responses "
                         f"({data.get('error_rate', 0):.1%}); failed probes: {data.get('failed_probes')} "
                         f"of {data.get('probes')}")
            if data.get("last_output"):
                lines.append(f"- last probe: `{data['last_output'][:300]}`")
    return "\n".join(lines)


STEPS: dict[DeployState, Callable[[Step], Transition]] = {
    S.GATING: gating,
    S.BUILDING: building,
    S.ROLLING_OUT: rolling_out,
    S.VERIFYING: verifying,
    S.ROLLING_BACK: rolling_back,
    S.ROLLED_BACK: rolled_back,
    S.BISECTING: bisecting,
    S.REVERTING: reverting,
}
