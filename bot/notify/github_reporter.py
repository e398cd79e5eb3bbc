"""Tells GitHub users how a deploy goes: a deployment with statuses per environment and release,
one comment per pull request edited in place, and one check run per gate.

Every write is found-then-edited, so a notice told twice changes nothing the second time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from bot.canary.analysis import lines as canary_lines
from bot.domain import DeployState, GateStatus
from bot.domain.github import CheckRunReport, DeploymentStatusReport
from bot.escape import (
    clip,
    github_code,
    github_code_span,
    github_inline,
    github_markdown,
)
from bot.ports import DeployNotice, GitHost

log = logging.getLogger("mainline.github.reporter")

# The deployment status GitHub shows for each of our states.
DEPLOYMENT_STATE = {
    DeployState.QUEUED: "queued",
    DeployState.GATING: "in_progress",
    DeployState.BUILDING: "in_progress",
    DeployState.ROLLING_OUT: "in_progress",
    DeployState.VERIFYING: "in_progress",
    DeployState.LIVE: "success",
    DeployState.ROLLING_BACK: "failure",
    DeployState.ROLLED_BACK: "failure",
    DeployState.BISECTING: "failure",
    DeployState.REVERTING: "failure",
    DeployState.REVERTED: "failure",
    DeployState.FAILED: "failure",
    DeployState.SUPERSEDED: "inactive",
}

HEADLINE = {
    DeployState.QUEUED: "⏳ Queued for {env}",
    DeployState.GATING: "🔎 Checking gates for {env}",
    DeployState.BUILDING: "🔨 Building for {env}",
    DeployState.ROLLING_OUT: "🚀 Rolling out to {env}",
    DeployState.VERIFYING: "🩺 Verifying in {env}",
    DeployState.LIVE: "✅ Live in {env}",
    DeployState.ROLLING_BACK: "⚠️ Rolling back {env}",
    DeployState.ROLLED_BACK: "↩️ Rolled back in {env}",
    DeployState.BISECTING: "🔎 Rolled back in {env}, finding which commit broke it",
    DeployState.REVERTING: "↩️ Rolled back in {env}, reverting the commits",
    DeployState.REVERTED: "↩️ Rolled back in {env} and reverted",
    DeployState.FAILED: "❌ Deploy to {env} failed",
    DeployState.SUPERSEDED: "⏩ Shipped to {env} with a newer deploy",
}

FORWARD = (DeployState.QUEUED, DeployState.GATING, DeployState.BUILDING, DeployState.ROLLING_OUT,
           DeployState.VERIFYING, DeployState.LIVE)
BACKWARD = (DeployState.ROLLING_BACK, DeployState.ROLLED_BACK, DeployState.REVERTING, DeployState.REVERTED)

GATE_CHECK = {
    GateStatus.PASS: ("completed", "success"),
    GateStatus.WAIT: ("in_progress", None),
    GateStatus.BLOCK: ("completed", "failure"),
}


def comment_marker(service: str, environment: str) -> str:
    return f"<!-- mainline:deploy:{service}:{environment} -->"


def _label(state: DeployState) -> str:
    return state.value.replace("_", " ")


def progress_line(state: DeployState) -> str:
    """Where the deploy stands on its path, e.g. `queued ✔ → gating ✔ → **building** … → live`."""
    path = BACKWARD if state in BACKWARD else FORWARD
    if state not in path:
        return ""
    here = path.index(state)
    # Resting states: nothing more is under way for them.
    done = state in (DeployState.LIVE, DeployState.ROLLED_BACK, DeployState.REVERTED)
    steps = []
    for i, step in enumerate(path):
        if i < here or (i == here and done):
            steps.append(f"{_label(step)} ✔")
        elif i == here:
            steps.append(f"**{_label(step)}** …")
        else:
            steps.append(_label(step))
    prefix = "deploy ✖ → " if path is BACKWARD else ""
    return prefix + " → ".join(steps)


def evidence_lines(data: dict[str, Any]) -> list[str]:
    """What a reader needs to trust a rollback: the reason, the numbers, the probe's words."""
    lines = []
    if data.get("reason"):
        lines.append(f"- **Reason:** {github_inline(data['reason'], 1000)}")
    if data.get("error_rate") is not None:
        rate = f"- **Error rate:** {float(data['error_rate']):.1%}"
        if data.get("requests"):
            rate += f" ({data.get('errors_5xx', 0)} of {data['requests']} requests answered 5xx)"
        if data.get("max_error_rate") is not None:
            rate += f", limit {float(data['max_error_rate']):.1%}"
        lines.append(rate)
    if data.get("failed_probes") is not None:
        probes = f"- **Failed health probes:** {data['failed_probes']}"
        if data.get("probes"):
            probes += f" of {data['probes']}"
        lines.append(probes)
    lines += [f"- **Canary:** {github_inline(line, 300)}" for line in canary_lines(data)]
    if data.get("revert_pull"):
        lines.append(f"- **Revert:** #{data['revert_pull']}")
    if data.get("conflict_files"):
        files = ", ".join(github_code_span(f) for f in data["conflict_files"][:50])
        lines.append(f"- **Revert conflicts in:** {files}. A person must revert these by hand; "
                     "automatic deploys of this service are locked until then.")
    output = data.get("probe_output") or data.get("last_output")
    if output:
        lines += ["", "Last probe output:", github_code(str(output).strip(), 2000)]
    return lines


