"""A head of master whose config is refused (here: a Docker host the operator did not allow) and
that no webhook announced: the reconciler picks it up, its `mainline/config` check fails naming
the line, and later passes do not say it again (they said it every few seconds)."""

from __future__ import annotations

from tests.engine.world import CONFIG, World


def test_a_refused_head_is_said_once_not_at_every_pass(tmp_path):
    w = World(tmp_path)
    w.ship(w.root)
    hostile = CONFIG.replace("    replicas: 2\n", "    replicas: 2\n    hosts: ['ssh://root@203.0.113.9']\n")
    assert hostile != CONFIG
    sha = w.merge({".github/deploy.yml": hostile}, "Deploy to a host of my choosing")
    def refusals() -> list:
        return [n for n in w.chat.notices if n.sha == sha and n.data.get("gate") == "config"]

    w.pipeline.reconcile()  # the reconciler picks the head up (and the watchdog, bound 0 here, once)
    said = len(refusals())
    assert said >= 1
    for _ in range(4):
        w.pipeline.reconcile()
    assert len(refusals()) == said, refusals()
    assert "is not in MAINLINE_DOCKER_HOSTS" in refusals()[0].data["reason"]
    assert "environments.production.hosts.0" in refusals()[0].data["reason"]
    assert w.live() == w.root  # nothing deployed
    # A new head is looked at anew.
    fixed = w.merge({".github/deploy.yml": CONFIG}, "Back to our own hosts")
    w.pipeline.reconcile()
    assert any(d.sha == fixed for d in w.store.deploys())
