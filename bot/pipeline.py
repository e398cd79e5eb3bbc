"""The use cases: request a deploy, drive it one state-machine step at a time, roll back,
revert, reconcile. Acts only through ports; the app factory and the CLI bind the adapters."""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from bot.adapters.pr_store import PullRequests
from bot.authority import Authority, authority_for, check_takes, follows_production
from bot.logs import log_context
from bot.config import CONFIG_PATH, ConfigError, DeployConfig, parse_config
from bot.watchdog import watch
from bot.domain import DeployRequest, DeployState, GateResult, GateStatus, RolloutPlan, can_transition, utcnow
from bot.errors import (
    AuthError,
    BuildError,
    LeaseLostError,
    MainlineError,
    NotFoundError,
    RolloutError,
    ServiceOwnedError,
    TransientError,
)
from bot.ports import DeployNotice, Reporter, RevertOutcome

log = logging.getLogger("mainline.pipeline")

S = DeployState
IN_FLIGHT = [s.value for s in DeployState if s.in_flight]
# A rollback or a revert is never given up on (production and master must agree again);
# other steps fail the deploy after this many unexpected errors in a row.
MAX_STEP_FAILURES = 3
# Errors of the infrastructure (TransientError) get more chances, one per reconciler pass.
MAX_TRANSIENT_FAILURES = 8
# The reason of a deploy given up on because of the infrastructure, not the release.
INFRASTRUCTURE = "infrastructure: "


@dataclass
class Wiring:
    """The concrete adapters the pipeline acts through."""

    store: object  # bot.adapters.store.Store
    git: object  # bot.ports.Git (+ read_file, commit_message, changed_paths, is_ancestor)
    builder: object  # bot.ports.Builder
    target_for: Callable[[str, str, DeployConfig], object]  # (service, environment, config) -> Target
    queue: object | None = None  # bot.adapters.queue.Queue
    reporters: list[Reporter] = field(default_factory=list)
    reverter: Callable[..., RevertOutcome] | None = None  # pull-request mode; None: push mode only
    gates: Callable[..., list[GateResult]] | None = None  # pre-build gates (bot.gating.Gatekeeper)
    checker: object | None = None  # runs repo checks in the built image (ContainerCheckRunner)
    github: object | None = None  # bot.adapters.github_port.GitHost, for PR comment commands


@dataclass(frozen=True)
class PipelineOptions:
    registry: str = "127.0.0.1:5000"
    state_dir: Path = Path(".mainline")
    lease_seconds: float = 30.0
    public_url: str = "http://127.0.0.1:8000"
    # A recorded delivery whose task never ran (lost with a killed worker) is queued again after this.
    redeliver_after: float = 30.0
    # Clone URLs are built from this and a repository's full name, never taken from a payload.
    github_web_base: str = "https://github.com"
    # How long the production branch head may go unaccounted for before the watchdog says so.
    sync_bound: float = 300.0


