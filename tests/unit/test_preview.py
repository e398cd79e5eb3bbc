"""The preview (bot/preview.py) on a real local git repository and a wired pipeline: what deploying
a ref now would ship, which gates would hold it, and that asking changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.domain import DeployRequest
from bot.errors import NotFoundError
from bot.infra.db.models import (
    ApprovalRow,
    DeployEventRow,
    DeployRow,
    EnvironmentRow,
    PullRequestRow,
    ServiceRow,
)
from bot.infra.db.pull_requests import PullRequests
from bot.preview import PullInfo, preview, render_preview_markdown, render_preview_text
from tests.conftest import DEPLOY_YML, DROP_EMAIL

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def request(local_repo, sha: str) -> DeployRequest:
    return DeployRequest(repo="acme/web", clone_url=local_repo.clone_url, ref="refs/heads/master", sha=sha)


def tomorrow_only_window() -> str:
    """A production window open only tomorrow (UTC), 09:00 to 17:00: closed now, whatever the time."""
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    return DEPLOY_YML.format(service="web", port=18080).replace(
        "    replicas: 1\n",
        f'    replicas: 1\n    window: {{days: {DAYS[tomorrow.weekday()]}, hours: "09:00-17:00"}}\n', 1)


def counts(store) -> dict:
    with store.session() as s:
        tables = (DeployRow, DeployEventRow, ApprovalRow, PullRequestRow, EnvironmentRow)
        out = {t.__name__: s.scalar(select(func.count()).select_from(t)) for t in tables}
        svc = s.scalar(select(ServiceRow).where(ServiceRow.name == "web"))
        out["service"] = (svc.config_sha, svc.head_sha, svc.config_text)
        return out


@pytest.fixture
def live_v1(wired, local_repo):
    """web with v1 live in production."""
    v1 = local_repo.commit("v1")
    wired.pipeline.request(request(local_repo, v1))
    service = wired.store.service("web")
    wired.store.set_live(service.id, "production", v1, "127.0.0.1:5000/web:v1", None, None)
    deploy = next(d for d in wired.pipeline.deploys("web") if d["sha"] == v1)
    wired.store.update_deploy(deploy["id"], None, state="live")
    return v1


@pytest.fixture
def undeployed(wired, local_repo, live_v1):
    """After v1: a merged PR #7 that drops a column, then a window change, on master; production locked."""
    merge = local_repo.commit("Merge pull request #7 from acme/drop-email\n\nDrop users.email",
                              {"db/migrate/20260401000000_drop_email.rb": DROP_EMAIL})
    window = local_repo.commit("Deploy on one day only", {".github/deploy.yml": tomorrow_only_window()})
    PullRequests(wired.store).put("acme/web", 7, "Drop users.email", "hubot", merge)
    wired.pipeline.lock("web", "production", "cli:alice", "incident 42")
    return merge, window


def test_preview_lists_commits_and_prs_since_live(wired, undeployed, live_v1):
    merge, window = undeployed
    p = preview(wired.pipeline, "web", "production", "master")
    assert [c["sha"] for c in p["commits"]] == [window, merge]
    assert p["live"]["sha"] == live_v1 and p["sha"] == window
    assert p["pulls"] == [{"number": 7, "title": "Drop users.email", "author": "hubot"}]
    text = render_preview_text(p)
    assert "PR #7 Drop users.email by hubot" in text and "Deploy on one day only" in text


def test_a_contract_migration_is_named_with_its_reason_and_would_wait_for_approval(wired, undeployed):
    p = preview(wired.pipeline, "web", "production", "master")
    [migration] = p["migrations"]
    assert migration["path"] == "db/migrate/20260401000000_drop_email.rb"
    assert migration["kind"] == "contract"
    assert any("users.email" in r for r in migration["reasons"])
    [gate] = [g for g in p["gates"] if g["gate"] == "migrations"]
    assert gate["status"] == "wait" and "approval" in gate["reason"]
    assert "**contract**" in render_preview_markdown(p)


def test_the_lock_and_the_window_with_its_next_opening_are_named(wired, undeployed):
    p = preview(wired.pipeline, "web", "production", "master")
    gates = {g["gate"]: g for g in p["gates"]}
    assert gates["lock"]["status"] == "wait" and "cli:alice" in gates["lock"]["reason"]
    assert "incident 42" in gates["lock"]["reason"]
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert gates["window"]["status"] == "wait" and f"opens {DAYS_TITLE()} {tomorrow} 09:00" in gates["window"]["reason"]
    assert p["window"]["opens_at"].startswith(f"{tomorrow}T09:00")
    assert p["holds"]["gate"] == "lock"
    markdown = render_preview_markdown(p)
    assert "would wait in production: lock" in markdown and "⏳" in markdown


def DAYS_TITLE() -> str:
    return (datetime.now(UTC) + timedelta(days=1)).strftime("%a")


def test_a_manual_dry_run_says_the_lock_blocks_unless_forced(wired, undeployed):
    p = preview(wired.pipeline, "web", "production", "master", manual=True)
    assert p["holds"] == {"gate": "lock", "status": "block", "reason": p["holds"]["reason"]}
    assert "--force" in p["holds"]["reason"]
    forced = preview(wired.pipeline, "web", "production", "master", manual=True, force_reason="hotfix")
    gates = {g["gate"]: g["status"] for g in forced["gates"]}
    assert gates["lock"] == "pass" and gates["window"] == "pass"


def test_a_branchs_config_change_is_shown_and_does_not_count(wired, local_repo, live_v1):
    changed = DEPLOY_YML.format(service="web", port=18080).replace("replicas: 1", "replicas: 3")
    local_repo.commit("Three replicas", {".github/deploy.yml": changed}, branch="feature/more")
    p = preview(wired.pipeline, "web", "staging", "feature/more")
    assert p["config"]["changed"] and p["config"]["valid"]
    assert "-    replicas: 1" in p["config"]["diff"] and "+    replicas: 3" in p["config"]["diff"]
    assert "does not count" in p["config"]["counts"]
    assert "```diff" in render_preview_markdown(p)
    as_pull = preview(wired.pipeline, "web", "production", pull=PullInfo(
        8, "Three replicas", "octocat", local_repo_head(local_repo), "master"))
    assert "takes effect once on master" in as_pull["config"]["counts"]
    assert as_pull["pulls"][-1] == {"number": 8, "title": "Three replicas", "author": "octocat"}


def local_repo_head(local_repo) -> str:
    from tests.conftest import git

    return git("rev-parse", "HEAD", cwd=local_repo.work)


def test_an_invalid_config_on_the_ref_would_be_refused(wired, local_repo, live_v1):
    sha = local_repo.commit("Break the config", {".github/deploy.yml": "service: web\nenvironments: 3\n"},
                            branch="feature/broken")
    p = preview(wired.pipeline, "web", "staging", sha)
    assert not p["config"]["valid"] and p["holds"]["gate"] == "config"
    assert "INVALID" in render_preview_text(p)


def test_a_preview_changes_nothing(wired, undeployed):
    before = counts(wired.store)
    for manual in (False, True):
        render_preview_markdown(preview(wired.pipeline, "web", "production", "master", manual=manual))
    assert counts(wired.store) == before
    assert wired.store.pending_approvals(1) == []


def test_unknown_environment_or_ref_is_not_found(wired, live_v1):
    with pytest.raises(NotFoundError, match="no environment 'qa'"):
        preview(wired.pipeline, "web", "qa", "master")
    with pytest.raises(NotFoundError):
        preview(wired.pipeline, "web", "production", "no-such-branch")
