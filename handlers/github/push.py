"""`push`: a branch moved. Every branch push is a deploy request; the repo config decides
which environments (if any) take that branch."""

from __future__ import annotations

import logging

from bot.commit_messages import pull_numbers_in
from bot.domain import DeployRequest
from bot.routing import Router
from handlers.github.events import ZERO_SHA, PushEvent

log = logging.getLogger("mainline.handlers.push")
router = Router()


@router.register("push")
def on_push(payload: dict, pipeline) -> str:
    event = PushEvent.model_validate(payload)
    if event.deleted or event.after == ZERO_SHA or not event.ref.startswith("refs/heads/"):
        return f"ignored: {event.ref} deleted or not a branch"
    request = DeployRequest(
        repo=event.repository.full_name, clone_url=pipeline.clone_url_for(event.repository.full_name),
        default_branch=event.repository.default_branch,
        ref=event.ref, sha=event.after,
        requested_by=f"github:{(event.pusher or {}).get('name') or 'unknown'}",
        pull_numbers=pull_numbers_in([c.message for c in event.commits]),
    )
    deploys = pipeline.request(request)
    return f"{len(deploys)} deploy(s) for {event.after[:12]}"
