"""The driver of one environment: take its lease (one owner per drive), keep it with a
heartbeat, and move its deploys a step at a time, a bounded number of times. A step that raises
is recorded and retried; past a bound the deploy gives up."""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from bot.domain import DeployState
from bot.domain.records import DeployRecord, ServiceRecord
from bot.engine.context import Context
from bot.engine.notices import Notices
from bot.engine.picking import Picker
from bot.engine.steps import INFRASTRUCTURE, STEPS, Step
from bot.engine.transitions import Transition, Transitions
from bot.errors import LeaseLostError, TransientError
from bot.logs import log_context

log = logging.getLogger("mainline.pipeline")

S = DeployState
# A rollback or a revert is never given up on (production and master must agree again);
# other steps fail the deploy after this many unexpected errors in a row.
MAX_STEP_FAILURES = 3
# Errors of the infrastructure (TransientError) get more chances, one per reconciler pass.
MAX_TRANSIENT_FAILURES = 8
# Passes of one drive: each moves one deploy by at least one step.
MAX_PASSES = 50


@dataclass
class Driver:
    ctx: Context
    notices: Notices
    transitions: Transitions
    picker: Picker

    def drive(self, service_name: str, environment: str) -> None:
        """Take the environment's lease and move its deploys as far as they can go now."""
        store = self.ctx.store
        service = store.service(service_name)
        env = store.environment(service.id, environment)
        # One owner per drive, not per process: two queue threads of one worker must not both
        # hold the lease and run the same step at once.
        token = store.acquire_lease(env.id, f"{self.ctx.owner}/{uuid.uuid4().hex[:8]}", self.ctx.opts.lease_seconds)
        if token is None:
            log.info("%s/%s is being driven by another worker", service_name, environment)
            return
        lost, stop = threading.Event(), threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(env.id, token, lost, stop), daemon=True,
                                name=f"lease-{service_name}-{environment}")
        beat.start()
        try:
            self._loop(service, environment, token, lost)
        except LeaseLostError:
            log.warning("%s/%s: lease lost; another worker takes over", service_name, environment)
        finally:
            stop.set()
            beat.join(timeout=5)
            store.release_lease(env.id, token)

    def _heartbeat(self, env_id: int, token: int, lost: threading.Event, stop: threading.Event) -> None:
        seconds = self.ctx.opts.lease_seconds
        while not stop.wait(seconds / 3):
            if not self.ctx.store.renew_lease(env_id, token, seconds):
                lost.set()
                return

    def _loop(self, service: ServiceRecord, environment: str, token: int, lost: threading.Event) -> None:
        for _ in range(MAX_PASSES):
            if lost.is_set():
                raise LeaseLostError("lease lost")
            deploy = self.picker.current(service.id, environment, token)
            if deploy is None:
                return
            # Each log line of the step says which deploy it is about (MAINLINE_LOG_FORMAT=json).
            with log_context(service=service.name, environment=environment, sha=deploy.sha, deploy_id=deploy.id):
                try:
                    self.step(service, deploy, token)
                except (LeaseLostError, KeyboardInterrupt):
                    raise
                except Exception as exc:
                    if not self._step_failed(deploy, token, exc):
                        return
                else:
                    if deploy.step_failures:
                        self.ctx.store.update_deploy(deploy.id, token, step_failures=0)

    def step(self, service: ServiceRecord, deploy: DeployRecord, token: int) -> None:
        """One state-machine step: run the state's function, then apply where it goes."""
        s = Step(self.ctx, self.notices, service, deploy, token, self.ctx.authority_config(service))
        self.transitions.apply(deploy, token, STEPS[DeployState(deploy.state)](s))

    def _step_failed(self, deploy: DeployRecord, token: int, exc: Exception) -> bool:
        """Record a step that raised. It is retried on the next pass (the reconciler's, so with a
        pause); past a bound the deploy gives up. An error of the infrastructure (Docker, HAProxy,
        the registry, git, a cloud API) is never evidence against the release: a rollout it
        interrupts is put back as it was, and nothing is marked bad or reverted.
        Returns True when the driver may go on with the next deploy now."""
        failures = (deploy.step_failures or 0) + 1
        limit = MAX_TRANSIENT_FAILURES if isinstance(exc, TransientError) else MAX_STEP_FAILURES
        what = f"{type(exc).__name__}: {exc}"
        state = DeployState(deploy.state)
        # A search that keeps failing outside its own guard (the store, say) is retried too: it ends
        # by reverting, which production and master need.
        if failures < limit or state in (S.ROLLING_BACK, S.BISECTING, S.REVERTING):
            log.warning("%s: %s failed (%d of %d); the reconciler retries it: %s", deploy.sha[:12], deploy.state,
                        failures, limit, what)
            self.ctx.store.update_deploy(deploy.id, token, step_failures=failures)
            self.notices.event(deploy, "error", f"{deploy.state} failed, will retry: {what}", notify=False)
            return False
        log.error("%s failed %d times in %s; giving up", deploy.sha[:12], failures, deploy.state, exc_info=exc)
        reason = f"{INFRASTRUCTURE}{deploy.state} failed: {what}"
        if state in (S.ROLLING_OUT, S.VERIFYING) and deploy.previous_sha:
            # Half a rollout is not what ran before: put the previous release back, unmarked.
            self.transitions.apply(deploy, token, Transition(
                S.ROLLING_BACK, f"{deploy.state} kept failing ({what}); restoring {deploy.previous_sha[:12]}; "
                "the release is not judged bad", fields={"reason": reason, "step_failures": 0}))
            return False
        if state in (S.ROLLING_OUT, S.VERIFYING):
            self._discard_quietly(deploy)
        self.transitions.apply(deploy, token, Transition(
            S.FAILED, f"{deploy.state} kept failing: {what}; production is as it was and nothing was reverted",
            fields={"reason": reason, "step_failures": failures}))
        return True

    def _discard_quietly(self, deploy: Any) -> None:
        """Remove a first release's half-made replicas; a failure here is logged, not raised."""
        try:
            service = self.ctx.service_by_id(deploy.service_id)
            config = self.ctx.authority_config(service)
            target = self.ctx.w.target_for(service.name, deploy.environment, config)
            plan = self.ctx.plan(service, deploy.environment, config, deploy.sha, deploy.image or "")
            target.discard(plan, self.notices.sink(deploy))
        except Exception as exc:
            log.warning("could not discard %s after giving up: %s", deploy.sha[:12], exc)
