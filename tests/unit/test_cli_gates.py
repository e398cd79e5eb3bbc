"""The gate commands of `mainline`, through click's runner, on a temporary database and git repo:
migrations check, approve / reject, freeze / unfreeze, and a forced deploy past a lock and a window."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.domain import DeployRequest, GateStatus
from tests.conftest import DEPLOY_YML, DROP_EMAIL

MIGRATIONS = Path(__file__).parents[1] / "fixtures" / "migrations"
RAILS_CONTRACT = MIGRATIONS / "rails/db/migrate/20260302120000_remove_email_from_users.rb"
RAILS_EXPAND = MIGRATIONS / "rails/db/migrate/20260301120000_add_nickname_to_users.rb"
ADD_NICKNAME = ("class AddNickname < ActiveRecord::Migration[7.1]\n"
                "  def change\n    add_column :users, :nickname, :string\n  end\nend\n")


def request(local_repo, sha: str) -> DeployRequest:
    return DeployRequest(repo="acme/web", clone_url=local_repo.clone_url, ref="refs/heads/master", sha=sha)


def deploy_of(wired, sha: str) -> dict:
    return next(d for d in wired.pipeline.deploys("web", limit=50) if d["sha"] == sha)


@pytest.fixture
def held_migration(wired, local_repo):
    """web with v1 live and v2, which drops a column, queued and waiting for an approval."""
    v1 = local_repo.commit("v1")
    wired.pipeline.request(request(local_repo, v1))
    service = wired.store.service("web")
    wired.store.set_live(service.id, "production", v1, "127.0.0.1:5000/web:v1", None, None)
    wired.store.update_deploy(deploy_of(wired, v1)["id"], None, state="live")
    v2 = local_repo.commit("Drop users.email", {"db/migrate/20260401000000_drop_email.rb": DROP_EMAIL})
    wired.pipeline.request(request(local_repo, v2))
    wired.pipeline.drive("web", "production")
    return deploy_of(wired, v2)


# -- migrations check -------------------------------------------------------------------------------


def test_migrations_check_on_files_names_each_class_and_exits_1_on_contract(mainline):
    result = mainline("migrations", "check", str(RAILS_EXPAND), str(RAILS_CONTRACT))
    assert result.exit_code == 1
    assert f"{RAILS_EXPAND}: expand" in result.output
    assert f"{RAILS_CONTRACT}: contract" in result.output
    assert "contract: removes column users.email" in result.output
    assert "2 migration(s), 1 contract" in result.output


def test_migrations_check_on_expand_only_files_exits_0(mainline):
    result = mainline("migrations", "check", str(RAILS_EXPAND))
    assert result.exit_code == 0, result.output
    assert "  expand: adds column users.nickname" in result.output
    assert "1 migration(s), 0 contract" in result.output


def test_migrations_check_base_reads_the_diff_to_head(mainline, local_repo, monkeypatch):
    base = local_repo.commit("old migration", {"db/migrate/1_drop_old.rb": DROP_EMAIL})
    local_repo.commit("new ones", {"db/migrate/2_add_nickname.rb": ADD_NICKNAME,
                                   "db/sql/0003_drop_plan.sql": "ALTER TABLE users DROP COLUMN plan;\n",
                                   "src/app.py": "print('not a migration')\n"})
    monkeypatch.chdir(local_repo.work)
    result = mainline("migrations", "check", "--base", base)
    # The drop that was already in base is not in the diff; a .sql outside a known layout is not
    # a migration until deploy.yml's `migrations.paths` says so.
    assert result.exit_code == 0, result.output
    assert "db/migrate/2_add_nickname.rb: expand" in result.output
    assert "1_drop_old" not in result.output and "0003_drop_plan" not in result.output

    local_repo.commit("declare sql migrations",
                      {".github/deploy.yml": DEPLOY_YML.format(service="web", port=18080)
                       + "migrations: {policy: approve, paths: ['db/sql/*.sql']}\n"})
    result = mainline("migrations", "check", "--base", base)
    assert result.exit_code == 1
    assert "db/sql/0003_drop_plan.sql: contract" in result.output
    assert "contract: drops column users.plan" in result.output

    narrowed = mainline("migrations", "check", "--base", base, "db/migrate")
    assert narrowed.exit_code == 0 and "0003_drop_plan" not in narrowed.output


def test_migrations_check_without_files_or_base_says_what_to_give(mainline):
    result = mainline("migrations", "check")
    assert result.exit_code == 2
    assert "--base" in result.output


def test_migrations_check_with_an_unknown_base_says_git_refused(mainline, local_repo, monkeypatch):
    local_repo.commit("v1")
    monkeypatch.chdir(local_repo.work)
    result = mainline("migrations", "check", "--base", "no-such-ref")
    assert result.exit_code == 2
    assert "git diff" in result.output and "no-such-ref" in result.output


# -- approvals ------------------------------------------------------------------------------------


def test_status_names_the_migration_and_approve_releases_it(mainline, wired, held_migration):
    deploy = held_migration
    assert deploy["state"] == "queued"
    assert deploy["blocked_by"].startswith("migrations: waiting for approval of contract migration")
    status = mainline("status", "web")
    assert "waiting: migrations: waiting for approval of contract migration db/migrate/20260401000000_drop_email.rb" \
        in status.output
    assert "removes column users.email" in status.output

    result = mainline("approve", str(deploy["id"]), "--by", "github:octocat", "--reason", "email moved to profiles")
    assert result.exit_code == 0, result.output
    assert f"approved deploy {deploy['id']}: email moved to profiles" in result.output
    events = deploy_of(wired, deploy["sha"])["events"]
    assert any(e["kind"] == "approval" and e["by"] == "github:octocat"
               and e["message"] == "github:octocat approved migrations: email moved to profiles" for e in events)
    verdicts = {r.gate: r for r in wired.pipeline.gate(wired.store.deploy(deploy["id"]))}
    assert verdicts["migrations"].status is GateStatus.PASS
    assert "approved by github:octocat" in verdicts["migrations"].reason


def test_reject_fails_the_deploy_with_the_reason(mainline, wired, held_migration):
    deploy = held_migration
    result = mainline("reject", str(deploy["id"]), "--by", "github:hubot", "--reason", "needs a backfill first")
    assert result.exit_code == 0, result.output
    wired.pipeline.drive("web", "production")
    after = deploy_of(wired, deploy["sha"])
    assert after["state"] == "failed"
    assert "rejected by github:hubot: needs a backfill first" in after["reason"]


def test_reject_needs_a_reason(mainline, held_migration):
    result = mainline("reject", str(held_migration["id"]))
    assert result.exit_code == 2
    assert "--reason" in result.output


def test_approve_a_deploy_that_waits_for_nothing_is_an_error(mainline, wired, local_repo):
    sha = local_repo.commit("v1")
    [view] = wired.pipeline.request(request(local_repo, sha))
    result = mainline("approve", str(view["id"]))
    assert result.exit_code == 1
    assert f"deploy {view['id']} waits for no approval" in result.output


# -- freeze ----------------------------------------------------------------------------------------


def test_freeze_holds_every_service_until_unfreeze(mainline, wired, local_repo):
    sha = local_repo.commit("v1")
    wired.pipeline.request(request(local_repo, sha))
    result = mainline("freeze", "--reason", "end of quarter", "--by", "github:octocat")
    assert result.exit_code == 0 and "froze all deploys: end of quarter" in result.output
    wired.pipeline.drive("web", "production")
    assert deploy_of(wired, sha)["state"] == "queued"
    status = mainline("status", "web").output
    assert "locked by github:octocat: end of quarter" in status
    assert "waiting: lock: locked by github:octocat: end of quarter" in status

    result = mainline("unfreeze")
    assert result.exit_code == 0 and "lifted the freeze" in result.output
    verdicts = wired.pipeline.gate(wired.store.deploy(deploy_of(wired, sha)["id"]))
    assert all(r.passed for r in verdicts), verdicts


def test_freeze_needs_a_reason(mainline):
    result = mainline("freeze")
    assert result.exit_code == 2 and "--reason" in result.output


# -- forced deploy ---------------------------------------------------------------------------------

CLOSED_WINDOW = DEPLOY_YML.format(service="web", port=18080).replace(
    "    listen: \"127.0.0.1:18080\"\n  staging:",
    "    listen: \"127.0.0.1:18080\"\n    window: {timezone: UTC, freeze: ['2000-01-01..2099-12-31']}\n  staging:", 1)


def test_forced_deploy_goes_past_a_lock_and_a_closed_window_and_is_logged(mainline, wired, local_repo):
    assert "window:" in CLOSED_WINDOW
    sha = local_repo.commit("v1", {".github/deploy.yml": CLOSED_WINDOW})
    wired.pipeline.request(request(local_repo, sha))
    assert mainline("lock", "web", "--reason", "incident 7", "--by", "github:hubot").exit_code == 0
    wired.pipeline.drive("web", "production")
    held = deploy_of(wired, sha)
    assert held["state"] == "queued" and held["blocked_by"].startswith("lock: locked by github:hubot: incident 7")

    refused = mainline("deploy", "web", "--force")
    assert refused.exit_code == 1 and "needs a reason" in refused.output

    result = mainline("deploy", "web", "--force", "--reason", "hotfix for incident 7", "--by", "github:octocat")
    assert result.exit_code == 0, result.output
    assert f"queued web {sha[:12]} for production (deploy {held['id']})" in result.output
    verdicts = {r.gate: r for r in wired.pipeline.gate(wired.store.deploy(held["id"]))}
    assert verdicts["lock"].passed and "hotfix for incident 7" in verdicts["lock"].reason
    assert verdicts["window"].passed and "overridden: hotfix for incident 7" in verdicts["window"].reason
    assert all(r.passed for r in verdicts.values()), verdicts
    forced = [e for e in deploy_of(wired, sha)["events"] if e["kind"] == "forced"]
    assert [(e["by"], e["message"]) for e in forced] == [
        ("github:octocat", "github:octocat forced a deploy past the gates: hotfix for incident 7")]


def test_help_lists_the_gate_commands(mainline):
    result = mainline("--help")
    for command in ("approve", "reject", "freeze", "unfreeze", "migrations", "lock", "unlock"):
        assert command in result.output
    words = " ".join(mainline("migrations", "check", "--help").output.split())
    assert "exit 1 when any is contract" in words
