"""The desired state, kept: for every live release on a target that can repair (Docker), make
what runs match it again (replicas per role on its image, the load balancer up with its
servers). Each repair is an event (kind `repair`), a Slack line and a count in /metrics. It
never starts a deploy and never reverts: an environment with a deploy in flight is its deploy's,
and the repair holds the environment's lease, so no deploy starts while it works."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from bot.domain import IN_FLIGHT
from bot.domain.records import ServiceRecord
from bot.engine.context import Context
from bot.engine.notices import Notices
from bot.errors import MainlineError, UnreachableError
from bot.ports import DeployNotice

log = logging.getLogger("mainline.reconciler")
REPAIR = "repair"
# A deploy in flight owns its environment; one queued (held by a gate or an approval) does not.
BUSY = list(IN_FLIGHT)


class DesiredState:
    def __init__(self, ctx: Context, notices: Notices):
        self.ctx = ctx
        self.notices = notices
        self._unreachable: set[tuple[str, str]] = set()  # said once per outage, and when it ends
        self._looked = False

    def keep(self) -> int:
        """One pass over every live release; the number of repairs made."""
        repairs = 0
        for svc in self.ctx.store.services():
            for env in self.ctx.store.environments(svc.id):
                key = (svc.name, env.name)
                self._looked = False
                try:
                    repairs += self._keep(svc, env)
                except UnreachableError as exc:
                    log.warning("%s/%s: %s", svc.name, env.name, exc)
                    if key not in self._unreachable:
                        self._unreachable.add(key)
                        self._say(svc, env.name, str(exc))
                    continue
                except MainlineError as exc:
                    # Docker or a secret store being down: the next pass tries again.
                    log.warning("could not repair %s/%s: %s", svc.name, env.name, exc)
                    continue
                if key in self._unreachable and self._looked:
                    self._unreachable.discard(key)
                    self._say(svc, env.name, "the load balancer answers again")
        return repairs

    def _say(self, svc: ServiceRecord, environment: str, line: str) -> None:
        live = self.ctx.store.live_release(svc.id, environment)
        if live is not None:
            self._tell(svc, environment, live.sha, live.deploy_id, line, what="live ")

    def _keep(self, svc: ServiceRecord, env: Any) -> int:
        ctx, store = self.ctx, self.ctx.store
        live = store.live_release(svc.id, env.name)
        if live is None or not live.image or store.deploys(svc.id, env.name, states=BUSY, limit=1):
            return 0
        config = ctx.authority_config(svc)
        if env.name not in config.environments:
            return 0
        target = ctx.w.target_for(svc.name, env.name, config)
        repair = getattr(target, "repair", None)
        if repair is None:
            return 0  # ECS keeps its own desired count
        plan = ctx.plan(svc, env.name, config, live.sha, live.image)
        in_shape = getattr(target, "in_shape", None)
        shaped = in_shape is not None and in_shape(plan)
        self._looked = True  # what serves it was reached
        if shaped:
            return 0  # the common case: no lease taken, no secret read
        # One owner per pass: the same owner may take its own lease again, and two passes (the
        # worker's first and its periodic one) must never repair the same environment at once.
        token = store.acquire_lease(env.id, f"{ctx.owner}/repair-{uuid.uuid4().hex[:8]}", ctx.opts.lease_seconds)
        if token is None:
            return 0  # a driver holds it: the environment is its deploy's
        try:
            now = store.live_release(svc.id, env.name)
            if store.deploys(svc.id, env.name, states=BUSY, limit=1) or now is None or \
                    (now.sha, now.image) != (live.sha, live.image):
                return 0  # a deploy started or went live between the look and the lease: never undo it
            said: list[str] = []  # what the repair found that the user must hear of, besides what it did

            def sink(message: str, **data: Any) -> None:
                log.info("%s/%s: %s", svc.name, env.name, message)
                if data.get("step") == "host_down":  # a Docker host gone: its replicas move to the others
                    said.append(message)

            lines = repair(plan, sink)
        finally:
            store.release_lease(env.id, token)
        for line in [*said, *lines] if lines else []:
            self._tell(svc, env.name, live.sha, live.deploy_id, line)
        return len(lines)

    def _tell(self, svc: ServiceRecord, environment: str, sha: str, deploy_id: int | None, line: str,
              what: str = "repaired ") -> None:
        message = f"{what}{sha[:12]}: {line}"
        self.ctx.store.add_event(deploy_id, svc.name, environment, REPAIR, message, by="reconciler",
                                 data={"sha": sha})
        log.info("%s/%s %s", svc.name, environment, message)
        self.notices.tell(DeployNotice(0, svc.name, environment, svc.repo, sha, "live", message, kind="alert",
                                       data={"repair": True, "slack_channel": self.notices.slack_channel(svc)}))
