"""The Docker canary's decisions, over a load balancer that counts like HAProxy's runtime stats:
a bad canary goes to weight 0 before anything else and the baseline is never touched; a good
one is promoted step by step; too little traffic stops without a revert; a person's pause,
promote and abort are obeyed. (Real Docker, HAProxy and Prometheus: tests/e2e/test_canary_story.py.)"""

from __future__ import annotations

import pytest

from bot.canary.errors import CanaryFailedError, CanaryStuckError
from bot.canary.policy import CanaryPolicy, CanaryStep, MetricSpec
from bot.domain import HealthPolicy, RolloutPlan
from bot.infra.targets.docker.canary import DockerCanary, weights
from bot.infra.targets.docker.haproxy import Server
from bot.infra.targets.docker.world import Instance, World

OLD, NEW = "a" * 40, "b" * 40


class FakeLB:
    """Servers with weights; each `show stat` serves `per_read` more requests, split by weight."""

    def __init__(self, per_read: int = 1000, canary_errors: float = 0.0):
        self.weights: dict[str, int] = {}
        self.enabled: set[str] = set()
        self.counts: dict[str, list[int]] = {}
        self.per_read, self.canary_errors = per_read, canary_errors
        self.log: list[str] = []

    def add(self, name, address):
        self.weights[name] = 1
        self.counts[name] = [0, 0]

    def enable(self, name):
        self.enabled.add(name)

    def set_weight(self, name, weight):
        self.weights[name] = weight
        self.log.append(f"weight {name} {weight}")

    def server(self, name):
        return Server(name, "", "ready", 0) if name in self.weights else None

    def metrics_address(self):
        return None  # started without the exporter: HAProxy's runtime stats are the source

    def stat_rows(self):
        live = {n: w for n, w in self.weights.items() if n in self.enabled}
        total = sum(live.values()) or 1
        rows = []
        for name, weight in live.items():
            served = self.per_read * weight // total
            errors = int(served * self.canary_errors) if NEW[:12] in name else 0
            self.counts[name][0] += errors
            self.counts[name][1] += served
            e, t = self.counts[name]
            rows.append({"svname": name, "hrsp_5xx": str(e), "hrsp_2xx": str(t - e), "rtime": "2"})
        return rows


class FakeTarget:
    def __init__(self, tmp_path, lb: FakeLB, baseline: int = 2):
        self.state_dir, self.lb = tmp_path, lb
        self.instances = [Instance(f"web-{OLD[:12]}-{n}", OLD, 20000 + n, "old", True, None) for n in range(baseline)]
        for inst in self.instances:
            lb.add(inst.name, inst.address)
            lb.enable(inst.name)
        self.rolled, self.retired = False, []

    def _observe(self, service, environment, lb):
        return World(list(self.instances), {n: Server(n, "", "ready", 0) for n in lb.enabled if n in lb.weights})

    def _start(self, plan, world, on_event):
        inst = Instance(f"web-{plan.sha[:12]}-1", plan.sha, 21000, plan.image, True, None)
        self.instances.append(inst)
        return inst

    def _await_healthy(self, plan, inst, on_event, remove_on_failure):
        pass

    def _retire(self, lb, name, inst, on_event):
        self.lb.log.append(f"retire {name}")
        self.retired.append(name)
        lb.enabled.discard(name)
        lb.weights.pop(name, None)
        self.instances = [i for i in self.instances if i.name != name]

    def _rolling(self, plan, lb, on_event):
        self.rolled = True


def policy(**kw) -> CanaryPolicy:
    values = dict(steps=(CanaryStep(10, 0.0), CanaryStep(50, 0.0)), interval=0.01, min_requests=50,
                  failure_limit=1, inconclusive_limit=3,
                  metrics=(MetricSpec("error-rate", builtin="http_5xx_ratio", max_increase=0.01),))
    values.update(kw)
    return CanaryPolicy(**values)


def run(tmp_path, lb, commands=(), baseline=2, **kw):
    pending = list(commands)
    plan = RolloutPlan("web", "production", NEW, "new", 2, "canary", HealthPolicy(), "127.0.0.1:8080",
                       canary=policy(**kw), control=lambda: pending.pop(0) if pending else None)
    target, events = FakeTarget(tmp_path, lb, baseline), []
    canary = DockerCanary(target, plan, lb, lambda message, **data: events.append((message, data)))
    return target, events, canary


