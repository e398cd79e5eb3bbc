"""A Docker host that does not answer when the reconciler repairs a live release: the repair's
events (the deploy's history, a Slack line) say so, besides what it did; a pass with nothing to
do says nothing."""

from __future__ import annotations

from tests.engine.world import World
from tests.fakes import FakeTarget

GONE = ("Docker host ssh://deploy@10.0.0.6 does not answer (connection refused); its replicas are replaced on "
        "unix:///var/run/docker.sock")


class HostsTarget(FakeTarget):
    def __init__(self) -> None:
        super().__init__()
        self.repairs: list[str] = []
        self.down = False

    def repair(self, plan, on_event) -> list[str]:
        if self.down:
            on_event(GONE, step="host_down", host="ssh://deploy@10.0.0.6")
        done, self.repairs = self.repairs, []
        return done


def test_a_repair_says_which_docker_host_did_not_answer(tmp_path):
    w = World(tmp_path)
    w.target = HostsTarget()
    w.pipeline.w.target_for = lambda service, environment, config: w.target
    w.push(w.root)
    w.drive()
    assert w.live() == w.root
    w.target.down = True
    w.target.repairs = ["shop had 1 of 2 web replicas; put mainline-shop-production-abc-1 into service"]
    w.pipeline.reconcile()
    repairs = [e.message for e in w.store.events_ if e.kind == "repair"]
    assert repairs == [f"repaired {w.root[:12]}: {GONE}",
                       f"repaired {w.root[:12]}: shop had 1 of 2 web replicas; put mainline-shop-production-abc-1 "
                       "into service"]
    assert any(GONE in n.message for n in w.chat.notices if n.kind == "alert" and n.data.get("repair"))
    w.pipeline.reconcile()  # still down, nothing left to do: nothing more is said
    assert len([e for e in w.store.events_ if e.kind == "repair"]) == 2
