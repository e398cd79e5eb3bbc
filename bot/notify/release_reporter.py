"""Release notes for each release that goes live: the pull requests between the previous live
sha and the new one, mailed through SES to `notify.email` and posted to Slack; and the same
notes for the API (`GET /api/releases`).

GitHub is asked about a release's pull requests once, when it goes live, and what it says is
kept (bot.infra.db.pull_requests); `GET /api/releases` reads only the store and local git, so a view
costs no GitHub call however many pull requests it lists."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from bot.config import CONFIG_PATH, ConfigError, DeployConfig, parse_config
from bot.errors import MainlineError, NotFoundError
from bot.infra.db.pull_requests import PullRequests
from bot.notify.release_notes import ReleaseNotes
from bot.ports import DeployNotice, DeployStore, Git, GitHost

log = logging.getLogger("mainline.release_notes")

MERGE_SUBJECT = re.compile(r"^Merge pull request #(\d+) from ([^/\s]+)/\S+")
SQUASH_SUBJECT = re.compile(r"^(?P<title>.+?)\s*\(#(?P<number>\d+)\)\s*$")
REVERTS = re.compile(r"This reverts commit ([0-9a-f]{7,40})")


@dataclass
class ReleaseSources:
    """What release notes are read from: the store (services, deploys, releases), the git port
    (first-parent commits, messages, deploy.yml) and, when configured, GitHub for PR titles."""

    store: DeployStore
    git: Git
    github: GitHost | None = None
    web_url: str = "https://github.com"  # for PR links when GitHub is not configured


def sources_of(pipeline_or_parts) -> ReleaseSources:
    """A Pipeline's store, git and GitHub host, or ReleaseSources as given."""
    if isinstance(pipeline_or_parts, ReleaseSources):
        return pipeline_or_parts
    wiring = pipeline_or_parts.w
    return ReleaseSources(store=pipeline_or_parts.store, git=wiring.git, github=wiring.github,
                          web_url=pipeline_or_parts.opts.github_web_base)


def notes_between(sources: ReleaseSources, service, environment: str, previous_sha: str | None,
                  sha: str) -> ReleaseNotes:
    """The notes of `sha` (a store ServiceRow's release) after `previous_sha`.

    Commits are the first-parent chain previous..sha, so a merge commit stands for its whole
    pull request. A bad commit and its revert inside the range cancel out: neither shipped."""
    if previous_sha and previous_sha != sha:
        commits = list(reversed(sources.git.first_parent_commits(service.clone_url, previous_sha, sha)))
    else:
        commits = [] if previous_sha == sha else [sha]
    messages = {c: sources.git.commit_message(service.clone_url, c) for c in commits}
    cancelled: set[str] = set()
    for commit, text in messages.items():
        for match in REVERTS.finditer(text):
            target = next((c for c in commits if c.startswith(match.group(1))), None)
            if target is not None:
                cancelled |= {commit, target}
    pulls: dict[int, tuple[int, str, str, str]] = {}
    kept = [c for c in commits if c not in cancelled]
    github = sources.github
    if github is None:
        found = _stored_pulls(sources, service.repo, [(c, messages[c]) for c in kept])
    else:
        found = [pull for c in kept for pull in _pulls_from_github(sources, github, service.repo, c, messages[c])]
    for pull in found:
        pulls.setdefault(pull[0], pull)
    return ReleaseNotes.build(service.name, environment, previous_sha, sha, list(pulls.values()))


def _number_of(message: str) -> int | None:
    """The PR number GitHub's merge or squash message names, or None (a direct push, a rebase)."""
    subject = (message.strip().splitlines() or [""])[0]
    merge, squash = MERGE_SUBJECT.match(subject), SQUASH_SUBJECT.match(subject)
    return int(merge.group(1)) if merge else int(squash.group("number")) if squash else None