def _safe_url(url: object) -> bool:
    """A link target that stays one link: http(s), no spaces, brackets or quotes."""
    return isinstance(url, str) and url.startswith(("http://", "https://")) and len(url) < 500 \
        and not any(c in url for c in " \t\n()<>[]\"'`")


def render_comment(notice: DeployNotice, log_url: str | None) -> str:
    state = DeployState(notice.state)
    env = notice.environment
    lines = [
        comment_marker(notice.service, env),
        f"### {HEADLINE[state].format(env=env)}",
        "",
        f"**{github_inline(notice.service)}** at `{notice.sha[:12]}` → **{github_inline(env)}**",
    ]
    progress = progress_line(state)
    if progress:
        lines += ["", progress]
    if notice.message:
        lines += ["", github_markdown(notice.message, 3000)]
    evidence = evidence_lines(notice.data)
    if evidence:
        lines += ["", "<details open><summary>Evidence</summary>", "", *evidence, "", "</details>"]
    links = []
    if _safe_url(notice.data.get("environment_url")):
        links.append(f"[environment]({notice.data['environment_url']})")
    if _safe_url(log_url):
        links.append(f"[deploy log]({log_url})")
    if links:
        lines += ["", " · ".join(links)]
    return "\n".join(lines) + "\n"


class GitHubReporter:
    """bot.ports.Reporter on GitHub."""

    def __init__(self, host: GitHost, dashboard_url: str | None = None,
                 mutex: Callable[[str], AbstractContextManager[None]] | None = None):
        self._host = host
        # Across processes (web, several workers) on one database: a lock per sha (bot/infra/db/mutex.py).
        self._mutex = mutex or (lambda _name: nullcontext())
        self._dashboard_url = dashboard_url.rstrip("/") if dashboard_url else None
        self._deployments: dict[tuple[str, str, str], int] = {}
        self._pulls: dict[tuple[str, str], tuple[int, ...]] = {}
        # Each write is found-then-created (a deployment per sha, a check run per gate, a comment
        # per marker): two queue threads reporting at once would both create. One at a time.
        self._lock = threading.RLock()

    def notify(self, notice: DeployNotice) -> None:
        with self._lock, self._mutex(f"github-report {notice.repo}@{notice.sha}"):
            self._notify(notice)

    def _notify(self, notice: DeployNotice) -> None:
        if notice.kind == "alert":
            return  # chat news about no one deploy; GitHub hears it as a check run (kind "gate")
        if notice.kind == "gate":
            self.on_gate_result(notice)
            return
        try:
            state = DeployState(notice.state)
        except ValueError:
            log.info("github: no GitHub view for state %r of deploy %s", notice.state, notice.deploy_id)
            return
        self.on_deploy_status(notice, state)
        self.on_pull_comment(notice)

    def log_url(self, notice: DeployNotice) -> str | None:
        if notice.data.get("log_url"):
            return notice.data["log_url"]
        if self._dashboard_url:
            # The deploy's own page; a notice of no deploy (an invalid config) points at the board.
            page = f"deploys/{notice.deploy_id}" if notice.deploy_id else ""
            return f"{self._dashboard_url}/{page}"
        return None

    def on_gate_result(self, notice: DeployNotice) -> None:
        gate = notice.data.get("gate") or "gate"
        status = GateStatus(notice.data.get("status", "pass"))
        reason = notice.data.get("reason") or ""
        run_status, conclusion = GATE_CHECK[status]
        title = {GateStatus.PASS: "Passed", GateStatus.WAIT: "Waiting", GateStatus.BLOCK: "Blocked"}[status]
        if reason:
            # A check run's title is plain text; its summary is markdown.
            title = f"{title}: {' '.join(clip(reason, 500).split())}"
        summary = github_markdown(reason or notice.message or title, 3000)
        if status is GateStatus.WAIT:
            summary += "\n\nThe deploy stays queued and is tried again when this changes."
        elif status is GateStatus.BLOCK:
            summary += "\n\nThe deploy will not go ahead until this is resolved."
        self._host.upsert_check_run(notice.repo, CheckRunReport(
            name=f"mainline/{gate}", head_sha=notice.sha, status=run_status, conclusion=conclusion,
            title=title[:250], summary=summary, details_url=self.log_url(notice)))

    def on_deploy_status(self, notice: DeployNotice, state: DeployState) -> None:
        deployment_id = self._deployment_id(notice)
        report = DeploymentStatusReport(
            state=DEPLOYMENT_STATE[state],
            description=clip(" ".join((notice.message or HEADLINE[state].format(env=notice.environment)).split()), 140),
            environment_url=notice.data.get("environment_url"),
            log_url=self.log_url(notice),
        )
        newest = next(iter(self._host.deployment_statuses(notice.repo, deployment_id)), None)
        if newest is not None and (newest.state, newest.description) == (report.state, report.description):
            return
        self._host.create_deployment_status(notice.repo, deployment_id, report)

    def on_pull_comment(self, notice: DeployNotice) -> None:
        body = render_comment(notice, self.log_url(notice))
        marker = comment_marker(notice.service, notice.environment)
        for number in self._pull_numbers(notice):
            self._host.upsert_comment(notice.repo, number, marker, body)

    def _deployment_id(self, notice: DeployNotice) -> int:
        key = (notice.repo, notice.sha, notice.environment)
        if key not in self._deployments:
            # Only a deployment the bot created carries its statuses; anyone with write access
            # can create one for the same sha and environment.
            bot = self._host.bot_login()
            found = [d for d in self._host.find_deployments(notice.repo, notice.sha, notice.environment)
                     if d.creator in ("", bot)]
            if found:
                self._deployments[key] = found[0].id
            else:
                made = self._host.create_deployment(
                    notice.repo, notice.sha, notice.environment,
                    f"{notice.service} {notice.sha[:12]} to {notice.environment}")
                self._deployments[key] = made.id
        return self._deployments[key]

    def _pull_numbers(self, notice: DeployNotice) -> tuple[int, ...]:
        if notice.pull_numbers:
            return notice.pull_numbers
        key = (notice.repo, notice.sha)
        if key not in self._pulls:
            self._pulls[key] = tuple(p.number for p in self._host.pulls_for_commit(notice.repo, notice.sha))
        return self._pulls[key]
