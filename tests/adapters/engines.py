"""The Docker engines `scripts/services.sh up` starts beside the shared one, as the several-host
tests reach them: the shared engine over unix://, `tls` over tcp:// with mutual TLS, `ssh` over
ssh:// through a real sshd with a key made for the tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import docker

from bot.domain.app import DockerHost
from bot.infra.targets.docker.hosts import HostAccess

ROOT = Path(__file__).resolve().parents[2]
STATE = Path("/tmp/mainline-services")  # scripts/services.sh's default state directory
UNIX = DockerHost("unix:///var/run/docker.sock")
TLS = DockerHost("tcp://127.0.0.1:2376", "engines/tls")
SSH = DockerHost("ssh://root@127.0.0.1:2222")
HOSTS = (UNIX, TLS, SSH)


def services(*args: str) -> None:
    done = subprocess.run([str(ROOT / "scripts" / "services.sh"), *args], capture_output=True, text=True,
                          timeout=180, env=dict(os.environ, MAINLINE_STATE_DIR=str(STATE)))
    assert done.returncode == 0, f"scripts/services.sh {' '.join(args)}: {done.stdout}{done.stderr}"


def engine(host: DockerHost) -> docker.DockerClient:
    """The engine behind `host`, reached directly (not through Mainline) to look at what runs."""
    if host == TLS:
        return docker.DockerClient(base_url=f"unix://{STATE}/engines/tls/docker.sock")
    if host == SSH:
        return docker.DockerClient(base_url=f"unix://{STATE}/engines/ssh/docker.sock")
    return docker.DockerClient(base_url=host.url)


def host_access(tmp_path: Path) -> HostAccess:
    """All three allowed; the tls engine's client material under a secrets dir of the test's."""
    services("up")
    secrets = tmp_path / "secrets"
    shutil.copytree(STATE / "engines" / "tls" / "certs", secrets / "engines" / "tls")
    return HostAccess(tuple(h.url for h in HOSTS), secrets, STATE / "sshd" / "id_ed25519",
                      STATE / "sshd" / "known_hosts")
