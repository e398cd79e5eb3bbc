"""How often a Fleet looks at a Docker host that does not answer: one that refuses at once is
looked at every second; one whose look times out (every worker thread waits on it) only every
SLOW_RETRY seconds. On a clock of the test's, with hosts that are never contacted."""

from __future__ import annotations

import pytest
from docker.errors import DockerException

from bot.domain.app import DockerHost
from bot.infra.targets.docker import hosts
from bot.infra.targets.docker.hosts import FRESH, SLOW_RETRY, Fleet

SLOW = DockerHost("tcp://127.0.0.1:9", "tls")
FAST = DockerHost("tcp://127.0.0.1:7", "tls")


class Access:
    """Connects nowhere: the slow host takes 2 s of the test's clock to time out, the fast one
    is refused at once."""

    def __init__(self, clock: list[float]):
        self.clock = clock
        self.looks = {SLOW.url: 0, FAST.url: 0}

    def connect(self, host: DockerHost):
        self.looks[host.url] += 1
        if host == SLOW:
            self.clock[0] += 2.0
            raise TimeoutError("timed out")
        raise ConnectionRefusedError(111, "Connection refused")


def test_a_host_that_times_out_is_looked_at_again_only_after_a_while(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(hosts.time, "monotonic", lambda: clock[0])
    access = Access(clock)
    fleet = Fleet((SLOW, FAST), access)  # type: ignore[arg-type]

    def look() -> None:
        with pytest.raises(DockerException, match="no Docker host answers"):
            fleet.live()
        clock[0] += FRESH + 0.1

    look()
    assert fleet.down == {SLOW.url: "timed out", FAST.url: "[Errno 111] Connection refused"}
    for _ in range(3):
        look()
    assert access.looks == {SLOW.url: 1, FAST.url: 4}
    clock[0] += SLOW_RETRY
    look()
    assert access.looks == {SLOW.url: 2, FAST.url: 5}
    assert set(fleet.down) == {SLOW.url, FAST.url}  # still said to be down between looks