def verdicts(events):
    return [d for _, d in events if d.get("kind") == "canary"]


def test_a_bad_canary_goes_to_weight_zero_first_and_the_baseline_keeps_serving(tmp_path):
    lb = FakeLB(canary_errors=0.2)
    target, events, canary = run(tmp_path, lb)
    with pytest.raises(CanaryFailedError, match=r"canary failed at step 1 \(10%\): canary 5xx 20.0%"):
        canary.run()
    canary_name = f"web-{NEW[:12]}-1"
    zero = lb.log.index(f"weight {canary_name} 0")
    assert lb.log.index(f"retire {canary_name}") > zero
    assert target.retired == [canary_name] and not target.rolled
    assert all(n in lb.enabled for n in (f"web-{OLD[:12]}-0", f"web-{OLD[:12]}-1"))
    [failed] = verdicts(events)
    assert failed["verdict"] == "fail" and failed["weight"] == 10 and failed["step"] == 1 and failed["notify"]
    assert failed["metrics"][0]["result"] == "fail" and failed["metrics"][0]["p_value"] < 0.001


def test_a_good_canary_is_promoted_step_by_step_then_the_rest_replaced(tmp_path):
    lb = FakeLB()
    target, events, canary = run(tmp_path, lb)
    canary.run()
    assert [(v["step"], v["weight"], v["verdict"]) for v in verdicts(events)] == [(1, 10, "pass"), (2, 50, "pass")]
    assert target.rolled and target.retired == []
    assert all(w == 1 for w in lb.weights.values())


def test_too_little_traffic_stops_the_canary_without_a_revert(tmp_path):
    lb = FakeLB(per_read=100)  # 10 requests a read reach the canary: never 50
    target, events, canary = run(tmp_path, lb, min_requests=10_000)
    with pytest.raises(CanaryStuckError, match=r"judged after 3 inconclusive intervals.*nothing is reverted"):
        canary.run()
    assert target.retired == [f"web-{NEW[:12]}-1"] and not target.rolled
    assert [v["verdict"] for v in verdicts(events)] == ["inconclusive"] * 3


def test_a_person_aborts_the_canary(tmp_path):
    lb = FakeLB()
    target, _, canary = run(tmp_path, lb, commands=["abort"])
    with pytest.raises(CanaryFailedError, match="a person aborted the canary at step 1"):
        canary.run()
    assert target.retired == [f"web-{NEW[:12]}-1"]


def test_a_paused_canary_judges_nothing_until_promoted(tmp_path):
    lb = FakeLB()
    target, events, canary = run(tmp_path, lb, commands=["pause", None, None, "promote"])
    canary.run()
    first = verdicts(events)[0]
    assert first["verdict"] == "paused" and first["weight"] == 10
    assert [v["step"] for v in verdicts(events)[1:]] == [2]  # step 1 was promoted by hand, unjudged
    assert target.rolled


def test_with_nothing_serving_there_is_no_canary(tmp_path):
    lb = FakeLB()
    target, events, canary = run(tmp_path, lb, baseline=0)
    canary.run()
    assert target.rolled and not verdicts(events)
    assert "nothing to compare a canary with" in events[0][0]


def test_a_prometheus_the_operator_did_not_allow_stops_before_anything_changes(tmp_path):
    lb = FakeLB()
    target, _, canary = run(tmp_path, lb, refused="prometheus url http://10.0.0.1:9090 is not in "
                                                  "MAINLINE_PROMETHEUS_URLS")
    with pytest.raises(CanaryStuckError, match="MAINLINE_PROMETHEUS_URLS"):
        canary.run()
    assert len(target.instances) == 2 and not target.rolled


@pytest.mark.parametrize(("percent", "baseline"), [(10, 1), (10, 2), (50, 2), (25, 5), (1, 50), (99, 3)])
def test_weights_give_the_canary_its_share(percent, baseline):
    wc, wb = weights(percent, baseline)
    assert 1 <= wc <= 256 and 1 <= wb <= 256
    assert abs(wc / (wc + baseline * wb) - percent / 100) < 0.01
