"""`pull_request` closed and merged: the merge commit is a deploy request for the base branch."""

from __future__ import annotations

from bot.domain import DeployRequest
from bot.routing import Router
from handlers.github.events import PullRequestEvent

router = Router()


@router.register("pull_request", "closed")
def on_pull_request_closed(payload: dict, pipeline) -> str:
    event = PullRequestEvent.model_validate(payload)
    pr = event.pull_request
    if not pr.merged or not pr.merge_commit_sha:
        return f"ignored: #{pr.number} closed without merging"
    request = DeployRequest(
        repo=event.repository.full_name, clone_url=pipeline.clone_url_for(event.repository.full_name),
        default_branch=event.repository.default_branch,
        ref=f"refs/heads/{pr.base.ref}", sha=pr.merge_commit_sha, requested_by=f"github:{pr.user.login}",
        pull_numbers=(pr.number,),
    )
    deploys = pipeline.request(request)
    return f"{len(deploys)} deploy(s) for #{pr.number} ({pr.merge_commit_sha[:12]})"