class Pipeline:
    def __init__(self, wiring: Wiring, options: PipelineOptions, owner: str | None = None):
        self.w = wiring
        self.store = wiring.store
        self.opts = options
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._author_cache: dict[tuple, list[str]] = {}

    def clone_url_for(self, repo: str) -> str:
        """The clone URL of `owner/name` on the configured GitHub; a payload's URL is never used."""
        if not _REPO_NAME.fullmatch(repo or "") or ".." in repo:
            raise MainlineError(f"not a repository name: {repo[:100]!r}")
        return f"{self.opts.github_web_base}/{repo}.git"

    # -- intake -----------------------------------------------------------------------------------

    def config_at(self, clone_url: str, sha: str) -> DeployConfig:
        text = self.w.git.read_file(clone_url, sha, CONFIG_PATH)
        if text is None:
            raise ConfigError([])
        return parse_config(text)

    def request(self, req: DeployRequest) -> list[dict]:
        """Record a deploy per environment that takes `req.ref`, as the production branch head's
        config decides, and queue each environment's driver. The pushed sha's own config is
        only validated: an invalid one gets a failing `mainline/config` check naming its line."""
        branch = req.ref.removeprefix("refs/heads/")
        try:
            own = self.config_at(req.clone_url, req.sha)
            authority = authority_for(self, req, branch, own)
        except ConfigError as exc:
            return self._refuse_request(req, str(exc) or f"{CONFIG_PATH} is missing at {req.sha[:12]}")
        except ServiceOwnedError as exc:
            return self._refuse_request(req, str(exc))
        config, service = authority.config, authority.service
        envs = [req.environment] if req.environment else config.environments_for(branch)
        created = []
        for env in envs:
            try:
                check_takes(self, authority, env, branch, req.sha)
            except AuthError as exc:
                if req.environment:
                    raise
                log.warning("not deploying %s@%s to %s: %s", req.repo, req.sha[:12], env, exc)
                continue
            self.store.environment(service.id, env)
            row, new = self.store.create_deploy(service.id, env, req.sha, branch, req.requested_by,
                                                manual=req.manual, pull_numbers=list(req.pull_numbers),
                                                requeue=req.requeue)
            if new:
                self._event(row, "queued", f"{req.sha[:12]} queued for {env} by {req.requested_by}")
            created.append(self.deploy_view(row))
            self._enqueue_drive(config.service, env)
        return created

    def _refuse_request(self, req: DeployRequest, reason: str) -> list[dict]:
        log.warning("not deploying %s@%s: %s", req.repo, req.sha[:12], reason)
        self._tell(DeployNotice(0, "", "", req.repo, req.sha, "failed", f"invalid {CONFIG_PATH}: {reason}",
                                kind="gate", pull_numbers=req.pull_numbers,
                                data={"gate": "config", "status": "block", "reason": reason}))
        return []

    def authority_config(self, service) -> DeployConfig:
        """The config a service runs under: its production branch head's, as last recorded."""
        if service.config_text:
            try:
                return DeployConfig.model_validate_json(service.config_text)
            except ValueError:
                # Recorded under older, looser rules: read the head again, and let a config
                # that no longer validates fail as a config error does.
                log.warning("the recorded config of %s no longer validates; reading its head", service.name)
        return self.service_config(service.name)

    def _enqueue_drive(self, service: str, environment: str) -> None:
        if self.w.queue is not None:
            self.w.queue.drive(service, environment)

    # -- driving an environment -------------------------------------------------------------------

    def drive(self, service_name: str, environment: str) -> None:
        """Take the environment's lease and move its deploys as far as they can go now."""
        service = self.store.service(service_name)
        env = self.store.environment(service.id, environment)
        # One owner per drive, not per process: two queue threads of one worker must not both
        # hold the lease and run the same step at once.
        token = self.store.acquire_lease(env.id, f"{self.owner}/{uuid.uuid4().hex[:8]}", self.opts.lease_seconds)
        if token is None:
            log.info("%s/%s is being driven by another worker", service_name, environment)
            return
        lost = threading.Event()
        stop = threading.Event()

        def heartbeat() -> None:
            while not stop.wait(self.opts.lease_seconds / 3):
                if not self.store.renew_lease(env.id, token, self.opts.lease_seconds):
                    lost.set()
                    return

        beat = threading.Thread(target=heartbeat, daemon=True, name=f"lease-{service_name}-{environment}")
        beat.start()
        try:
            for _ in range(50):  # bounded: each pass moves one deploy by at least one step
                if lost.is_set():
                    raise LeaseLostError("lease lost")
                deploy = self._current(service.id, environment, token)
                if deploy is None:
                    break
                # Each log line of the step says which deploy it is about (MAINLINE_LOG_FORMAT=json).
                with log_context(service=service_name, environment=environment, sha=deploy.sha, deploy_id=deploy.id):
                    try:
                        self._step(service, deploy, token)
                    except (LeaseLostError, KeyboardInterrupt):
                        raise
                    except Exception as exc:  # noqa: BLE001 - a step's failure is recorded, then retried or failed
                        if not self._step_failed(deploy, token, exc):
                            break
                    else:
                        if deploy.step_failures:
                            self.store.update_deploy(deploy.id, token, step_failures=0)
        except LeaseLostError:
            log.warning("%s/%s: lease lost; another worker takes over", service_name, environment)
        finally:
            stop.set()
            beat.join(timeout=5)
            self.store.release_lease(env.id, token)

    def _current(self, service_id: int, environment: str, token: int):
        """The deploy in flight, else the newest queued one whose gates pass (coalescing)."""
        in_flight = self.store.deploys(service_id, environment, states=IN_FLIGHT, limit=1)
        if in_flight:
            return in_flight[0]
        queued = self.store.deploys(service_id, environment, states=[S.QUEUED.value], limit=50)
        live = self.store.live_release(service_id, environment)
        for deploy in self._newest_commits_first(service_id, queued, live, token):
            results = self.gate(deploy)
            waiting = next((r for r in results if not r.passed), None)
            if waiting is None:
                carried = self._carried_pulls(deploy, queued)
                self.store.update_deploy(deploy.id, token, state=S.GATING, blocked_by=None, pull_numbers=carried,
                                         started_at=utcnow(), attempts=deploy.attempts + 1,
                                         previous_sha=live.sha if live else None,
                                         previous_image=live.image if live else None)
                self._event(deploy, "gating", "gates passed: " + ", ".join(r.gate for r in results))
                self._tell_gates(deploy, results)
                return self.store.deploy(deploy.id)
            if waiting.status is GateStatus.BLOCK:
                self._tell_gates(deploy, results)
                self.store.update_deploy(deploy.id, token, state=S.FAILED, blocked_by=waiting.reason,
                                         reason=f"{waiting.gate}: {waiting.reason}", finished_at=utcnow())
                self._event(deploy, "failed", f"blocked by {waiting.gate}: {waiting.reason}")
            elif deploy.blocked_by != f"{waiting.gate}: {waiting.reason}":
                self.store.update_deploy(deploy.id, token, blocked_by=f"{waiting.gate}: {waiting.reason}")
                self._event(deploy, "waiting", f"waiting on {waiting.gate}: {waiting.reason}",
                            data={"gate": waiting.gate, "status": waiting.status.value,
                                               "reason": waiting.reason})
        return None

    def _newest_commits_first(self, service_id: int, queued: list, live, token: int) -> list:
        """The queued deploys to try, tips of history first: rows are created out of order (late
        webhooks, the reconciler, several threads), so the newest row is not the newest commit.
        A queued sha the live release already contains went out inside it: superseded."""
        if not queued:
            return []
        service = self._service_by_id(service_id)
        fresh = []
        for deploy in queued:
            if live and not deploy.manual and deploy.sha != live.sha and \
                    self.w.git.is_ancestor(service.clone_url, deploy.sha, live.sha):
                self._move(deploy, token, S.SUPERSEDED, f"already live inside {live.sha[:12]}",
                           reason=f"included in {live.sha[:12]}")
            else:
                fresh.append(deploy)
        if len(fresh) < 2:
            return fresh
        tips = set(self.w.git.independent(service.clone_url, [d.sha for d in fresh]))
        return [d for d in fresh if d.sha in tips] + [d for d in fresh if d.sha not in tips]

    def _carried_pulls(self, deploy, queued) -> list[int]:
        """The PRs this deploy ships: its own and those of the older queued shas it contains,
        so every PR in the release hears how it went."""
        service = self._service_by_id(deploy.service_id)
        numbers = set(deploy.pull_numbers or [])
        for older in queued:
            if older.id != deploy.id and older.pull_numbers and \
                    self.w.git.is_ancestor(service.clone_url, older.sha, deploy.sha):
                numbers.update(older.pull_numbers)
        return sorted(numbers)

    def gate(self, deploy) -> list[GateResult]:
        """The pre-build gates for a queued deploy, in order."""
        service = self._service_by_id(deploy.service_id)
        if self.w.gates is not None:
            return self.w.gates(self, service, deploy)
        return [self._lock_gate(service.name, deploy)]

    def _lock_gate(self, service: str, deploy) -> GateResult:
        lock = self.store.lock_for(service, deploy.environment)
        if lock is None:
            return GateResult.ok("lock")
        what = "frozen" if lock.service == "*" else "locked"
        if deploy.manual and deploy.force_reason:
            return GateResult.ok("lock", f"{what} by {lock.by}, forced: {deploy.force_reason}")
        return GateResult.wait("lock", f"{what} by {lock.by}: {lock.reason}")

    def _step_failed(self, deploy, token: int, exc: Exception) -> bool:
        """Record a step that raised. It is retried on the next pass (the reconciler's, so with a
        pause); past a bound the deploy gives up. An error of the infrastructure (Docker, HAProxy,
        the registry, git, a cloud API) is never evidence against the release: a rollout it
        interrupts is put back as it was, and nothing is marked bad or reverted.
        Returns True when the driver may go on with the next deploy now."""
        failures = (deploy.step_failures or 0) + 1
        limit = MAX_TRANSIENT_FAILURES if isinstance(exc, TransientError) else MAX_STEP_FAILURES
        what = f"{type(exc).__name__}: {exc}"
        state = DeployState(deploy.state)
        if failures >= limit and state not in (S.ROLLING_BACK, S.REVERTING):
            log.error("%s failed %d times in %s; giving up", deploy.sha[:12], failures, deploy.state, exc_info=exc)
            if state in (S.ROLLING_OUT, S.VERIFYING) and deploy.previous_sha:
                # Half a rollout is not what ran before: put the previous release back, unmarked.
                self._move(deploy, token, S.ROLLING_BACK, f"{deploy.state} kept failing ({what}); restoring "
                           f"{deploy.previous_sha[:12]}; the release is not judged bad",
                           reason=f"{INFRASTRUCTURE}{deploy.state} failed: {what}", step_failures=0)
                return False
            if state in (S.ROLLING_OUT, S.VERIFYING):
                self._discard_quietly(deploy)
            self._move(deploy, token, S.FAILED, f"{deploy.state} kept failing: {what}; production is as it was "
                       "and nothing was reverted", reason=f"{INFRASTRUCTURE}{deploy.state} failed: {what}",
                       step_failures=failures)
            return True
        log.warning("%s: %s failed (%d of %d); the reconciler retries it: %s", deploy.sha[:12], deploy.state,
                    failures, limit, what)
        self.store.update_deploy(deploy.id, token, step_failures=failures)
        self._event(deploy, "error", f"{deploy.state} failed, will retry: {what}", notify=False)
        return False

    def _discard_quietly(self, deploy) -> None:
        """Remove a first release's half-made replicas; a failure here is logged, not raised."""
        try:
            service = self._service_by_id(deploy.service_id)
            config = self.authority_config(service)
            target = self.w.target_for(service.name, deploy.environment, config)
            target.discard(self._plan(service, deploy, config, deploy.sha, deploy.image or ""), self._sink(deploy))
        except Exception as exc:  # noqa: BLE001 - best effort on the way out
            log.warning("could not discard %s after giving up: %s", deploy.sha[:12], exc)

    def _step(self, service, deploy, token: int) -> bool:
        """One state-machine step. True when the deploy moved and may move again now."""
        state = DeployState(deploy.state)
        config = self.authority_config(service)
        handler = {
            S.GATING: self._do_gating,
            S.BUILDING: self._do_building,
            S.ROLLING_OUT: self._do_rolling_out,
            S.VERIFYING: self._do_verifying,
            S.ROLLING_BACK: self._do_rolling_back,
            S.ROLLED_BACK: self._do_rolled_back,
            S.REVERTING: self._do_reverting,
        }[state]
        handler(service, deploy, token, config)
        return True

    def _move(self, deploy, token: int, state: DeployState, message: str, **fields) -> None:
        current = DeployState(self.store.deploy(deploy.id).state)
        if current is not state and not can_transition(current, state):
            raise MainlineError(f"deploy {deploy.id} cannot go from {current.value} to {state.value}")
        if state.terminal:
            fields.setdefault("finished_at", utcnow())
        self.store.update_deploy(deploy.id, token, state=state, **fields)
        self._event(deploy, state.value, message, data=fields.get("data") if "data" in fields else None)

    def _plan(self, service, deploy, config: DeployConfig, sha: str, image: str) -> RolloutPlan:
        env = config.environments[deploy.environment]
        return RolloutPlan(service=service.name, environment=deploy.environment, sha=sha, image=image,
                           replicas=env.replicas, strategy=env.strategy, health=config.health.policy(),
                           listen=env.listen)

    def _image(self, service: str, sha: str) -> str:
        return f"{self.opts.registry}/{service}:{sha}"

    def _do_gating(self, service, deploy, token, config) -> None:
        self._move(deploy, token, S.BUILDING, f"building {deploy.sha[:12]}")

    def _do_building(self, service, deploy, token, config) -> None:
        live = self.store.live_release(service.id, deploy.environment)
        if live and live.sha != deploy.sha and self.w.git.same_tree(service.clone_url, live.sha, deploy.sha):
            # A revert (or an empty merge) brings back what already runs: nothing to roll out.
            self.store.set_live(service.id, deploy.environment, deploy.sha, live.image, deploy.id, token)
            self._move(deploy, token, S.LIVE, f"{deploy.sha[:12]} has the same tree as the live "
                       f"{live.sha[:12]}: live without a rollout", image=live.image)
            self._after_live(service, deploy, token)
            return
        image = self._image(service.name, deploy.sha)
        workspace = self.opts.state_dir / "work" / f"{service.name}-{deploy.sha[:12]}-{uuid.uuid4().hex[:6]}"
        try:
            if not self.w.builder.image_exists(image):
                self.w.git.checkout(service.clone_url, deploy.sha, workspace)
                self.w.builder.ensure_image(workspace, image, self._sink(deploy))
        except BuildError as exc:
            self._move(deploy, token, S.FAILED, f"build failed: {exc}", reason=f"build failed: {exc}")
            return
        finally:
            shutil.rmtree(workspace, ignore_errors=True)
        if config.checks and self.w.checker is not None:
            from checks.repo_checks import repo_checks_gate

            verdict = repo_checks_gate(self.w.checker.run_all(image, config.checks, on_event=self._sink(deploy)))
            self._event(deploy, "waiting" if not verdict.passed else "checks", verdict.reason or "repo checks passed",
                        data={"gate": verdict.gate, "status": verdict.status.value, "reason": verdict.reason})
            if not verdict.passed:
                self._move(deploy, token, S.FAILED, f"repo checks failed: {verdict.reason}",
                           reason=f"{verdict.gate}: {verdict.reason}", image=image)
                return
        self._move(deploy, token, S.ROLLING_OUT, f"rolling out {image}", image=image)

    def _do_rolling_out(self, service, deploy, token, config) -> None:
        target = self.w.target_for(service.name, deploy.environment, config)
        plan = self._plan(service, deploy, config, deploy.sha, deploy.image)
        try:
            target.roll_out(plan, self._sink(deploy))
        except RolloutError as exc:
            self.store.mark_release_bad(service.id, deploy.environment, deploy.sha)
            self._move(deploy, token, S.ROLLING_BACK, f"rollout failed: {exc}", reason=f"rollout failed: {exc}")
            return
        self._move(deploy, token, S.VERIFYING, f"all {plan.replicas} replicas serve {deploy.sha[:12]}; baking "
                   f"{plan.health.bake:g}s")

    def _do_verifying(self, service, deploy, token, config) -> None:
        target = self.w.target_for(service.name, deploy.environment, config)
        plan = self._plan(service, deploy, config, deploy.sha, deploy.image)
        report = target.verify(plan, self._sink(deploy))
        evidence = {"probes": report.probes, "failed_probes": report.failed_probes, "requests": report.requests,
                    "errors_5xx": report.errors_5xx, "error_rate": round(report.error_rate, 4),
                    "last_output": report.last_output[-500:]}
        if not report.healthy:
            self.store.mark_release_bad(service.id, deploy.environment, deploy.sha)
            self._move(deploy, token, S.ROLLING_BACK, f"verification failed: {report.reason}",
                       reason=f"verification failed: {report.reason}", data=evidence)
            return
        target.finish(plan, self._sink(deploy))
        self.store.set_live(service.id, deploy.environment, deploy.sha, deploy.image, deploy.id, token)
        self._move(deploy, token, S.LIVE, f"{deploy.sha[:12]} is live in {deploy.environment}", data=evidence)
        self._after_live(service, deploy, token)

    def _after_live(self, service, deploy, token) -> None:
        """Older queued shas went live inside this one: they are done (coalesced)."""
        for older in self.store.deploys(service.id, deploy.environment, states=[S.QUEUED.value]):
            if older.id != deploy.id and self.w.git.is_ancestor(service.clone_url, older.sha, deploy.sha):
                self._move(older, token, S.SUPERSEDED, f"went live inside {deploy.sha[:12]}",
                           reason=f"included in {deploy.sha[:12]}")

    def _do_rolling_back(self, service, deploy, token, config) -> None:
        if not deploy.previous_sha:
            target = self.w.target_for(service.name, deploy.environment, config)
            target.discard(self._plan(service, deploy, config, deploy.sha, deploy.image or ""),
                           self._sink(deploy))
            self._move(deploy, token, S.FAILED, "the first release failed and there is nothing to roll back to; "
                       "fix forward", reason=(deploy.reason or "") + "; nothing to roll back to")
            return
        # Target settings and health come from the production config, for both releases.
        bad_config = good_config = config
        if not bad_config.rollback.auto and not deploy.manual:
            self._move(deploy, token, S.FAILED, "automatic rollback is off (rollback.auto: false): "
                       f"roll back by hand with `mainline rollback {service.name}`",
                       reason=(deploy.reason or "") + "; automatic rollback is off")
            return
        guard = getattr(self.w.gates, "rollback_allowed", None)
        if guard is not None and not deploy.manual:
            allowed, why = guard(self, service, deploy, bad_config)
            if not allowed:
                if deploy.image:
                    # It serves, and it is on the branch: say so, rather than name the release
                    # that no longer runs. It stays marked bad for the person who decides.
                    self.store.set_live(service.id, deploy.environment, deploy.sha, deploy.image, deploy.id, token)
                    if not (deploy.reason or "").startswith(INFRASTRUCTURE):
                        self.store.mark_release_bad(service.id, deploy.environment, deploy.sha)
                self._move(deploy, token, S.FAILED, why, reason=(deploy.reason or "") + "; " + why)
                return
        target = self.w.target_for(service.name, deploy.environment, good_config)
        good = self._plan(service, deploy, good_config, deploy.previous_sha, deploy.previous_image)
        self._event(deploy, "rolling_back", f"restoring {deploy.previous_sha[:12]} ({deploy.previous_image})")
        target.roll_out(good, self._sink(deploy))
        report = target.verify(good, self._sink(deploy))
        if not report.healthy:
            self._move(deploy, token, S.FAILED, f"the rollback to {deploy.previous_sha[:12]} did not verify: "
                       f"{report.reason}; a human must look", reason=f"rollback did not verify: {report.reason}")
            return
        if deploy.image:
            target.discard(self._plan(service, deploy, bad_config, deploy.sha, deploy.image), self._sink(deploy))
        target.finish(good, self._sink(deploy))
        self.store.set_live(service.id, deploy.environment, deploy.previous_sha, deploy.previous_image, None, token)
        self._move(deploy, token, S.ROLLED_BACK, f"rolled back to {deploy.previous_sha[:12]}; it verified healthy")

    def _do_rolled_back(self, service, deploy, token, config) -> None:
        if (deploy.reason or "").startswith(INFRASTRUCTURE):
            self._move(deploy, token, S.FAILED, "restored the previous release after infrastructure errors; "
                       "the release was not judged, so nothing is reverted: deploy it again",
                       reason=deploy.reason)
            return
        if deploy.environment not in self._production_envs(service, config):
            self._move(deploy, token, S.FAILED, "rolled back; this environment does not follow the production "
                       "branch, so nothing is reverted", reason=deploy.reason)
            return
        self._move(deploy, token, S.REVERTING, f"reverting the bad commits on {service.branch}")

    def _evidence(self, deploy) -> str:
        """What showed the release was bad, as markdown for the revert and the PR comments."""
        lines = [f"- {deploy.reason}"] if deploy.reason else []
        for event in self.store.events(deploy.id):
            data = event.data or {}
            if event.kind == "rolling_back" and data.get("requests") is not None:
                lines.append(f"- 5xx: {data.get('errors_5xx')} of {data.get('requests')} responses "
                             f"({data.get('error_rate', 0):.1%}); failed probes: {data.get('failed_probes')} "
                             f"of {data.get('probes')}")
                if data.get("last_output"):
                    lines.append(f"- last probe: `{data['last_output'][:300]}`")
        return "\n".join(lines)

    def _production_envs(self, service, config: DeployConfig) -> list[str]:
        return [name for name, env in config.environments.items() if not env.branches
                or env.branches == [config.branch]]

    def _do_reverting(self, service, deploy, token, config) -> None:
        commits = self.w.git.first_parent_commits(service.clone_url, deploy.previous_sha, deploy.sha)
        message = f"Mainline rolled back {deploy.sha[:12]} in {deploy.environment}: {deploy.reason or 'bad release'}"
        if config.rollback.revert == "pull-request" and self.w.reverter is not None:
            outcome = self.w.reverter(service=service, deploy=deploy, commits=commits, reason=message,
                                      evidence=self._evidence(deploy))
        else:
            outcome = self.w.git.revert_and_push(service.clone_url, service.branch, commits, message)
        if outcome.conflicted:
            reason = (f"the revert of {deploy.sha[:12]} conflicts in {', '.join(outcome.conflict_files)}: "
                      f"revert by hand, then `mainline unlock {service.name}`")
            self.store.lock(service.name, deploy.environment, "mainline", reason)
            self._move(deploy, token, S.FAILED, reason, reason=reason)
            return
        self._move(deploy, token, S.REVERTED,
                   f"reverted {len(outcome.reverted)} commit(s) on {service.branch}"
                   + (f" as {outcome.sha[:12]}" if outcome.sha else " (already reverted)"),
                   revert_sha=outcome.sha, data={"reverted": list(outcome.reverted)})
        # Shas queued after the bad one that still carry its changes must not go out; a revert
        # (and all after it) still has the bad commit as an ancestor, so ancestry cannot decide.
        for queued in self.store.deploys(service.id, deploy.environment, states=[S.QUEUED.value]):
            if self.w.git.carries_unreverted(service.clone_url, deploy.sha, queued.sha):
                self._move(queued, token, S.SUPERSEDED, f"carries the reverted {deploy.sha[:12]}",
                           reason=f"contains reverted {deploy.sha[:12]}")
        head = self.w.git.head(service.clone_url, service.branch)
        if head:
            self.store.set_head(service.id, head)
            self.request(DeployRequest(service.repo, service.clone_url, f"refs/heads/{service.branch}", head,
                                       environment=deploy.environment, requested_by="mainline", requeue=True))

    # -- people's commands ---------------------------------------------------------------------------

    def request_deploy(self, service: str, environment: str, ref: str | None, by: str, *, force: bool = False,
                       reason: str | None = None) -> dict:
        svc = self.store.service(service)
        if force and not reason:
            raise MainlineError("a forced deploy needs a reason (--reason)")
        config = self.service_config(service)
        svc = self.store.service(service)
        if environment not in config.environments:
            raise NotFoundError(f"{service} has no environment {environment!r}")
        ref = ref or config.branch
        sha = self.w.git.resolve(svc.clone_url, ref)
        by_sha = sha.startswith(ref)
        branch = config.branch if (by_sha or ref == config.branch) else ref
        authority = Authority(svc, config, svc.head_sha or sha)
        check_takes(self, authority, environment, branch, sha)
        if by_sha and not follows_production(config, environment) and not self.w.git.is_ancestor(
                svc.clone_url, sha, authority.head):
            # A bare sha says nothing of which branch it is on: name the branch for other shas.
            raise AuthError(f"{sha[:12]} is not on {config.branch}; deploy a branch {environment} takes by its name")
        self.store.environment(svc.id, environment)
        recorded = sha if sha.startswith(ref) else branch  # asked by sha: the full sha is the ref
        row, _ = self.store.create_deploy(svc.id, environment, sha, recorded, by, manual=True,
                                          force_reason=reason if force else None)
        if force:
            # The sha may already be queued by its merge (held by the very lock being forced):
            # forcing makes that deploy a manual one, or the lock gate would keep holding it.
            self.store.update_deploy(row.id, None, force_reason=reason, manual=1)
            self._event(row, "forced", f"{by} forced a deploy past the gates: {reason}", by=by)
        self._event(row, "queued", f"{by} asked for {sha[:12]} in {environment}", by=by)
        self._enqueue_drive(service, environment)
        return self.deploy_view(self.store.deploy(row.id))

    def rollback(self, service: str, environment: str, by: str, to: str | None = None) -> dict:
        svc = self.store.service(service)
        live = self.store.live_release(svc.id, environment)
        if live is None:
            raise NotFoundError(f"{service} has nothing live in {environment}")
        releases = [r for r in self.store.releases(svc.id, environment) if r.sha != live.sha and r.status != "bad"]
        if to:
            releases = [r for r in releases if r.sha.startswith(to)]
        if not releases:
            raise NotFoundError(f"no earlier good release of {service} in {environment}"
                                + (f" matching {to!r}" if to else ""))
        good = releases[0]
        deploy = next((d for d in self.store.deploys(svc.id, environment) if d.sha == live.sha), None)
        if deploy is None or not can_transition(DeployState(deploy.state), S.ROLLING_BACK):
            raise MainlineError(f"the live release {live.sha[:12]} has no finished deploy to roll back")
        if self.store.deploys(svc.id, environment, states=IN_FLIGHT):
            raise MainlineError(f"a deploy of {service} is in flight in {environment}; wait for it or lock first")
        self.store.mark_release_bad(svc.id, environment, live.sha)
        self.store.update_deploy(deploy.id, None, state=S.ROLLING_BACK, previous_sha=good.sha,
                                 previous_image=good.image, manual=1, finished_at=None,
                                 reason=f"rolled back by {by}")
        self._event(deploy, "rolling_back", f"{by} rolls {service} back to {good.sha[:12]}", by=by)
        self._enqueue_drive(service, environment)
        return self.deploy_view(self.store.deploy(deploy.id))

    def lock(self, service: str, environment: str, by: str, reason: str) -> None:
        if not reason:
            raise MainlineError("a lock needs a reason")
        svc = self.store.service(service)
        self.store.lock(service, environment, by, reason)
        self.store.add_event(None, svc.name, environment, "locked", f"{by} locked {service}: {reason}", by=by)

    def unlock(self, service: str, environment: str, by: str) -> None:
        svc = self.store.service(service)
        if not self.store.unlock(service, environment):
            raise NotFoundError(f"{service} is not locked in {environment}")
        self.store.add_event(None, svc.name, environment, "unlocked", f"{by} unlocked {service}", by=by)
        self._enqueue_drive(service, environment)

    def freeze(self, by: str, reason: str) -> None:
        self.store.lock("*", "*", by, reason)
        self.store.add_event(None, "*", "*", "frozen", f"{by} froze all deploys: {reason}", by=by)

    def unfreeze(self, by: str) -> None:
        self.store.unlock("*", "*")
        self.store.add_event(None, "*", "*", "unfrozen", f"{by} lifted the freeze", by=by)
        for svc in self.store.services():
            for env in self.store.environments(svc.id):
                self._enqueue_drive(svc.name, env.name)

    def approve(self, deploy_id: int, by: str, approved: bool, reason: str = "",
                where: tuple[str, str] | None = None) -> None:
        """Grant or refuse a deploy's pending approvals. `where` (service, environment) is what
        the person was authorised for: a deploy of anything else is refused."""
        deploy = self.store.deploy(deploy_id)
        if where is not None and (self._service_by_id(deploy.service_id).name, deploy.environment) != where:
            raise AuthError(f"deploy {deploy_id} is not a deploy of {where[0]} in {where[1]}")
        pending = self.store.pending_approvals(deploy_id)
        if not pending:
            raise NotFoundError(f"deploy {deploy_id} waits for no approval")
        for row in pending:
            self.store.decide_approval(deploy_id, row.gate, by, approved, reason)
            self._event(deploy, "approval", f"{by} {'approved' if approved else 'rejected'} {row.gate}"
                        + (f": {reason}" if reason else ""), by=by)
        self._enqueue_drive(self._service_by_id(deploy.service_id).name, deploy.environment)

    def record_event(self, service: str, environment: str, kind: str, message: str, by: str | None = None) -> None:
        self.store.add_event(None, service, environment, kind, message, by=by)

    def service_config(self, service: str) -> DeployConfig:
        """The config on the production branch head: who may deploy is decided by what was
        merged, never by a branch someone pushed. Recorded as the service's authority."""
        svc = self.store.service(service)
        head = self.w.git.head(svc.clone_url, svc.branch)
        if head is None:
            raise NotFoundError(f"{svc.repo} has no branch {svc.branch}")
        config = self.config_at(svc.clone_url, head)
        if config.service == svc.name:
            self.store.upsert_service(svc.name, svc.repo, svc.clone_url, config.branch,
                                      config_text=config.model_dump_json(), config_sha=head)
            self.store.set_head(svc.id, head)
        return config

    def authorise(self, service: str, environment: str, who: str, config: DeployConfig | None = None) -> None:
        """`who` is `github:<login>` or `slack:<id>`; raise AuthError unless listed in deployers
        (of `config` when given, for a service not recorded yet; else of the service's config)."""
        config = config or self.service_config(service)
        env = config.environments.get(environment)
        if env is None:
            raise NotFoundError(f"{service} has no environment {environment!r}")
        if who not in env.deployers:
            raise AuthError(f"{who} is not among the deployers of {service} in {environment}")

    # -- reading ---------------------------------------------------------------------------------

    def status(self, service: str | None = None) -> list[dict]:
        """What runs, what should, and why not, from the database alone: a page view makes no
        GitHub or git call (heads are recorded by webhooks and the reconciler)."""
        rows = [self.store.service(service)] if service else self.store.services()
        out = []
        for svc in rows:
            head = svc.head_sha
            for env in self.store.environments(svc.id):
                live = self.store.live_release(svc.id, env.name)
                lock = self.store.lock_for(svc.name, env.name)
                queue = self.store.deploys(svc.id, env.name, states=[S.QUEUED.value] + IN_FLIGHT)
                out.append({
                    "service": svc.name,
                    "environment": env.name,
                    "repo": svc.repo,
                    "live": {"sha": live.sha, "image": live.image, "since": _iso(live.live_since)} if live else None,
                    "head": head,
                    "in_sync": bool(live and head and live.sha == head),
                    "locked": {"by": lock.by, "reason": lock.reason} if lock else None,
                    "queue": [{"sha": d.sha, "state": d.state, "blocked_by": d.blocked_by} for d in queue],
                    "unsynced_since": _iso(env.unsynced_since),
                })
        return out

    def _safe_head(self, svc) -> str | None:
        try:
            return self.w.git.head(svc.clone_url, svc.branch)
        except MainlineError as exc:
            log.warning("could not read the head of %s: %s", svc.repo, exc)
            return None

    def deploys(self, service: str, limit: int = 20) -> list[dict]:
        svc = self.store.service(service)
        return [self.deploy_view(d, with_events=True) for d in self.store.deploys(svc.id, limit=limit)]

    def deploy_view(self, d, with_events: bool = False) -> dict:
        view = {
            "id": d.id, "service": self._service_by_id(d.service_id).name, "environment": d.environment,
            "sha": d.sha, "ref": d.ref, "state": d.state, "reason": d.reason, "blocked_by": d.blocked_by,
            "image": d.image, "previous_sha": d.previous_sha, "revert_sha": d.revert_sha,
            "requested_by": d.requested_by, "pull_numbers": list(d.pull_numbers or []),
            "created_at": _iso(d.created_at), "started_at": _iso(d.started_at), "finished_at": _iso(d.finished_at),
        }
        if with_events:
            view["events"] = [{"at": _iso(e.at), "kind": e.kind, "message": e.message, "by": e.by, "data": e.data}
                              for e in self.store.events(d.id)]
        return view

    # -- reconciling -------------------------------------------------------------------------------

    def reconcile(self) -> int:
        """Re-derive the work from observed state; returns how many drivers it queued."""
        queued = 0
        for env in self.store.expired_or_idle_envs():
            svc = self._service_by_id(env.service_id)
            self._enqueue_drive(svc.name, env.name)
            queued += 1
        if self.w.queue is not None:
            for delivery_id in self.store.unprocessed_deliveries(older_than=self.opts.redeliver_after):
                self.w.queue.process_delivery(delivery_id)
        for svc in self.store.services():
            queued += self._pick_up_missed_merge(svc)
        watch(self, self.opts.sync_bound)
        return queued

    def _pick_up_missed_merge(self, svc) -> int:
        head = self._safe_head(svc)
        if head is None:
            return 0
        if head != svc.head_sha:
            self.store.set_head(svc.id, head)
        known = {d.sha for d in self.store.deploys(svc.id, limit=200)}
        if head in known:
            return 0
        log.info("reconciler: %s head %s has no deploy; queueing it", svc.name, head[:12])
        self.request(DeployRequest(svc.repo, svc.clone_url, f"refs/heads/{svc.branch}", head,
                                   requested_by="reconciler"))
        return 1

    # -- helpers ---------------------------------------------------------------------------------

    def _service_by_id(self, service_id: int):
        return next(s for s in self.store.services() if s.id == service_id)

    def _sink(self, deploy):
        def sink(message: str, **data) -> None:
            self._event(deploy, "step", message, data=data or None, notify=False)

        return sink

    def _event(self, deploy, kind: str, message: str, by: str | None = None, data: dict | None = None,
               notify: bool = True) -> None:
        service = self._service_by_id(deploy.service_id)
        with log_context(service=service.name, environment=deploy.environment, sha=deploy.sha, deploy_id=deploy.id):
            self._record_event(service, deploy, kind, message, by, data, notify)

    def _record_event(self, service, deploy, kind: str, message: str, by: str | None, data: dict | None,
                      notify: bool) -> None:
        self.store.add_event(deploy.id, service.name, deploy.environment, kind, message, by=by, data=data or {})
        log.info("%s/%s %s: %s", service.name, deploy.environment, deploy.sha[:12], message)
        if notify:
            fresh = self.store.deploy(deploy.id)
            extras = {"slack_channel": self._slack_channel(service), "authors": self._authors(service, fresh)}
            self._tell(DeployNotice(deploy.id, service.name, deploy.environment, service.repo, deploy.sha,
                                    fresh.state, message, kind="gate" if kind == "waiting" else "transition",
                                    pull_numbers=tuple(fresh.pull_numbers or ()), requested_by=fresh.requested_by,
                                    data={"reason": fresh.reason, "image": fresh.image, "previous_sha": fresh.previous_sha,
                                          "revert_sha": fresh.revert_sha, **extras, **(data or {})}))

    def _authors(self, service, deploy) -> list[str]:
        """GitHub logins of the authors of the PRs in this deploy (who to tell)."""
        key = (deploy.id, tuple(deploy.pull_numbers or ()))
        if key not in self._author_cache:
            authors: list[str] = []
            if self.w.github is not None:
                stored = PullRequests(self.store)
                for number in deploy.pull_numbers or ():
                    try:
                        pull = self.w.github.get_pull(service.repo, number)
                        authors.append(pull.user_login)
                        # Kept for pages and release notes, which never ask GitHub per view.
                        stored.put(service.repo, number, pull.title, pull.user_login, pull.merge_commit_sha)
                    except MainlineError as exc:
                        log.warning("could not look up PR #%s of %s: %s", number, service.repo, exc)
            who = deploy.requested_by or ""
            if not authors and who.startswith("github:"):
                authors = [who.removeprefix("github:")]
            self._author_cache[key] = sorted(set(authors))
        return self._author_cache[key]

    def _slack_channel(self, service) -> str | None:
        """The service's `notify.slack_channel`, from the config recorded with its last request."""
        if not service.config_text:
            return None
        try:
            return DeployConfig.model_validate_json(service.config_text).notify.slack_channel
        except ValueError:
            return None

    def _tell_gates(self, deploy, results: list[GateResult]) -> None:
        """One check run per gate on the sha (the waiting gate is told as it starts waiting)."""
        service = self._service_by_id(deploy.service_id)
        for r in results:
            self._tell(DeployNotice(deploy.id, service.name, deploy.environment, service.repo, deploy.sha,
                                    deploy.state, r.reason or r.gate, kind="gate",
                                    pull_numbers=tuple(deploy.pull_numbers or ()),
                                    data={"gate": r.gate, "status": r.status.value, "reason": r.reason}))

    def _tell(self, notice: DeployNotice) -> None:
        for reporter in self.w.reporters:
            try:
                reporter.notify(notice)
            except Exception:  # a reporter never holds a deploy back
                log.exception("reporter %s failed on %s", type(reporter).__name__, notice.state)


_REPO_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}/[A-Za-z0-9_.][A-Za-z0-9_.-]{0,99}")


def _looks_like_sha(ref: str) -> bool:
    return 7 <= len(ref) <= 40 and all(c in "0123456789abcdef" for c in ref)


def _iso(value) -> str | None:
    return value.isoformat() + "Z" if value else None


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
