"""What deploying a ref (or merging a pull request) now would ship, told before it happens.

A preview reads the same things the pre-build gates read (bot/gating.py), and decides with the
same pure gates (checks/), but through a path of its own that records nothing: no deploy row, no
event, no approval asked, no PR metadata stored, no service config recorded. Git's mirror cache
is the only thing on disk it may refresh. Used by the `mainline/preview` check run on open pull
requests (handlers/github/preview.py), `mainline deploy --dry-run` and Slack's `/deploy … --dry-run`.
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace

from bot.commit_messages import pull_numbers_in
from bot.config import CONFIG_PATH, ConfigError, DeployConfig
from bot.config_app import app_summary
from bot.domain import GateResult, GateStatus, Lock
from bot.errors import MainlineError, NotFoundError
from bot.gating import Gatekeeper
from bot.infra.db.pull_requests import PullRequests
from bot.preview_images import image_change
from bot.preview_render import render_preview_markdown, render_preview_text
from checks.evaluate import evaluate
from checks.inputs import CiInput, GateInputs, LockInput
from checks.window import WindowError, window_state

log = logging.getLogger("mainline.preview")

__all__ = ["PullInfo", "preview", "preview_pull", "render_preview_markdown", "render_preview_text"]

MAX_COMMITS = 50  # shown; a preview of a long-undeployed branch says how many more there are
MAX_PULL_LOOKUPS = 20  # GitHub calls for PRs the database does not know yet
MAX_DIFF_LINES = 120


@dataclass(frozen=True)
class PullInfo:
    """The pull request being previewed, as its webhook told it."""

    number: int
    title: str
    author: str
    head_sha: str
    base_ref: str
    fork: bool = False


def preview(pipeline, service: str, environment: str, ref: str | None = None, *, pull: PullInfo | None = None,
            manual: bool = False, force_reason: str | None = None) -> dict:
    """What `ref` (default: the production branch head) would ship to `environment` now.

    `pull`: preview merging this pull request instead (its head is the ref, its base the branch
    it lands on). `manual`: as `mainline deploy` would ask for it (a lock then blocks unless
    forced with `force_reason`). Raises NotFoundError for an unknown service, environment or ref."""
    svc = pipeline.store.service(service)
    git = pipeline.w.git
    prod_head = git.head(svc.clone_url, svc.branch)
    if prod_head is None:
        raise NotFoundError(f"{svc.repo} has no branch {svc.branch}")
    config = _authority(pipeline, svc, prod_head)
    if environment not in config.environments:
        raise NotFoundError(f"{service} has no environment {environment!r} (it has: {', '.join(config.environments)})")
    target = git.head(svc.clone_url, pull.base_ref) if pull else None
    found = _resolve(git, svc.clone_url, pull.head_sha if pull else (ref or config.branch), pull)
    sha: str = found or target or prod_head
    live = pipeline.store.live_release(svc.id, environment)
    p: dict = {
        "service": svc.name, "environment": environment, "repo": svc.repo, "branch": config.branch,
        "ref": ref or (f"#{pull.number}" if pull else config.branch), "sha": sha, "production_head": prod_head,
        "live": {"sha": live.sha, "image": live.image} if live else None,
        "pull": vars(pull).copy() if pull else None, "notes": [],
    }
    if pull and pull.fork:
        p["notes"].append("this pull request comes from a fork: Mainline never builds or deploys a fork's "
                          "code; merged, it ships as part of its base branch")
    if found is None and pull is not None:
        p["notes"].append(f"the head of #{pull.number} cannot be read here (a fork's commits are not fetched): "
                          "shown is what its base branch would ship")
    # A PR ships its base branch's undeployed commits and its own.
    tips = list(dict.fromkeys(t for t in (target, sha) if t))
    p["commits"], p["commits_total"], p["behind"] = _commits(git, svc.clone_url, live.sha if live else None, tips)
    p["pulls"] = _pulls(pipeline, svc.repo, p["commits"], pull)
    findings = _migrations(pipeline, svc, live.sha if live else None, tips, config)
    p["migrations"] = [{"path": f.path, "kind": f.kind, "reasons": list(f.reasons),
                        "rules": [{"reason": r.reason, "rule": r.rule, "safe": r.safe} for r in f.rules]}
                       for f in findings]
    p["config"], own_problem = _config_change(pipeline, svc, config, prod_head, sha, pull, ref)
    gates = _gates(pipeline, svc, environment, sha, config, findings, pull, manual, force_reason)
    if own_problem:  # in place of the production branch's config, which would say "config valid"
        gates = [GateResult.block("config", f"invalid {CONFIG_PATH} at {sha[:12]}: {own_problem}"),
                 *(g for g in gates if g.gate != "config")]
    p["gates"] = [{"gate": g.gate, "status": g.status.value, "reason": g.reason} for g in gates]
    holding = next((g for g in gates if not g.passed), None)
    p["holds"] = {"gate": holding.gate, "status": holding.status.value, "reason": holding.reason} if holding else None
    p["window"] = _window(config, environment, _now(pipeline))
    p["image"] = image_change(pipeline, svc.name, live.image if live else None, sha)
    p["app"] = app_summary(config.environments[environment])  # env values, secret references only
    if live and live.sha == sha:
        p["notes"].append(f"{sha[:12]} is already live in {environment}: nothing would change")
    return p


def preview_pull(pipeline, service: str, pull: PullInfo) -> list[dict]:
    """One preview per environment that merging `pull` into its base branch deploys to."""
    svc = pipeline.store.service(service)
    head = pipeline.w.git.head(svc.clone_url, svc.branch)
    if head is None:
        raise NotFoundError(f"{svc.repo} has no branch {svc.branch}")
    config = _authority(pipeline, svc, head)
    return [preview(pipeline, service, env, pull=pull) for env in config.environments_for(pull.base_ref)]


# -- reading, without recording -------------------------------------------------------------------


def _authority(pipeline, svc, head: str) -> DeployConfig:
    """The production branch head's config, read and not recorded (Pipeline.service_config would
    record it); the recorded one when the head's no longer parses."""
    try:
        return pipeline.config_at(svc.clone_url, head)
    except ConfigError as exc:
        if svc.config_text:
            return DeployConfig.model_validate_json(svc.config_text)
        raise MainlineError(f"{CONFIG_PATH} on {svc.branch} is invalid: {exc}") from None


