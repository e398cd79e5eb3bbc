# ruff: noqa: F811 - the Docker fixtures are imported from tests/adapters/conftest.py and used as parameters
"""Red team, session 2: attacks on what this session added (#11 canary, #12 culprit, #15
migrations, #16 real apps, #17 GitHub App and operations, #18 ECS, the audit log).

Each test plays one attack through the surface the attacker has (an image built from a branch,
a repository config, a signed webhook, a PR comment, a Slack request, an HTTP request) and asserts
the refusal, that production and master are untouched, and the message a person sees."""

from __future__ import annotations

import io
import threading
import time
import uuid
from contextlib import suppress

import requests
from docker.errors import NotFound

from bot.domain import RolloutPlan
from bot.domain.app import AppSpec, Release
from tests.adapters.conftest import (  # noqa: F401 - the Docker fixtures, shared
    ENVIRONMENT,
    builder,
    docker_client,
    events,
    fast_health,
    listen,
    plan_for,
    releases,
    service,
    state_dir,
    target,
)

# -- #16: an image built from a branch forges the labels of another service's replicas ------------


def _forged_image(docker_client, base: str, labels: dict[str, str]) -> str:
    """What a branch pusher's Dockerfile can do: LABEL lines naming another service's replica."""
    tag = f"mltest-forged-{uuid.uuid4().hex[:8]}:latest"
    lines = [f"FROM {base}"] + [f'LABEL "{k}"="{v}"' for k, v in labels.items()]
    docker_client.images.build(fileobj=io.BytesIO("\n".join(lines).encode()), tag=tag, rm=True)
    return tag


def test_redteam_s2_an_image_labelled_as_another_services_replica_never_takes_its_traffic(
        target, docker_client, releases, plan_for, service, events):
    """A staging branch's image carries `LABEL mainline.service=<production service>
    mainline.sha=<the sha it will deploy> mainline.port=<a port it serves on>`; its release
    command (or a check, or a shadow trial) runs it, and Docker copies the image's labels onto
    the container. Production's next rollout must not re-use it as a replica of its own."""
    victim = plan_for("v2", replicas=1)
    port = 20000 + uuid.uuid4().int % 9000
    forged = _forged_image(docker_client, releases["v1"].image, {
        "mainline.service": victim.service, "mainline.environment": ENVIRONMENT,
        "mainline.sha": victim.sha, "mainline.port": str(port), "mainline.role": "web"})
    attacker = RolloutPlan(
        service=f"a{uuid.uuid4().hex[:10]}", environment="staging", sha=uuid.uuid4().hex + "0" * 8,
        image=forged, replicas=1, strategy="rolling", health=victim.health, listen="127.0.0.1:1",
        app=AppSpec(release=Release(command=("/bin/busybox", "httpd", "-f", "-p", f"127.0.0.1:{port}",
                                             "-h", "/www"), timeout=60)))
    name = f"mainline-{attacker.service}-staging-release-{attacker.sha[:12]}"
    target.roll_out(victim, events())
    target.finish(victim, events())
    runner = threading.Thread(target=target.run_release, args=(attacker, lambda *a, **k: None), daemon=True)
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with suppress(NotFound):
                if docker_client.containers.get(name).status == "running":
                    break
            time.sleep(0.2)
        # Production's replica dies; the reconciler puts one back.
        for replica in target.load_balancer(victim.service, ENVIRONMENT, victim.listen).servers():
            docker_client.containers.get(replica.name).remove(force=True)
        sink = events()
        target.repair(victim, sink)
        assert "replica_reused" not in sink.steps, sink.lines
        lb = target.load_balancer(victim.service, ENVIRONMENT, victim.listen)
        assert name not in {s.name for s in lb.servers()}, sink.lines
        assert [r.sha for r in target.replicas(victim.service, ENVIRONMENT)] == [victim.sha]
        assert requests.get(f"http://{victim.listen}/", timeout=5).text.strip() == releases["v2"].body
        assert docker_client.containers.get(name).status == "running"  # the attacker's own run, untouched
    finally:
        with suppress(NotFound):
            docker_client.containers.get(name).kill()  # the release command ends; run_release removes it
        runner.join(30)
        with suppress(NotFound):
            docker_client.images.remove(forged, force=True)


# -- #18: another repository's reviewed config names a live ECS service it does not own -------------

ECS_CONFIG = """\
service: {service}
branch: master
environments:
  production:
    target: ecs
    auto_deploy: true
    deployers: ["github:{who}"]
    ecs: {{cluster: "{cluster}", service: "{ecs_service}", container: app, target_group_arn: "{tg}"}}
health: {{path: /health, interval: 0.1s, failures: 1, bake: 1s}}
"""


