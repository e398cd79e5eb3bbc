"""Issue 16 in the engine, on the fakes: the release command held for a deployer's approval and
run once before the rollout; a failing one rolls nothing out and reverts; a secret that cannot
be resolved fails the deploy with nothing changed; the reconciler's repairs are events and
Slack lines, and never start a deploy."""

from __future__ import annotations

from bot.domain import DeployState
from bot.errors import SecretError, UnreachableError
from tests.engine.world import CONFIG, World
from tests.fakes import FakeTarget

S = DeployState
RELEASE = CONFIG.replace('    deployers: ["github:octocat"]\n', '    deployers: ["github:octocat"]\n'
                         '    release: {command: "python manage.py migrate", approval: required}\n')


class AppTarget(FakeTarget):
    def __init__(self) -> None:
        super().__init__()
        self.releases: list[str] = []
        self.failing: set[str] = set()
        self.repairs: list[str] = []

    def run_release(self, plan, on_event) -> tuple[bool, str]:
        self.releases.append(plan.image)
        return plan.image not in self.failing, "migrating\nmigration failed" if plan.image in self.failing else "ok"

    def repair(self, plan, on_event) -> list[str]:
        done, self.repairs = self.repairs, []
        return done


def world(tmp_path) -> World:
    w = World(tmp_path, RELEASE)
    w.target = AppTarget()
    w.pipeline.w.target_for = lambda service, environment, config: w.target
    return w


def approve_and_drive(w: World, sha: str) -> None:
    w.push(sha)
    w.drive()
    deploy = w.deploy(sha)
    assert deploy.state == S.QUEUED and "release" in (deploy.blocked_by or ""), deploy
    w.pipeline.approve(deploy.id, "github:octocat", True)
    w.drive()


def test_the_release_command_waits_for_approval_then_runs_once_before_the_rollout(tmp_path):
    w = world(tmp_path)
    approve_and_drive(w, w.root)
    assert w.state(w.root) == S.LIVE
    assert w.target.releases == [w.image(w.root)] and w.target.rollouts == [w.image(w.root)]
    events = [e.kind for e in w.store.events(w.deploy(w.root).id)]
    assert events.index("release_command") < max(i for i, k in enumerate(events) if k == "step")


def test_a_failing_release_command_rolls_nothing_out_and_is_reverted(tmp_path):
    w = world(tmp_path)
    approve_and_drive(w, w.root)
    bad = w.merge({"app.py": "v2"}, "v2")
    w.target.failing.add(w.image(bad))
    approve_and_drive(w, bad)
    assert w.state(bad) == S.REVERTED
    assert "release command failed: migration failed" in (w.deploy(bad).reason or "")
    assert w.image(bad) not in w.target.rollouts and w.live() != bad


def test_a_secret_that_cannot_be_resolved_fails_before_anything_changes(tmp_path):
    w = world(tmp_path)
    approve_and_drive(w, w.root)
    v2 = w.merge({"app.py": "v2"}, "v2")
    w.target.faults["roll_out"] = SecretError("aws-ssm:/prod/web/key could not be resolved: ParameterNotFound")
    approve_and_drive(w, v2)
    assert w.state(v2) == S.FAILED and "aws-ssm:/prod/web/key" in (w.deploy(v2).reason or "")
    assert w.live() == w.root and w.head() == v2  # nothing rolled back, nothing reverted


def test_repairs_are_events_and_slack_lines_and_start_no_deploy(tmp_path):
    w = world(tmp_path)
    approve_and_drive(w, w.root)
    before = len(w.store.deploys())
    w.target.repairs = ["mainline-shop-production-abc-1 had stopped; removed it"]
    w.pipeline.reconcile()
    repairs = [e for e in w.store.events_ if e.kind == "repair"]
    assert [e.message for e in repairs] == [f"repaired {w.root[:12]}: mainline-shop-production-abc-1 had stopped; "
                                            "removed it"]
    alerts = [n for n in w.chat.notices if n.kind == "alert" and n.data.get("repair")]
    assert len(alerts) == 1 and "had stopped" in alerts[0].message
    assert len(w.store.deploys()) == before


class FarTarget(AppTarget):
    """Its load balancer on a Docker host that stops answering for two passes."""

    def __init__(self) -> None:
        super().__init__()
        self.down = 0

    def in_shape(self, plan) -> bool:
        if self.down:
            self.down -= 1
            raise UnreachableError("the load balancer of shop/production runs on Docker host ssh://deploy@10.0.0.11, "
                                   "which does not answer ([Errno 111] Connection refused): shop/production is "
                                   "unreachable until it answers again")
        return True


def test_a_load_balancer_host_that_does_not_answer_is_said_once_and_when_it_is_back(tmp_path):
    w = World(tmp_path, RELEASE)
    w.target = FarTarget()
    w.pipeline.w.target_for = lambda service, environment, config: w.target
    approve_and_drive(w, w.root)
    w.target.down = 2
    for _ in range(4):
        w.pipeline.reconcile()
    said = [e.message for e in w.store.events_ if e.kind == "repair"]
    assert said == [f"live {w.root[:12]}: the load balancer of shop/production runs on Docker host "
                    "ssh://deploy@10.0.0.11, which does not answer ([Errno 111] Connection refused): "
                    "shop/production is unreachable until it answers again",
                    f"live {w.root[:12]}: the load balancer answers again"]
    alerts = [n.message for n in w.chat.notices if n.kind == "alert"]
    assert len(alerts) == 2 and "unreachable" in alerts[0] and "answers again" in alerts[1]
