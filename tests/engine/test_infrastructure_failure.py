"""A rollout the infrastructure stopped (an image ECS cannot pull, tasks it cannot place,
another deploy replacing ours) ends `failed`: production is put back on the old release when it
had changed, nothing is marked bad, nothing is reverted, and the reason is told."""

from __future__ import annotations

from bot.domain import DeployState
from bot.errors import InfrastructureFailure
from tests.engine.world import World

S = DeployState


def ship_good(w: World) -> str:
    good = w.merge({"app.py": "v1"})
    w.ship(good)
    assert w.state(good) is S.LIVE
    return good


def test_an_image_that_cannot_be_pulled_fails_without_a_revert_and_production_is_restored(tmp_path):
    w = World(tmp_path)
    good = ship_good(w)
    sha = w.merge({"app.py": "v2"})

    def cannot_pull(plan):
        if plan.sha == sha:
            w.target.serving[("shop", "production")] = plan.image  # ECS had started it
            raise InfrastructureFailure("ECS deployment ecs-svc/1 failed: the image could not be pulled; task 1f2e: "
                                        "CannotPullContainerError: not found", "image-pull",
                                        ("task 1f2e: CannotPullContainerError: not found",))

    w.target.hooks["roll_out"] = cannot_pull
    w.ship(sha)

    d = w.deploy(sha)
    assert d.state == "failed" and d.reason.startswith("infrastructure: image-pull: ")
    assert "CannotPullContainerError" in d.reason
    assert w.live() == good and w.git.pushes == [] and w.head() == sha  # master ahead, nothing reverted
    assert w.target.serving[("shop", "production")] == w.image(good)
    told = [n.message for n in w.chat.notices if n.deploy_id == d.id]
    assert any("not the release's fault (image-pull)" in m for m in told)
    svc = w.store.service("shop")
    assert all(r.status != "bad" for r in w.store.releases(svc.id, "production"))


def test_a_replaced_deployment_fails_without_touching_the_service(tmp_path):
    w = World(tmp_path)
    good = ship_good(w)
    sha = w.merge({"app.py": "v2"})
    rollouts_before = list(w.target.rollouts)

    def replaced(plan):
        if plan.sha == sha:
            raise InfrastructureFailure("ECS deployment ecs-svc/2 was replaced by another deploy of web",
                                        "replaced", restore=False)

    w.target.hooks["roll_out"] = replaced
    w.ship(sha)

    d = w.deploy(sha)
    assert d.state == "failed" and d.reason.startswith("infrastructure: replaced: ")
    assert w.target.rollouts == rollouts_before, "no rollback overwrote the other deploy"
    assert w.git.pushes == [] and w.live() == good
