"""A secret reference and a TLS certificate belong to the service whose production config named
them first: another repository naming them (to have its own app print their values) is refused
with a failing `mainline/config` check that names the owner, and nothing of it deploys."""

from __future__ import annotations

import pytest

from bot.domain import DeployRequest
from tests.engine.world import CLONE, REPO, World

APP = """\
service: {service}
branch: master
environments:
  production:
    target: docker
    auto_deploy: true
    listen: "127.0.0.1:{port}"
    deployers: ["github:{who}"]
    secrets: {{DATABASE_URL: "{secret}"}}
{tls}health: {{path: /health, interval: 0.1s, failures: 1, bake: 1s}}
"""
SHOP = APP.format(service="shop", port=18080, who="octocat", secret="aws-secretsmanager:prod/shop/db",
                  tls="    tls: {certificate: shop.pem}\n")


@pytest.mark.parametrize(("secret", "tls", "key", "held"), [
    ("aws-secretsmanager:prod/shop/db", "", "secrets", "the secret aws-secretsmanager:prod/shop/db"),
    ("file:evil-own", "    tls: {certificate: shop.pem}\n", "tls", "the TLS certificate file:shop.pem"),
], ids=["shops-database-password", "shops-tls-key"])
def test_attack_another_repository_cannot_read_a_secret_it_does_not_own(tmp_path, secret, tls, key, held):
    world = World(tmp_path, SHOP)
    world.ship(world.root)
    clone = "https://github.com/acme/evil.git"
    evil = world.git.commit(clone, "master", {".github/deploy.yml": APP.format(
        service="evil", port=18099, who="eve", secret=secret, tls=tls)}, "print shop's secrets")

    created = world.pipeline.request(DeployRequest("acme/evil", clone, "refs/heads/master", evil,
                                                   default_branch="master"))

    assert created == [] and not [d for d in world.store.deploys() if d.sha == evil]
    refusal = world.chat.notices[-1]  # the failing `mainline/config` check on acme/evil's commit
    assert (refusal.repo, refusal.state, refusal.data["gate"]) == ("acme/evil", "failed", "config")
    assert f"environments.production.{key}" in refusal.data["reason"]
    assert f"{held} belongs to shop/production (from {REPO})" in refusal.data["reason"], refusal.data
    assert world.live() == world.root and world.head() == world.git.head(CLONE, "master")


def test_a_service_keeps_its_own_secrets_from_release_to_release(tmp_path):
    world = World(tmp_path, SHOP)
    world.ship(world.root)
    second = world.merge({"app.txt": "v2"})
    world.ship(second)
    assert world.live() == second
