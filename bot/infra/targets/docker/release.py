"""The release command on a Docker host: one container of the new image, with the env and
secrets of the release, run to completion within its timeout, then removed. Its output tail is
returned with every secret value masked. It carries no service label, so no roll-out, finish or
repair ever counts it as a replica."""

from __future__ import annotations

from contextlib import suppress

import requests
from docker.errors import NotFound

from bot.domain import RolloutPlan
from bot.domain.app import Role
from bot.infra.http_probe import sanitize
from bot.infra.targets.docker.containers import ContainerOps
from bot.infra.targets.docker.world import NOT_A_REPLICA
from bot.ports import EventSink

LABEL_RELEASE = "mainline.release"
TAIL_LINES = 50


class ReleaseOps(ContainerOps):
    def _run_release(self, plan: RolloutPlan, on_event: EventSink) -> tuple[bool, str]:
        release = plan.app.release
        if release is None:
            return True, ""
        spec = self._spec()
        name = f"mainline-{plan.service}-{plan.environment}-release-{plan.sha[:12]}"
        with suppress(NotFound):  # a leftover of a run a crash interrupted
            self.client.containers.get(name).remove(force=True)
        kwargs = spec.run_kwargs(Role("release", release.command), None)
        del kwargs["restart_policy"]  # one-off: it must not come back when it exits
        container = self.client.containers.run(plan.image, detach=True, name=name, network_mode="host",
                                               labels={**NOT_A_REPLICA,
                                                       LABEL_RELEASE: f"{plan.service}/{plan.environment}"},
                                               **kwargs)
        on_event(f"started the release command in {name}", step="release_started", replica=name)
        try:
            try:
                code = int(container.wait(timeout=release.timeout).get("StatusCode", 1))
                why = f"exited with {code}"
            except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
                container.kill()
                code, why = -1, f"did not finish within {release.timeout:g}s; killed"
            output = container.logs(tail=TAIL_LINES).decode(errors="replace")
        finally:
            container.remove(force=True)
        tail = "\n".join(sanitize(line, 500) for line in spec.masker(output).splitlines()[-TAIL_LINES:])
        on_event(f"the release command {why}", step="release_finished", exit_code=code)
        return code == 0, tail or f"(no output; {why})"
