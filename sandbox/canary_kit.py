"""What the canary story, its test and its bench share: a sample app whose `GET /` fails a given
share of requests (its /health stays fine), a real Prometheus of our own on a free port that
discovers each HAProxy exporter through file_sd, and steady load that counts what users saw."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from sandbox.sample_app import write_sample_app

PROMETHEUS_BIN = shutil.which("prometheus") or "/usr/bin/prometheus"

# index.cgi for `GET /`: answers 500 to `errors` percent of requests (busybox sh's $RANDOM).
FLAKY_CGI = """\
#!/bin/busybox sh
version=unknown errors=0
while IFS='=' read -r key value; do
  case "$key" in
    version) version=$value ;;
    errors) errors=$value ;;
  esac
done < /etc/app.conf
answer() { printf 'Status: %s\\r\\nContent-Type: text/plain\\r\\n\\r\\n%s\\n' "$1" "$2"; }
case "$REQUEST_URI" in
  /health/*|/health) answer "200 OK" ok ;;
  *) if [ $((RANDOM % 100)) -lt "$errors" ]; then answer "500 Internal Server Error" "error from $version"
     else answer "200 OK" "$version"; fi ;;
esac
"""

CANARY_YML = """\
service: {service}
branch: master
environments:
  production:
    target: docker
    auto_deploy: true
    strategy: canary
    replicas: 2
    listen: "{listen}"
    canary:
      steps: [{{weight: 10, pause: {pause}}}, {{weight: 50, pause: {pause}}}]
      analysis:
        interval: {interval}
        min_requests: {min_requests}
        failure_limit: 1
        inconclusive_limit: {inconclusive_limit}
        metrics:
          - {{name: error-rate, builtin: http_5xx_ratio, compare: baseline, max_increase: 0.01}}
          - {{name: queued, max: 100,
             prometheus: 'sum(haproxy_backend_current_queue{{mainline_service="{{{{service}}}}"}}) or vector(0)'}}
{prometheus}health: {{path: /health, interval: 0.5s, failures: 3, bake: {bake}, timeout: 20s, max_error_rate: 0.05}}
rollback: {{auto: true, revert: pull-request}}
"""


@dataclass(frozen=True)
class CanaryApp:
    service: str
    lb_port: int
    prometheus_url: str | None
    pause: str = "2s"
    interval: str = "1s"
    min_requests: int = 40
    # Patient: on a busy machine the load may reach only ~100 requests/s, 10 of them the canary's.
    inconclusive_limit: int = 10
    bake: str = "2s"

    def files(self, version: str, errors: int = 0) -> dict[str, bytes | None]:
        """The repository at `version`, whose `GET /` fails `errors` percent of requests (None:
        a file the commit deletes)."""
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            write_sample_app(root, f"{self.service} {version}", listen=f"127.0.0.1:{self.lb_port}")
            if errors:
                (root / "www" / "index.html").unlink()  # `GET /` falls through to index.cgi
                (root / "www" / "cgi-bin" / "index.cgi").write_text(FLAKY_CGI)
                (root / "app.conf").write_text(f"version={self.service} {version}\nerrors={errors}\n")
            (root / ".github" / "deploy.yml").write_text(self.deploy_yml())
            files: dict[str, bytes | None] = {str(p.relative_to(root)): p.read_bytes()
                                              for p in root.rglob("*") if p.is_file()}
            if errors:
                files["www/index.html"] = None
            return files

    def write(self, dest: Path, version: str, errors: int = 0) -> Path:
        """The repository at `version` written into `dest` (a build context)."""
        for name, data in self.files(version, errors).items():
            if data is not None:
                path = Path(dest) / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                if data.startswith((b"#!", b"\x7fELF")):
                    path.chmod(0o755)
        return Path(dest)

    def deploy_yml(self) -> str:
        prom = f'    prometheus: {{url: "{self.prometheus_url}"}}\n' if self.prometheus_url else ""
        text = CANARY_YML.format(service=self.service, listen=f"127.0.0.1:{self.lb_port}", pause=self.pause,
                                 interval=self.interval, min_requests=self.min_requests,
                                 inconclusive_limit=self.inconclusive_limit, prometheus=prom, bake=self.bake)
        if not self.prometheus_url:  # user queries need a Prometheus: keep the built-in only
            text = "\n".join(line for line in text.splitlines() if "queued" not in line and "vector(0)" not in line)
            text += "\n"
        return text


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrometheusServer:
    """Debian's prometheus, ours alone: a free port, its own data dir, scraping every HAProxy
    exporter Mainline publishes under `<state>/prometheus/*.json` each second."""

    def __init__(self, home: Path, targets_dir: Path, port: int | None = None):
        self.home, self.targets_dir = Path(home), Path(targets_dir)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> PrometheusServer:
        self.home.mkdir(parents=True, exist_ok=True)
        self.targets_dir.mkdir(parents=True, exist_ok=True)
        config = self.home / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s, scrape_timeout: 900ms}\n"
            "scrape_configs:\n"
            "  - job_name: mainline-haproxy\n"
            f"    file_sd_configs: [{{files: ['{self.targets_dir}/*.json'], refresh_interval: 1s}}]\n")
        with open(self.home / "prometheus.log", "ab") as log:
            self.proc = subprocess.Popen(
                [PROMETHEUS_BIN, f"--config.file={config}", f"--storage.tsdb.path={self.home / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn",
                 "--storage.tsdb.retention.time=1h"], stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/-/ready", timeout=1).ok:
                    return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"prometheus did not start; see {self.home / 'prometheus.log'}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


@dataclass
class Load:
    """Steady GET / through the load balancer from a few threads; what users saw, per second."""

    port: int
    threads: int = 4
    pause: float = 0.005
    ok: int = 0
    failed: int = 0  # 5xx or no answer: a request that failed for a user
    failures_at: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        for n in range(self.threads):
            worker = threading.Thread(target=self._loop, daemon=True, name=f"load-{n}")
            worker.start()
            self._workers.append(worker)
        return self

    def _loop(self) -> None:
        session = requests.Session()
        url = f"http://127.0.0.1:{self.port}/"
        while not self._stop.is_set():
            try:
                good = session.get(url, timeout=3).status_code < 500
            except requests.RequestException:
                good = False
            with self._lock:
                if good:
                    self.ok += 1
                else:
                    self.failed += 1
                    self.failures_at.append(time.monotonic())
            time.sleep(self.pause)

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(5)

    def failed_since(self, moment: float) -> int:
        with self._lock:
            return sum(1 for t in self.failures_at if t >= moment)
