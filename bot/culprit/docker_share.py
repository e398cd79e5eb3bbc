"""`culprit.mode: canary` on a Docker host: the candidate's replica takes `culprit.weight` percent
of the production load balancer's requests next to the live replicas, for its bake only. Its 5xx
answers to real users count in its verdict. Whatever happens, it leaves the load balancer at the
end with the live replicas' weights as they were (a killed worker's left-over is a server no
container backs, which the target's next rollout retires)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from bot.canary.haproxy_stats import counts_of
from bot.errors import TransientError
from bot.infra.targets.docker.canary import weights
from bot.infra.targets.docker.haproxy import HAProxy
from bot.ports import EventSink

Responses = Callable[[], tuple[int, int]]  # the candidate's (5xx, all) responses so far


@contextmanager
def weighted(lb: HAProxy, name: str, address: str, percent: int, on_event: EventSink) -> Iterator[Responses]:
    if not lb.running():
        raise TransientError("the load balancer does not answer: no traffic to share with the candidate")
    baseline = {s.name: lb.weight(s.name) for s in lb.servers() if s.serving and s.name != name}
    if not baseline:
        raise TransientError("nothing serves in the load balancer: no traffic to share with the candidate")
    try:
        lb.add(name, address)
        lb.set_weight(name, 0)
        lb.enable(name)
        canary, live = weights(percent, len(baseline))
        for server in baseline:
            lb.set_weight(server, live)
        lb.set_weight(name, canary)
        on_event(f"{name} takes {percent}% of the requests next to {len(baseline)} live replica(s)",
                 step="candidate_weighted", replica=name, weight=percent)
        yield lambda: counts_of(lb.stat_rows()).get(name, (0, 0))
    finally:
        if lb.server(name) is not None:
            lb.set_weight(name, 0)
        for server, weight in baseline.items():
            lb.set_weight(server, max(weight, 1))
        if lb.server(name) is not None:
            lb.drain(name)
            lb.wait_drained(name, 10)
            lb.delete(name)
        on_event(f"{name} left the load balancer; the live replicas take every request again",
                 step="candidate_unweighted", replica=name)