def _resolve(git, clone_url: str, ref: str, pull: PullInfo | None) -> str | None:
    try:
        return git.resolve(clone_url, ref)
    except NotFoundError:
        if pull is not None:
            return None  # a fork's head: not on any branch we fetch
        raise


def _commits(git, clone_url: str, live: str | None, tips: list[str]) -> tuple[list[dict], int, int]:
    """First-parent commits from `live` to the first tip, then those of the second tip (a PR's)
    its base lacks, newest first; how many in all; and how many live commits the result lacks
    (a deploy of an older ref takes those back out)."""
    base = tips[0]
    # Nothing live: the whole history ships, and the tip stands for it.
    shas = [tips[-1]] if live is None else git.first_parent_commits(clone_url, live, base)
    if len(tips) > 1:
        shas = [s for s in git.first_parent_commits(clone_url, base, tips[1]) if s not in shas] + shas
    behind = len(git.first_parent_commits(clone_url, base, live)) if live else 0
    commits = []
    for sha in shas[:MAX_COMMITS]:
        message = git.commit_message(clone_url, sha)
        subject = (message.strip().splitlines() or [""])[0]
        commits.append({"sha": sha, "subject": subject, "pulls": list(pull_numbers_in([message]))})
    return commits, len(shas), behind


def _pulls(pipeline, repo: str, commits: list[dict], pull: PullInfo | None) -> list[dict]:
    """The PRs those commits merged, with titles and authors: from the database, else GitHub
    (read only: a preview stores nothing), and the previewed PR itself from its webhook."""
    numbers = sorted({n for c in commits for n in c["pulls"]} - ({pull.number} if pull else set()))
    stored = PullRequests(pipeline.store).get(repo, numbers)
    out: list[dict] = []
    for number in numbers:
        known = stored.get(number)
        title, author = (known.title, known.author) if known else _ask_github(pipeline, repo, number, len(out))
        out.append({"number": number, "title": title, "author": author})
    if pull:
        out.append({"number": pull.number, "title": pull.title, "author": pull.author})
    return out


def _ask_github(pipeline, repo: str, number: int, asked: int) -> tuple[str, str]:
    github = pipeline.w.github
    if github is None or asked >= MAX_PULL_LOOKUPS:
        return "", ""
    try:
        found = github.get_pull(repo, number)
        return found.title, found.user_login
    except MainlineError as exc:
        log.warning("preview: could not look up %s#%s: %s", repo, number, exc)
        return "", ""