def _pulls_from_github(sources: ReleaseSources, github: GitHost, repo: str, commit: str,
                       message: str) -> list[tuple[int, str, str, str]]:
    """(number, title, author, url) of the pull requests `commit` merged, asked of GitHub, and kept
    so that views read them from the store; the commit message when GitHub does not answer."""
    number = _number_of(message)
    try:
        if number is not None:
            found = [github.get_pull(repo, number)]
        else:
            found = [p for p in github.pulls_for_commit(repo, commit) if p.merged]
    except MainlineError as exc:
        log.warning("release notes: GitHub did not answer for %s@%s, using the commit message: %s",
                    repo, commit[:12], exc)
        return _pulls_from_message(sources, repo, message)
    store = PullRequests(sources.store)
    for pull in found:
        store.put(repo, pull.number, pull.title, pull.user_login, pull.merge_commit_sha or commit)
    return [(p.number, p.title, p.user_login, p.html_url) for p in found]


def _stored_pulls(sources: ReleaseSources, repo: str,
                  commits: list[tuple[str, str]]) -> list[tuple[int, str, str, str]]:
    """The pull requests of `commits` as stored when they went out (one query for all of them);
    a PR never stored is told from its merge message."""
    numbered = [(commit, message, _number_of(message)) for commit, message in commits]
    stored = PullRequests(sources.store).get(repo, [n for _, _, n in numbered if n is not None])
    out = []
    for _, message, number in numbered:
        if number is None:
            continue
        pull = stored.get(number)
        if pull is None:
            out += _pulls_from_message(sources, repo, message)
        else:
            out.append((number, pull.title, pull.author, _pull_url(sources, repo, number)))
    return out


def _pulls_from_message(sources: ReleaseSources, repo: str, message: str) -> list[tuple[int, str, str, str]]:
    lines = message.strip().splitlines()
    subject = lines[0] if lines else ""
    merge, squash = MERGE_SUBJECT.match(subject), SQUASH_SUBJECT.match(subject)
    if merge:
        # GitHub's merge message: "Merge pull request #N from owner/branch", a blank line, the title.
        body = next((line.strip() for line in lines[1:] if line.strip()), subject)
        number = int(merge.group(1))
        return [(number, body, merge.group(2), _pull_url(sources, repo, number))]
    if squash:
        number = int(squash.group("number"))
        return [(number, squash.group("title"), "unknown", _pull_url(sources, repo, number))]
    return []  # a direct push: no pull request to list


def _pull_url(sources: ReleaseSources, repo: str, number: int) -> str:
    return f"{sources.web_url.rstrip('/')}/{repo}/pull/{number}"


def notes_for(pipeline_or_parts, service: str, environment: str, sha: str) -> ReleaseNotes:
    """The notes of the release of `sha` in `environment`: the pull requests since the release
    that was live before it."""
    sources = sources_of(pipeline_or_parts)
    svc = sources.store.service(service)
    rows = sources.store.releases(svc.id, environment, limit=200)
    index = next((i for i, r in enumerate(rows) if r.sha == sha), None)
    if index is None:
        previous = _deploy_previous(sources, svc.id, environment, sha)
    else:
        previous = _previous_of(sources, rows, index)
    return notes_between(sources, svc, environment, previous, sha)


def releases_view(pipeline_or_parts, service: str, environment: str | None = None, limit: int = 20) -> list[dict]:
    """The service's releases, newest first, each with its notes (null when git could not be read).
    Never asks GitHub: PR titles and authors come from the store."""
    sources = replace(sources_of(pipeline_or_parts), github=None)
    svc = sources.store.service(service)
    envs = [environment] if environment else [e.name for e in sources.store.environments(svc.id)]
    if environment and environment not in {e.name for e in sources.store.environments(svc.id)}:
        raise NotFoundError(f"{service} has no releases in {environment!r}")
    dated = []
    for env in envs:
        rows = sources.store.releases(svc.id, env, limit=limit + 1)
        for i, row in enumerate(rows[:limit]):
            try:
                notes = notes_between(sources, svc, env, _previous_of(sources, rows, i), row.sha).as_json()
            except MainlineError as exc:
                log.warning("release notes of %s@%s: %s", service, row.sha[:12], exc)
                notes = None
            dated.append((row.live_since, row.id, {
                "environment": env, "sha": row.sha, "image": row.image, "status": row.status,
                "since": row.live_since.isoformat() + "Z", "notes": notes}))
    dated.sort(key=lambda item: item[:2], reverse=True)
    return [view for _, _, view in dated[:limit]]


