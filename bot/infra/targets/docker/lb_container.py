"""HAProxy in a container on a Docker host: the load balancer runs where the replicas run, not
where the worker runs (`load_balancer: {host: URL}` in deploy.yml).

The container runs MAINLINE_HAPROXY_IMAGE with host networking, so it binds `listen` on that
host. Its haproxy.cfg (and the TLS certificate) are copied in through the Docker API before it
starts. The runtime API is a unix socket inside the container, reached with `docker exec …
socat`: nothing else on the host, a replica on the host network included, can reach it. The
same config, commands and answers as the local HAProxy; only how they travel differs.
"""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import replace
from pathlib import Path
from typing import Any

from docker.errors import ImageNotFound, NotFound

from bot.infra.targets.docker.haproxy import (
    BACKEND,
    CONFIG,
    HAProxy,
    HAProxyError,
    UnsafeConfigError,
    _safe_listen,
    _safe_name,
    restore,
    with_tls,
)
from bot.infra.targets.docker.tls import TlsSettings
from bot.ports import EventSink

INSIDE = Path("/mainline")  # where the config, the certificate and the admin socket live in the container
LABEL_LB = "mainline.lb"  # service/environment, on the load balancer's container
# The command travels as an argument ("$1"), never as shell text.
RELAY = 'printf "%s\\n" "$1" | socat -t 10 - UNIX-CONNECT:' + str(INSIDE / "admin.sock")


class ContainerHAProxy(HAProxy):
    """The HAProxy of one (service, environment) as a container on the host `client()` reaches."""

    def __init__(self, state_dir: Path, service: str, environment: str, listen: str,
                 client: Callable[[], Any], image: str, address: str, tls: TlsSettings | None = None,
                 where: str = "a Docker host"):
        super().__init__(state_dir, service, environment, listen, tls=tls)
        self._client = client
        self.image = image
        self.address = address  # the host's, as the worker reaches it
        self.where = where
        self.name = f"mainline-lb-{service}-{environment}"
        self.socket_path = INSIDE / "admin.sock"

    # -- process ---------------------------------------------------------------------------

    def _container(self) -> Any | None:
        try:
            return self._client().containers.get(self.name)
        except NotFound:
            return None

    def pid(self) -> int | None:
        container = self._container()
        if container is None or container.status != "running":
            return None
        return int(container.attrs.get("State", {}).get("Pid") or 0) or None

    def running(self) -> bool:
        container = self._container()
        return container is not None and container.status == "running" and self._answers()

    def ensure_running(self) -> bool:
        container = self._container()
        if container is not None and container.status == "running":
            if self._wait_answers(5.0):
                if self._config_changed():
                    self._restart_keeping_servers()
                    return True
                return False
            raise HAProxyError(f"the load balancer container {self.name} runs but its runtime API does not answer")
        if container is None or container.status != "created" or self._config_changed():
            container = self.prepare()
        container.start()
        created = container
        if not self._wait_answers(10.0):
            created.reload()
            logs = created.logs(tail=20).decode(errors="replace").strip()[-2000:]
            raise HAProxyError(f"haproxy for {self.service} on {self.listen} ({self.name}) did not start: {logs}")
        return True

    def prepare(self) -> Any:
        """The container, made with its config and not started (anything there before removed).
        Docker starts it again after the engine restarts; its servers come back by the reconciler."""
        container = self._container()
        if container is not None:
            if container.status == "created" and not self._config_changed():
                return container
            container.remove(force=True)  # exited, or another config: its dynamic servers are gone with it
        client = self._client()
        kwargs = {"name": self.name, "network_mode": "host", "labels": {LABEL_LB: self.name},
                  "command": ["haproxy", "-db", "-f", str(INSIDE / "haproxy.cfg")],
                  "restart_policy": {"Name": "unless-stopped"}}
        try:
            created = client.containers.create(self.image, **kwargs)
        except ImageNotFound:
            client.images.pull(self.image)
            created = client.containers.create(self.image, **kwargs)
        if not created.put_archive(str(INSIDE), self._archive(self.render())):
            raise HAProxyError(f"could not copy haproxy.cfg into {self.name}: the image needs a writable {INSIDE}")
        return created

    def render(self) -> str:
        """haproxy.cfg as the container reads it: its certificate is the copy inside, and no
        metrics frontend (it would bind the host's loopback, which only that host reaches)."""
        values = {"socket": str(self.socket_path), "service": _safe_name("service", self.service),
                  "listen": _safe_listen(self.listen), "backend": BACKEND}
        text = CONFIG.format(**values)
        if text.count("\n") != CONFIG.count("\n"):
            raise UnsafeConfigError("a load balancer value would add lines to haproxy.cfg")
        inside = replace(self.tls, certificate=INSIDE / "cert.pem") if self.tls else None
        return with_tls(text, self.service, self.listen, inside)

    def _config_changed(self) -> bool:
        """Compared with the config the container runs (read back through the Docker API), so
        every worker, wherever it runs, sees the same answer."""
        container = self._container()
        if container is None:
            return True
        try:
            stream, _ = container.get_archive(str(INSIDE / "haproxy.cfg"))
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
                member = tar.extractfile("haproxy.cfg")
                running = member.read().decode(errors="replace") if member is not None else ""
        except (NotFound, tarfile.TarError):
            return True
        return running != self.render()

    def _archive(self, config: str) -> bytes:
        """haproxy.cfg and the certificate, for /mainline (which the image provides, writable
        by the user HAProxy runs as: it makes its admin socket there)."""
        files = {"haproxy.cfg": config.encode()}
        if self.tls is not None:
            files["cert.pem"] = self.tls.certificate.read_bytes()
        data = io.BytesIO()
        with tarfile.open(fileobj=data, mode="w") as tar:
            for name, body in files.items():
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(body), 0o644, int(time.time())
                tar.addfile(info, io.BytesIO(body))
        return data.getvalue()

    def metrics_address(self) -> str | None:
        return None  # the exporter binds the host's loopback, which only that host reaches

    def stop(self) -> None:
        container = self._container()
        if container is not None:
            with suppress(NotFound):
                container.remove(force=True)

    # -- runtime API -----------------------------------------------------------------------

    def _send(self, line: str) -> str:
        container = self._container()
        if container is None or container.status != "running":
            raise HAProxyError(f"the load balancer container {self.name} is not running")
        code, output = container.exec_run(["sh", "-c", RELAY, "sh", line], stdout=True, stderr=True)
        text = (output or b"").decode(errors="replace")
        if code != 0:
            raise HAProxyError(f"haproxy runtime API in {self.name}: {text.strip()[-500:] or f'exit {code}'}")
        return text


def constantly(client: Any) -> Callable[[], Any]:
    return lambda: client


def take_over(lb: HAProxy, previous: list[HAProxy], what: str, on_event: EventSink) -> None:
    """The environment's load balancer moved (beside the worker <-> onto a Docker host, or to
    another host): each previous one hands its servers, in their states, to `lb`, then stops.
    Stopped first, since both may bind the same address: requests are refused for as long as the
    new one takes to start (about a second)."""
    for old in previous:
        kept = old.servers() if old.running() else []
        if isinstance(lb, ContainerHAProxy):
            lb.prepare()  # made and filled beforehand: only its start is left for the gap
        old.stop()
        lb.ensure_running()
        restore(lb, kept)
        on_event(f"moved the load balancer of {what} from {old.where} to {lb.where}, with its "
                 f"{len(kept)} server(s)", step="lb_moved")
