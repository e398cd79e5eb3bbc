"""Issue 9, attacks 1, 2, 3, 13 and 14: who decides what reaches production. Each is played
through the public surface (git pushes and PRs on the local GitHub stand-in, signed webhooks,
PR comments, the CLI's use cases) and each asserts the refusal, that production and master are
untouched, and the message a person reads."""

from __future__ import annotations

import pytest

from bot.errors import AuthError, MainlineError, NotFoundError

NOTE = "production must never take a branch's own config"


def evil_config(world, branch: str, **extra: str) -> str:
    """The world's config as a branch rewrites it: itself as production branch, eve deploying."""
    text = world.config_text().replace("branch: master", f"branch: {branch}")
    text = text.replace('deployers: ["github:octocat"]', 'deployers: ["github:eve"]')
    text = text.replace('branches: ["feature/*"]', 'branches: ["*"]')
    for key, value in extra.items():
        text = text.replace(key, value)
    return text


def config_runs(world, sha: str) -> list:
    repo = world.sandbox.repo(world.repo)
    return [r for r in repo.check_runs.values() if r.head_sha == sha and r.name == "mainline/config"]


def test_attack_01_a_branch_push_whose_config_names_itself_production_takes_nothing(world):
    v1 = world.first_release()
    files = dict(world.app_files("evil"))
    files[".github/deploy.yml"] = evil_config(world, "evil",
                                              **{"auto_deploy: true": "auto_deploy: true\n    branches: [\"*\"]"})
    world.sandbox.create_branch(world.repo, "evil", v1)
    evil = world.sandbox.push_commit(world.repo, "evil", files, "take production", author_login="eve")
    world.relay()
    world.work()

    assert evil not in world.deploys(), NOTE
    assert world.serves() == f"{world.service} v1"
    assert world.head() == v1
    service = world.wired.store.service(world.service)
    assert (service.repo, service.branch) == (world.repo, "master")
    config = world.wired.pipeline.service_config(world.service)
    assert config.environments["production"].deployers == ["github:octocat"]
    with pytest.raises(AuthError, match="not among the deployers"):
        world.wired.pipeline.authorise(world.service, "production", "github:eve")


def test_attack_01_a_deployer_cannot_send_an_unmerged_sha_to_production(world):
    world.first_release()
    world.sandbox.create_branch(world.repo, "feature/x", world.head())
    unmerged = world.sandbox.push_commit(world.repo, "feature/x", {"x.txt": "x\n"}, "not reviewed")
    world.relay()
    world.work()

    with pytest.raises(AuthError, match="is not on master"):
        world.wired.pipeline.request_deploy(world.service, "production", unmerged, "github:octocat")
    with pytest.raises(AuthError, match="is not on master"):
        world.wired.pipeline.request_deploy(world.service, "production", "feature/x", "github:octocat")
    assert unmerged not in world.deploys()


def test_attack_02_another_repository_cannot_take_over_a_service(world):
    v1 = world.first_release()
    world.wired.pipeline.lock(world.service, "production", "github:octocat", "incident 42")
    other = f"{world.service}-copy"
    files = dict(world.app_files("hijack"))
    files[".github/deploy.yml"] = world.config_text()  # declares the same `service:`
    world.sandbox.create_repo("acme", other, files, collaborators={"octocat": "admin", "eve": "admin"})
    hijack = world.sandbox.push_commit(f"acme/{other}", "master", {"x.txt": "1\n"}, "hijack", author_login="eve")
    world.relay()
    world.work()

    service = world.wired.store.service(world.service)
    assert service.repo == world.repo and service.clone_url.endswith(f"/{world.repo}.git")
    assert world.serves() == f"{world.service} v1" and world.head() == v1
    assert hijack not in world.deploys()
    [run] = [r for r in world.sandbox.repo(f"acme/{other}").check_runs.values()
             if r.head_sha == hijack and r.name == "mainline/config"]
    assert run.conclusion == "failure"
    assert f"belongs to {world.repo}" in run.output["summary"] + run.output.get("title", "")

    # A PR command in the other repository resolves the service from that repository, never
    # from a config it holds: the incident lock stays.
    world.sandbox.create_branch(f"acme/{other}", "feature/unlock", hijack)
    world.sandbox.push_commit(f"acme/{other}", "feature/unlock", {"y.txt": "y\n"}, "unlock", author_login="eve")
    number = world.sandbox.open_pull(f"acme/{other}", "feature/unlock", "master", "unlock", user="eve")
    world.sandbox.comment(f"acme/{other}", number, "/unlock production", user="eve")
    world.relay()
    world.work()
    assert world.status()["locked"] == {"by": "github:octocat", "reason": "incident 42"}