def test_redteam_s2_another_repository_cannot_deploy_into_an_ecs_service_it_does_not_own(tmp_path):
    from bot.domain import DeployRequest
    from tests.engine.world import CLONE, REPO, World

    tg = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop/0123456789abcdef"
    world = World(tmp_path, ECS_CONFIG.format(service="shop", who="octocat", cluster="prod", ecs_service="shop-web",
                                              tg=tg))
    world.ship(world.root)
    assert world.live() == world.root
    # acme/evil's own production branch (reviewed by acme/evil only) names shop's ECS service,
    # once by name and once by ARN, then its own service behind shop's target group.
    attempts = [("prod", "shop-web", tg + "-not-shops", "the ECS service shop-web of cluster prod in us-east-1"),
                ("arn:aws:ecs:us-east-1:123456789012:cluster/prod", "shop-web", tg + "-x",
                 "the ECS service shop-web of cluster prod in us-east-1"),
                ("prod", "evil-web", tg, f"the target group {tg}")]
    for i, (cluster, ecs_service, group, held) in enumerate(attempts):
        clone = f"https://github.com/acme/evil{i}.git"
        evil = world.git.commit(clone, "master", {".github/deploy.yml": ECS_CONFIG.format(
            service=f"evil{i}", who="eve", cluster=cluster, ecs_service=ecs_service, tg=group)}, "take shop's")
        created = world.pipeline.request(DeployRequest(f"acme/evil{i}", clone, "refs/heads/master", evil,
                                                       default_branch="master"))
        assert created == [], created
        assert not [d for d in world.store.deploys() if d.sha == evil]
        refusal = world.chat.notices[-1]  # the failing `mainline/config` check says whose it is
        assert (refusal.repo, refusal.state, refusal.data["gate"]) == (f"acme/evil{i}", "failed", "config")
        assert "environments.production.ecs" in refusal.data["reason"]
        assert f"{held} belongs to shop/production (from {REPO})" in refusal.data["reason"], refusal.data
    assert world.live() == world.root and world.head() == world.git.head(CLONE, "master")
    assert world.store.service("shop").repo == REPO


# -- #17: a signed delivery replayed under a new X-GitHub-Delivery (the header is not signed) --------


def test_redteam_s2_a_replayed_pr_command_under_a_new_delivery_id_acts_once(world):
    """Whoever holds one signed delivery (a repository admin sees each one, body, signature and
    all, under the webhook's Recent Deliveries) can post it again with a fresh delivery GUID: a
    deployer's old `/lock` must not lock the service again after they unlocked it."""
    import dataclasses

    from tests.handlers.test_github_issue_comment import FEATURE, bring_in, command

    bring_in(world)
    number = world.open_pr("feature/search", FEATURE, "Add search")
    _, lock_delivery = world.comment(number, "/lock incident 42", "octocat")
    assert world.post(lock_delivery).status_code == 202
    world.wired.process_delivery(lock_delivery.id)
    assert world.status()["locked"] == {"by": "github:octocat", "reason": "incident 42"}
    command(world, number, "/unlock", "octocat")
    assert world.status()["locked"] is None

    replay = dataclasses.replace(lock_delivery, id=str(uuid.uuid4()))
    assert world.post(replay).status_code == 202
    world.wired.process_delivery(replay.id)

    assert world.status()["locked"] is None, "a replayed /lock locked the service again"
    outcome = world.wired.store.delivery(replay.id).outcome
    assert "already answered" in outcome, outcome
    assert len(world.replies(number)) == 2  # the lock's answer and the unlock's, nothing more


# -- #18: a branch's own config names the ECS role, cluster and alarms of the environment it goes to --

ECS_STAGING = """\
service: shop
branch: master
environments:
  staging:
    target: ecs
    branches: ["*"]
    auto_deploy: true
    deployers: ["github:octocat"]
    ecs:
      cluster: "{cluster}"
      service: shop-staging
      container: app
      alarms: ["{alarm}"]
      assume_role: {{arn: "arn:aws:iam::{account}:role/{role}", external_id: "{external}"}}
health: {{path: /health, interval: 0.1s, failures: 1, bake: 1s}}
"""


def test_redteam_s2_a_branch_cannot_choose_the_ecs_role_cluster_or_alarms_it_deploys_with(tmp_path):
    from bot.domain import DeployRequest
    from tests.engine.world import CLONE, REPO, World

    good = dict(cluster="staging", alarm="shop-5xx", account="111111111111", role="deploy-shop", external="shop-ext")
    world = World(tmp_path, ECS_STAGING.format(**good))
    seen: list = []
    world.pipeline.ctx.w.target_for = lambda service, environment, config: seen.append(config) or world.target
    world.ship(world.root)
    master, before = world.head(), len(seen)
    evil = ECS_STAGING.format(cluster="production", alarm="none", account="222222222222", role="admin",
                              external="stolen")
    sha = world.git.commit(CLONE, "feature/x", {".github/deploy.yml": evil, "app.py": "v2"}, "my role please")
    world.pipeline.request(DeployRequest(REPO, CLONE, "refs/heads/feature/x", sha))
    world.pipeline.drive("shop", "staging")

    assert world.deploy(sha).environment == "staging"  # the branch is deployed, as production allows ...
    assert len(seen) > before and world.state(sha).value == "live", world.state(sha)
    ecs = {(c.environments["staging"].ecs.cluster, c.environments["staging"].ecs.assume_role.arn,
            c.environments["staging"].ecs.assume_role.external_id, tuple(c.environments["staging"].ecs.alarms))
           for c in seen}
    # ... but only ever with the production branch head's ECS settings.
    assert ecs == {("staging", "arn:aws:iam::111111111111:role/deploy-shop", "shop-ext", ("shop-5xx",))}, ecs
    assert world.head() == master


