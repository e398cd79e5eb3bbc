"""People's commands (CLI, Slack, PR comments): deploy, roll back, lock, freeze, approve, and
who may. Each acts through the store and the engine's transitions, never on a target itself."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from bot.authority import Authority, check_takes, follows_production
from bot.config import DeployConfig
from bot.domain import IN_FLIGHT, DeployState, can_transition
from bot.engine.context import Context
from bot.engine.notices import Notices
from bot.engine.transitions import Transition, Transitions
from bot.errors import AuthError, MainlineError, NotFoundError
from bot.usecases.queries import Queries

S = DeployState
# How long a command waits for a driver to let go of an environment's lease.
LEASE_WAIT = 5.0


@dataclass
class Commands:
    ctx: Context
    notices: Notices
    transitions: Transitions
    queries: Queries

    def request_deploy(self, service: str, environment: str, ref: str | None, by: str, *, force: bool = False,
                       reason: str | None = None, restart: bool = False) -> dict:
        ctx, store = self.ctx, self.ctx.store
        store.service(service)  # NotFoundError before anything else
        if restart:
            return self._restart(service, environment, by)
        if force and not reason:
            raise MainlineError("a forced deploy needs a reason (--reason)")
        config = ctx.service_config(service)
        svc = store.service(service)
        if environment not in config.environments:
            raise NotFoundError(f"{service} has no environment {environment!r}")
        ref = ref or config.branch
        sha = ctx.w.git.resolve(svc.clone_url, ref)
        by_sha = sha.startswith(ref)
        branch = config.branch if (by_sha or ref == config.branch) else ref
        authority = Authority(svc, config, svc.head_sha or sha)
        check_takes(ctx, authority, environment, branch, sha)
        if by_sha and not follows_production(config, environment) and not ctx.w.git.is_ancestor(
                svc.clone_url, sha, authority.head):
            # A bare sha says nothing of which branch it is on: name the branch for other shas.
            raise AuthError(f"{sha[:12]} is not on {config.branch}; deploy a branch {environment} takes by its name")
        store.environment(svc.id, environment)
        recorded = sha if by_sha else branch  # asked by sha: the full sha is the ref
        row, created = store.create_deploy(svc.id, environment, sha, recorded, by, manual=True,
                                           force_reason=reason if force else None)
        asked = f"{by} asked for {sha[:12]} in {environment}"
        requeued = not created and self.transitions.queue_again(row, asked, requested_by=by, manual=True,
                                                                force_reason=reason if force else None)
        if force:
            # The sha may already be queued by its merge (held by the very lock being forced):
            # forcing makes that deploy a manual one, or the lock gate would keep holding it.
            store.update_deploy(row.id, None, force_reason=reason, manual=1)
            self.notices.event(row, "forced", f"{by} forced a deploy past the gates: {reason}", by=by)
        if not requeued:
            self.notices.event(row, "queued", asked, by=by)
        ctx.enqueue_drive(service, environment)
        return self.queries.deploy_view(store.deploy(row.id))

    def _restart(self, service: str, environment: str, by: str) -> dict:
        """The live sha again (`deploy --restart`): env and secrets are read anew, and each
        container whose env, secrets or limits changed is replaced, one at a time."""
        ctx, store = self.ctx, self.ctx.store
        config = ctx.service_config(service)
        svc = store.service(service)
        if environment not in config.environments:
            raise NotFoundError(f"{service} has no environment {environment!r}")
        authority = Authority(svc, config, svc.head_sha or "")
        live = store.live_release(svc.id, environment)
        if live is None:
            raise NotFoundError(f"{service} has nothing live in {environment} to restart")
        check_takes(ctx, authority, environment, config.branch, live.sha)
        row, created = store.create_deploy(svc.id, environment, live.sha, live.sha, by, manual=True)
        message = f"{by} asked to restart {live.sha[:12]} in {environment} (env and secrets read again)"
        if created:
            self.notices.event(row, "queued", message, by=by)
        elif not self.transitions.queue_again(row, message, requested_by=by, manual=True, watchdog=True):
            raise MainlineError(f"{live.sha[:12]} of {service} is already queued or in flight in {environment}")
        ctx.enqueue_drive(service, environment)
        return self.queries.deploy_view(store.deploy(row.id))

    def rollback(self, service: str, environment: str, by: str, to: str | None = None) -> dict:
        store = self.ctx.store
        svc = store.service(service)
        live = store.live_release(svc.id, environment)
        if live is None:
            raise NotFoundError(f"{service} has nothing live in {environment}")
        releases = [r for r in store.releases(svc.id, environment) if r.sha != live.sha and r.status != "bad"]
        if to:
            releases = [r for r in releases if r.sha.startswith(to)]
        if not releases:
            raise NotFoundError(f"no earlier good release of {service} in {environment}"
                                + (f" matching {to!r}" if to else ""))
        good = releases[0]
        deploy = next((d for d in store.deploys(svc.id, environment) if d.sha == live.sha), None)
        if deploy is None or not can_transition(DeployState(deploy.state), S.ROLLING_BACK):
            raise MainlineError(f"the live release {live.sha[:12]} has no finished deploy to roll back")
        with self._lease(svc.id, service, environment) as token:
            if store.deploys(svc.id, environment, states=list(IN_FLIGHT)):
                raise MainlineError(f"a deploy of {service} is in flight in {environment}; wait for it or lock first")
            store.mark_release_bad(svc.id, environment, live.sha)
            self.transitions.apply(deploy, token, Transition(
                S.ROLLING_BACK, f"{by} rolls {service} back to {good.sha[:12]}", by=by,
                fields={"previous_sha": good.sha, "previous_image": good.image, "manual": 1, "finished_at": None,
                        "reason": f"rolled back by {by}"}))
        self.ctx.enqueue_drive(service, environment)
        return self.queries.deploy_view(store.deploy(deploy.id))

    @contextmanager
    def _lease(self, service_id: int, service: str, environment: str) -> Iterator[int]:
        """The environment's lease for one command's write: it is fenced like a driver's."""
        store, env = self.ctx.store, self.ctx.store.environment(service_id, environment)
        owner = f"{self.ctx.owner}/command-{uuid.uuid4().hex[:8]}"
        deadline = time.monotonic() + LEASE_WAIT
        while (token := store.acquire_lease(env.id, owner, self.ctx.opts.lease_seconds)) is None:
            if time.monotonic() > deadline:
                raise MainlineError(f"{service} in {environment} is being driven; try again in a moment")
            time.sleep(0.1)
        try:
            yield token
        finally:
            store.release_lease(env.id, token)

    def lock(self, service: str, environment: str, by: str, reason: str) -> None:
        if not reason:
            raise MainlineError("a lock needs a reason")
        svc = self.ctx.store.service(service)
        self.ctx.store.lock(service, environment, by, reason)
        self.ctx.store.add_event(None, svc.name, environment, "locked", f"{by} locked {service}: {reason}", by=by)

    def unlock(self, service: str, environment: str, by: str) -> None:
        svc = self.ctx.store.service(service)
        if not self.ctx.store.unlock(service, environment):
            raise NotFoundError(f"{service} is not locked in {environment}")
        self.ctx.store.add_event(None, svc.name, environment, "unlocked", f"{by} unlocked {service}", by=by)
        self.ctx.enqueue_drive(service, environment)

    def freeze(self, by: str, reason: str) -> None:
        self.ctx.store.lock("*", "*", by, reason)
        self.ctx.store.add_event(None, "*", "*", "frozen", f"{by} froze all deploys: {reason}", by=by)

    def unfreeze(self, by: str) -> None:
        store = self.ctx.store
        store.unlock("*", "*")
        store.add_event(None, "*", "*", "unfrozen", f"{by} lifted the freeze", by=by)
        for svc in store.services():
            for env in store.environments(svc.id):
                self.ctx.enqueue_drive(svc.name, env.name)

    def approve(self, deploy_id: int, by: str, approved: bool, reason: str = "",
                where: tuple[str, str] | None = None) -> None:
        """Grant or refuse a deploy's pending approvals. `where` (service, environment) is what
        the person was authorised for: a deploy of anything else is refused."""
        store = self.ctx.store
        deploy = store.deploy(deploy_id)
        service = self.ctx.service_by_id(deploy.service_id).name
        if where is not None and (service, deploy.environment) != where:
            raise AuthError(f"deploy {deploy_id} is not a deploy of {where[0]} in {where[1]}")
        pending = store.pending_approvals(deploy_id)
        if not pending:
            raise NotFoundError(f"deploy {deploy_id} waits for no approval")
        for row in pending:
            store.decide_approval(deploy_id, row.gate, by, approved, reason)
            self.notices.event(deploy, "approval", f"{by} {'approved' if approved else 'rejected'} {row.gate}"
                               + (f": {reason}" if reason else ""), by=by)
        self.ctx.enqueue_drive(service, deploy.environment)

    def record_event(self, service: str, environment: str, kind: str, message: str, by: str | None = None) -> None:
        self.ctx.store.add_event(None, service, environment, kind, message, by=by)

    def service_config(self, service: str) -> DeployConfig:
        return self.ctx.service_config(service)

    def authorise(self, service: str, environment: str, who: str, config: DeployConfig | None = None) -> None:
        """`who` is `github:<login>` or `slack:<id>`; raise AuthError unless listed in deployers
        (of `config` when given, for a service not recorded yet; else of the service's config)."""
        config = config or self.ctx.service_config(service)
        env = config.environments.get(environment)
        if env is None:
            raise NotFoundError(f"{service} has no environment {environment!r}")
        if who not in env.deployers:
            raise AuthError(f"{who} is not among the deployers of {service} in {environment}")
