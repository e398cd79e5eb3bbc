"""Tells each PR of a bisected release the right thing, on the PR itself:

- the culprit: "this PR broke production and was reverted", with every round's evidence;
- each innocent PR, once the release without the culprit is live: "held back by a bad release in
  the same batch; now live".

A Reporter: it acts on notices and never holds a deploy back. Each comment is found by its
marker and edited, so a notice told twice writes nothing new."""

from __future__ import annotations

import logging
from typing import Any

from bot.escape import github_markdown
from bot.ports import DeployNotice, DeployStore, Git, GitHost

log = logging.getLogger("mainline.culprit")
TOLD = "held_back_told"


def culprit_marker(service: str, environment: str, sha: str) -> str:
    return f"<!-- mainline:culprit:{service}:{environment}:{sha[:12]} -->"


def held_back_marker(service: str, environment: str, sha: str) -> str:
    return f"<!-- mainline:held-back:{service}:{environment}:{sha[:12]} -->"


def _lines(story: Any) -> str:
    return "\n".join(f"- {github_markdown(str(line), 600)}" for line in (story or [])[:40])


class CulpritReporter:
    def __init__(self, github: GitHost, store: DeployStore, git: Git):
        self.github, self.store, self.git = github, store, git

    def notify(self, notice: DeployNotice) -> None:
        if notice.kind != "transition":
            return
        if notice.state == "reverted" and notice.data.get("culprit"):
            self.tell_culprit(notice)
        elif notice.state == "live":
            self.tell_held_back(notice)

    def tell_culprit(self, notice: DeployNotice) -> None:
        body = (f"### This PR broke production and was reverted\n\n"
                f"It shipped in release `{notice.sha[:12]}` with other pull requests; the release failed in "
                f"{github_markdown(notice.environment, 100)} and was rolled back. Mainline then tried the "
                f"release's commits one at a time beside production, and this one broke it. Only it is reverted"
                f"{' (as ' + notice.data['revert_sha'][:12] + ')' if notice.data.get('revert_sha') else ''}; "
                f"the rest of the release goes live without it.\n\n**Evidence**\n\n{_lines(notice.data.get('story'))}")
        plan: dict = next((e.data for e in reversed(self.store.events(notice.deploy_id)) if e.kind == "culprit"), {})
        marker = culprit_marker(notice.service, notice.environment, notice.sha)
        for number in plan.get("culprit_pulls") or []:
            self.github.upsert_comment(notice.repo, number, marker, body)
        for also in plan.get("also") or []:
            why = (f"### Reverted with the PR that broke production\n\nThis PR is not the culprit, but reverting "
                   f"`{plan['culprit'][:12]}` alone conflicts with it in "
                   f"{', '.join('`' + github_markdown(f, 200) + '`' for f in also['files'][:20])}, so Mainline "
                   f"reverted it too. Merge it again once the culprit is fixed.\n\n{_lines(notice.data.get('story'))}")
            for number in also.get("pulls") or []:
                self.github.upsert_comment(notice.repo, number, marker, why)

    def tell_held_back(self, notice: DeployNotice) -> None:
        """Innocent PRs of recently bisected releases that this live release now carries."""
        service = self.store.service(notice.service)
        for bad in self.store.deploys(service.id, notice.environment, states=["reverted"], limit=3):
            events = self.store.events(bad.id)
            if any(e.kind == TOLD for e in events):
                continue
            plan = next((e.data for e in reversed(events) if e.kind == "culprit"), None)
            if not plan or not plan.get("culprit") or not plan.get("innocent"):
                continue
            if not all(self.git.is_ancestor(service.clone_url, sha, notice.sha) for sha in plan["innocent"]):
                continue
            culprit = plan["culprit"][:12] + "".join(f" #{n}" for n in plan.get("culprit_pulls") or [])
            body = (f"### Held back by a bad release in the same batch; now live\n\n"
                    f"This PR shipped in release `{bad.sha[:12]}` together with `{culprit}`, which broke "
                    f"{github_markdown(notice.environment, 100)}. Mainline rolled that release back, found the "
                    f"culprit by bisection and reverted only it. This PR is now live in "
                    f"{github_markdown(notice.environment, 100)} at `{notice.sha[:12]}`.")
            marker = held_back_marker(notice.service, notice.environment, bad.sha)
            for number in plan.get("innocent_pulls") or []:
                self.github.upsert_comment(notice.repo, number, marker, body)
            self.store.add_event(bad.id, notice.service, notice.environment, TOLD,
                                 f"told {len(plan.get('innocent_pulls') or [])} held-back PR(s) they are live "
                                 f"at {notice.sha[:12]}", data={"live": notice.sha})