def test_redteam_s2_a_replayed_push_of_an_older_release_never_rolls_production_back(tmp_path):
    """A signed push delivery of an older master head, posted again later under a new delivery
    GUID (or a `before`/`after` an admin copies), asks for a sha production already moved past."""
    from tests.engine.world import World

    world = World(tmp_path)
    world.ship(world.root)
    newer = world.merge({"app.py": "v2"}, "v2")
    world.ship(newer)
    assert world.live() == newer
    older = world.merge({"app.py": "v3"}, "v3")  # never shipped: its push was lost
    newest = world.merge({"app.py": "v4"}, "v4")
    world.ship(newest)
    world.push(world.root)
    world.push(older)
    world.drive()
    assert world.live() == newest, "a replayed push put an older release live"
    assert world.head() == newest


# -- #11: /promote and /abort in Slack by someone who may not deploy there ---------------------------


def test_redteam_s2_slack_canary_commands_need_a_deployer_of_that_environment(tmp_path):
    """A stranger, and a deployer of staging only, send `/abort web` (production) and `/promote`:
    both are told privately, and the running canary hears nothing."""
    from flask import Flask

    from bot.infra.slack.web import SlackWeb
    from bot.notify.slack_reporter import SlackReporter
    from handlers.slack import commands as slack_commands
    from handlers.slack.common import SlackDeps
    from sandbox.slack import SlackStandIn
    from tests.slack.slack_testkit import (
        DEPLOYER,
        SECRET,
        STAGER,
        STRANGER,
        TOKEN,
        FixedClock,
        PipelineDouble,
        Slash,
        fast_slack_api,
    )

    class Pipeline(PipelineDouble):
        def canary(self, service, environment, action, by):
            self._known(service)
            self.calls.append(("canary", service, environment, action, by))
            return {"id": 7, "service": service, "environment": environment, "sha": "a1b2c3d4e5f6", "action": action}

    pipeline = Pipeline()
    with SlackStandIn(token=TOKEN) as standin:
        chat = SlackReporter(SlackWeb(TOKEN, standin.url, policy=fast_slack_api), "#deploys", retry_pause=0.05)
        deps = SlackDeps(signing_secret=SECRET, pipeline=pipeline, chat=chat, clock=FixedClock(),
                         run_later=lambda job: job(), admins=frozenset())
        app = Flask("redteam-slack")
        app.register_blueprint(slack_commands.blueprint(deps))
        slash = Slash(app.test_client(), standin)
        for user, text in ((STRANGER, "web"), (STAGER, "web"), (STAGER, "web production")):
            for command in ("/abort", "/promote"):
                assert slash(command, text, user=user).status_code == 200
                answer = slash.answer
                assert answer["response_type"] == "ephemeral" and "not a deployer" in answer["text"], answer
        assert [c for c in pipeline.calls if c[0] == "canary"] == []
        slash("/abort", "web", user=DEPLOYER)
        assert [c for c in pipeline.calls if c[0] == "canary"] == [
            ("canary", "web", "production", "abort", f"slack:{DEPLOYER}")]
        chat.close()


# -- #17: `mainline setup github`'s local callback reached under another host name (DNS rebinding) ----


def test_redteam_s2_the_setup_callback_answers_only_as_127_0_0_1():
    """A web page whose name the attacker re-points at 127.0.0.1 reads `/` (which holds the state)
    and sends its own App's code to `/callback`: the Host header names the attacker's site, and
    neither answers."""
    from bot.cli_setup import Callback

    with Callback(0) as callback:
        callback.post_manifest({"name": "mainline"}, "https://github.example/settings/apps/new")
        port = callback.server.server_address[1]
        rebound = {"Host": f"evil.example:{port}"}
        page = requests.get(f"{callback.url}/", headers=rebound, timeout=5)
        assert page.status_code == 421 and callback.state not in page.text
        sent = requests.get(f"{callback.url}/callback?state={callback.state}&code=attackerscode123",
                            headers=rebound, timeout=5)
        assert sent.status_code == 421 and callback.codes.empty()
        # The person's own browser, on 127.0.0.1 or localhost, is served as before.
        assert callback.state in requests.get(f"{callback.url}/", timeout=5).text
        assert requests.get(f"http://localhost:{port}/", timeout=5).status_code == 200
