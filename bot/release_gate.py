"""The release command's approval: with `release: {approval: required}`, a deploy waits before
it is built until a deployer approves (`mainline approve ID`, `/mainline approve ID` on Slack,
or a PR comment), as the migrations gate does, through the same approval records."""

from __future__ import annotations

from bot.domain import GateResult, GateStatus
from checks.approval import approval_gate
from checks.inputs import Approval

GATE = "release"


def release_approval(store, deploy, config) -> list[GateResult]:
    env = config.environments.get(deploy.environment)
    release = env.release if env is not None else None
    if release is None or release.approval != "required":
        return []
    row = store.approval(deploy.id, GATE)
    approval = Approval(row.status, row.by or "", row.reason or "") if row else None
    result = approval_gate(approval, list(env.deployers), asked_for="the release command", gate=GATE)
    if result.status is GateStatus.WAIT:
        if row is None:
            store.request_approval(deploy.id, GATE)
        result = GateResult.wait(GATE, f"{result.reason}; approve with `mainline approve {deploy.id}` or reject "
                                       f"with `mainline reject {deploy.id} --reason …`")
    return [result]