def _previous_of(sources: ReleaseSources, rows: Sequence[Any], index: int) -> str | None:
    """What was live before rows[index]: its deploy's record, else the release listed before it
    (a rollback's release has no deploy)."""
    row = rows[index]
    if row.deploy_id is not None:
        deploy = sources.store.deploy(row.deploy_id)
        if deploy.previous_sha:
            return deploy.previous_sha
    older = next((r for r in rows[index + 1:] if r.sha != row.sha), None)
    return older.sha if older else None


def _deploy_previous(sources: ReleaseSources, service_id: int, environment: str, sha: str) -> str | None:
    deploy = next((d for d in sources.store.deploys(service_id, environment) if d.sha == sha), None)
    if deploy is None:
        raise NotFoundError(f"no release or deploy of {sha[:12]} in {environment}")
    return deploy.previous_sha


class ReleaseReporter:
    """bot.ports.Reporter: when a release goes live, mail its notes through SES to the service's
    `notify.email` and post them to Slack. Never raises into the pipeline; expected refusals
    (an unverified sender, GitHub or Slack away) are warnings."""

    def __init__(self, sources: ReleaseSources, mailer=None, slack=None, slack_channel: str | None = None):
        self.sources = sources
        self.mailer = mailer  # bot.infra.aws.ses.SesMailer, None when MAINLINE_EMAIL_SENDER is unset
        self.slack = slack  # has post_message(channel, text, blocks) (bot.notify.slack_reporter.SlackReporter)
        self.slack_channel = slack_channel

    def notify(self, notice: DeployNotice) -> None:
        if notice.state != "live" or notice.kind != "transition" or (self.mailer is None and self.slack is None):
            return
        try:
            svc = self.sources.store.service(notice.service)
            notes = notes_between(self.sources, svc, notice.environment, notice.data.get("previous_sha"), notice.sha)
            config = self._config(svc, notice.sha)
        except MainlineError as exc:
            log.warning("no release notes for %s@%s: %s", notice.service, notice.sha[:12], exc)
            return
        if not notes.pulls:
            log.info("release notes: %s %s has no pull requests to announce", notice.service, notes.range)
            return
        self._mail(notes, config.notify.email if config else [])
        self._post(notes, (config.notify.slack_channel if config else None) or self.slack_channel)

    def _config(self, svc, sha: str) -> DeployConfig | None:
        text = self.sources.git.read_file(svc.clone_url, sha, CONFIG_PATH)
        try:
            return parse_config(text) if text is not None else None
        except ConfigError:
            return None

    def _mail(self, notes: ReleaseNotes, to: list[str]) -> None:
        if self.mailer is None or not to:
            return
        try:
            message_id = self.mailer.send(notes, to)
        except MainlineError as exc:
            log.warning("release notes for %s %s not mailed: %s", notes.service, notes.range, exc)
            return
        log.info("release notes for %s %s mailed to %s (SES %s)", notes.service, notes.range, ", ".join(to),
                 message_id)

    def _post(self, notes: ReleaseNotes, channel: str | None) -> None:
        if self.slack is None or not channel or not hasattr(self.slack, "post_message"):
            return
        try:
            self.slack.post_message(channel, notes.subject, blocks=notes.slack_blocks())
        except MainlineError as exc:
            log.warning("release notes for %s %s not posted to %s: %s", notes.service, notes.range, channel, exc)
