"""`mainline deploy SERVICE --dry-run` through click's runner: the preview is printed, and nothing
is queued, recorded or asked for."""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import func, select

from bot.cli import main
from bot.domain import DeployRequest
from bot.infra.db.models import ApprovalRow, DeployEventRow, DeployRow
from tests.conftest import DROP_EMAIL


def counts(store) -> dict:
    with store.session() as s:
        return {t.__name__: s.scalar(select(func.count()).select_from(t))
                for t in (DeployRow, DeployEventRow, ApprovalRow)}


def test_deploy_dry_run_prints_the_preview_and_changes_nothing(wired, local_repo, mainline):
    v1 = local_repo.commit("v1")
    wired.pipeline.request(DeployRequest(repo="acme/web", clone_url=local_repo.clone_url, ref="refs/heads/master",
                                         sha=v1))
    service = wired.store.service("web")
    wired.store.set_live(service.id, "production", v1, "127.0.0.1:5000/web:v1", None, None)
    v2 = local_repo.commit("Drop users.email", {"db/migrate/20260401000000_drop_email.rb": DROP_EMAIL})
    wired.pipeline.lock("web", "production", "cli:alice", "incident 42")
    before = counts(wired.store)

    result = mainline("deploy", "web", "--dry-run")
    assert result.exit_code == 0, result.output
    assert f"Deploying web {v2[:7]} now would be blocked in production: lock" in result.output
    assert "db/migrate/20260401000000_drop_email.rb: contract: removes column users.email" in result.output
    assert "dry run: nothing was queued or recorded" in result.output
    forced = mainline("deploy", "web", "--dry-run", "--force", "--reason", "hotfix", "--ref", v2[:10])
    assert forced.exit_code == 0, forced.output
    assert "would wait in production: migrations" in forced.output
    assert counts(wired.store) == before


def test_deploy_dry_run_of_an_unknown_ref_says_so(wired, local_repo, mainline):
    v1 = local_repo.commit("v1")
    wired.pipeline.request(DeployRequest(repo="acme/web", clone_url=local_repo.clone_url, ref="refs/heads/master",
                                         sha=v1))
    result = CliRunner().invoke(main, ["deploy", "web", "--dry-run", "--ref", "nope"])
    assert result.exit_code == 1
    assert "no commit or branch 'nope'" in result.output