def _gatekeeper(pipeline) -> Gatekeeper:
    gates = pipeline.w.gates
    return gates if isinstance(gates, Gatekeeper) else Gatekeeper(github=pipeline.w.github)


def _now(pipeline) -> datetime:
    return _gatekeeper(pipeline).clock()


def _migrations(pipeline, svc, live: str | None, tips: list[str], config) -> list:
    """Each migration that differs from the live release at any tip, read where it is found (the
    PR's version first): merging brings both the base branch's and the PR's."""
    found: dict = {}
    for tip in reversed(tips):
        for finding in _gatekeeper(pipeline).migrations(pipeline, svc, live, tip, config):
            found.setdefault(finding.path, finding)
    return sorted(found.values(), key=lambda f: (not f.contract, f.path))


def _config_change(pipeline, svc, config, prod_head: str, sha: str, pull: PullInfo | None,
                   ref: str | None) -> tuple[dict, str]:
    """The readable diff of deploy.yml from the production head to `sha`, whether it would count,
    and the problem of `sha`'s own config (empty when it is valid)."""
    git = pipeline.w.git
    before = git.read_file(svc.clone_url, prod_head, CONFIG_PATH) or ""
    after = git.read_file(svc.clone_url, sha, CONFIG_PATH)
    problem = ""
    if after is None:
        problem = f"{CONFIG_PATH} is missing"
    else:
        try:
            # The operator's rules too (MAINLINE_DOCKER_HOSTS, MAINLINE_PROMETHEUS_URLS, Docker TLS
            # material as a secret), as the commit's mainline/config check applies them: a preview
            # must never say "config valid, would ship" for a commit that check blocks.
            pipeline.config_at(svc.clone_url, sha)
        except ConfigError as exc:
            problem = str(exc) or "invalid"
    lines = list(difflib.unified_diff(before.splitlines(), (after or "").splitlines(),
                                      f"{config.branch} ({prod_head[:12]})", f"{sha[:12]}", lineterm="", n=2))
    landing = pull.base_ref if pull else (ref if ref and not sha.startswith(ref) else config.branch)
    if not lines:
        counts = "no change"
    elif landing == config.branch:
        counts = (f"takes effect once on {config.branch}: only the production branch's config decides "
                  "who deploys where and how")
    else:
        counts = (f"does not count: only {config.branch}'s config decides (this ref's config is only "
                  "validated)")
    more = len(lines) - MAX_DIFF_LINES
    diff = "\n".join(lines[:MAX_DIFF_LINES]) + (f"\n… {more} more lines" if more > 0 else "")
    return {"changed": bool(lines), "diff": diff, "counts": counts, "valid": not problem, "problem": problem}, problem


def _gates(pipeline, svc, environment: str, sha: str, config, findings, pull: PullInfo | None, manual: bool,
           force_reason: str | None) -> list[GateResult]:
    """The pre-build gates as they would decide now: Gatekeeper's inputs, minus its one write
    (asking for an approval, which needs a deploy a preview never makes)."""
    keeper = _gatekeeper(pipeline)
    store = pipeline.store
    lock_row = store.lock_for(svc.name, environment)
    lock = Lock(svc.name, environment, lock_row.by, lock_row.reason) if lock_row else None
    forced = bool(manual and force_reason)
    stand_in = SimpleNamespace(sha=sha, pull_numbers=[pull.number] if pull else [])
    now = keeper.clock()
    inputs = GateInputs(
        environment=environment, now=now, config=config,
        lock=LockInput(lock=lock, manual=manual, force=forced, reason=force_reason),
        window_override=force_reason if forced else None,
        ci=CiInput(statuses=keeper.ci_statuses(svc.repo, sha, config), pending_since=now),
        migrations=list(findings),
        approval=None,  # none asked yet: a deploy would wait for one
        dependencies=keeper.dependencies(pipeline, svc, stand_in, config),
    )
    return evaluate(inputs, stage="pre-build")


def _window(config, environment: str, now: datetime) -> dict | None:
    window = config.environments[environment].window
    if window is None:
        return None
    try:
        state = window_state(window, now if now.tzinfo else now.replace(tzinfo=UTC))
    except WindowError as exc:
        return {"open": False, "why_closed": str(exc), "opens_at": None}
    return {"open": state.open, "why_closed": state.why_closed,
            "opens_at": state.opens_at.isoformat() if state.opens_at else None}


def would_hold(p: dict) -> bool:
    """Whether a gate would keep this from going out now."""
    return p.get("holds") is not None and p["holds"]["status"] != GateStatus.PASS.value