def test_attack_03_a_branch_named_like_a_ref_is_never_taken_for_master(world):
    v1 = world.first_release()
    files = dict(world.app_files("shadow"))
    world.sandbox.create_branch(world.repo, "a/refs/heads/master", v1)
    shadow = world.sandbox.push_commit(world.repo, "a/refs/heads/master", files, "shadow master",
                                       author_login="hubot")
    world.lose_webhooks()  # only the reconciler looks at refs now

    world.wired.pipeline.reconcile()
    world.work()

    assert world.wired.pipeline.w.git.head(world.wired.store.service(world.service).clone_url, "master") == v1
    assert shadow not in world.deploys()
    assert world.status()["head"] == v1 and world.serves() == f"{world.service} v1"
    for pattern in ("ma?ter", "ma*", "master^", "--upload-pack=touch /tmp/x"):
        with pytest.raises(MainlineError):
            world.wired.pipeline.request_deploy(world.service, "production", pattern, "github:octocat")


def test_attack_03_short_or_unknown_shas_are_resolved_or_refused(world):
    v1 = world.first_release()
    with pytest.raises(NotFoundError):
        world.wired.pipeline.request_deploy(world.service, "production", "0" * 40, "github:octocat")
    view = world.wired.pipeline.request_deploy(world.service, "production", v1[:10], "github:octocat")
    assert view["sha"] == v1  # a full 40-hex sha that exists


def test_attack_13_target_settings_come_from_the_production_head_not_the_sha(world):
    """A staging branch may deploy, but where it runs comes from production's config."""
    from bot.wiring import Targets

    v1 = world.first_release()
    files = dict(world.app_files("staging"))
    hostile_port = world.port + 7
    files[".github/deploy.yml"] = world.config_text().replace(
        f'listen: "127.0.0.1:{world.port + 1}"', f'listen: "127.0.0.1:{hostile_port}"')
    world.sandbox.create_branch(world.repo, "feature/move", v1)
    sha = world.sandbox.push_commit(world.repo, "feature/move", files, "move staging", author_login="hubot")
    world.relay()
    world.work()

    staging = next(d for d in world.wired.pipeline.deploys(world.service) if d["sha"] == sha)
    assert staging["environment"] == "staging"
    config = world.wired.pipeline.authority_config(world.wired.store.service(world.service))
    assert config.environments["staging"].listen == f"127.0.0.1:{world.port + 1}"

    # An ECS target is made from the settings it is given and never outlives a change of them.
    from bot.config import parse_config

    def ecs(cluster: str):
        return parse_config(f"service: web\nenvironments:\n  production:\n    target: ecs\n"
                            f"    ecs: {{cluster: {cluster}, service: web, container: app}}\n")

    targets = Targets(world.settings)
    assert targets("web", "production", ecs("prod")) is not targets("web", "production", ecs("evil"))


def test_attack_14_a_fork_pull_request_is_never_deployed(world, monkeypatch):
    from dataclasses import replace

    world.first_release()
    number = world.open_pr("master-copy", {"fork.txt": "from a fork\n"}, "From a fork", author="octocat")
    github = world.wired.pipeline.w.github
    real = github.get_pull

    def from_a_fork(repo, n):
        # GitHub names the fork as the head repository, with a head branch called `master`.
        return replace(real(repo, n), head_repo="eve/fork", head_ref="master")

    monkeypatch.setattr(github, "get_pull", from_a_fork)
    before = set(world.deploys())
    for environment in ("production", "staging"):
        world.sandbox.comment(world.repo, number, f"/deploy {environment}", user="octocat")
        world.relay()
        world.work()
    assert set(world.deploys()) == before
    replies = world.replies(number)
    assert any("fork `eve/fork`" in r and "not deployed" in r for r in replies), replies


def test_a_merged_branch_change_to_a_branch_that_does_not_exist_is_refused_loudly(tmp_path):
    """`branch: evil` merged into master (reviewed, but wrong): production must not move to a
    branch that is not there, where every later push would find nothing to deploy in silence."""
    from bot.domain import DeployRequest
    from tests.engine.world import CLONE, CONFIG, REPO, World

    world = World(tmp_path)
    world.ship(world.root)
    moved = world.merge({".github/deploy.yml": CONFIG.replace("branch: master", "branch: evil")}, "Move prod")

    assert world.pipeline.request(DeployRequest(REPO, CLONE, "refs/heads/master", moved)) == []

    refusal = world.chat.notices[-1]  # the failing `mainline/config` check on the merge
    assert (refusal.sha, refusal.state, refusal.data["gate"]) == (moved, "failed", "config")
    assert "the production branch would move from `master` to `evil`" in refusal.data["reason"]
    assert world.store.service("shop").branch == "master"
    # The next merge that puts it right deploys as usual.
    fixed = world.merge({".github/deploy.yml": CONFIG, "app.txt": "v2"}, "Keep prod on master")
    world.ship(fixed)
    assert world.live() == fixed
