"""`/deploy web --dry-run` on the real app and pipeline: the preview comes back to the person who
asked, and nothing is queued, recorded or announced."""

from __future__ import annotations

from slack_testkit import DEPLOYER, STRANGER, WEB, Slash
from sqlalchemy import func, select

from bot.domain import DeployRequest
from bot.infra.db.models import DeployEventRow, DeployRow
from bot.pipeline import wait_until
from tests.conftest import LocalRepo


def counts(store) -> dict:
    with store.session() as s:
        return {t.__name__: s.scalar(select(func.count()).select_from(t)) for t in (DeployRow, DeployEventRow)}


def known_web(tmp_path, wired) -> tuple[str, str]:
    """`web` known to Mainline with v1 live, and v2 merged since."""
    root = tmp_path / "web"
    root.mkdir()
    repo = LocalRepo(root)
    repo.write(".github/deploy.yml", WEB)
    v1 = repo.commit("v1")
    wired.pipeline.request(DeployRequest(repo="acme/web", clone_url=repo.clone_url, ref="refs/heads/master", sha=v1))
    service = wired.store.service("web")
    wired.store.set_live(service.id, "production", v1, "127.0.0.1:5000/web:v1", None, None)
    v2 = repo.commit("Merge pull request #4 from acme/v2\n\nShip v2")
    return v1, v2


def test_deploy_dry_run_answers_with_the_preview_and_changes_nothing(tmp_path, slack_wired, bot, standin):
    _, v2 = known_web(tmp_path, slack_wired)
    before, cards = counts(slack_wired.store), len(standin.top_level("#deploys"))
    slash = Slash(bot, standin)
    ack = slash("/deploy", "web --dry-run", user=DEPLOYER)
    assert ack.status_code == 200 and "On it" in ack.json["text"]
    assert wait_until(lambda: slash.answers, 10, 0.05)
    answer = slash.answer
    assert answer["response_type"] == "ephemeral"
    assert f"Deploying web {v2[:7]} now would ship 1 commit(s) to production" in answer["text"]
    assert "Merge pull request #4 from acme/v2" in answer["text"] and "dry run" in answer["text"]
    assert counts(slack_wired.store) == before
    assert len(standin.top_level("#deploys")) == cards


def test_deploy_dry_run_is_for_deployers_only(tmp_path, slack_wired, bot, standin):
    known_web(tmp_path, slack_wired)
    slash = Slash(bot, standin)
    slash("/deploy", "web --dry-run", user=STRANGER)
    assert wait_until(lambda: slash.answers, 10, 0.05)
    assert "not among the deployers" in slash.answer["text"] or ":no_entry:" in slash.answer["text"]
    assert "would ship" not in slash.answer["text"]
