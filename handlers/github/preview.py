"""`pull_request` opened, synchronize, reopened, ready_for_review: a `mainline/preview` check run
on the PR's head saying what merging it now would ship (bot/preview.py).

The check run always concludes `neutral`: a preview informs and never holds a merge back. A gate
that would wait or block is named in its title and summary; the gates themselves report as their
own `mainline/<gate>` check runs once the merge is a deploy. The service comes from the
repository Mainline already deploys (store.services_of_repo), never from the payload; a fork's PR
gets a preview too, which says its code is not deployed until merged."""

from __future__ import annotations

import logging

from pydantic import Field

from bot.domain.github import CheckRunReport
from bot.errors import MainlineError
from bot.escape import clip, github_inline
from bot.preview import PullInfo, preview_pull, render_preview_markdown, would_hold
from bot.preview_render import headline
from bot.routing import Router
from handlers.github.events import REPO_NAME, Repository, User, _Edge

log = logging.getLogger("mainline.handlers.preview")
router = Router()

CHECK_NAME = "mainline/preview"
SUMMARY_MAX = 60000  # GitHub's limit for a check run's summary is 65535 characters
SHA = r"^[0-9a-f]{40}$"


class _Repo(_Edge):
    full_name: str = Field(pattern=REPO_NAME, max_length=201)


class _Side(_Edge):
    ref: str = Field(max_length=255)
    sha: str = Field(pattern=SHA)
    repo: _Repo | None = None  # null when the fork was deleted


class _Pull(_Edge):
    number: int
    title: str
    state: str = "open"
    head: _Side
    base: _Side
    user: User


class _PullEvent(_Edge):
    action: str
    pull_request: _Pull
    repository: Repository


def _on_open_pull(payload: dict, pipeline) -> str:
    event = _PullEvent.model_validate(payload)
    pr, repo = event.pull_request, event.repository.full_name
    if pr.state != "open":
        return f"ignored: #{pr.number} is {pr.state}"
    services = pipeline.store.services_of_repo(repo)
    if not services or pipeline.w.github is None:
        return f"no preview for #{pr.number}: {repo} is not deployed by Mainline" if not services \
            else f"no preview for #{pr.number}: no GitHub access"
    fork = pr.head.repo is None or pr.head.repo.full_name != repo
    pull = PullInfo(pr.number, clip(pr.title, 300), pr.user.login, pr.head.sha, pr.base.ref, fork=fork)
    parts, titles, holds = [], [], False
    for svc in services:
        try:
            previews = preview_pull(pipeline, svc.name, pull)
        except MainlineError as exc:
            log.warning("no preview of %s#%s for %s: %s", repo, pr.number, svc.name, exc)
            parts.append(f"### {github_inline(svc.name)}\n\nNo preview: {github_inline(str(exc), 500)}")
            continue
        if not previews:
            parts.append(f"### {github_inline(svc.name)}\n\nMerging into {github_inline(pr.base.ref)} deploys "
                         f"{github_inline(svc.name)} nowhere (no environment takes that branch).")
        for p in previews:
            parts.append(render_preview_markdown(p))
            titles.append(headline(p))
            holds = holds or would_hold(p)
    title = titles[0] if len(titles) == 1 else (f"{len(titles)} environments: " + "; ".join(titles) if titles
                                                 else "Nothing to deploy")
    summary = "\n\n---\n\n".join(parts)
    if len(summary) > SUMMARY_MAX:
        summary = summary[:SUMMARY_MAX] + "\n\n… (cut)"
    pipeline.w.github.upsert_check_run(repo, CheckRunReport(
        name=CHECK_NAME, head_sha=pr.head.sha, status="completed", conclusion="neutral",
        title=" ".join(clip(title, 240).split()), summary=summary))
    return f"preview of #{pr.number}: {'a gate would hold it' if holds else 'would ship'}"


for _action in ("opened", "synchronize", "reopened", "ready_for_review"):
    router.register("pull_request", _action)(_on_open_pull)
