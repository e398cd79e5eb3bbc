"""The release command: run once per release, in a one-off container of the new image with the
environment's env and secrets, before the rollout. Its output tail is kept (secrets masked by
the target). When it fails nothing is rolled out: the release is judged bad (its own command
failed), the rollback finds the previous release still serving (no change to production) and
the bad commits are reverted, so master and production agree; a release carrying a contract
migration stops there instead, for a person (#4's rule)."""

from __future__ import annotations

from typing import Any

from bot.domain import DeployState
from bot.engine.transitions import Transition

S = DeployState
KIND = "release_command"
TAIL = 2000  # characters of the command's output kept on the deploy


def release_command(s: Any, plan: Any) -> Transition | None:
    """None when there is no command, it already succeeded for this deploy, or it succeeds now;
    else the Transition that fails the deploy. `s` is the engine's Step."""
    release = plan.app.release
    if release is None:
        return None
    store, deploy = s.ctx.store, s.deploy
    if any(e.kind == KIND and (e.data or {}).get("ok") for e in store.events(deploy.id)):
        return None  # done before a crash: once per release
    run = getattr(s.target(), "run_release", None)
    if run is None:
        reason = "this target does not run release commands (the docker target does); nothing was changed"
        return Transition(S.FAILED, reason, fields={"reason": reason})
    s.notices.event(deploy, "step", f"running the release command `{' '.join(release.command)[:200]}`",
                    notify=False)
    ok, tail = run(plan, s.sink)
    tail = tail[-TAIL:]
    s.notices.event(deploy, KIND, "the release command " + ("succeeded" if ok else "failed"),
                    data={"ok": ok, "output": tail}, notify=False)
    if ok:
        return None
    last = tail.strip().splitlines()[-1][:300] if tail.strip() else "(no output)"
    reason = f"the release command failed: {last}; nothing was rolled out"
    # The release's own command failed: evidence against it, as a failed health check is. The
    # rollback finds the previous release still serving, and the revert keeps master and
    # production in agreement; past a contract migration a person decides, as in #4.
    store.mark_release_bad(s.service.id, deploy.environment, deploy.sha)
    gates = s.ctx.w.gates
    if gates is not None and deploy.previous_sha:
        allowed, why = gates.rollback_allowed(s.ctx, s.service, deploy, s.config)
        if not allowed:
            return Transition(S.FAILED, f"{reason}; {why}", fields={"reason": f"{reason}; {why}"})
    return Transition(S.ROLLING_BACK, reason, fields={"reason": reason})
